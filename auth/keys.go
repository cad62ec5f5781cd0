package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"

	"github.com/fanouthq/fanout/config"
)

// KeyPrefix starts every key NewKey makes, so that a leaked key is easy
// to recognise (and to find with secret scanners).
const KeyPrefix = "fo_"

// NewKey returns a new random API key: KeyPrefix and 32 random bytes in
// unpadded base64url (256 bits of entropy), and the hex SHA-256 to put in
// the config.
func NewKey() (key, sha256Hex string) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	key = KeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return key, HashKey(key)
}

// HashKey returns the hex SHA-256 of key, as the config stores it. Keys
// are random and long, so a fast hash is the right one: there is nothing
// for a slow one to protect against guessing.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// hashSet finds secrets by their SHA-256.
type hashSet[T any] struct {
	byHash map[[sha256.Size]byte]hashEntry[T]
}

type hashEntry[T any] struct {
	hash [sha256.Size]byte
	val  T
}

func (s *hashSet[T]) add(hexHash string, val T) error {
	b, err := hex.DecodeString(hexHash)
	if err != nil || len(b) != sha256.Size {
		return fmt.Errorf("%q is not a hex SHA-256", hexHash)
	}
	var h [sha256.Size]byte
	copy(h[:], b)
	if _, dup := s.byHash[h]; dup {
		return fmt.Errorf("hash %s is used twice", hexHash)
	}
	if s.byHash == nil {
		s.byHash = map[[sha256.Size]byte]hashEntry[T]{}
	}
	s.byHash[h] = hashEntry[T]{hash: h, val: val}
	return nil
}

// lookup finds secret by its hash. The map lookup leaks, through timing,
// at most something about the hash of the secret tried, which tells
// nothing of any stored secret; the stored hash is then compared in
// constant time all the same.
func (s *hashSet[T]) lookup(secret string) (T, bool) {
	sum := sha256.Sum256([]byte(secret))
	e, ok := s.byHash[sum]
	if !ok || subtle.ConstantTimeCompare(e.hash[:], sum[:]) != 1 {
		var zero T
		return zero, false
	}
	return e.val, true
}

// Keys holds the inbound API keys of every tenant, by hash. It is
// immutable and safe for concurrent use.
type Keys struct {
	set hashSet[Identity]
}

// NewKeys indexes the keys of tenants. It fails on a hash that is not 64
// hex digits or that two keys share (a validated config has neither).
func NewKeys(tenants map[string]*config.Tenant) (*Keys, error) {
	k := &Keys{}
	for name, t := range tenants {
		if t == nil {
			continue
		}
		for _, key := range t.Keys {
			if err := k.set.add(key.SHA256, Identity{Tenant: name, Key: key.Name}); err != nil {
				return nil, fmt.Errorf("tenant %s key %s: %w", name, key.Name, err)
			}
		}
	}
	return k, nil
}

// Len returns the number of keys.
func (k *Keys) Len() int { return len(k.set.byHash) }

// Lookup returns the identity (tenant and key name) of key, and false when
// key is not one of the keys.
func (k *Keys) Lookup(key string) (Identity, bool) {
	return k.set.lookup(key)
}

// AdminTokens holds the tenant-scoped admin tokens (admin_token_sha256),
// by hash. It is immutable and safe for concurrent use.
type AdminTokens struct {
	set hashSet[string]
}

// NewAdminTokens indexes the admin tokens of tenants.
func NewAdminTokens(tenants map[string]*config.Tenant) (*AdminTokens, error) {
	a := &AdminTokens{}
	for name, t := range tenants {
		if t == nil || t.AdminTokenSHA256 == "" {
			continue
		}
		if err := a.set.add(t.AdminTokenSHA256, name); err != nil {
			return nil, fmt.Errorf("tenant %s admin_token_sha256: %w", name, err)
		}
	}
	return a, nil
}

// Tenant returns the tenant whose admin token is token, and false when
// token is no tenant's.
func (a *AdminTokens) Tenant(token string) (string, bool) {
	if a == nil || token == "" {
		return "", false
	}
	return a.set.lookup(token)
}
