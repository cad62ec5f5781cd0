package auth

import (
	"errors"
	"net/http"
	"strings"
)

// Headers that carry credentials.
const (
	HeaderAuthorization = "Authorization"
	HeaderAPIKey        = "X-Api-Key"
)

// MaxCredentialLen bounds the length of a credential (an API key or a
// JWT); longer values are refused before any work is done on them.
const MaxCredentialLen = 8 << 10

// Problems with the credential header of a request.
var (
	// ErrNoCredential means the request carries no credential of the
	// expected kind.
	ErrNoCredential = errors.New("no credential")
	// ErrMalformedCredential means a credential header is present but
	// cannot be read: repeated, empty, too long or with characters a
	// token may not have.
	ErrMalformedCredential = errors.New("malformed credential")
)

// Credential is a secret taken from a request header.
type Credential struct {
	// Value is the secret (never log it).
	Value string
	// Header is the canonical name of the header it came from.
	Header string
}

// APIKeyCredential returns the API key of a request: the X-Api-Key header
// when present, else an "Authorization: Bearer" token. X-Api-Key comes
// first so that a caller may send its Fanout key there and an
// Authorization header meant for the targets.
func APIKeyCredential(h http.Header) (Credential, error) {
	if vs, ok := h[HeaderAPIKey]; ok {
		if len(vs) != 1 || !validKey(vs[0]) {
			return Credential{}, ErrMalformedCredential
		}
		return Credential{Value: vs[0], Header: HeaderAPIKey}, nil
	}
	return BearerCredential(h)
}

// BearerCredential returns the token of an "Authorization: Bearer <token>"
// header (RFC 6750 §2.1; the scheme is case-insensitive). A request with
// no Authorization header, or one of another scheme, has no bearer
// credential; one with several Authorization headers is malformed.
func BearerCredential(h http.Header) (Credential, error) {
	vs, ok := h[HeaderAuthorization]
	if !ok {
		return Credential{}, ErrNoCredential
	}
	if len(vs) != 1 {
		return Credential{}, ErrMalformedCredential
	}
	tok, err := ParseBearer(vs[0])
	if err != nil {
		return Credential{}, err
	}
	return Credential{Value: tok, Header: HeaderAuthorization}, nil
}

// ParseBearer returns the token of an Authorization header value of the
// Bearer scheme. It returns ErrNoCredential for another scheme and
// ErrMalformedCredential for a Bearer value whose token is missing, too
// long or not a token68 (letters, digits, "-._~+/" then any "=").
func ParseBearer(v string) (string, error) {
	scheme, rest, _ := strings.Cut(strings.TrimLeft(v, " \t"), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", ErrNoCredential
	}
	tok := strings.Trim(rest, " \t")
	if !token68(tok) {
		return "", ErrMalformedCredential
	}
	return tok, nil
}

// token68 reports whether s is a non-empty RFC 9110 token68 of at most
// MaxCredentialLen bytes.
func token68(s string) bool {
	if s == "" || len(s) > MaxCredentialLen {
		return false
	}
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~+/", c) >= 0) {
			break
		}
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// validKey reports whether an X-Api-Key value can be a key: visible ASCII
// without spaces, at most MaxCredentialLen bytes.
func validKey(s string) bool {
	if s == "" || len(s) > MaxCredentialLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
