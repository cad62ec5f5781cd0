package ui_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/admin"
	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/sqlite"
	"github.com/fanouthq/fanout/stats"
	"github.com/fanouthq/fanout/ui"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	adminToken = "ui-admin-token-0123456789"
	acmeToken  = "ui-acme-admin-token-42"
	betaToken  = "ui-beta-admin-token-43"
)

func hashOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func testConfig() *config.Config {
	return &config.Config{
		Targets: map[string]*config.Target{
			"crm":       {Name: "crm", URL: "http://127.0.0.1:1/crm"},
			"analytics": {Name: "analytics", URL: "http://127.0.0.1:1/analytics"},
		},
		Routes: []*config.Route{
			{Name: "signup", Match: config.Match{Method: http.MethodPost, Path: "/signup"}, Mode: config.ModeAsync,
				Targets: []config.RouteTarget{{Name: "crm"}, {Name: "analytics"}}},
			{Name: "orders", Match: config.Match{Method: http.MethodPost, Path: "/orders"}, Mode: config.ModeAsync,
				Targets: []config.RouteTarget{{Name: "crm"}}},
		},
		Tenants: map[string]*config.Tenant{
			"acme": {AdminTokenSHA256: hashOf(acmeToken)},
			"beta": {AdminTokenSHA256: hashOf(betaToken)},
		},
	}
}

// lockedBuffer collects log output written from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// bundle is a dashboard over a real admin API on a real SQLite store.
type bundle struct {
	t     testing.TB
	store *sqlite.Store
	cfg   atomic.Pointer[config.Config]
	now   atomic.Pointer[time.Time]
	srv   *httptest.Server
	logs  *lockedBuffer
	stats *stats.Stats
}

func setup(t testing.TB) *bundle {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "fanout.db"), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, store.Close()) })
	require.NoError(t, store.Migrate(ctx))
	b := &bundle{t: t, store: store, logs: &lockedBuffer{}}
	b.cfg.Store(testConfig())
	start := time.Now().UTC().Truncate(time.Millisecond)
	b.now.Store(&start)
	clock := func() time.Time { return *b.now.Load() }
	logger := slog.New(slog.NewTextHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b.stats = stats.New(stats.Options{Now: clock})
	api := admin.New(admin.Options{
		Store:       store,
		Config:      b.cfg.Load,
		Token:       adminToken,
		Logger:      logger,
		Stats:       stats.Handler(b.stats, store),
		StatsSeries: stats.SeriesHandler(b.stats),
		Access:      store,
	})
	dash := ui.New(ui.Options{API: api, Config: b.cfg.Load, Logger: logger, Now: clock,
		IdleTimeout: 10 * time.Minute, SessionTTL: time.Hour})
	t.Cleanup(dash.Close)
	mux := http.NewServeMux()
	mux.Handle("/ui/", dash)
	mux.Handle("/", api)
	b.srv = httptest.NewServer(mux)
	t.Cleanup(b.srv.Close)
	return b
}

func (b *bundle) advance(d time.Duration) {
	n := b.now.Load().Add(d)
	b.now.Store(&n)
}

// seed stores a message of route (for tenant) with one delivery per
// target of the route and returns its id.
func (b *bundle) seed(route, tenant string, receivedAt time.Time) string {
	b.t.Helper()
	rt := b.cfg.Load().Route(route)
	require.NotNil(b.t, rt)
	var targets []string
	for _, t := range rt.Targets {
		targets = append(targets, t.Name)
	}
	id := fanout.NewMessageID()
	_, err := b.store.Accept(context.Background(), []fanout.AcceptParams{{
		Message: fanout.Message{ID: id, Route: route, Tenant: tenant, Method: http.MethodPost, Path: rt.Match.Path,
			Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"n":1}`), ReceivedAt: receivedAt},
		Targets: targets,
	}})
	require.NoError(b.t, err)
	return id
}

// kill makes every due delivery to target dead after one failed attempt.
func (b *bundle) kill(target string) int {
	b.t.Helper()
	ctx := context.Background()
	now := *b.now.Load()
	leased, err := b.store.Lease(ctx, fanout.LeaseParams{Target: target, Owner: "test", Limit: 1000, Now: now.Add(time.Hour), LeaseFor: time.Minute})
	require.NoError(b.t, err)
	var done []fanout.CompleteParams
	for _, l := range leased {
		done = append(done, fanout.CompleteParams{
			DeliveryID: l.Delivery.ID, Owner: "test", State: fanout.StateDead, Now: now,
			Attempt: fanout.Attempt{DeliveryID: l.Delivery.ID, MessageID: l.Message.ID, Target: target, Number: 1,
				StartedAt: now, Duration: 12 * time.Millisecond, RequestMethod: http.MethodPost, RequestURL: "http://127.0.0.1:1/" + target,
				Status: 503, ResponseBody: []byte("down for maintenance"), Class: fanout.ClassStatus, Error: "status 503"},
		})
	}
	if len(done) > 0 {
		require.NoError(b.t, b.store.Complete(ctx, done))
	}
	return len(done)
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so that tests see them.
type browser struct {
	t      testing.TB
	b      *bundle
	client *http.Client
	csrf   string
}

func (b *bundle) browser() *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(b.t, err)
	return &browser{t: b.t, b: b, client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

type page struct {
	status   int
	header   http.Header
	body     string
	location string
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (br *browser) do(req *http.Request) page {
	br.t.Helper()
	resp, err := br.client.Do(req)
	require.NoError(br.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(br.t, err)
	p := page{status: resp.StatusCode, header: resp.Header, body: string(body), location: resp.Header.Get("Location")}
	if m := csrfRe.FindStringSubmatch(p.body); m != nil {
		br.csrf = m[1]
	}
	return p
}

func (br *browser) get(path string) page {
	br.t.Helper()
	req, err := http.NewRequest(http.MethodGet, br.b.srv.URL+path, nil)
	require.NoError(br.t, err)
	return br.do(req)
}

// post sends a form as a same-origin browser would.
func (br *browser) post(path string, form url.Values, header ...string) page {
	br.t.Helper()
	req, err := http.NewRequest(http.MethodPost, br.b.srv.URL+path, strings.NewReader(form.Encode()))
	require.NoError(br.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", br.b.srv.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return br.do(req)
}

// action posts a form with the CSRF token of the last page seen.
func (br *browser) action(path string, form url.Values) page {
	br.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", br.csrf)
	return br.post(path, form)
}

// signIn signs in with token and returns the first page after it.
func (br *browser) signIn(token string) page {
	br.t.Helper()
	p := br.post("/ui/login", url.Values{"token": {token}})
	require.Equal(br.t, http.StatusSeeOther, p.status, p.body)
	return br.get(p.location)
}

func (b *bundle) state(id, target string) fanout.DeliveryState {
	b.t.Helper()
	md, err := b.store.GetMessage(context.Background(), id)
	require.NoError(b.t, err)
	for _, d := range md.Deliveries {
		if d.Target == target {
			return d.State
		}
	}
	b.t.Fatalf("message %s has no delivery to %s", id, target)
	return ""
}

var _ = fmt.Sprintf

var (
	idRe   = regexp.MustCompile(`<tr data-id="(msg_[0-9A-Z]+)">`)
	nextRe = regexp.MustCompile(`<a href="([^"]+)" rel="next"`)
)
