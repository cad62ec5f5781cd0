package config

import (
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// specExample is the route example of the product spec's config section, with two changes that it needs to
// be valid YAML and a complete config: the wildcard path is quoted (in a
// flow mapping "{" and "}" are YAML syntax), and token_url, client_id are
// real values instead of "…".
const specExample = `listen: ":8080"
admin: {listen: "127.0.0.1:9090", token: "${FANOUT_ADMIN_TOKEN}"}
store: {driver: sqlite, dsn: "fanout.db"}        # or: {driver: postgres, dsn: "${DATABASE_URL}"}
targets:
  crm:
    url: https://crm.example.com/api/contacts
    auth: {oauth2_client_credentials: {token_url: "https://auth.example.com/oauth/token", client_id: fanout, client_secret: "${CRM_SECRET}"}}
    timeout: 5s
    retry: {initial: 1s, max: 10m, max_attempts: 10}
  analytics:
    url: http://127.0.0.1:18082/events
    headers: {X-Api-Key: "${ANALYTICS_KEY}"}
routes:
  - name: signup
    match: {method: POST, path: /send-info}
    mode: async
    targets: [crm, analytics]
  - name: profile
    match: {method: POST, path: "/users/{id}/profile"}
    mode: all                 # all | settled | race | mirror | async | steps
    targets: [crm, analytics]
    deadline: 3s              # whole request, retries included (sync modes)
    fail_fast: true           # all: cancel the others on the first failure
    content_type: json        # reject other types (415) and malformed JSON (400)
    max_body: 256KiB          # 413 past it (default 1MiB)
  - name: shadow
    match: {method: POST, path: /orders}
    mode: mirror
    primary: crm              # its response goes back to the caller
    targets: [crm, analytics] # every target but the primary gets a copy
    sample_percent: 100
`

// env returns a lookupEnv function over vars.
func env(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

var specEnv = env(map[string]string{
	"FANOUT_ADMIN_TOKEN": "admin-token",
	"CRM_SECRET":         "crm-secret",
	"ANALYTICS_KEY":      "analytics-key",
})

func ptr[T any](v T) *T { return &v }

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	require.NoError(t, err)
	return u
}

// defaultRetry is the retry policy of a target that sets none.
var defaultRetry = Retry{
	Initial:         Duration(time.Second),
	Max:             Duration(time.Hour),
	MaxAttempts:     10,
	MaxAge:          Duration(24 * time.Hour),
	SyncMaxAttempts: 3,
}

func TestParseSpecExample(t *testing.T) {
	t.Parallel()

	got, err := Parse("fanout.yaml", []byte(specExample), specEnv)
	require.NoError(t, err)
	require.NoError(t, got.Validate())

	want := Default()
	want.File = "fanout.yaml"
	want.Admin.Token = "admin-token"
	// Not raised: twice the slowest target timeout (analytics, 10s) is less.
	want.Delivery.LeaseTimeout = Duration(time.Minute)
	want.Targets = map[string]*Target{
		"crm": {
			Name:      "crm",
			URL:       "https://crm.example.com/api/contacts",
			ParsedURL: mustURL(t, "https://crm.example.com/api/contacts"),
			Auth: &Auth{OAuth2ClientCredentials: &OAuth2ClientCredentials{
				TokenURL:     "https://auth.example.com/oauth/token",
				ClientID:     "fanout",
				ClientSecret: "crm-secret",
			}},
			Timeout:     Duration(5 * time.Second),
			Retry:       Retry{Initial: Duration(time.Second), Max: Duration(10 * time.Minute), MaxAttempts: 10, MaxAge: Duration(24 * time.Hour), SyncMaxAttempts: 3},
			MaxInFlight: 64,
		},
		"analytics": {
			Name:        "analytics",
			URL:         "http://127.0.0.1:18082/events",
			ParsedURL:   mustURL(t, "http://127.0.0.1:18082/events"),
			Headers:     map[string]string{"X-Api-Key": "analytics-key"},
			Timeout:     Duration(10 * time.Second),
			Retry:       defaultRetry,
			MaxInFlight: 64,
		},
	}
	routeDefaults := func(r Route) *Route {
		r.Deadline = cmpOrDuration(r.Deadline, Duration(30*time.Second))
		if r.MaxBody == 0 {
			r.MaxBody = 1 << 20
		}
		r.MaxResponseBody = 64 << 10
		// body_timeout: the deadline, 30s for async.
		r.BodyTimeout = r.Deadline
		if r.Mode == ModeAsync {
			r.BodyTimeout = Duration(30 * time.Second)
		}
		return &r
	}
	want.Routes = []*Route{
		routeDefaults(Route{
			Name:    "signup",
			Match:   Match{Method: "POST", Path: "/send-info"},
			Mode:    ModeAsync,
			Targets: []RouteTarget{{Name: "crm"}, {Name: "analytics"}},
		}),
		routeDefaults(Route{
			Name:        "profile",
			Match:       Match{Method: "POST", Path: "/users/{id}/profile"},
			Mode:        ModeAll,
			Targets:     []RouteTarget{{Name: "crm"}, {Name: "analytics"}},
			Deadline:    Duration(3 * time.Second),
			FailFast:    true,
			ContentType: "json",
			MaxBody:     256 << 10,
		}),
		routeDefaults(Route{
			Name:          "shadow",
			Match:         Match{Method: "POST", Path: "/orders"},
			Mode:          ModeMirror,
			Primary:       "crm",
			Targets:       []RouteTarget{{Name: "crm"}, {Name: "analytics"}},
			SamplePercent: ptr(100.0),
			Durable:       ptr(true),
		}),
	}

	got.pos, got.src = nil, nil
	require.Equal(t, want, got)
	require.Same(t, got.Routes[1], got.Route("profile"))
	require.Nil(t, got.Route("nope"))
}

func cmpOrDuration(d, def Duration) Duration {
	if d == 0 {
		return def
	}
	return d
}

func TestDefault(t *testing.T) {
	t.Parallel()

	c := Default()
	require.NoError(t, c.Validate())
	require.Equal(t, ":8080", c.Listen)
	require.Equal(t, "127.0.0.1:9090", c.Admin.Listen)
	require.Equal(t, Store{Driver: "sqlite", DSN: "fanout.db", Timeout: Duration(2 * time.Second)}, c.Store)
	require.Equal(t, Log{Level: "info", Format: "auto"}, c.Log)
	require.Equal(t, Delivery{
		Retention:        Duration(168 * time.Hour),
		DedupWindow:      Duration(24 * time.Hour),
		LeaseTimeout:     Duration(time.Minute),
		HeartbeatTimeout: Duration(5 * time.Second),
	}, c.Delivery)
	require.Equal(t, Duration(30*time.Second), c.ShutdownTimeout)
	require.Empty(t, c.Targets)
	require.Empty(t, c.Routes)

	// Each call returns a new config.
	c.Targets["x"] = &Target{}
	require.Empty(t, Default().Targets)
}

func TestParseEmptyFileIsTheDefault(t *testing.T) {
	t.Parallel()

	for _, data := range []string{"", "# nothing yet\n", "---\n", "~\n"} {
		got, err := Parse("empty.yaml", []byte(data), nil)
		require.NoError(t, err, "%q", data)
		want := Default()
		want.File = "empty.yaml"
		got.pos, got.src = nil, nil
		require.Equal(t, want, got, "%q", data)
	}
}

func TestParseFillsDefaults(t *testing.T) {
	t.Parallel()

	cfg, err := Parse("fanout.yaml", []byte(`
targets:
  a: {url: "http://a.internal/in", method: put}
  b:
    url: http://b.internal/in
    timeout: 45s
routes:
  - name: r1
    match: {path: /in, host: API.Example.com}
    mode: race
    targets: [a, b]
  - name: r2
    match: {method: get, path: /copy}
    mode: mirror
    primary: a
    targets: [a, b]
  - name: r3
    match: {path: /m}
    mode: mirror
    primary: a
    targets: [a, b]
    sample_percent: 0
    durable: false
`), nil)
	require.NoError(t, err)

	a := cfg.Targets["a"]
	require.Equal(t, "a", a.Name)
	require.Equal(t, "PUT", a.Method)
	require.Equal(t, "a.internal", a.ParsedURL.Host)
	require.Equal(t, Duration(10*time.Second), a.Timeout)
	require.Equal(t, defaultRetry, a.Retry)
	require.Nil(t, a.Retry.RetryStatus, "nil means the default statuses")
	require.Equal(t, 64, a.MaxInFlight)
	require.Equal(t, Duration(45*time.Second), cfg.Targets["b"].Timeout)
	// Raised to twice the slowest target's timeout.
	require.Equal(t, Duration(90*time.Second), cfg.Delivery.LeaseTimeout)

	r1 := cfg.Routes[0]
	require.Equal(t, Match{Method: "POST", Path: "/in", Host: "api.example.com"}, r1.Match)
	require.Equal(t, Duration(30*time.Second), r1.Deadline)
	require.Equal(t, Size(1<<20), r1.MaxBody)
	require.Equal(t, Size(64<<10), r1.MaxResponseBody)
	require.Nil(t, r1.SamplePercent, "sample_percent is a mirror setting")
	require.Nil(t, r1.Durable, "durable is a mirror setting")
	require.Zero(t, r1.Require)

	r2 := cfg.Routes[1]
	require.Equal(t, "GET", r2.Match.Method)
	require.Equal(t, ptr(100.0), r2.SamplePercent)
	require.Equal(t, ptr(true), r2.Durable)

	r3 := cfg.Routes[2]
	require.Equal(t, ptr(0.0), r3.SamplePercent)
	require.Equal(t, ptr(false), r3.Durable)
}

func TestParseExplicitValuesOverDefaults(t *testing.T) {
	t.Parallel()

	cfg, err := Parse("fanout.yaml", []byte(`
listen: "0.0.0.0:80"
admin: {listen: "off", token: t, pprof: true}
store: {driver: postgres, dsn: "postgres://fanout@db/fanout", node_id: web-1, timeout: 500ms}
log: {level: debug, format: json}
delivery: {retention: 30d, dedup_window: 1h, lease_timeout: 5m, heartbeat_timeout: 10s}
shutdown_timeout: 1m30s
targets:
  a:
    url: https://a.example.com/hook?x=1
    headers: {X-One: "1", Content-Type: application/json}
    timeout: 250ms
    retry:
      initial: 500ms
      max: 1d12h
      max_attempts: 25
      max_age: 3d
      sync_max_attempts: 1
      retry_status: [429, 503]
      retry_all_4xx: true
    max_in_flight: 8
    redact: [X-One]
  b:
    url: https://b.example.com/
    retry: {retry_status: []}
routes:
  - name: quorum
    match: {method: PUT, path: "/users/{id}/files/{path...}", host: api.example.com}
    mode: all
    targets: [a, {name: b, optional: true}]
    require: 1
    deadline: 2s
    fail_fast: true
    content_type: json
    max_body: 10MB
    max_response_body: 0
    on_failure: queue
  - name: fastest
    match: {path: /race/}
    mode: race
    targets: [a, b]
    hedge_after: 50ms
`), nil)
	require.NoError(t, err)

	require.Equal(t, "0.0.0.0:80", cfg.Listen)
	require.Equal(t, Admin{Listen: "off", Token: "t", Pprof: true}, cfg.Admin)
	require.Equal(t, Store{Driver: "postgres", DSN: "postgres://fanout@db/fanout", NodeID: "web-1", Timeout: Duration(500 * time.Millisecond)}, cfg.Store)
	require.Equal(t, Log{Level: "debug", Format: "json"}, cfg.Log)
	require.Equal(t, Delivery{
		Retention:        Duration(30 * 24 * time.Hour),
		DedupWindow:      Duration(time.Hour),
		LeaseTimeout:     Duration(5 * time.Minute),
		HeartbeatTimeout: Duration(10 * time.Second),
	}, cfg.Delivery)
	require.Equal(t, Duration(90*time.Second), cfg.ShutdownTimeout)

	a := cfg.Targets["a"]
	require.Equal(t, map[string]string{"X-One": "1", "Content-Type": "application/json"}, a.Headers)
	require.Equal(t, Duration(250*time.Millisecond), a.Timeout)
	require.Equal(t, Retry{
		Initial:         Duration(500 * time.Millisecond),
		Max:             Duration(36 * time.Hour),
		MaxAttempts:     25,
		MaxAge:          Duration(72 * time.Hour),
		SyncMaxAttempts: 1,
		RetryStatus:     []int{429, 503},
		RetryAll4xx:     true,
	}, a.Retry)
	require.Equal(t, 8, a.MaxInFlight)
	require.Equal(t, []string{"X-One"}, a.Redact)
	require.NotNil(t, cfg.Targets["b"].Retry.RetryStatus, "an empty list retries no status")
	require.Empty(t, cfg.Targets["b"].Retry.RetryStatus)

	q := cfg.Routes[0]
	require.Equal(t, Match{Method: "PUT", Path: "/users/{id}/files/{path...}", Host: "api.example.com"}, q.Match)
	require.Equal(t, []RouteTarget{{Name: "a"}, {Name: "b", Optional: true}}, q.Targets)
	require.Equal(t, 1, q.Require)
	require.Equal(t, Duration(2*time.Second), q.Deadline)
	require.True(t, q.FailFast)
	require.Equal(t, "json", q.ContentType)
	require.Equal(t, Size(10_000_000), q.MaxBody)
	require.Equal(t, Size(0), q.MaxResponseBody)
	require.Equal(t, "queue", q.OnFailure)
	require.Equal(t, Duration(50*time.Millisecond), cfg.Routes[1].HedgeAfter)
}

func TestParseStore(t *testing.T) {
	t.Parallel()

	for _, tc := range []struct {
		yaml string
		want Store
	}{
		{`store: {dsn: /var/lib/fanout/fanout.db}`, Store{Driver: "sqlite", DSN: "/var/lib/fanout/fanout.db", Timeout: Duration(2 * time.Second)}},
		{`store: {driver: sqlite}`, Store{Driver: "sqlite", DSN: "fanout.db", Timeout: Duration(2 * time.Second)}},
		{`store: {driver: postgres, dsn: "${DATABASE_URL}"}`, Store{Driver: "postgres", DSN: "postgres://db/fanout", Timeout: Duration(2 * time.Second)}},
		{`store: {}`, Store{Driver: "sqlite", DSN: "fanout.db", Timeout: Duration(2 * time.Second)}},
	} {
		cfg, err := Parse("fanout.yaml", []byte(tc.yaml), env(map[string]string{"DATABASE_URL": "postgres://db/fanout"}))
		require.NoError(t, err, tc.yaml)
		require.Equal(t, tc.want, cfg.Store, tc.yaml)
	}

	// The SQLite default DSN is never given to PostgreSQL.
	_, err := Parse("fanout.yaml", []byte("store: {driver: postgres}\n"), nil)
	require.EqualError(t, err, "fanout.yaml:1:1: store.dsn: is required with driver postgres")
}

func TestParseEmptyStringsKeepDefaults(t *testing.T) {
	t.Parallel()

	cfg, err := Parse("fanout.yaml", []byte(`
listen: ""
admin: {listen: ""}
log: {level: "", format: ""}
targets:
  a: {url: "http://a/", method: ""}
routes:
  - {name: r, match: {method: "", path: /}, mode: async, targets: [a]}
`), nil)
	require.NoError(t, err)
	require.Equal(t, ":8080", cfg.Listen)
	require.Equal(t, "127.0.0.1:9090", cfg.Admin.Listen)
	require.Equal(t, Log{Level: "info", Format: "auto"}, cfg.Log)
	require.Empty(t, cfg.Targets["a"].Method, "empty: the inbound method")
	require.Equal(t, "POST", cfg.Routes[0].Match.Method)
}

func TestParseLeaseTimeout(t *testing.T) {
	t.Parallel()

	for _, tc := range []struct {
		yaml string
		want Duration
	}{
		{"targets: {a: {url: 'http://a/'}}", Duration(time.Minute)},
		{"targets: {a: {url: 'http://a/', timeout: 30s}}", Duration(time.Minute)},
		{"targets: {a: {url: 'http://a/', timeout: 31s}, b: {url: 'http://b/', timeout: 2m}}", Duration(4 * time.Minute)},
		{"delivery: {lease_timeout: 10m}\ntargets: {a: {url: 'http://a/', timeout: 2m}}", Duration(10 * time.Minute)},
		{"delivery: {lease_timeout: 10s}\ntargets: {a: {url: 'http://a/', timeout: 2m}}", Duration(4 * time.Minute)},
	} {
		cfg, err := Parse("fanout.yaml", []byte(tc.yaml), nil)
		require.NoError(t, err, tc.yaml)
		require.Equal(t, tc.want, cfg.Delivery.LeaseTimeout, tc.yaml)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	path := filepath.Join(dir, "fanout.yaml")
	require.NoError(t, os.WriteFile(path, []byte("listen: \":9999\"\n"), 0o600))
	cfg, err := Load(path)
	require.NoError(t, err)
	require.Equal(t, path, cfg.File)
	require.Equal(t, ":9999", cfg.Listen)

	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("listen: 9999\n"), 0o600))
	_, err = Load(bad)
	require.EqualError(t, err, bad+`:1:9: listen: must be host:port, such as ":8080" or "127.0.0.1:8080", not "9999"`)

	_, err = Load(filepath.Join(dir, "missing.yaml"))
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.ErrorContains(t, err, "missing.yaml")
}

