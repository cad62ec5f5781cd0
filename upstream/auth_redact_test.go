package upstream_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/upstream"
)

func TestAPIKeyInQuery(t *testing.T) {
	t.Parallel()
	b := setup(t)
	h, seen := recorder(200, "", "")
	tg, _ := newTarget(t, "t", "/in?v=1", h)
	tg.Auth = &config.Auth{APIKey: &config.APIKeyAuth{Query: "api key", Value: "k&1="}}
	for range 2 { // the target's URL is shared: nothing piles up on it
		res := b.client.Exchange(context.Background(), upstream.Request{Target: tg}, 0)
		require.NoError(t, res.Err)
		require.Equal(t, "/in?v=1&api+key=k%261%3D", (<-seen).Path)
		require.Equal(t, tg.URL, res.RequestURL, "the key is not in the recorded URL")
		require.NotContains(t, res.RequestURL, "k%261")
	}
	require.Equal(t, "v=1", tg.ParsedURL.RawQuery)

	// With user info in the URL the recorded URL is rebuilt: still no key,
	// no password.
	h2, seen2 := recorder(200, "", "")
	tg2, srv := newTarget(t, "t2", "/in", h2)
	tg2.URL = strings.Replace(srv.URL, "http://", "http://u:pw@", 1) + "/in"
	tg2.ParsedURL = nil
	tg2.Auth = &config.Auth{APIKey: &config.APIKeyAuth{Query: "key", Value: "qsecret"}}
	res := b.client.Exchange(context.Background(), upstream.Request{Target: tg2}, 0)
	require.NoError(t, res.Err)
	require.Equal(t, "/in?key=qsecret", (<-seen2).Path)
	require.NotContains(t, res.RequestURL, "qsecret")
	require.NotContains(t, res.RequestURL, "pw")
}

func TestConfiguredHeadersAreRedactedInRecords(t *testing.T) {
	t.Parallel()
	b := setup(t)
	h, seen := recorder(200, "", "")
	tg, _ := newTarget(t, "t", "/", h)
	tg.Headers = map[string]string{"X-Partner-Token": "hdr-secret"}
	res := b.client.Exchange(context.Background(), upstream.Request{
		Target: tg,
		Header: http.Header{"Authorization": {"Bearer inbound-secret"}, "Cookie": {"sid=cookie-secret"}, "X-Trace": {"visible"}},
	}, 0)
	require.NoError(t, res.Err)
	got := <-seen
	require.Equal(t, "hdr-secret", got.Header.Get("X-Partner-Token"), "sent")
	require.Equal(t, upstream.Redacted, res.RequestHeader.Get("X-Partner-Token"), "but not recorded")
	require.Equal(t, upstream.Redacted, res.RequestHeader.Get("Authorization"))
	require.Equal(t, upstream.Redacted, res.RequestHeader.Get("Cookie"))
	require.Equal(t, "visible", res.RequestHeader.Get("X-Trace"))
}

func TestOAuth2TokenSurvivesAConfigReload(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ts := newTokenServer(t)
	tg, _ := newTarget(t, "t", "/", func(w http.ResponseWriter, r *http.Request) {
		if !ts.valid(r.Header.Get("Authorization")) {
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	cc := config.OAuth2ClientCredentials{TokenURL: ts.srv.URL, ClientID: "cid", ClientSecret: "s&cret", Scopes: []string{"a"}}
	for range 3 {
		// Each "reload" makes a new config with the same values.
		c := cc
		tg.Auth = &config.Auth{OAuth2ClientCredentials: &c}
		res := b.client.Exchange(context.Background(), upstream.Request{Target: tg}, 0)
		require.NoError(t, res.Err)
	}
	require.EqualValues(t, 1, ts.fetches.Load())
}
