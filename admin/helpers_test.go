package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/fanouthq/fanout/stats"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/helpers"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/admin"
	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/sqlite"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	testToken = "admin-token-0123456789"

	// Secrets that must never appear in any admin answer.
	secretConfigured = "configured-header-secret-value"      // a target's configured header
	secretAuth       = "Bearer inbound-authorization-secret" // inbound Authorization
	secretAPIKey     = "inbound-x-api-key-secret"            // inbound X-Api-Key
	secretSignature  = "inbound-x-signature-secret"          // in a target's redact list
	secretCookie     = "session=inbound-cookie-secret"       // inbound Cookie
	secretSetCookie  = "sid=response-set-cookie-secret"      // a target's Set-Cookie
	secretURLPass    = "url-password-secret"                 // a password in a target URL
)

var allSecrets = []string{secretConfigured, "inbound-authorization-secret", secretAPIKey,
	secretSignature, "inbound-cookie-secret", "response-set-cookie-secret", secretURLPass}

// testConfig has three targets and three routes: signup (async, crm and
// analytics), profile (all) and a route "grow" that test code extends.
func testConfig() *config.Config {
	return &config.Config{
		Targets: map[string]*config.Target{
			"crm": {
				Name:        "crm",
				URL:         "https://svc:" + secretURLPass + "@crm.example.com/api/contacts",
				Headers:     map[string]string{"X-Crm-Key": secretConfigured},
				Timeout:     config.Duration(5 * time.Second),
				Retry:       config.Retry{Initial: config.Duration(time.Second), Max: config.Duration(10 * time.Minute), MaxAttempts: 10, MaxAge: config.Duration(24 * time.Hour), SyncMaxAttempts: 3, RetryStatus: []int{429, 503}},
				MaxInFlight: 64,
				Redact:      []string{"X-Signature"},
			},
			"analytics": {
				Name:        "analytics",
				URL:         "http://127.0.0.1:18082/events",
				Method:      http.MethodPut,
				Timeout:     config.Duration(2 * time.Second),
				MaxInFlight: 8,
			},
			"late": {Name: "late", URL: "http://127.0.0.1:18083/late"},
		},
		Routes: []*config.Route{
			{
				Name:     "signup",
				Match:    config.Match{Method: http.MethodPost, Path: "/send-info"},
				Mode:     config.ModeAsync,
				Targets:  []config.RouteTarget{{Name: "crm"}, {Name: "analytics"}},
				Deadline: config.Duration(30 * time.Second),
				MaxBody:  1 << 20,
			},
			{
				Name:        "profile",
				Match:       config.Match{Method: http.MethodPost, Path: "/users/{id}/profile", Host: "api.example.com"},
				Mode:        config.ModeAll,
				Targets:     []config.RouteTarget{{Name: "crm"}, {Name: "analytics", Optional: true}},
				Deadline:    config.Duration(3 * time.Second),
				FailFast:    true,
				ContentType: "json",
				MaxBody:     256 << 10,
			},
			{
				Name:    "grow",
				Match:   config.Match{Method: http.MethodPost, Path: "/grow"},
				Mode:    config.ModeAsync,
				Targets: []config.RouteTarget{{Name: "crm"}},
			},
		},
	}
}

// bundle is what one test works with.
type bundle struct {
	t      *testing.T
	store  *sqlite.Store
	srv    *httptest.Server
	client *admin.Client
	cfg    atomic.Pointer[config.Config]
	ready  atomic.Bool
	now    time.Time
	// accessChanges counts the calls of AccessChanged.
	accessChanges atomic.Int64

	mu       sync.Mutex
	notified []string
	raw      bytes.Buffer // every answer body, for the redaction checks
}

type setupOpts struct {
	token   string
	pprof   bool
	metrics http.Handler
	stats   *stats.Stats
}