func TestLoadReadsTheEnvironment(t *testing.T) {
	// Not parallel: t.Setenv.
	path := filepath.Join(t.TempDir(), "fanout.yaml")
	require.NoError(t, os.WriteFile(path, []byte("admin: {token: \"${FANOUT_TEST_CONFIG_TOKEN}\"}\n"), 0o600))
	t.Setenv("FANOUT_TEST_CONFIG_TOKEN", "from-env")
	cfg, err := Load(path)
	require.NoError(t, err)
	require.Equal(t, "from-env", cfg.Admin.Token)
}

func TestErrorFormat(t *testing.T) {
	t.Parallel()

	for _, tc := range []struct {
		err  Error
		want string
	}{
		{Error{File: "f.yaml", Line: 3, Col: 7, Field: "routes[0].mode", Msg: "is required"}, "f.yaml:3:7: routes[0].mode: is required"},
		{Error{File: "f.yaml", Line: 3, Col: 1, Msg: "invalid YAML: x"}, "f.yaml:3:1: invalid YAML: x"},
		{Error{File: "f.yaml", Line: 3, Field: "listen", Msg: "bad"}, "f.yaml:3:1: listen: bad"},
		{Error{File: "f.yaml", Field: "listen", Msg: "bad"}, "f.yaml: listen: bad"},
		{Error{Field: "listen", Msg: "bad"}, "listen: bad"},
		{Error{Msg: "bad"}, "bad"},
	} {
		require.Equal(t, tc.want, tc.err.Error())
	}

	list := ErrorList{{File: "f", Line: 1, Col: 2, Msg: "one"}, {File: "f", Line: 2, Col: 1, Msg: "two"}}
	require.Equal(t, "f:1:2: one\nf:2:1: two", list.Error())
	var err error = list
	var first *Error
	require.ErrorAs(t, err, &first)
	require.Equal(t, "one", first.Msg)
	var got ErrorList
	require.ErrorAs(t, err, &got)
	require.Len(t, got, 2)
}

