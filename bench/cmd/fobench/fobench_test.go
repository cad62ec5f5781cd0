package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestJSONBodyIsValidAndExact(t *testing.T) {
	for _, n := range []int{100, 1024, 4096} {
		b := jsonBody(n)
		if len(b) != n {
			t.Errorf("jsonBody(%d) has %d bytes", n, len(b))
		}
		if !json.Valid(b) {
			t.Errorf("jsonBody(%d) is not JSON", n)
		}
	}
}

func TestWrkScriptCarriesBody(t *testing.T) {
	s := wrkScript(jsonBody(1024))
	if !strings.Contains(s, string(jsonBody(1024))) || !strings.Contains(s, "WRKJSON") {
		t.Fatal("script lacks the body or the summary")
	}
}

func TestEchoCountsAndDelay(t *testing.T) {
	e := newEchoServer("a", 0, "/async")
	srv := httptest.NewServer(e)
	defer srv.Close()
	post := func(path, id string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(jsonBody(100)))
		if id != "" {
			req.Header.Set("Fanout-Message-Id", id)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := post("/async", "m1"); r.StatusCode != 200 || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("answer %d %q", r.StatusCode, r.Header.Get("Content-Type"))
	}
	post("/async", "m1")
	post("/async", "m2")
	post("/direct", "")
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	n, u, err := counts(context.Background(), port, "/async")
	if err != nil || n != 3 || u != 2 {
		t.Fatalf("counts = %d, %d, %v; want 3, 2", n, u, err)
	}
	if err := setDelay(context.Background(), port, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	post("/x", "")
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("delay not applied: %s", d)
	}
}

func TestLoadFixedRate(t *testing.T) {
	srv := httptest.NewServer(newEchoServer("a", 0))
	defer srv.Close()
	g := newLoadGen(loadOpts{URL: srv.URL + "/p", Body: jsonBody(256), Rate: 200, Conns: 64, Duration: 500 * time.Millisecond})
	res := g.run(context.Background())
	// 100 due in 0.5 s; on a busy machine some may find the 64 in flight.
	if n := res.Sent + res.Skipped; n < 90 || n > 101 || res.OK != res.Sent || res.P50ms <= 0 || res.P99ms < res.P50ms {
		t.Fatalf("unexpected result %+v", res)
	}
}

func TestLoadClosedLoopCount(t *testing.T) {
	srv := httptest.NewServer(newEchoServer("a", 0))
	defer srv.Close()
	g := newLoadGen(loadOpts{URL: srv.URL + "/p", Body: jsonBody(256), Conns: 4, N: 50, Duration: 10 * time.Second})
	res := g.run(context.Background())
	if res.Sent != 50 || res.OK != 50 {
		t.Fatalf("sent %d ok %d, want 50", res.Sent, res.OK)
	}
}

func TestPercentileAndMedian(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	if p := percentile(d, 50); p != 50*time.Millisecond {
		t.Errorf("p50 = %s", p)
	}
	if p := percentile(d, 99); p != 99*time.Millisecond {
		t.Errorf("p99 = %s", p)
	}
	if m := median([]float64{3, 1, 2, 10}); m != 2.5 {
		t.Errorf("median = %v", m)
	}
	if s := slope([]float64{0, 1, 2}, []float64{1, 3, 5}); s != 2 {
		t.Errorf("slope = %v", s)
	}
}