func setup(t *testing.T, so ...setupOpts) *bundle {
	t.Helper()
	o := setupOpts{token: testToken}
	if len(so) > 0 {
		o = so[0]
	}
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "fanout.db"), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, store.Close()) })
	require.NoError(t, store.Migrate(ctx))

	b := &bundle{t: t, store: store, now: time.Now().UTC().Truncate(time.Millisecond)}
	b.cfg.Store(testConfig())
	b.ready.Store(true)
	b.srv = httptest.NewServer(admin.New(admin.Options{
		Store:  store,
		Config: b.cfg.Load,
		Token:  o.token,
		Ready:  b.ready.Load,
		Notify: func(target string) {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.notified = append(b.notified, target)
		},
		Pprof:   o.pprof,
		Metrics: o.metrics,
		Stats:   statsHandler(o.stats, store),
		StatsSeries: func() http.Handler {
			if o.stats == nil {
				return nil
			}
			return stats.SeriesHandler(o.stats)
		}(),
		Logger:        slog.New(slog.NewTextHandler(tWriter{t}, nil)),
		Now:           func() time.Time { return b.now },
		Access:        store,
		AccessChanged: func() { b.accessChanges.Add(1) },
	}))
	t.Cleanup(b.srv.Close)
	b.client = admin.NewClient(b.srv.URL, testToken, b.httpClient())
	return b
}

// statsHandler serves /v1/stats from st and the store's backlog; nil st
// leaves the endpoint off.
func statsHandler(st *stats.Stats, store *sqlite.Store) http.Handler {
	if st == nil {
		return nil
	}
	return stats.Handler(st, store)
}

// tWriter sends the server's logs to the test log.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// httpClient validates every answer against the OpenAPI document and
// keeps its body in b.raw.
func (b *bundle) httpClient() *http.Client {
	return &http.Client{Transport: &checkingTransport{b: b, base: b.srv.Client().Transport}}
}

type checkingTransport struct {
	b    *bundle
	base http.RoundTripper
}

