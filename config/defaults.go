package config

import (
	"cmp"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Process-wide defaults, as documented on the fields.
const (
	defaultListen          = ":8080"
	defaultAdminListen     = "127.0.0.1:9090"
	defaultStoreDriver     = "sqlite"
	defaultSQLiteDSN       = "fanout.db"
	defaultStoreTimeout    = Duration(2 * time.Second)
	defaultLogLevel        = "info"
	defaultLogFormat       = "auto"
	defaultRetention       = Duration(7 * 24 * time.Hour)
	defaultDedupWindow     = Duration(24 * time.Hour)
	defaultLeaseTimeout    = Duration(time.Minute)
	defaultHeartbeat       = Duration(5 * time.Second)
	defaultShutdownTimeout = Duration(30 * time.Second)
)

// Per-target and per-route defaults, as documented on the fields.
const (
	defaultTimeout         = Duration(10 * time.Second)
	defaultRetryInitial    = Duration(time.Second)
	defaultRetryMax        = Duration(time.Hour)
	defaultMaxAttempts     = 10
	defaultRetryMaxAge     = Duration(24 * time.Hour)
	defaultSyncMaxAttempts = 3
	defaultMaxInFlight     = 64
	defaultOutlierFailures = 5
	defaultEjectionTime    = Duration(10 * time.Second)
	defaultMaxEjectionTime = Duration(5 * time.Minute)
	defaultCheckInterval   = Duration(10 * time.Second)
	defaultCheckTimeout    = Duration(2 * time.Second)

	defaultBreakerWindow      = Duration(10 * time.Second)
	defaultBreakerMinRequests = 10
	defaultBreakerRatio       = 0.5
	defaultBreakerFailures    = 5
	defaultBreakerOpenFor     = Duration(5 * time.Second)
	defaultBreakerProbes      = 1
	defaultDeadline           = Duration(30 * time.Second)
	defaultMaxBody            = Size(1 << 20)
	defaultAsyncBodyTimeout   = Duration(30 * time.Second)
	defaultMaxResponseBody    = Size(64 << 10)
	defaultSamplePercent      = 100.0
	defaultMethod             = "POST"
	defaultAPIKeyHeader       = "X-Api-Key"
)

// AdminOff is the value of admin.listen that disables the admin listener.
const AdminOff = "off"

// Default returns a config with every process-wide default set and no
// targets or routes. It is valid as it is.
func Default() *Config {
	return &Config{
		Listen: defaultListen,
		Admin:  Admin{Listen: defaultAdminListen},
		Store:  Store{Driver: defaultStoreDriver, DSN: defaultSQLiteDSN, Timeout: defaultStoreTimeout},
		Log:    Log{Level: defaultLogLevel, Format: defaultLogFormat},
		Delivery: Delivery{
			Retention:        defaultRetention,
			DedupWindow:      defaultDedupWindow,
			LeaseTimeout:     defaultLeaseTimeout,
			HeartbeatTimeout: defaultHeartbeat,
		},
		ShutdownTimeout: defaultShutdownTimeout,
		Targets:         map[string]*Target{},
	}
}

// defaulter is implemented by the types whose defaults are set before a
// mapping of the file is decoded over them, so that a value left out keeps
// its default while an explicit one (even 0) is kept and validated.
type defaulter interface{ setDefaults() }

// setDefaults sets a target's defaults.
func (t *Target) setDefaults() {
	t.Timeout = defaultTimeout
	t.MaxInFlight = defaultMaxInFlight
	t.Retry = Retry{
		Initial:         defaultRetryInitial,
		Max:             defaultRetryMax,
		MaxAttempts:     defaultMaxAttempts,
		MaxAge:          defaultRetryMaxAge,
		SyncMaxAttempts: defaultSyncMaxAttempts,
	}
}

// DefaultOutlier is the passive health check of a target that sets no
// outlier.
func DefaultOutlier() Outlier {
	return Outlier{
		ConsecutiveFailures: defaultOutlierFailures,
		EjectionTime:        defaultEjectionTime,
		MaxEjectionTime:     defaultMaxEjectionTime,
	}
}

// setDefaults sets an outlier's defaults.
func (o *Outlier) setDefaults() { *o = DefaultOutlier() }

// setDefaults sets a server's defaults.
func (s *Server) setDefaults() { s.Weight = 1 }

// setDefaults sets a health check's defaults.
func (h *HealthCheck) setDefaults() {
	h.Interval = defaultCheckInterval
	h.Timeout = defaultCheckTimeout
}

// setDefaults sets a circuit breaker's defaults.
func (b *CircuitBreaker) setDefaults() {
	*b = CircuitBreaker{
		Window:              defaultBreakerWindow,
		MinRequests:         defaultBreakerMinRequests,
		FailureRatio:        defaultBreakerRatio,
		ConsecutiveFailures: defaultBreakerFailures,
		OpenFor:             defaultBreakerOpenFor,
		Probes:              defaultBreakerProbes,
	}
}

// setDefaults sets a route's defaults. Those that depend on the mode
// (sample_percent, durable) are set by normalize once the mode is known.
func (r *Route) setDefaults() {
	r.Deadline = defaultDeadline
	r.MaxBody = defaultMaxBody
	r.MaxResponseBody = defaultMaxResponseBody
	r.Match.Method = defaultMethod
}

// defaultBodyTimeout is the body_timeout of a route that sets none: its
// deadline, or 30s with mode async (whose deadline bounds the store).
func (r *Route) defaultBodyTimeout() Duration {
	if r.Mode == ModeAsync || r.Mode == ModeSteps && r.Async {
		return defaultAsyncBodyTimeout
	}
	return r.Deadline
}

// An API key's default header is set by normalize: it applies only when
// no query parameter is set either.

// normalize completes a decoded config: defaults for values given as empty
// strings, defaults that depend on the mode, target names and parsed URLs,
// upper-cased methods, lower-cased hosts, and the lease timeout raised to
// cover the slowest target. It never fails: Validate reports what is wrong.
func (c *Config) normalize() {
	c.Listen = cmp.Or(c.Listen, defaultListen)
	c.Admin.Listen = cmp.Or(c.Admin.Listen, defaultAdminListen)
	c.Store.Driver = cmp.Or(c.Store.Driver, defaultStoreDriver)
	if c.Store.Driver == defaultStoreDriver {
		c.Store.DSN = cmp.Or(c.Store.DSN, defaultSQLiteDSN)
	}
	c.Log.Level = cmp.Or(c.Log.Level, defaultLogLevel)
	c.Log.Format = cmp.Or(c.Log.Format, defaultLogFormat)

	var slowest Duration
	for name, t := range c.Targets {
		if t == nil {
			continue
		}
		t.Name = name
		t.Method = strings.ToUpper(t.Method)
		for _, s := range t.Servers {
			if s == nil {
				continue
			}
			if u, err := url.Parse(s.URL); err == nil {
				s.ParsedURL = u
			}
			if t.URL == "" && !s.Backup {
				t.URL = s.URL // the first primary server names the target
			}
		}
		if u, err := url.Parse(t.URL); err == nil {
			t.ParsedURL = u
		}
		hp := fieldPath{}.key("targets").key(name).key("health_check")
		if h := t.HealthCheck; h != nil && h.Timeout > h.Interval && h.Interval > 0 {
			if _, set := c.pos[hp.key("timeout").String()]; !set {
				h.Timeout = h.Interval // the default timeout fits a short interval
			}
		}
		if r := t.RateLimit; r != nil && r.Burst == 0 && r.RPS > 0 && r.RPS <= maxRate {
			r.Burst = max(1, int(math.Ceil(r.RPS)))
		}
		_, t.inFlightSet = c.pos[fieldPath{}.key("targets").key(name).key("max_in_flight").String()]
		if t.Auth != nil && t.Auth.APIKey != nil && t.Auth.APIKey.Query == "" {
			t.Auth.APIKey.Header = cmp.Or(t.Auth.APIKey.Header, defaultAPIKeyHeader)
		}
		slowest = max(slowest, t.Timeout)
	}
	if lease := c.Delivery.LeaseTimeout; lease > 0 && slowest > 0 && lease < 2*slowest && 2*slowest > slowest {
		c.Delivery.LeaseTimeout = 2 * slowest
	}

	for i, r := range c.Routes {
		if r == nil {
			continue
		}
		// An explicit body_timeout: 0 is kept, for validate to refuse.
		if _, set := c.pos[fieldPath{"routes", "[" + strconv.Itoa(i) + "]", ".body_timeout"}.String()]; !set && r.BodyTimeout == 0 {
			r.BodyTimeout = r.defaultBodyTimeout()
		}
		r.Match.Method = strings.ToUpper(cmp.Or(r.Match.Method, defaultMethod))
		r.Match.Host = strings.ToLower(r.Match.Host)
		r.normalizeSteps()
		r.normalizeLifecycle()
		if r.Mode == ModeMirror {
			if r.SamplePercent == nil {
				p := defaultSamplePercent
				r.SamplePercent = &p
			}
			if r.Durable == nil {
				d := true
				r.Durable = &d
			}
		}
	}
	c.normalizeSecurity()
}
