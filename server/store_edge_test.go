package server_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/postgres"
	"github.com/fanouthq/fanout/server"
	"github.com/fanouthq/fanout/sqlite"
)

// These tests send hostile requests through a whole server (gateway,
// committer, a real store) on both engines: SQLite always, PostgreSQL
// when FANOUT_TEST_POSTGRES_URL is set.

const pgURLEnv = "FANOUT_TEST_POSTGRES_URL"

// engine opens a fresh store of one kind.
type engine struct {
	name string
	open func(t *testing.T) fanout.Store
}

// engines are SQLite, and PostgreSQL when the test database is set.
func engines(t *testing.T) []engine {
	es := []engine{{"sqlite", func(t *testing.T) fanout.Store {
		st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "fanout.db"), sqlite.Options{})
		require.NoError(t, err)
		return st
	}}}
	if os.Getenv(pgURLEnv) == "" {
		t.Log(pgURLEnv + " is not set; PostgreSQL is skipped")
		return es
	}
	return append(es, engine{"postgres", func(t *testing.T) fanout.Store {
		return openPostgres(t, os.Getenv(pgURLEnv))
	}})
}

// openPostgres opens a store on dsn in a new schema, dropped when the test
// ends; the server closes the store on Shutdown.
func openPostgres(t *testing.T, dsn string) *postgres.Store {
	t.Helper()
	var b [8]byte
	_, _ = rand.Read(b[:])
	schema := "fanout_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, os.Getenv(pgURLEnv))
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer func() { _ = conn.Close(ctx) }()
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	st, err := postgres.Open(t.Context(), dsn, postgres.Options{Schema: schema, MaxConns: 8})
	require.NoError(t, err)
	return st
}

// startWith starts a server on store with the config yaml.
func startWith(t *testing.T, store fanout.Store, yaml string) *server.Server {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	srv, err := server.Start(context.Background(), cfg, server.Options{
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
		Store:  store,
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
	})
	return srv
}

// answer is one response, read whole.
type answer struct {
	status int
	header http.Header
	body   string
}

func (a answer) code(t *testing.T) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string }
	}
	require.NoError(t, json.Unmarshal([]byte(a.body), &e), a.body)
	require.NotEmpty(t, e.Error.Message, a.body)
	return e.Error.Code
}

func (a answer) id(t *testing.T) string {
	t.Helper()
	var m struct{ ID string }
	require.NoError(t, json.Unmarshal([]byte(a.body), &m), a.body)
	require.NotEmpty(t, m.ID, a.body)
	return m.ID
}

// send makes req with a generous client timeout (a hang fails the test
// rather than the run).
func send(client *http.Client, req *http.Request) (answer, error) {
	resp, err := client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}, err
}

// hostile is one kind of request of the mixed run: good ones must be
// stored as sent (path in URI form), bad ones refused with 400.
type hostile struct {
	name  string
	good  bool
	build func(data string, n int) *http.Request
	path  string // the stored path of a good one
	// header is the X-Latin1 value a good one keeps, when it sends one.
	header string
}

func hostileKinds() []hostile {
	req := func(data, query string, body []byte, header map[string][]string) *http.Request {
		r, _ := http.NewRequest(http.MethodPost, data+"/in", strings.NewReader(string(body)))
		r.URL.RawQuery = query
		for k, v := range header {
			r.Header[k] = v
		}
		return r
	}
	return []hostile{
		{name: "key not UTF-8", build: func(data string, n int) *http.Request {
			return req(data, "", []byte(`{}`), map[string][]string{"Idempotency-Key": {"k\xff\xfe"}})
		}},
		{name: "key of 9000 characters", build: func(data string, n int) *http.Request {
			return req(data, "", []byte(`{}`), map[string][]string{"Idempotency-Key": {strings.Repeat("k", 9000)}})
		}},
		{name: "plain", good: true, path: "/in", build: func(data string, n int) *http.Request {
			return req(data, "", []byte(`{"n":1}`), map[string][]string{"Idempotency-Key": {fmt.Sprintf("good-%d", n)}})
		}},
		{name: "query not UTF-8", good: true, path: "/in?q=%FF%FE%00", build: func(data string, n int) *http.Request {
			return req(data, "q=\xff\xfe%00", []byte(`{}`), nil)
		}},
		{name: "header value not UTF-8", good: true, path: "/in", header: "caf\xe9", build: func(data string, n int) *http.Request {
			return req(data, "", []byte(`{}`), map[string][]string{"X-Latin1": {"caf\xe9"}})
		}},
		{name: "body with NUL and bytes not UTF-8", good: true, path: "/in", build: func(data string, n int) *http.Request {
			return req(data, "", []byte("\x00\xff\xfe{\x00}"), nil)
		}},
		{name: "key of 255 characters with a space", good: true, path: "/in", build: func(data string, n int) *http.Request {
			k := fmt.Sprintf("k %d ", n)
			return req(data, "", []byte(`{}`), map[string][]string{"Idempotency-Key": {k + strings.Repeat("x", 255-len(k))}})
		}},
	}
}