func TestParseReportsEveryProblemSorted(t *testing.T) {
	t.Parallel()

	_, err := Parse("fanout.yaml", []byte(`routes:
  - name: b
    mode: nope
    targets: [ghost]
listen: nowhere
targets:
  t: {url: "ftp://x", timeout: -1s}
`), nil)
	var list ErrorList
	require.ErrorAs(t, err, &list)
	require.Equal(t, strings.Join([]string{
		`fanout.yaml:2:5: routes[0].match.path: is required`,
		`fanout.yaml:3:11: routes[0].mode: must be async, all, settled, race, mirror or steps, not "nope"`,
		`fanout.yaml:4:15: routes[0].targets[0]: unknown target "ghost"`,
		`fanout.yaml:5:9: listen: must be host:port, such as ":8080" or "127.0.0.1:8080", not "nowhere"`,
		`fanout.yaml:7:12: targets.t.url: must be an absolute http:// or https:// URL, not "ftp://x"`,
		`fanout.yaml:7:32: targets.t.timeout: invalid duration "-1s": must not be negative`,
	}, "\n"), err.Error())
}

func TestValidateConfigBuiltInCode(t *testing.T) {
	t.Parallel()

	c := Default()
	c.Targets["a"] = &Target{URL: "http://a/", Timeout: Duration(time.Second), MaxInFlight: 1, Retry: defaultRetry}
	c.Routes = []*Route{{
		Name:     "r",
		Match:    Match{Method: "POST", Path: "/r"},
		Mode:     ModeAll,
		Targets:  []RouteTarget{{Name: "a"}},
		Deadline: Duration(time.Second),
		MaxBody:  1,
	}}
	require.NoError(t, c.Validate())

	c.Routes[0].Mode = ModeRace
	c.Routes[0].FailFast = true
	c.Targets["a"].Timeout = 0
	c.Routes = append(c.Routes, nil)
	c.Targets["nil"] = nil
	err := c.Validate()
	require.EqualError(t, err, strings.Join([]string{
		"targets.a.timeout: must be greater than 0, not 0s",
		"targets.nil: is empty",
		"routes[0].fail_fast: is only allowed with mode all, not race",
		"routes[1]: is empty",
	}, "\n"))
}

