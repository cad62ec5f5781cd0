package gateway_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/upstream"
)

// BenchmarkAllBalanced is S9 in the small: BenchmarkAll2Targets's rig
// (mode all to targets a and b, 64 requests in flight) with target a of
// one server (servers=1) and of two balanced servers (servers=2), the
// client given the targets (SetTargets) in both; servers=0 is the client
// without them (no per-target state at all), the path before package
// balance. Compare with benchstat.
func BenchmarkAllBalanced(b *testing.B) {
	for _, n := range []int{0, 1, 2} {
		b.Run("servers="+string(rune('0'+n)), func(b *testing.B) { benchBalanced(b, n) })
	}
}

func benchBalanced(b *testing.B, servers int) {
	echo := func() *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"ok":true}`)
		}))
	}
	target := func(srv *httptest.Server) *config.Target {
		u, _ := url.Parse(srv.URL + "/in")
		return &config.Target{URL: u.String(), ParsedURL: u, Timeout: config.Duration(5 * time.Second)}
	}
	a1, a2, bs := echo(), echo(), echo()
	defer a1.Close()
	defer a2.Close()
	defer bs.Close()
	ta, tb := target(a1), target(bs)
	ta.Name, tb.Name = "a", "b"
	if servers == 2 {
		for _, s := range []*httptest.Server{a1, a2} {
			u, _ := url.Parse(s.URL + "/in")
			ta.Servers = append(ta.Servers, &config.Server{URL: u.String(), ParsedURL: u, Weight: 1})
		}
	}
	cfg := &config.Config{
		Targets: map[string]*config.Target{"a": ta, "b": tb},
		Routes: []*config.Route{{
			Name: "bench", Mode: config.ModeAll,
			Match:   config.Match{Method: http.MethodPost, Path: "/bench"},
			Targets: []config.RouteTarget{{Name: "a"}, {Name: "b"}},
		}},
	}
	client := upstream.New(upstream.Options{})
	defer client.Close()
	if servers > 0 {
		client.SetTargets(cfg.Targets)
	}
	benchAllLoad(b, cfg, client)
}