// TestHostileRequestsFailAlone interleaves requests that a store could
// refuse with good ones, from concurrent clients so that they share
// group commits: no good request fails and each is stored; the bad ones
// get 400 invalid_idempotency_key.
func TestHostileRequestsFailAlone(t *testing.T) {
	t.Parallel()
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			tg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			t.Cleanup(tg.Close)
			store := e.open(t)
			srv := startWith(t, store, fmt.Sprintf(`
listen: 127.0.0.1:0
admin: {listen: "off"}
targets:
  t: {url: %q}
routes:
  - {name: in, match: {path: /in}, mode: async, targets: [t]}
`, tg.URL))
			data := "http://" + srv.DataAddr()
			client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
			t.Cleanup(client.CloseIdleConnections)

			kinds := hostileKinds()
			const workers, each = 8, 35
			type sent struct {
				kind hostile
				body []byte
				a    answer
			}
			results := make(chan sent, workers*each)
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for i := range each {
						n := w*each + i
						k := kinds[n%len(kinds)]
						req := k.build(data, n)
						body, _ := io.ReadAll(req.Body)
						req.Body = io.NopCloser(strings.NewReader(string(body)))
						a, err := send(client, req)
						if !assertNoErr(t, err) {
							return
						}
						results <- sent{kind: k, body: body, a: a}
					}
				})
			}
			wg.Wait()
			close(results)

			good, bad := 0, 0
			for s := range results {
				if !s.kind.good {
					bad++
					require.Equal(t, http.StatusBadRequest, s.a.status, "%s: %s", s.kind.name, s.a.body)
					require.Equal(t, "invalid_idempotency_key", s.a.code(t), s.kind.name)
					continue
				}
				good++
				require.Equal(t, http.StatusAccepted, s.a.status, "%s: a good request failed: %s", s.kind.name, s.a.body)
				m, err := store.GetMessage(t.Context(), s.a.id(t))
				require.NoError(t, err, "%s: stored", s.kind.name)
				require.Equal(t, s.body, m.Message.Body, s.kind.name)
				require.Equal(t, s.kind.path, m.Message.Path, s.kind.name)
				require.Equal(t, s.kind.header, m.Message.Header.Get("X-Latin1"), "%s: the header's bytes are kept", s.kind.name)
			}
			require.Equal(t, workers*each, good+bad, "every request answered")
			require.Positive(t, bad)
		})
	}
}

// assertNoErr reports err from a goroutine that must not call FailNow.
func assertNoErr(t *testing.T, err error) bool {
	t.Helper()
	if err != nil {
		t.Errorf("unexpected error: %v", err)
		return false
	}
	return true
}

// TestIdempotencyKeyChecksAreTheSameOnEveryStore sends the exact inputs
// of the report: both answer 400 invalid_idempotency_key on every engine.
func TestIdempotencyKeyChecksAreTheSameOnEveryStore(t *testing.T) {
	t.Parallel()
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			store := e.open(t)
			srv := startWith(t, store, `
listen: 127.0.0.1:0
admin: {listen: "off"}
targets:
  t: {url: "http://127.0.0.1:1/"}
routes:
  - {name: in, match: {path: /in}, mode: async, targets: [t]}
`)
			for _, key := range []string{"k\xff\xfe", strings.Repeat("k", 9000)} {
				req, err := http.NewRequest(http.MethodPost, "http://"+srv.DataAddr()+"/in", strings.NewReader(`{}`))
				require.NoError(t, err)
				req.Header["Idempotency-Key"] = []string{key}
				a, err := send(http.DefaultClient, req)
				require.NoError(t, err)
				require.Equal(t, http.StatusBadRequest, a.status, "%.20q: %s", key, a.body)
				require.Equal(t, "invalid_idempotency_key", a.code(t))
			}
			msgs, _, err := store.ListMessages(t.Context(), fanout.ListMessagesParams{})
			require.NoError(t, err)
			require.Empty(t, msgs)
		})
	}
}

