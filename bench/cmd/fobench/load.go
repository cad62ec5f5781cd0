package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// loadOpts describe one load: open loop at Rate requests per second
// (Conns bounds the requests in flight; a request that finds them all busy
// is counted as skipped, not sent late), or closed loop with Conns workers
// when Rate is 0. It stops after Duration or N requests, whichever comes
// first (0: no bound; at least one bound is required).
type loadOpts struct {
	URL         string
	Body        []byte
	ContentType string
	Rate        float64
	Conns       int
	Duration    time.Duration
	N           int64
	Timeout     time.Duration
}

// loadGen runs one load; its counters can be read while it runs.
type loadGen struct {
	opts   loadOpts
	client *http.Client

	sent, ok, non2xx, errs, skipped atomic.Int64

	mu      sync.Mutex
	lat     []time.Duration // of 2xx answers
	status  map[int]int64
	lastErr string
}

// loadResult is what a load measured.
type loadResult struct {
	Sent      int64           `json:"sent"`
	OK        int64           `json:"ok"`
	Non2xx    int64           `json:"non2xx"`
	Errors    int64           `json:"errors"`
	Skipped   int64           `json:"skipped"`
	Status    map[int]int64   `json:"status"`
	ElapsedS  float64         `json:"elapsed_s"`
	OKPerS    float64         `json:"ok_per_s"`
	P50ms     float64         `json:"p50_ms"`
	P90ms     float64         `json:"p90_ms"`
	P99ms     float64         `json:"p99_ms"`
	P999ms    float64         `json:"p999_ms"`
	MaxMs     float64         `json:"max_ms"`
	LastError string          `json:"last_error,omitempty"`
	lat       []time.Duration // sorted
}

func newLoadGen(o loadOpts) *loadGen {
	if o.Conns <= 0 {
		o.Conns = 64
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.ContentType == "" {
		o.ContentType = "application/json"
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: o.Conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &loadGen{
		opts:   o,
		client: &http.Client{Transport: tr, Timeout: o.Timeout},
		status: map[int]int64{},
	}
}

// one sends one request and records its outcome.
func (g *loadGen) one(ctx context.Context) {
	g.sent.Add(1)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.opts.URL, bytes.NewReader(g.opts.Body))
	if err != nil {
		g.fail(err)
		return
	}
	req.Header.Set("Content-Type", g.opts.ContentType)
	start := time.Now()
	resp, err := g.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			g.fail(err)
		}
		return
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if err != nil {
		g.fail(err)
		return
	}
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	if ok {
		g.ok.Add(1)
	} else {
		g.non2xx.Add(1)
	}
	g.mu.Lock()
	g.status[resp.StatusCode]++
	if ok {
		g.lat = append(g.lat, d)
	}
	g.mu.Unlock()
}

func (g *loadGen) fail(err error) {
	g.errs.Add(1)
	g.mu.Lock()
	g.lastErr = err.Error()
	g.mu.Unlock()
}

// run applies the load and returns what it measured. Cancelling ctx stops
// it early (requests in flight are abandoned).
func (g *loadGen) run(ctx context.Context) loadResult {
	o := g.opts
	if o.Duration > 0 {
		var cancel context.CancelFunc
		// Requests still in flight at the end get their timeout to finish.
		ctx, cancel = context.WithTimeout(ctx, o.Duration+o.Timeout)
		defer cancel()
	}
	start := time.Now()
	deadline := time.Time{}
	if o.Duration > 0 {
		deadline = start.Add(o.Duration)
	}
	var wg sync.WaitGroup
	if o.Rate > 0 {
		sem := make(chan struct{}, o.Conns)
		period := float64(time.Second) / o.Rate
		timer := time.NewTimer(0)
		<-timer.C
	loop:
		for i := int64(0); o.N <= 0 || i < o.N; i++ {
			due := start.Add(time.Duration(float64(i) * period))
			if !deadline.IsZero() && !due.Before(deadline) {
				break
			}
			if d := time.Until(due); d > 0 {
				timer.Reset(d)
				select {
				case <-timer.C:
				case <-ctx.Done():
					break loop
				}
			} else if ctx.Err() != nil {
				break
			}
			select {
			case sem <- struct{}{}:
			default:
				g.skipped.Add(1)
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				g.one(ctx)
				<-sem
			}()
		}
	} else {
		var issued atomic.Int64
		for range o.Conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					if !deadline.IsZero() && !time.Now().Before(deadline) {
						return
					}
					if o.N > 0 && issued.Add(1) > o.N {
						return
					}
					g.one(ctx)
				}
			}()
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	if o.Rate > 0 && o.Duration > 0 && elapsed > o.Duration {
		// The open loop's rate is the offered one; report ok/s over the
		// offered window, not over the tail of the last answers.
		elapsed = o.Duration
	}
	g.client.CloseIdleConnections()
	return g.result(elapsed)
}

func (g *loadGen) result(elapsed time.Duration) loadResult {
	g.mu.Lock()
	defer g.mu.Unlock()
	lat := slices.Clone(g.lat)
	slices.Sort(lat)
	r := loadResult{
		Sent: g.sent.Load(), OK: g.ok.Load(), Non2xx: g.non2xx.Load(),
		Errors: g.errs.Load(), Skipped: g.skipped.Load(),
		Status: map[int]int64{}, ElapsedS: elapsed.Seconds(),
		LastError: g.lastErr, lat: lat,
	}
	for k, v := range g.status {
		r.Status[k] = v
	}
	if elapsed > 0 {
		r.OKPerS = float64(r.OK) / elapsed.Seconds()
	}
	r.P50ms = ms(percentile(lat, 50))
	r.P90ms = ms(percentile(lat, 90))
	r.P99ms = ms(percentile(lat, 99))
	r.P999ms = ms(percentile(lat, 99.9))
	if len(lat) > 0 {
		r.MaxMs = ms(lat[len(lat)-1])
	}
	return r
}

// percentile of sorted durations (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// jsonBody returns a JSON object of exactly size bytes (at least 79).
func jsonBody(size int) []byte {
	head := `{"user":"ada","email":"ada@example.com","event":"signup","plan":"pro","pad":"`
	tail := `"}`
	n := max(size-len(head)-len(tail), 0)
	return []byte(head + strings.Repeat("x", n) + tail)
}

func runLoadCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("fobench load", flag.ContinueOnError)
	url := fs.String("url", "", "URL to POST to")
	rate := fs.Float64("rate", 0, "requests per second (open loop); 0: closed loop")
	conns := fs.Int("conns", 64, "closed loop: workers; open loop: most requests in flight")
	dur := fs.Duration("duration", 10*time.Second, "how long (0: until -n)")
	n := fs.Int64("n", 0, "how many requests (0: until -duration)")
	size := fs.Int("body-size", 1024, "JSON body size in bytes")
	timeout := fs.Duration("timeout", 10*time.Second, "per request timeout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *url == "" {
		return errors.New("--url is required")
	}
	if *dur <= 0 && *n <= 0 {
		return errors.New("one of --duration and -n must be positive")
	}
	g := newLoadGen(loadOpts{URL: *url, Body: jsonBody(*size), Rate: *rate, Conns: *conns,
		Duration: *dur, N: *n, Timeout: *timeout})
	res := g.run(ctx)
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		return err
	}
	if res.OK == 0 {
		return fmt.Errorf("no 2xx answer (last error: %s)", res.LastError)
	}
	return nil
}
