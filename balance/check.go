package balance

import (
	"context"
	"log/slog"
	"net/url"
	"slices"
	"time"

	"github.com/fanouthq/fanout/config"
)

// configureChecks starts, restarts or stops the health checks of the
// target's servers to match hc. Called with set.mu held.
func (t *Target) configureChecks(hc *config.HealthCheck, st *state) {
	if hc == nil || t.set.opts.Check == nil {
		t.stopChecks(nil)
		for _, s := range slices.Concat(st.primary, st.backup) {
			t.setHealthy(s, true)
		}
		return
	}
	if *hc != t.checkCfg {
		t.stopChecks(nil) // new settings: every check starts again
		t.checkCfg = *hc
	}
	keep := map[string]bool{}
	for _, s := range slices.Concat(st.primary, st.backup) {
		keep[s.raw] = true
		if _, ok := t.checks[s.raw]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		t.checks[s.raw] = cancel
		t.set.checks.Add(1)
		go func() {
			defer t.set.checks.Done()
			t.runCheck(ctx, s, *hc)
		}()
	}
	t.stopChecks(keep)
}

// stopChecks stops the health checks of the servers not in keep (all
// with keep nil). Called with set.mu held.
func (t *Target) stopChecks(keep map[string]bool) {
	for raw, cancel := range t.checks {
		if !keep[raw] {
			cancel()
			delete(t.checks, raw)
		}
	}
	if keep == nil {
		t.checkCfg = config.HealthCheck{}
	}
}

// runCheck checks s every hc.Interval until ctx ends, the first time at
// once.
func (t *Target) runCheck(ctx context.Context, s *Server, hc config.HealthCheck) {
	u := checkURL(s.url, hc.Path)
	tick := time.NewTicker(hc.Interval.D())
	defer tick.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, hc.Timeout.D())
		status, err := t.set.opts.Check(cctx, u)
		cancel()
		if ctx.Err() != nil {
			return
		}
		ok := err == nil && (hc.ExpectStatus == 0 && status >= 200 && status <= 299 || hc.ExpectStatus != 0 && status == hc.ExpectStatus)
		if !ok {
			attrs := []any{slog.String("target", t.name), slog.String("server", s.raw), slog.Int("status", status)}
			if err != nil {
				attrs = append(attrs, slog.String("error", err.Error()))
			}
			if !s.unhealthy.Load() {
				t.set.log.Warn("target server failed its health check", attrs...)
			}
		}
		t.setHealthy(s, ok)
		if ok {
			t.unEject(s)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// setHealthy records a health check result and reports a change.
func (t *Target) setHealthy(s *Server, ok bool) {
	if s.unhealthy.Swap(!ok) == !ok {
		return // no change
	}
	if ok {
		t.set.log.Info("target server passed its health check", slog.String("target", t.name), slog.String("server", s.raw))
	}
	if f := t.set.opts.OnServer; f != nil && s.ejectedUntil.Load() == 0 {
		f(t.name, s.raw, ok)
	}
}

// checkURL is the health check address of a server: its scheme and host
// with path (and query) of the check.
func checkURL(server *url.URL, path string) *url.URL {
	u := &url.URL{Scheme: server.Scheme, Host: server.Host}
	if p, err := url.Parse(path); err == nil {
		u.Path, u.RawPath, u.RawQuery = p.Path, p.RawPath, p.RawQuery
	} else {
		u.Path = path
	}
	return u
}

// unEject ends the ejection of s, if any: a passing active health check
// says more than the failures that ejected it.
func (t *Target) unEject(s *Server) {
	u := s.ejectedUntil.Load()
	if u == 0 || !s.ejectedUntil.CompareAndSwap(u, 0) {
		return
	}
	t.ejected.Add(-1)
	s.fails.Store(0)
	s.ejections.Store(0)
	t.set.log.Info("target server back after ejection (passed its health check)", slog.String("target", t.name), slog.String("server", s.raw))
	if f := t.set.opts.OnServer; f != nil && !s.unhealthy.Load() {
		f(t.name, s.raw, true)
	}
}
