package auth_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout/auth"
)

func TestParseBearer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want string
		err  error
	}{
		{"Bearer abc", "abc", nil},
		{"bearer abc", "abc", nil},
		{"BEARER abc", "abc", nil},
		{"Bearer   abc  ", "abc", nil},
		{" Bearer abc", "abc", nil},
		{"Bearer a-b.c_d~e+f/g==", "a-b.c_d~e+f/g==", nil},
		{"Bearer eyJ.eyJ.sig", "eyJ.eyJ.sig", nil},
		{"Basic dXNlcjpwdw==", "", auth.ErrNoCredential},
		{"Bearerabc", "", auth.ErrNoCredential},
		{"", "", auth.ErrNoCredential},
		{"Bearer", "", auth.ErrMalformedCredential},
		{"Bearer ", "", auth.ErrMalformedCredential},
		{"Bearer a b", "", auth.ErrMalformedCredential},
		{"Bearer =abc", "", auth.ErrMalformedCredential},
		{"Bearer ab=c", "", auth.ErrMalformedCredential},
		{"Bearer a\x00b", "", auth.ErrMalformedCredential},
		{"Bearer é", "", auth.ErrMalformedCredential},
		{"Bearer a,b", "", auth.ErrMalformedCredential},
		{"Bearer " + strings.Repeat("a", auth.MaxCredentialLen+1), "", auth.ErrMalformedCredential},
	} {
		got, err := auth.ParseBearer(tc.in)
		require.ErrorIs(t, err, tc.err, "%q", tc.in)
		if tc.err == nil {
			require.NoError(t, err, "%q", tc.in)
		}
		require.Equal(t, tc.want, got, "%q", tc.in)
	}
}

func TestAPIKeyCredential(t *testing.T) {
	t.Parallel()
	c, err := auth.APIKeyCredential(http.Header{"X-Api-Key": {"k1"}, "Authorization": {"Bearer k2"}})
	require.NoError(t, err)
	require.Equal(t, auth.Credential{Value: "k1", Header: "X-Api-Key"}, c)
	c, err = auth.APIKeyCredential(http.Header{"Authorization": {"Bearer k2"}})
	require.NoError(t, err)
	require.Equal(t, auth.Credential{Value: "k2", Header: "Authorization"}, c)
	_, err = auth.APIKeyCredential(http.Header{})
	require.ErrorIs(t, err, auth.ErrNoCredential)
	for _, bad := range [][]string{{""}, {"a b"}, {"a\tb"}, {"k", "k"}, {"ké"}, {"k\x7f"}} {
		_, err = auth.APIKeyCredential(http.Header{"X-Api-Key": bad})
		require.ErrorIs(t, err, auth.ErrMalformedCredential, "%q", bad)
	}
}

// FuzzParseBearerHeader checks that no Authorization value makes
// ParseBearer panic, that a token it returns is a well-formed token68 that
// parses back to itself, and that it only returns its two errors.
//
//	go test ./auth -run '^$' -fuzz FuzzParseBearerHeader -fuzztime 60s
func FuzzParseBearerHeader(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer a.b.c", "Basic x", "Bearer", "Bearer  a==", "Bearer a=b", "", " \t", "Bearer \x00", "BEARER fo_" + strings.Repeat("A", 43)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		tok, err := auth.ParseBearer(v)
		if err != nil {
			if !errors.Is(err, auth.ErrNoCredential) && !errors.Is(err, auth.ErrMalformedCredential) {
				t.Fatalf("unexpected error %v", err)
			}
			if tok != "" {
				t.Fatalf("a token with an error: %q", tok)
			}
			return
		}
		if tok == "" || len(tok) > auth.MaxCredentialLen || strings.ContainsAny(tok, " \t\r\n,\"") || tok[0] == '=' {
			t.Fatalf("bad token %q from %q", tok, v)
		}
		again, err := auth.ParseBearer("Bearer " + tok)
		if err != nil || again != tok {
			t.Fatalf("token %q does not parse back: %q %v", tok, again, err)
		}
	})
}

// FuzzAPIKeyHeaders checks APIKeyCredential over any pair of X-Api-Key and
// Authorization values: no panic, and a credential it accepts is
// printable ASCII without spaces, came from one of the two headers, and
// is exactly what that header held (X-Api-Key) or its bearer token.
//
//	go test ./auth -run '^$' -fuzz FuzzAPIKeyHeaders -fuzztime 60s
func FuzzAPIKeyHeaders(f *testing.F) {
	f.Add("fo_abc", "", true, false)
	f.Add("", "Bearer fo_abc", false, true)
	f.Add("a b", "Bearer x", true, true)
	f.Add("", "Basic eA==", false, true)
	f.Fuzz(func(t *testing.T, key, authz string, hasKey, hasAuthz bool) {
		h := http.Header{}
		if hasKey {
			h["X-Api-Key"] = []string{key}
		}
		if hasAuthz {
			h["Authorization"] = []string{authz}
		}
		c, err := auth.APIKeyCredential(h)
		if err != nil {
			return
		}
		if c.Value == "" || len(c.Value) > auth.MaxCredentialLen {
			t.Fatalf("bad credential %q", c.Value)
		}
		for i := 0; i < len(c.Value); i++ {
			if c.Value[i] <= ' ' || c.Value[i] >= 0x7f {
				t.Fatalf("credential %q has byte %#x", c.Value, c.Value[i])
			}
		}
		switch c.Header {
		case "X-Api-Key":
			if !hasKey || c.Value != key {
				t.Fatalf("X-Api-Key credential %q from %q", c.Value, key)
			}
		case "Authorization":
			if hasKey || !hasAuthz || !strings.Contains(authz, c.Value) {
				t.Fatalf("Authorization credential %q from %q", c.Value, authz)
			}
		default:
			t.Fatalf("credential from header %q", c.Header)
		}
	})
}
