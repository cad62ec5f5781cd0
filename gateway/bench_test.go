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

	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/gateway"
	"github.com/fanouthq/fanout/upstream"
)

// BenchmarkAll2Targets measures the sync fan-out hot path: a gateway in
// front of two echo servers, 1 KiB JSON bodies, parallel requests. The
// figures include the client and both targets, all in this process.
func BenchmarkAll2Targets(b *testing.B) {
	echoSrv := func() (*httptest.Server, *config.Target) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"ok":true}`)
		}))
		u, _ := url.Parse(srv.URL + "/in")
		return srv, &config.Target{URL: u.String(), ParsedURL: u, Timeout: config.Duration(5 * time.Second)}
	}
	srvA, ta := echoSrv()
	defer srvA.Close()
	srvB, tb := echoSrv()
	defer srvB.Close()
	cfg := &config.Config{
		Targets: map[string]*config.Target{"a": ta, "b": tb},
		Routes: []*config.Route{{
			Name: "bench", Mode: config.ModeAll,
			Match:   config.Match{Method: http.MethodPost, Path: "/bench"},
			Targets: []config.RouteTarget{{Name: "a"}, {Name: "b"}},
		}},
	}
	client := upstream.New(upstream.Options{})
	defer client.CloseIdleConnections()
	benchAllLoad(b, cfg, client)
}

// benchAllLoad serves cfg (its route "bench", mode all, at POST /bench)
// through a gateway on client and measures parallel requests of a 1 KiB
// JSON body through inbound HTTP: 64 in flight on 2 cores, like wrk -c64.
func benchAllLoad(b *testing.B, cfg *config.Config, client *upstream.Client) {
	b.Helper()
	gw, err := gateway.New(cfg, gateway.Options{Client: client, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	defer srv.Close()
	defer func() { _ = gw.Close(context.Background()) }()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	defer hc.CloseIdleConnections()

	body := bytes.Repeat([]byte(`{"k":"0123456789"},`), 1024/19)
	body = append(append([]byte(`[`), body...), `{}]`...)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.SetParallelism(32) // 64 requests in flight on 2 cores, like wrk -c64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/bench", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkServeHTTPAll2Targets is the gateway alone: ServeHTTP called
// directly (no inbound HTTP), two echo targets over loopback.
func BenchmarkServeHTTPAll2Targets(b *testing.B) {
	echoSrv := func() (*httptest.Server, *config.Target) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"ok":true}`)
		}))
		u, _ := url.Parse(srv.URL + "/in")
		return srv, &config.Target{URL: u.String(), ParsedURL: u, Timeout: config.Duration(5 * time.Second)}
	}
	srvA, ta := echoSrv()
	defer srvA.Close()
	srvB, tb := echoSrv()
	defer srvB.Close()
	cfg := &config.Config{
		Targets: map[string]*config.Target{"a": ta, "b": tb},
		Routes: []*config.Route{{
			Name: "bench", Mode: config.ModeAll,
			Match:   config.Match{Method: http.MethodPost, Path: "/bench"},
			Targets: []config.RouteTarget{{Name: "a"}, {Name: "b"}},
		}},
	}
	client := upstream.New(upstream.Options{})
	defer client.CloseIdleConnections()
	gw, err := gateway.New(cfg, gateway.Options{Client: client, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = gw.Close(context.Background()) }()
	body := bytes.Repeat([]byte("x"), 1024)
	b.ReportAllocs()
	b.SetParallelism(32) // 64 requests in flight on 2 cores, like wrk -c64
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
}

type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(s int)           { w.status = s }
