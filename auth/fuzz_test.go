package auth_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fanouthq/fanout/auth"
)

// FuzzJWTVerifyToken feeds arbitrary tokens, and arbitrary Authorization
// headers, to a verifier whose key set holds a real key: nothing panics,
// every refusal is a 401 or 403 *auth.Error, and the only token accepted
// is the one the issuer signed (no variant of it: encodings are strict).
//
//	go test ./auth -run '^$' -fuzz FuzzJWTVerifyToken -fuzztime 60s
func FuzzJWTVerifyToken(f *testing.F) {
	rs := newRSA("rs")
	is := newIssuer(f, rs)
	j, err := auth.NewJWT(jwtConfig(is.srv.URL), auth.KeySetOptions{})
	if err != nil {
		f.Fatal(err)
	}
	valid := rs.sign(f, claims("acme"))
	if _, err := j.Verify(context.Background(), valid); err != nil {
		f.Fatal(err) // loads the key set
	}
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims("acme")).SignedString(jwt.UnsafeAllowNoneSignatureType)
	for _, s := range []string{valid, none, valid + "x", strings.Replace(valid, ".", "..", 1), "a.b.c", "", "e30.e30.", "eyJhbGciOiJSUzI1NiIsImtpZCI6InJzIn0.e30.AAAA"} {
		f.Add(s)
	}
	g, err := auth.NewGuard("jwt", nil, nil, j)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		id, err := j.Verify(context.Background(), tok)
		if err == nil {
			if tok != valid || id.Tenant != "acme" {
				t.Fatalf("accepted %q as %+v", tok, id)
			}
		} else {
			var ae *auth.Error
			if !errors.As(err, &ae) || (ae.Status != http.StatusUnauthorized && ae.Status != http.StatusForbidden) {
				t.Fatalf("refusal %T %v", err, err)
			}
		}
		// The same through the header parser.
		_, err = g.Check(context.Background(), http.Header{"Authorization": {"Bearer " + tok}})
		if err != nil && !errors.As(err, new(*auth.Error)) {
			t.Fatalf("refusal %T %v", err, err)
		}
	})
}