// specValidator is the OpenAPI document as a response validator, shared
// by the tests; validate calls are serialized.
var specValidator = sync.OnceValues(func() (*lockedValidator, error) {
	doc, err := libopenapi.NewDocument(admin.OpenAPI())
	if err != nil {
		return nil, err
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return &lockedValidator{v: v}, nil
})

type lockedValidator struct {
	mu sync.Mutex
	v  validator.Validator
}

func (t *checkingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if err != nil {
		return nil, err
	}
	t.b.mu.Lock()
	t.b.raw.Write(body)
	for k, vs := range res.Header {
		t.b.raw.WriteString(k + ": " + strings.Join(vs, ", ") + "\n")
	}
	t.b.mu.Unlock()

	if strings.HasPrefix(req.URL.Path, "/debug/pprof/") || req.URL.Path == "/metrics" {
		res.Body = io.NopCloser(bytes.NewReader(body))
		return res, nil // not JSON; documented as opaque
	}
	lv, err := specValidator()
	require.NoError(t.b.t, err)
	check := *res
	check.Body = io.NopCloser(bytes.NewReader(body))
	lv.mu.Lock()
	ok, errs := lv.v.ValidateHttpResponse(req, &check)
	lv.mu.Unlock()
	if !ok {
		for _, e := range errs {
			if e.ValidationType == helpers.PathValidation {
				// Not a documented operation: only the error answers for
				// unknown paths and methods (and 401 before them) may come.
				require.Containsf(t.b.t, []int{http.StatusUnauthorized, http.StatusNotFound, http.StatusMethodNotAllowed},
					res.StatusCode, "%s %s is not in openapi.yaml", req.Method, req.URL.Path)
				continue
			}
			t.b.t.Errorf("%s %s → %d does not match openapi.yaml: %s: %s", req.Method, req.URL.Path, res.StatusCode, e.Message, e.Reason)
			for _, se := range e.SchemaValidationErrors {
				t.b.t.Errorf("  %s at %s", se.Reason, se.FieldPath)
			}
		}
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	return res, nil
}

// errorBody is the one error shape.
type errorBody struct {
	Error struct {
		Code    string         `json:"code"`
		Message string         `json:"message"`
		Details map[string]any `json:"details"`
	} `json:"error"`
}

// do sends a raw request with the admin token (token "" sends none) and
// returns the answer and its body.
func (b *bundle) do(method, path, token, body string) (*http.Response, []byte) {
	b.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, b.srv.URL+path, rd)
	require.NoError(b.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := b.httpClient().Do(req)
	require.NoError(b.t, err)
	out, err := io.ReadAll(res.Body)
	require.NoError(b.t, err)
	require.NoError(b.t, res.Body.Close())
	return res, out
}

// requireError checks an answer in the error shape and returns it.
func (b *bundle) requireError(res *http.Response, body []byte, status int, code string) errorBody {
	b.t.Helper()
	require.Equalf(b.t, status, res.StatusCode, "body: %s", body)
	require.Equal(b.t, "application/json", res.Header.Get("Content-Type"))
	var e errorBody
	require.NoError(b.t, json.Unmarshal(body, &e), "body: %s", body)
	require.Equalf(b.t, code, e.Error.Code, "body: %s", body)
	require.NotEmpty(b.t, e.Error.Message)
	return e
}

// accept stores a message on route to targets, received ago before now,
// and returns its id.
func (b *bundle) accept(route, tenant string, ago time.Duration, targets []string, mods ...func(*fanout.Message)) string {
	b.t.Helper()
	m := fanout.Message{
		ID:         fanout.NewMessageID(),
		Route:      route,
		Tenant:     tenant,
		Method:     http.MethodPost,
		Path:       "/send-info",
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       []byte(`{"email":"a@example.com"}`),
		ReceivedAt: b.now.Add(-ago),
	}
	for _, mod := range mods {
		mod(&m)
	}
	res, err := b.store.Accept(context.Background(), []fanout.AcceptParams{{Message: m, Targets: targets}})
	require.NoError(b.t, err)
	require.Len(b.t, res, 1)
	return res[0].MessageID
}

// complete leases target's due deliveries and completes the one of msgID
// in state with attempt a (its delivery and number filled in).
func (b *bundle) complete(msgID, target string, state fanout.DeliveryState, a fanout.Attempt) {
	b.t.Helper()
	ctx := context.Background()
	leased, err := b.store.Lease(ctx, fanout.LeaseParams{Target: target, Owner: "test", Limit: 1000, Now: b.now, LeaseFor: time.Minute})
	require.NoError(b.t, err)
	var done bool
	var release []int64
	for _, l := range leased {
		if l.Message.ID != msgID {
			release = append(release, l.Delivery.ID)
			continue
		}
		a.DeliveryID, a.MessageID, a.Target, a.Number = l.Delivery.ID, msgID, target, l.Delivery.Attempts
		if a.StartedAt.IsZero() {
			a.StartedAt = b.now
		}
		require.NoError(b.t, b.store.Complete(ctx, []fanout.CompleteParams{{
			DeliveryID: l.Delivery.ID, Owner: "test", Attempt: a, State: state, Now: b.now,
		}}))
		done = true
	}
	if len(release) > 0 {
		_, err := b.store.ReleaseLeases(ctx, fanout.ReleaseParams{Owner: "test", IDs: release, Now: b.now})
		require.NoError(b.t, err)
	}
	require.Truef(b.t, done, "no due delivery of %s to %s", msgID, target)
}

// kill makes the delivery of msgID to target dead after one 500.
func (b *bundle) kill(msgID, target string) {
	b.t.Helper()
	b.complete(msgID, target, fanout.StateDead, fanout.Attempt{
		RequestMethod: http.MethodPost,
		RequestURL:    "http://127.0.0.1:1/" + target,
		Duration:      12 * time.Millisecond,
		Status:        http.StatusInternalServerError,
		Class:         fanout.ClassStatus,
		Error:         "status 500",
	})
}

// states returns the state of each delivery of msgID by target.
func (b *bundle) states(msgID string) map[string]string {
	b.t.Helper()
	m, err := b.client.GetMessage(context.Background(), msgID)
	require.NoError(b.t, err)
	out := map[string]string{}
	for _, d := range m.Deliveries {
		out[d.Target] = d.State
	}
	return out
}

// takeNotified returns the targets notified so far and forgets them.
func (b *bundle) takeNotified() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.notified
	b.notified = nil
	return n
}

// rawAnswers returns every answer body and header seen so far.
func (b *bundle) rawAnswers() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.raw.String()
}
