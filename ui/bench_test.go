package ui_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
)

// benchMessages is the size of the store the page benchmarks read.
const benchMessages = 100_000

// BenchmarkPages renders each dashboard page over a SQLite store holding
// 100,000 messages of two routes (200,000 deliveries, 1,000 of them dead
// to crm, the rest waiting), signed in with the admin token, through a
// real HTTP server. Run it with
//
//	go test ./ui -run '^$' -bench Pages -benchtime 50x
//
// Seeding takes a while; -short skips it.
func BenchmarkPages(b *testing.B) {
	if testing.Short() {
		b.Skip("seeds 100,000 messages")
	}
	bd := setup(b)
	ctx := context.Background()
	start := bd.now.Load().Add(-24 * time.Hour)
	var first string
	const batch = 1000
	for i := 0; i < benchMessages; i += batch {
		params := make([]fanout.AcceptParams, 0, batch)
		for j := range batch {
			n := i + j
			route, targets := "signup", []string{"crm", "analytics"}
			if n%2 == 1 {
				route, targets = "orders", []string{"crm"}
			}
			tenant := ""
			if n%10 == 0 {
				tenant = "acme"
			}
			id := fanout.NewMessageID()
			if n == 0 {
				first = id
			}
			params = append(params, fanout.AcceptParams{
				Message: fanout.Message{ID: id, Route: route, Tenant: tenant, Method: http.MethodPost, Path: "/" + route,
					Header: http.Header{"Content-Type": {"application/json"}}, Body: fmt.Appendf(nil, `{"n":%d,"item":"book"}`, n),
					ReceivedAt: start.Add(time.Duration(n) * 500 * time.Millisecond)},
				Targets: targets,
			})
		}
		_, err := bd.store.Accept(ctx, params)
		require.NoError(b, err)
	}
	require.Equal(b, 1000, bd.kill("crm")) // the oldest 1,000 due deliveries to crm
	br := bd.browser()
	br.signIn(adminToken)
	md, err := bd.store.GetMessage(ctx, first)
	require.NoError(b, err)
	require.Equal(b, fanout.StateDead, md.Deliveries[0].State)

	page2 := br.get("/ui/messages")
	next := nextRe.FindStringSubmatch(page2.body)
	require.NotNil(b, next)
	pages := []struct{ name, path string }{
		{"overview", "/ui/"},
		{"messages", "/ui/messages"},
		{"messages_page2", string(next[1])},
		{"messages_route_state_dead", "/ui/messages?route=signup&state=dead"},
		{"messages_target_dead_since_1h", "/ui/messages?target=crm&state=dead&since=1h"},
		{"messages_tenant_token", ""},
		{"message", "/ui/messages/" + first},
		{"dead_target", "/ui/dead?target=crm"},
		{"dead_replay_preview_1000", "/ui/dead/replay?target=crm"},
	}
	tenant := bd.browser()
	tenant.signIn(acmeToken)
	for _, p := range pages {
		who, path := br, p.path
		if p.name == "messages_tenant_token" {
			who, path = tenant, "/ui/messages?state=pending"
		}
		path = unescapeAmp(path)
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				got := who.get(path)
				if got.status != http.StatusOK {
					b.Fatalf("%s: status %d", path, got.status)
				}
			}
		})
	}
}

func unescapeAmp(s string) string {
	out := []byte{}
	for i := 0; i < len(s); i++ {
		if s[i] == '&' && len(s) >= i+5 && s[i:i+5] == "&amp;" {
			out = append(out, '&')
			i += 4
			continue
		}
		out = append(out, s[i])
	}
	return string(out)
}
