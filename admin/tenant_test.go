package admin_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout/admin"
	"github.com/fanouthq/fanout/auth"
	"github.com/fanouthq/fanout/config"
)

// withTenantTokens gives tenants acme and beta admin tokens in the
// bundle's config and returns the tokens.
func withTenantTokens(b *bundle) (acme, beta string) {
	acme, acmeHash := auth.NewKey()
	beta, betaHash := auth.NewKey()
	cfg := testConfig()
	cfg.Tenants = map[string]*config.Tenant{
		"acme": {Name: "acme", AdminTokenSHA256: acmeHash},
		"beta": {Name: "beta", AdminTokenSHA256: betaHash},
		"jwt":  nil,
	}
	b.cfg.Store(cfg)
	return acme, beta
}

func TestTenantAdminToken(t *testing.T) {
	t.Parallel()
	b := setup(t)
	acmeToken, betaToken := withTenantTokens(b)
	mine := b.accept("signup", "acme", time.Minute, []string{"crm", "analytics"})
	theirs := b.accept("signup", "beta", 2*time.Minute, []string{"crm", "analytics"})
	nobody := b.accept("signup", "", 3*time.Minute, []string{"crm"})
	b.kill(mine, "crm")
	b.kill(theirs, "crm")
	acme := admin.NewClient(b.srv.URL, acmeToken, b.httpClient())
	ctx := context.Background()

	// The list holds acme's messages only, whatever the filter says.
	page, err := acme.ListMessages(ctx, admin.ListParams{})
	require.NoError(t, err)
	require.Len(t, page.Messages, 1)
	require.Equal(t, mine, page.Messages[0].ID)
	res, body := b.do(http.MethodGet, "/v1/messages?tenant=beta", acmeToken, "")
	b.requireError(res, body, http.StatusForbidden, "forbidden")
	res, body = b.do(http.MethodGet, "/v1/messages?tenant=acme", acmeToken, "")
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", body)

	// Another tenant's message, or one without a tenant, does not exist
	// for acme: show, replay and delete all answer 404.
	_, err = acme.GetMessage(ctx, mine)
	require.NoError(t, err)
	for _, id := range []string{theirs, nobody} {
		res, body := b.do(http.MethodGet, "/v1/messages/"+id, acmeToken, "")
		b.requireError(res, body, http.StatusNotFound, "message_not_found")
		res, body = b.do(http.MethodPost, "/v1/messages/"+id+"/replay", acmeToken, "")
		b.requireError(res, body, http.StatusNotFound, "message_not_found")
		res, body = b.do(http.MethodDelete, "/v1/messages/"+id, acmeToken, "")
		b.requireError(res, body, http.StatusNotFound, "message_not_found")
	}
	require.Equal(t, "dead", b.states(theirs)["crm"], "beta's message was not replayed")

	// Bulk replay: only acme's dead deliveries.
	res, body = b.do(http.MethodPost, "/v1/deliveries/replay", acmeToken, `{"state":"dead"}`)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", body)
	var rr admin.ReplayResponse
	require.NoError(t, json.Unmarshal(body, &rr))
	require.Equal(t, 1, rr.Replayed)
	require.Equal(t, "pending", b.states(mine)["crm"])
	require.Equal(t, "dead", b.states(theirs)["crm"])
	res, body = b.do(http.MethodPost, "/v1/deliveries/replay", acmeToken, `{"tenant":"beta"}`)
	b.requireError(res, body, http.StatusForbidden, "forbidden")

	// Its own message: replay and delete work.
	res, body = b.do(http.MethodPost, "/v1/messages/"+mine+"/replay", acmeToken, "")
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", body)
	res, _ = b.do(http.MethodDelete, "/v1/messages/"+mine, acmeToken, "")
	require.Equal(t, http.StatusNoContent, res.StatusCode)

	// The operator's endpoints are not a tenant's.
	for _, p := range []struct{ method, path, body string }{
		{http.MethodGet, "/v1/routes", ""},
		{http.MethodGet, "/v1/targets", ""},
		{http.MethodPost, "/v1/routes/signup/backfill", `{"target":"late","since":"1h"}`},
	} {
		res, body := b.do(p.method, p.path, betaToken, p.body)
		b.requireError(res, body, http.StatusForbidden, "forbidden")
	}

	// The admin token still sees everything.
	page, err = b.client.ListMessages(ctx, admin.ListParams{})
	require.NoError(t, err)
	require.Len(t, page.Messages, 2)
	page, err = b.client.ListMessages(ctx, admin.ListParams{Tenant: "beta"})
	require.NoError(t, err)
	require.Len(t, page.Messages, 1)

	// Wrong tokens: the hash itself, another scheme, nothing.
	for _, tc := range []struct{ header string }{
		{"Bearer " + auth.HashKey(acmeToken)},
		{"Basic " + acmeToken},
		{"Bearer "},
		{acmeToken},
	} {
		req, err := http.NewRequest(http.MethodGet, b.srv.URL+"/v1/messages", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", tc.header)
		resp, err := b.httpClient().Do(req)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, tc.header)
	}

	// A reload that removes the tenant's token locks it out at once.
	b.cfg.Store(testConfig())
	res, body = b.do(http.MethodGet, "/v1/messages", acmeToken, "")
	b.requireError(res, body, http.StatusUnauthorized, "unauthorized")
}