func TestValidateDoesNotChangeTheConfig(t *testing.T) {
	t.Parallel()

	cfg, err := Parse("fanout.yaml", []byte(specExample), specEnv)
	require.NoError(t, err)
	again, err := Parse("fanout.yaml", []byte(specExample), specEnv)
	require.NoError(t, err)
	require.NoError(t, cfg.Validate())
	require.Equal(t, again, cfg)
}

func TestMatchPattern(t *testing.T) {
	t.Parallel()

	for _, tc := range []struct {
		m         Match
		pattern   string
		wildcards []string
	}{
		{Match{Method: "POST", Path: "/send-info"}, "POST /send-info", nil},
		{Match{Method: "POST", Path: "/users/{id}/profile"}, "POST /users/{id}/profile", []string{"id"}},
		{Match{Method: "GET", Path: "/files/{dir}/{rest...}", Host: "api.example.com"}, "GET api.example.com/files/{dir}/{rest...}", []string{"dir", "rest"}},
		{Match{Method: "POST", Path: "/"}, "POST /{$}", nil},
		{Match{Method: "POST", Path: "/hooks/"}, "POST /hooks/{$}", nil},
	} {
		require.Equal(t, tc.pattern, tc.m.Pattern())
		require.Equal(t, tc.wildcards, tc.m.Wildcards())
	}
	require.Nil(t, Match{Path: "relative"}.Wildcards())
}