// freezer is a loopback TCP proxy between the store and PostgreSQL that
// the test can freeze: it then stops forwarding bytes in both directions
// and holds what it reads, as a database whose processes are stopped
// (SIGSTOP) would, without stopping the shared database.
type freezer struct {
	ln       net.Listener
	upstream string

	mu     sync.Mutex
	thaw   chan struct{} // non-nil while frozen; closed by unfreeze
	conns  []net.Conn
	closed bool
	wg     sync.WaitGroup
}

func newFreezer(t *testing.T, upstream string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &freezer{ln: ln, upstream: upstream}
	f.wg.Go(f.serve)
	t.Cleanup(f.close)
	return f
}

func (f *freezer) addr() string { return f.ln.Addr().String() }

func (f *freezer) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", f.upstream)
		if err != nil {
			_ = c.Close()
			continue
		}
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			_, _ = c.Close(), up.Close()
			return
		}
		f.conns = append(f.conns, c, up)
		f.wg.Add(2)
		f.mu.Unlock()
		go f.pipe(c, up)
		go f.pipe(up, c)
	}
}

// pipe copies src to dst, holding each chunk while frozen.
func (f *freezer) pipe(dst, src net.Conn) {
	defer f.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			f.mu.Lock()
			thaw := f.thaw
			f.mu.Unlock()
			if thaw != nil {
				<-thaw
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	_, _ = dst.Close(), src.Close()
}

func (f *freezer) freeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.thaw == nil {
		f.thaw = make(chan struct{})
	}
}

func (f *freezer) unfreeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.thaw != nil {
		close(f.thaw)
		f.thaw = nil
	}
}

func (f *freezer) close() {
	f.unfreeze()
	_ = f.ln.Close()
	f.mu.Lock()
	f.closed = true
	for _, c := range f.conns {
		_ = c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// TestFrozenPostgres stalls a real PostgreSQL connection (the freezer):
// async requests get 503 with Retry-After once store.timeout has passed,
// not when the route deadline or the commit timeout does, and /readyz
// fails until the database answers again.
func TestFrozenPostgres(t *testing.T) {
	t.Parallel()
	dsn := os.Getenv(pgURLEnv)
	if dsn == "" {
		t.Skip(pgURLEnv + " is not set; skipping the frozen PostgreSQL test")
	}
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	f := newFreezer(t, u.Host)
	u.Host = f.addr()
	store := openPostgres(t, u.String())

	tg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(tg.Close)
	srv := startWith(t, store, fmt.Sprintf(`
listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
store: {timeout: 300ms}
targets:
  t: {url: %q}
routes:
  - {name: in, match: {path: /in}, mode: async, deadline: 1h, targets: [t]}
`, tg.URL))
	data, admin := "http://"+srv.DataAddr(), "http://"+srv.AdminAddr()
	client := &http.Client{Timeout: time.Minute}
	post := func() answer {
		req, err := http.NewRequest(http.MethodPost, data+"/in", strings.NewReader(`{}`))
		require.NoError(t, err)
		a, err := send(client, req)
		require.NoError(t, err)
		return a
	}
	ready := func() int {
		req, err := http.NewRequest(http.MethodGet, admin+"/readyz", nil)
		require.NoError(t, err)
		a, err := send(client, req)
		require.NoError(t, err)
		return a.status
	}

	// Before the freeze the store answers. The first accepts also open
	// and prepare connections, which on a busy machine may take longer
	// than store.timeout: the wait is for one that is accepted.
	var a answer
	require.Eventually(t, func() bool { a = post(); return a.status == http.StatusAccepted }, 30*time.Second, 20*time.Millisecond, "no accept before the freeze")
	require.Equal(t, http.StatusOK, ready())

	f.freeze()
	for range 3 {
		a = post()
		require.Equal(t, http.StatusServiceUnavailable, a.status, a.body)
		require.Equal(t, "store_unavailable", a.code(t))
		require.Equal(t, "1", a.header.Get("Retry-After"))
		require.Contains(t, a.body, "did not answer in time", "the store wait bound answered, not a commit failure")
	}
	require.Equal(t, http.StatusServiceUnavailable, ready(), "/readyz fails while the store does not answer")

	f.unfreeze()
	require.Eventually(t, func() bool { return ready() == http.StatusOK }, 30*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return post().status == http.StatusAccepted }, 30*time.Second, 20*time.Millisecond)
}
