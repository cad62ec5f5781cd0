package auth_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout/auth"
	"github.com/fanouthq/fanout/config"
)

func TestNewKey(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		key, hash := auth.NewKey()
		require.True(t, strings.HasPrefix(key, auth.KeyPrefix))
		require.Len(t, key, len(auth.KeyPrefix)+43, "32 bytes of unpadded base64url")
		require.Equal(t, auth.HashKey(key), hash)
		require.Len(t, hash, 64)
		require.False(t, seen[key])
		seen[key] = true
		cred, err := auth.APIKeyCredential(http.Header{"Authorization": {"Bearer " + key}})
		require.NoError(t, err, "a new key is a valid bearer token")
		require.Equal(t, key, cred.Value)
	}
	// The hash of a known value (sha256 of "abc").
	require.Equal(t, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", auth.HashKey("abc"))
}

func TestKeysAndAdminTokens(t *testing.T) {
	t.Parallel()
	ci, ciHash := auth.NewKey()
	ops, opsHash := auth.NewKey()
	adm, admHash := auth.NewKey()
	tenants := map[string]*config.Tenant{
		"acme": {Keys: []config.APIKey{{Name: "ci", SHA256: ciHash}}, AdminTokenSHA256: admHash},
		"beta": {Keys: []config.APIKey{{Name: "ops", SHA256: strings.ToUpper(opsHash)}}},
		"jwt":  nil,
	}
	keys, err := auth.NewKeys(tenants)
	require.NoError(t, err)
	require.Equal(t, 2, keys.Len())
	id, ok := keys.Lookup(ci)
	require.True(t, ok)
	require.Equal(t, auth.Identity{Tenant: "acme", Key: "ci"}, id)
	id, ok = keys.Lookup(ops)
	require.True(t, ok)
	require.Equal(t, "beta", id.Tenant)
	for _, bad := range []string{"", ci + "x", ci[:len(ci)-1], ciHash, strings.ToUpper(ci), adm} {
		_, ok := keys.Lookup(bad)
		require.False(t, ok, bad)
	}

	admins, err := auth.NewAdminTokens(tenants)
	require.NoError(t, err)
	tenant, ok := admins.Tenant(adm)
	require.True(t, ok)
	require.Equal(t, "acme", tenant)
	for _, bad := range []string{"", ci, admHash} {
		_, ok := admins.Tenant(bad)
		require.False(t, ok, bad)
	}
	var none *auth.AdminTokens
	_, ok = none.Tenant(adm)
	require.False(t, ok)

	_, err = auth.NewKeys(map[string]*config.Tenant{"a": {Keys: []config.APIKey{{Name: "k", SHA256: "xyz"}}}})
	require.Error(t, err)
	_, err = auth.NewKeys(map[string]*config.Tenant{
		"a": {Keys: []config.APIKey{{Name: "k", SHA256: ciHash}}},
		"b": {Keys: []config.APIKey{{Name: "k", SHA256: ciHash}}},
	})
	require.Error(t, err, "one hash for two keys is ambiguous")
}