func TestParseStandardWebhooksSecretOneOrMany(t *testing.T) {
	t.Parallel()
	env := func(k string) (string, bool) { return map[string]string{"OLD": "whsec_AAAA", "NEW": "BBBB"}[k], true }
	for yaml, want := range map[string]SecretList{
		`"${OLD}"`:                 {"whsec_AAAA"},
		`["${OLD}"]`:               {"whsec_AAAA"},
		"[\"${NEW}\", \"${OLD}\"]": {"BBBB", "whsec_AAAA"},
	} {
		cfg, err := Parse("fanout.yaml", []byte("targets:\n  hooks:\n    url: https://h.example.com/in\n    auth: {hmac: {standard_webhooks_secret: "+yaml+"}}\n"), env)
		require.NoError(t, err, yaml)
		require.Equal(t, want, cfg.Targets["hooks"].Auth.HMAC.StandardWebhooksSecret, yaml)
	}

	// yaml.v3 decodes both forms too.
	var h HMACAuth
	require.NoError(t, yaml.Unmarshal([]byte("standard_webhooks_secret: [a, b]"), &h))
	require.Equal(t, SecretList{"a", "b"}, h.StandardWebhooksSecret)
	require.NoError(t, yaml.Unmarshal([]byte("standard_webhooks_secret: c"), &h))
	require.Equal(t, SecretList{"c"}, h.StandardWebhooksSecret)
}
