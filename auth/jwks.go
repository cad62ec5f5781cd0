package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
	"golang.org/x/time/rate"
)

// Key set defaults.
const (
	// DefaultRefreshInterval is how old a key set may get before the next
	// token that needs it refreshes it.
	DefaultRefreshInterval = time.Hour
	// DefaultUnknownKIDInterval is the least time between two refreshes
	// caused by a token naming an unknown key id: tokens with made-up key
	// ids cannot make Fanout hammer the issuer.
	DefaultUnknownKIDInterval = time.Minute
	// retryAfterFailure is the least time between two fetches when the
	// last one failed.
	retryAfterFailure = 5 * time.Second
	// fetchTimeout bounds one fetch of the key set.
	fetchTimeout = 10 * time.Second
	// maxKeySetSize bounds the key set document.
	maxKeySetSize = 1 << 20
	// minRSABits is the smallest RSA key accepted.
	minRSABits = 2048
)

// Why a key cannot be found.
var (
	errUnknownKID     = errors.New("no key with this key id")
	errNoUsableKey    = errors.New("no key of the key set fits the token's algorithm")
	errKeySetNotReady = errors.New("the key set cannot be fetched")
)

// KeySetOptions configures a KeySet. Zero values mean the documented
// defaults.
type KeySetOptions struct {
	// Client fetches the key set. Nil: a client with a 10s timeout, the
	// proxy of the environment and no keep-alive.
	Client *http.Client
	// Logger receives a warning per failed fetch. Nil discards them.
	Logger *slog.Logger
	// RefreshInterval: DefaultRefreshInterval when 0.
	RefreshInterval time.Duration
	// UnknownKIDInterval: DefaultUnknownKIDInterval when 0.
	UnknownKIDInterval time.Duration
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// KeySet is the cached JWK Set of one URL. A fetch happens on first use,
// when the set is older than the refresh interval (the request that finds
// it stale fetches; the others keep using the old keys meanwhile), and
// when a token names a key id the set lacks, at most once per unknown-kid
// interval. One fetch runs at a time; a failed fetch keeps the old keys. It
// is safe for concurrent use.
type KeySet struct {
	url        string
	client     *http.Client
	log        *slog.Logger
	now        func() time.Time
	refresh    time.Duration
	unknownKID *rate.Limiter

	mu        sync.Mutex
	keys      []jwk         // nil until a fetch succeeded
	fetchedAt time.Time     // of the keys
	failedAt  time.Time     // of the last failed fetch, zero after a success
	lastErr   error         // of the last failed fetch
	fetching  chan struct{} // closed when the fetch in progress ends; nil when none
	fetches   int
}

// jwk is one usable key of the set.
type jwk struct {
	kid string
	alg string // "" when the set does not say
	key crypto.PublicKey
}

// NewKeySet returns the key set of url; nothing is fetched yet.
func NewKeySet(url string, opts KeySetOptions) *KeySet {
	ks := &KeySet{
		url:     url,
		client:  opts.Client,
		log:     opts.Logger,
		now:     opts.Now,
		refresh: opts.RefreshInterval,
	}
	if ks.client == nil {
		// Fetches are hourly at most: keeping connections alive would
		// only keep goroutines and sockets around.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DisableKeepAlives = true
		ks.client = &http.Client{Timeout: fetchTimeout, Transport: tr}
	}
	if ks.log == nil {
		ks.log = slog.New(slog.DiscardHandler)
	}
	if ks.now == nil {
		ks.now = time.Now
	}
	if ks.refresh <= 0 {
		ks.refresh = DefaultRefreshInterval
	}
	every := opts.UnknownKIDInterval
	if every <= 0 {
		every = DefaultUnknownKIDInterval
	}
	ks.unknownKID = rate.NewLimiter(rate.Every(every), 1)
	return ks
}

// URL returns the key set's URL.
func (ks *KeySet) URL() string { return ks.url }

// Fetches returns how many fetches were attempted, for tests and metrics.
func (ks *KeySet) Fetches() int {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.fetches
}

// Key returns the public key that verifies a token signed with alg whose
// header names kid ("" when it names none: every key of the set that fits
// alg is returned, for the caller to try). An unknown kid refreshes the set
// when the rate limit allows.
func (ks *KeySet) Key(ctx context.Context, kid, alg string) ([]crypto.PublicKey, error) {
	keys, err := ks.current(ctx)
	if err != nil {
		return nil, err
	}
	found, err := pick(keys, kid, alg)
	if !errors.Is(err, errUnknownKID) {
		return found, err
	}
	if !ks.unknownKID.AllowN(ks.now(), 1) {
		return nil, err
	}
	if keys, err = ks.fetch(ctx, true); err != nil {
		return nil, err
	}
	return pick(keys, kid, alg)
}

// pick returns the keys of kid ("" for any) that fit alg.
func pick(keys []jwk, kid, alg string) ([]crypto.PublicKey, error) {
	var out []crypto.PublicKey
	known := false
	for _, k := range keys {
		if kid != "" && k.kid != kid {
			continue
		}
		known = true
		if (k.alg == "" || k.alg == alg) && fits(alg, k.key) {
			out = append(out, k.key)
		}
	}
	switch {
	case len(out) > 0:
		return out, nil
	case kid != "" && !known:
		return nil, errUnknownKID
	}
	return nil, errNoUsableKey
}

// fits reports whether key can verify a signature of alg: an RSA key of
// 2048 bits or more for RS* and PS*, an ECDSA key on the algorithm's curve
// for ES*, an Ed25519 key for EdDSA. Never a symmetric key.
func fits(alg string, key crypto.PublicKey) bool {
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		k, ok := key.(*rsa.PublicKey)
		return ok && k.N != nil && k.N.BitLen() >= minRSABits
	case "ES256", "ES384", "ES512":
		k, ok := key.(*ecdsa.PublicKey)
		if !ok {
			return false
		}
		switch alg {
		case "ES256":
			return k.Curve == elliptic.P256()
		case "ES384":
			return k.Curve == elliptic.P384()
		}
		return k.Curve == elliptic.P521()
	case "EdDSA":
		_, ok := key.(ed25519.PublicKey)
		return ok
	}
	return false
}