func TestGuardAPIKey(t *testing.T) {
	t.Parallel()
	ci, ciHash := auth.NewKey()
	other, otherHash := auth.NewKey()
	keys, err := auth.NewKeys(map[string]*config.Tenant{
		"acme": {Keys: []config.APIKey{{Name: "ci", SHA256: ciHash}}},
		"beta": {Keys: []config.APIKey{{Name: "ops", SHA256: otherHash}}},
	})
	require.NoError(t, err)
	anyTenant, err := auth.NewGuard(config.AuthAPIKey, nil, keys, nil)
	require.NoError(t, err)
	acmeOnly, err := auth.NewGuard(config.AuthAPIKey, []string{"acme"}, keys, nil)
	require.NoError(t, err)
	ctx := context.Background()

	for _, tc := range []struct {
		name      string
		h         http.Header
		status    int
		challenge string
		header    string // of the credential, when accepted
	}{
		{"bearer", http.Header{"Authorization": {"Bearer " + ci}}, 0, "", "Authorization"},
		{"bearer, scheme in lower case", http.Header{"Authorization": {"bearer " + ci}}, 0, "", "Authorization"},
		{"X-Api-Key", http.Header{"X-Api-Key": {ci}}, 0, "", "X-Api-Key"},
		{"X-Api-Key wins over an Authorization for the targets", http.Header{"X-Api-Key": {ci}, "Authorization": {"Basic dTpw"}}, 0, "", "X-Api-Key"},
		{"none", http.Header{}, 401, `Bearer realm="fanout"`, ""},
		{"another scheme", http.Header{"Authorization": {"Basic " + ci}}, 401, `Bearer realm="fanout"`, ""},
		{"unknown key", http.Header{"X-Api-Key": {"fo_nope"}}, 401, `Bearer realm="fanout", error="invalid_token"`, ""},
		{"the hash instead of the key", http.Header{"X-Api-Key": {ciHash}}, 401, `Bearer realm="fanout", error="invalid_token"`, ""},
		{"two X-Api-Key headers", http.Header{"X-Api-Key": {ci, ci}}, 401, `Bearer realm="fanout", error="invalid_token"`, ""},
		{"two Authorization headers", http.Header{"Authorization": {"Bearer " + ci, "Bearer " + ci}}, 401, `Bearer realm="fanout", error="invalid_token"`, ""},
		{"empty X-Api-Key", http.Header{"X-Api-Key": {""}}, 401, `Bearer realm="fanout", error="invalid_token"`, ""},
		{"bearer without a token", http.Header{"Authorization": {"Bearer"}}, 401, `Bearer realm="fanout", error="invalid_token"`, ""},
		{"key with a space", http.Header{"X-Api-Key": {ci + " x"}}, 401, `Bearer realm="fanout", error="invalid_token"`, ""},
		{"bearer with two tokens", http.Header{"Authorization": {"Bearer " + ci + " " + ci}}, 401, `Bearer realm="fanout", error="invalid_token"`, ""},
		{"huge key", http.Header{"X-Api-Key": {strings.Repeat("k", auth.MaxCredentialLen+1)}}, 401, `Bearer realm="fanout", error="invalid_token"`, ""},
	} {
		id, err := anyTenant.Check(ctx, tc.h)
		require.Equal(t, tc.status, statusOf(t, err), tc.name)
		if tc.status != 0 {
			var ae *auth.Error
			require.ErrorAs(t, err, &ae)
			api := ae.APIError()
			require.Equal(t, "unauthorized", api.Code, tc.name)
			require.Equal(t, tc.challenge, api.Header.Get("WWW-Authenticate"), tc.name)
			require.NotContains(t, ae.Reason+ae.Message+api.Message, ci, "%s: the key is never echoed", tc.name)
			continue
		}
		require.Equal(t, auth.Identity{Tenant: "acme", Key: "ci", Header: tc.header}, id, tc.name)
		require.Equal(t, "key:acme/ci", id.Principal())
	}

	_, err = acmeOnly.Check(ctx, http.Header{"X-Api-Key": {other}})
	require.Equal(t, http.StatusForbidden, statusOf(t, err), "beta's key on an acme route")
	var ae *auth.Error
	require.ErrorAs(t, err, &ae)
	require.Equal(t, "forbidden", ae.APIError().Code)
	require.Equal(t, "beta", ae.Identity.Tenant)
	_, err = acmeOnly.Check(ctx, http.Header{"X-Api-Key": {ci}})
	require.NoError(t, err)
}

func TestGuardJWT(t *testing.T) {
	t.Parallel()
	rs := newRSA("rs")
	is := newIssuer(t, rs)
	j := newJWT(t, jwtConfig(is.srv.URL), auth.KeySetOptions{})
	g, err := auth.NewGuard(config.AuthJWT, []string{"acme"}, nil, j)
	require.NoError(t, err)
	ctx := context.Background()
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

	id, err := g.Check(ctx, bearer(rs.sign(t, claims("acme"))))
	require.NoError(t, err)
	require.Equal(t, auth.Identity{Tenant: "acme", Subject: "user-1", Header: "Authorization"}, id)
	require.Equal(t, "tenant:acme", id.Principal())

	_, err = g.Check(ctx, bearer(rs.sign(t, claims("beta"))))
	require.Equal(t, http.StatusForbidden, statusOf(t, err))
	_, err = g.Check(ctx, bearer(rs.sign(t, claims(""))))
	require.Equal(t, http.StatusForbidden, statusOf(t, err), "no tenant claim on a route with tenants")
	_, err = g.Check(ctx, http.Header{"X-Api-Key": {"x"}})
	require.Equal(t, http.StatusUnauthorized, statusOf(t, err), "an API key is no JWT")
	_, err = g.Check(ctx, bearer("not-a-jwt"))
	require.Equal(t, http.StatusUnauthorized, statusOf(t, err))

	open, err := auth.NewGuard(config.AuthJWT, nil, nil, j)
	require.NoError(t, err)
	id, err = open.Check(ctx, bearer(rs.sign(t, claims(""))))
	require.NoError(t, err)
	require.Equal(t, "sub:user-1", id.Principal(), "no tenant: limited per subject")
}

func TestNewGuard(t *testing.T) {
	t.Parallel()
	g, err := auth.NewGuard(config.AuthNone, nil, nil, nil)
	require.NoError(t, err)
	require.Nil(t, g)
	g, err = auth.NewGuard("", nil, nil, nil)
	require.NoError(t, err)
	require.Nil(t, g)
	for _, tc := range []struct {
		mode    config.AuthMode
		tenants []string
	}{
		{config.AuthNone, []string{"acme"}},
		{config.AuthAPIKey, nil},
		{config.AuthJWT, nil},
		{"basic", nil},
	} {
		_, err := auth.NewGuard(tc.mode, tc.tenants, nil, nil)
		require.Error(t, err, tc.mode)
	}
}
