package queue

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/config"
)

func TestDeliveryRendersTheTargetsBodyTemplate(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	crm, plain, bad := newTarget(t, nil), newTarget(t, nil), newTarget(t, nil)
	cfg := newConfig(newTargetConfig(t, "crm", crm.srv.URL), newTargetConfig(t, "plain", plain.srv.URL), newTargetConfig(t, "bad", bad.srv.URL))
	cfg.Routes = []*config.Route{{
		Name:    "r",
		Match:   config.Match{Method: http.MethodPost, Path: "/users/{id}"},
		Mode:    config.ModeAsync,
		MaxBody: config.Size(1 << 20),
		Targets: []config.RouteTarget{
			{Name: "crm", Body: `{"contact": {{ json .request.body }}, "id": {{ json .request.path_params.id }}, "q": {{ json .request.query.q }}}`},
			{Name: "plain"},
			{Name: "bad", Body: `{{ .request.body.missing }}`},
		},
	}}
	startDispatcher(t, st, cfg, DispatcherOptions{})

	p := newMessage("r", "crm", "plain", "bad")
	p.Message.Path = "/users/42?q=a%20b"
	p.Message.Header.Set("Content-Type", "text/plain")
	p.Message.Body = []byte(`{"name":"ada"}`)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, err := st.Accept(ctx, []fanout.AcceptParams{p})
	require.NoError(t, err)
	id := p.Message.ID

	waitState(t, st, []string{id}, "crm", fanout.StateSucceeded)
	waitState(t, st, []string{id}, "plain", fanout.StateSucceeded)
	waitState(t, st, []string{id}, "bad", fanout.StateDead)

	got := crm.requestsFor(id)
	require.Len(t, got, 1)
	require.JSONEq(t, `{"contact":{"name":"ada"},"id":"42","q":"a b"}`, string(got[0].Body))
	require.Equal(t, "application/json", got[0].Header.Get("Content-Type"), "a JSON output says so")
	require.Equal(t, id, got[0].Header.Get("Idempotency-Key"))

	got = plain.requestsFor(id)
	require.Len(t, got, 1)
	require.Equal(t, `{"name":"ada"}`, string(got[0].Body))
	require.Equal(t, "text/plain", got[0].Header.Get("Content-Type"))

	require.Empty(t, bad.requestsFor(id), "a body that does not render is not sent")
	d := deliveryOf(t, st, id, "bad")
	require.Equal(t, fanout.ClassTemplate, d.LastClass)
	require.Contains(t, d.LastError, `target "bad": template body: {{.request.body.missing}}: map has no entry for key "missing"`)
	require.Contains(t, d.LastError, "(dead: non-retryable error (template))")
	require.Equal(t, 1, d.Attempts)
}