func TestRenderTableRatiosPerRound(t *testing.T) {
	var rs []result
	for round, f := range []float64{1, 2, 3} { // the machine drifts; per-round ratios stay
		rs = append(rs,
			result{Scenario: "S1", Variant: "c=64", System: "fanout", Round: round + 1, RPS: 300 * f, Requests: 3000, CPUs: 0.3, P50ms: 2, P99ms: 9},
			result{Scenario: "S1", Variant: "c=64", System: "direct", Round: round + 1, RPS: 1000 * f, Requests: 10000, CPUs: 0.25, P50ms: 1, P99ms: 5},
			result{Scenario: "S1", Variant: "c=64", System: "nginx", Round: round + 1, RPS: 250 * f, Requests: 2500, CPUs: 0.25, P50ms: 3, P99ms: 12},
		)
	}
	rs = append(rs, result{Scenario: "S7", System: "fanout", Note: "not yet"})
	var b strings.Builder
	renderTable(&b, rs)
	out := b.String()
	for _, want := range []string{
		"| S1 c=64 | direct | 2,000 | 1.00 | 4.00 |",
		"| S1 c=64 | nginx | 500 | 0.25 | 1.00 |",
		"| S1 c=64 | fanout | 600 | 0.30 | 1.20 | 2.00 | 9.00 | 10.0k |",
		"| S7 | fanout | – |",
		"not yet",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if i, j := strings.Index(out, "| direct"), strings.Index(out, "| fanout"); i > j {
		t.Errorf("direct should come first:\n%s", out)
	}
}

func TestWithSearchPath(t *testing.T) {
	for dsn, want := range map[string]string{
		"postgres://u@h:5432/db":                 "postgres://u@h:5432/db?search_path=s1",
		"postgres://u@h:5432/db?sslmode=disable": "postgres://u@h:5432/db?sslmode=disable&search_path=s1",
		"host=h dbname=db":                       "host=h dbname=db search_path=s1",
	} {
		if got := withSearchPath(dsn, "s1"); got != want {
			t.Errorf("withSearchPath(%q) = %q, want %q", dsn, got, want)
		}
	}
}

func TestMergeWrkAndLoad(t *testing.T) {
	w := mergeWrk([]wrkResult{
		{Requests: 100, Status: 2, DurationUS: 1_000_000, P50us: 10, P99us: 50},
		{Requests: 300, Status: 0, DurationUS: 1_010_000, P50us: 20, P99us: 40},
	})
	if w.good() != 398 || w.DurationUS != 1_010_000 || w.P50us != 20 || w.P99us != 50 {
		t.Errorf("mergeWrk = %+v", w)
	}
	l := mergeLoad([]loadResult{
		{OK: 3, OKPerS: 3, Skipped: 1, lat: []time.Duration{1, 2, 3}},
		{OK: 1, OKPerS: 1, lat: []time.Duration{10 * time.Millisecond}},
	})
	if l.OK != 4 || l.OKPerS != 4 || l.Skipped != 1 || l.MaxMs != 10 || len(l.lat) != 4 {
		t.Errorf("mergeLoad = %+v", l)
	}
}

func TestS7RatiosAndCPU(t *testing.T) {
	r := result{RPS: 300}
	addRatios(&r, 200, 150, 2)
	if r.Extra["x_sqlite"] != 1.5 || r.Extra["x_1node"] != 2 {
		t.Errorf("ratios %v", r.Extra)
	}
	r = result{RPS: 300}
	addRatios(&r, 0, 150, 1)
	if _, ok := r.Extra["x_sqlite"]; ok || len(r.Extra) != 0 {
		t.Errorf("no reference, no ratio: %v", r.Extra)
	}
	// An exited backend does not make the CPU negative; a new one counts whole.
	d := pgSnap{1: 150, 3: 20}.since(pgSnap{1: 100, 2: 500})
	if d != 700*time.Millisecond {
		t.Errorf("since = %v, want 700ms", d)
	}
}

func TestS7RowsAndGoal(t *testing.T) {
	rs := []result{
		{Scenario: "S7", Variant: "accept c=64", System: clusterName(1), Round: 1, RPS: 16000, Requests: 1,
			Extra: map[string]float64{"x_sqlite": 0.8, "missing": 0}},
		{Scenario: "S7", Variant: "accept c=64", System: clusterName(2), Round: 1, RPS: 20000, Requests: 1,
			Extra: map[string]float64{"x_sqlite": 1, "x_1node": 1.25, "missing": 0}},
		{Scenario: "S7", Variant: "deliver 10,000 msg/s offered, 5s", System: clusterName(1), Round: 1, RPS: 8000, Requests: 1,
			Extra: map[string]float64{"deliveries_per_s": 16000, "missing": 0}},
	}
	var b bytes.Buffer
	rows := renderTable(&b, rs)
	if !strings.Contains(b.String(), "**1.25× 1 node**") || !strings.Contains(b.String(), "**0.80× SQLite**") {
		t.Fatalf("table lacks the ratios:\n%s", b.String())
	}
	var g bytes.Buffer
	renderGoals(&g, rows)
	if !strings.Contains(g.String(), "| S7 |") || !strings.Contains(g.String(), "| met |") {
		t.Errorf("S7 goal:\n%s", g.String())
	}
}