// current returns the keys, fetching them when there are none yet or they
// are older than the refresh interval.
func (ks *KeySet) current(ctx context.Context) ([]jwk, error) {
	ks.mu.Lock()
	now := ks.now()
	keys, fresh := ks.keys, ks.keys != nil && now.Sub(ks.fetchedAt) < ks.refresh
	canRetry := ks.failedAt.IsZero() || now.Sub(ks.failedAt) >= retryAfterFailure
	switch {
	case fresh:
		ks.mu.Unlock()
		return keys, nil
	case keys != nil && (ks.fetching != nil || !canRetry):
		// Stale: someone is refreshing, or the issuer just failed; the
		// old keys still serve.
		ks.mu.Unlock()
		return keys, nil
	case keys == nil && ks.fetching == nil && !canRetry:
		err := ks.lastErr
		ks.mu.Unlock()
		return nil, err
	}
	ks.mu.Unlock()
	return ks.fetch(ctx, false)
}

// fetch refreshes the key set, or waits for the fetch in progress, and
// returns the keys. A failure keeps the old keys, which are returned
// unless there are none.
func (ks *KeySet) fetch(ctx context.Context, force bool) ([]jwk, error) {
	ks.mu.Lock()
	if ch := ks.fetching; ch != nil {
		ks.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return ks.result()
	}
	if now := ks.now(); !force && (ks.keys != nil && now.Sub(ks.fetchedAt) < ks.refresh ||
		!ks.failedAt.IsZero() && now.Sub(ks.failedAt) < retryAfterFailure) {
		ks.mu.Unlock()
		return ks.result() // fetched, or failed, meanwhile
	}
	ch := make(chan struct{})
	ks.fetching = ch
	ks.fetches++
	ks.mu.Unlock()

	// The fetch serves every waiting request: it does not end with the
	// request that started it.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	keys, err := ks.get(fctx)
	cancel()

	ks.mu.Lock()
	if err != nil {
		ks.failedAt, ks.lastErr = ks.now(), fmt.Errorf("%w: %w", errKeySetNotReady, err)
		ks.log.LogAttrs(ctx, slog.LevelWarn, "JWK set fetch failed; keeping the keys it had",
			slog.String("jwks_url", ks.url), slog.String("error", err.Error()), slog.Int("keys", len(ks.keys)))
	} else {
		ks.keys, ks.fetchedAt, ks.failedAt, ks.lastErr = keys, ks.now(), time.Time{}, nil
	}
	ks.fetching = nil
	close(ch)
	ks.mu.Unlock()
	return ks.result()
}

// result returns the keys, or the last error when there are none.
func (ks *KeySet) result() ([]jwk, error) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.keys == nil {
		if ks.lastErr == nil {
			return nil, errKeySetNotReady
		}
		return nil, ks.lastErr
	}
	return ks.keys, nil
}

// get fetches and parses the key set. Keys that cannot be parsed, or that
// are for encryption, are left out; a set with no usable key is an error,
// so that a broken answer does not wipe the keys in use.
func (ks *KeySet) get(ctx context.Context) ([]jwk, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ks.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := ks.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, errors.New("the key set URL answered " + strconv.Itoa(resp.StatusCode))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeySetSize+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxKeySetSize {
		return nil, fmt.Errorf("the key set is larger than %d bytes", maxKeySetSize)
	}
	return parseKeySet(body)
}

// parseKeySet parses a JWK Set document into its usable public keys.
func parseKeySet(body []byte) ([]jwk, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("the key set is not a JWK Set: %w", err)
	}
	keys := make([]jwk, 0, len(doc.Keys))
	for _, raw := range doc.Keys {
		k, err := jwkset.NewJWKFromRawJSON(raw, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			continue
		}
		m := k.Marshal()
		if m.USE != "" && m.USE != jwkset.UseSig {
			continue
		}
		pub := k.Key()
		if p, ok := pub.(interface{ Public() crypto.PublicKey }); ok {
			pub = p.Public() // a set that (wrongly) publishes a private key
		}
		switch pub.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		default:
			continue // symmetric and unknown keys never verify a token
		}
		keys = append(keys, jwk{kid: m.KID, alg: m.ALG.String(), key: pub})
	}
	if len(keys) == 0 {
		return nil, errors.New("the key set has no usable signing key")
	}
	return keys, nil
}
