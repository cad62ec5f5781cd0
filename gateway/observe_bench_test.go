package gateway_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/gateway"
	"github.com/fanouthq/fanout/metrics"
	"github.com/fanouthq/fanout/stats"
	"github.com/fanouthq/fanout/upstream"
)

// BenchmarkObservabilityCost is BenchmarkServeHTTPAll2Targets with and
// without the access log (a real JSON handler writing to io.Discard) and
// the metrics and stats hooks, side by side in one run:
//
//	go test ./gateway -run '^$' -bench ObservabilityCost -count 5
func BenchmarkObservabilityCost(b *testing.B) {
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	})
	srvA, srvB := httptest.NewServer(echo), httptest.NewServer(echo)
	defer srvA.Close()
	defer srvB.Close()
	target := func(raw string) *config.Target {
		u, _ := url.Parse(raw + "/in")
		return &config.Target{URL: u.String(), ParsedURL: u, Timeout: config.Duration(5 * time.Second)}
	}
	cfg := &config.Config{
		Targets: map[string]*config.Target{"a": target(srvA.URL), "b": target(srvB.URL)},
		Routes: []*config.Route{{
			Name: "bench", Mode: config.ModeAll,
			Match:   config.Match{Method: http.MethodPost, Path: "/bench"},
			Targets: []config.RouteTarget{{Name: "a"}, {Name: "b"}},
		}},
	}
	client := upstream.New(upstream.Options{})
	defer client.CloseIdleConnections()

	hooks := func() gateway.Hooks {
		m := metrics.New(metrics.NewRegistry())
		st := stats.New(stats.Options{})
		return gateway.Hooks{
			OnRequest: func(route, mode string, status int, d time.Duration) {
				m.ObserveRequest(route, mode, status, d)
				st.RecordRequest(route, mode, status < 400, "", d)
			},
			OnAttempt: func(route, target string, class fanout.ErrorClass, _ int, d time.Duration) {
				m.ObserveAttempt(route, target, metrics.Outcome(class), d)
				st.RecordAttempt(route, target, string(class), d)
			},
		}
	}
	for _, c := range []struct {
		name    string
		logs    bool
		metrics bool
	}{
		{"bare", false, false},
		{"logs", true, false},
		{"metrics", false, true},
		{"logs+metrics", true, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			opts := gateway.Options{Client: client, Logger: slog.New(slog.DiscardHandler)}
			if c.logs {
				opts.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
			}
			if c.metrics {
				opts.Hooks = hooks()
			}
			gw, err := gateway.New(cfg, opts)
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = gw.Close(context.Background()) }()
			body := bytes.Repeat([]byte("x"), 1024)
			b.ReportAllocs()
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				w := &discardWriter{h: http.Header{}}
				for pb.Next() {
					req := httptest.NewRequest(http.MethodPost, "/bench", bytes.NewReader(body))
					clear(w.h)
					gw.ServeHTTP(w, req)
					if w.status != http.StatusOK {
						b.Errorf("status %d", w.status)
						return
					}
				}
			})
		})
	}
}
