package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// echoServer is the benchmark's downstream API: it reads the whole body,
// answers 200 with a small JSON body, and counts the requests it answered
// per path (and, on the async paths only, the distinct message ids, from
// Fanout-Message-Id or Idempotency-Key, so that "every accepted message was
// delivered" and the number of duplicates can be checked).
//
// Control endpoints, under /_bench/:
//
//	GET  /_bench/count[?path=/p]  {"total":N,"paths":{"/p":{"count":N,"unique":U}}}
//	POST /_bench/reset            zero the counters
//	POST /_bench/delay?d=2s       answer every request after d (0 to stop)
type echoServer struct {
	name   string
	unique map[string]bool // paths whose distinct message ids are kept
	delay  atomic.Int64    // nanoseconds
	total  atomic.Int64

	mu    sync.Mutex
	paths map[string]*pathCount
}

type pathCount struct {
	count atomic.Int64
	mu    sync.Mutex
	ids   map[string]struct{}
}

func newEchoServer(name string, delay time.Duration, uniquePaths ...string) *echoServer {
	e := &echoServer{name: name, paths: map[string]*pathCount{}, unique: map[string]bool{}}
	for _, p := range uniquePaths {
		e.unique[p] = true
	}
	e.delay.Store(int64(delay))
	return e
}

func (e *echoServer) path(p string) *pathCount {
	e.mu.Lock()
	defer e.mu.Unlock()
	pc := e.paths[p]
	if pc == nil {
		pc = &pathCount{ids: map[string]struct{}{}}
		e.paths[p] = pc
	}
	return pc
}

func (e *echoServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_bench/") {
		e.control(w, r)
		return
	}
	n, _ := io.Copy(io.Discard, r.Body)
	if d := time.Duration(e.delay.Load()); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	pc := e.path(r.URL.Path)
	id := r.Header.Get("Fanout-Message-Id")
	if id == "" {
		id = r.Header.Get("Idempotency-Key")
	}
	if id != "" && e.unique[r.URL.Path] {
		pc.mu.Lock()
		pc.ids[id] = struct{}{}
		pc.mu.Unlock()
	}
	pc.count.Add(1)
	e.total.Add(1)

	buf := make([]byte, 0, 64)
	buf = append(buf, `{"ok":true,"target":`...)
	buf = strconv.AppendQuote(buf, e.name)
	buf = append(buf, `,"bytes":`...)
	buf = strconv.AppendInt(buf, n, 10)
	buf = append(buf, "}\n"...)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(buf)))
	_, _ = w.Write(buf)
}

// echoCount is the answer of GET /_bench/count.
type echoCount struct {
	Total int64                     `json:"total"`
	Paths map[string]echoPathCounts `json:"paths"`
}

type echoPathCounts struct {
	Count  int64 `json:"count"`
	Unique int64 `json:"unique"`
}

func (e *echoServer) control(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/_bench/count":
		out := echoCount{Total: e.total.Load(), Paths: map[string]echoPathCounts{}}
		only := r.URL.Query().Get("path")
		e.mu.Lock()
		for p, pc := range e.paths {
			if only != "" && p != only {
				continue
			}
			pc.mu.Lock()
			u := int64(len(pc.ids))
			pc.mu.Unlock()
			out.Paths[p] = echoPathCounts{Count: pc.count.Load(), Unique: u}
		}
		e.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	case "/_bench/reset":
		e.mu.Lock()
		e.paths = map[string]*pathCount{}
		e.total.Store(0)
		e.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case "/_bench/delay":
		d, err := time.ParseDuration(r.URL.Query().Get("d"))
		if err != nil || d < 0 {
			http.Error(w, "d: a non-negative Go duration", http.StatusBadRequest)
			return
		}
		e.delay.Store(int64(d))
		w.WriteHeader(http.StatusNoContent)
	default:
		http.NotFound(w, r)
	}
}

func runEcho(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("fobench echo", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:18081", "address to listen on")
	name := fs.String("name", "echo", "name reported in answers")
	delay := fs.Duration("delay", 0, "answer every request after this delay")
	unique := fs.String("unique-paths", "/async", "comma-separated paths whose distinct message ids are counted (a map insert per request: only where needed)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: newEchoServer(*name, *delay, strings.Split(*unique, ",")...), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(os.Stdout, "echo target %q on http://%s\n", *name, ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		shut, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}
