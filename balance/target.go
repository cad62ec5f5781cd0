package balance

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/config"
)

// Outcome is what an attempt says about the server and the target.
type Outcome int

// The outcomes of an attempt.
const (
	// Success: a response that is not a failure.
	Success Outcome = iota
	// Failure: a connect error, a timeout, a TLS failure, or a status
	// listed in failure_status (default 5xx).
	Failure
	// Neutral: says nothing about the target (the caller cancelled, the
	// request could not be built, the attempt was never sent).
	Neutral
)

// Target is the live state of one target: its servers, breaker and
// egress budget. Its methods are safe for concurrent use.
type Target struct {
	name string
	set  *Set

	st       atomic.Pointer[state]
	breaker  atomic.Pointer[Breaker]
	limiter  atomic.Pointer[rate.Limiter]
	sem      atomic.Pointer[chan struct{}]
	rr       atomic.Uint64
	inflight atomic.Int64
	ejected  atomic.Int64 // servers ejected (or whose ejection has not been seen to end)

	// checks holds the cancel of each server's health check by URL;
	// guarded by set.mu.
	checks   map[string]context.CancelFunc
	checkCfg config.HealthCheck
}

// Base returns the target's configured URL (its url, or its first
// primary server's): a step's URL is joined to it, and Lease.Server's
// URL takes its place.
func (t *Target) Base() *url.URL { return t.st.Load().base }

// state is what a config says about a target, with the servers' live
// state; replaced whole on reload.
type state struct {
	primary, backup []*Server
	seq, bseq       []uint16 // smooth weighted round robin schedules
	balance         string
	base            *url.URL
	outlier         config.Outlier
	failStatus      []int // nil: 5xx
}

// Server is the live state of one server.
type Server struct {
	url    *url.URL
	raw    string
	weight int
	backup bool

	inflight     atomic.Int64
	attempts     atomic.Uint64
	fails        atomic.Int64 // consecutive
	ejectedUntil atomic.Int64 // Unix ns; 0: not ejected
	ejections    atomic.Int64 // in a row, for the growing ejection time
	unhealthy    atomic.Bool  // failed its last health check
}

// URL is the server's address.
func (s *Server) URL() *url.URL { return s.url }

// configure applies tc, keeping the state of servers whose URL stays.
func (t *Target) configure(tc *config.Target) {
	prev := t.st.Load()
	known := map[string]*Server{}
	if prev != nil {
		for _, s := range slices.Concat(prev.primary, prev.backup) {
			known[s.raw] = s
		}
	}
	st := &state{balance: tc.Balance, failStatus: tc.FailureStatus, outlier: config.DefaultOutlier()}
	if tc.Outlier != nil {
		st.outlier = *tc.Outlier
	}
	st.base = tc.ParsedURL
	if st.base == nil {
		st.base, _ = url.Parse(tc.URL)
	}
	servers := tc.Servers
	if len(servers) == 0 {
		servers = []*config.Server{{URL: tc.URL, ParsedURL: st.base, Weight: 1}}
	}
	for _, sc := range servers {
		if sc == nil {
			continue
		}
		u := sc.ParsedURL
		if u == nil {
			var err error
			if u, err = url.Parse(sc.URL); err != nil {
				continue // Validate refuses it
			}
		}
		s := known[sc.URL]
		if s == nil || s.weight != max(sc.Weight, 1) || s.backup != sc.Backup {
			s = &Server{raw: sc.URL, url: u, weight: max(sc.Weight, 1), backup: sc.Backup}
			if k := known[sc.URL]; k != nil { // weight or role changed: keep the health
				s.fails.Store(k.fails.Load())
				s.unhealthy.Store(k.unhealthy.Load())
			}
		}
		if sc.Backup {
			st.backup = append(st.backup, s)
		} else {
			st.primary = append(st.primary, s)
		}
	}
	st.seq, st.bseq = schedule(st.primary), schedule(st.backup)
	n := int64(0)
	for _, s := range slices.Concat(st.primary, st.backup) {
		if s.ejectedUntil.Load() != 0 {
			n++
		}
	}
	t.ejected.Store(n)
	t.st.Store(st)

	switch b := t.breaker.Load(); {
	case tc.CircuitBreaker == nil:
		t.breaker.Store(nil)
	case b == nil:
		t.breaker.Store(newBreaker(*tc.CircuitBreaker))
	default:
		b.setConfig(*tc.CircuitBreaker)
	}
	switch l := t.limiter.Load(); {
	case tc.RateLimit == nil:
		t.limiter.Store(nil)
	case l == nil:
		t.limiter.Store(rate.NewLimiter(rate.Limit(tc.RateLimit.RPS), max(tc.RateLimit.Burst, 1)))
	default:
		now := t.set.now()
		l.SetLimitAt(now, rate.Limit(tc.RateLimit.RPS))
		l.SetBurstAt(now, max(tc.RateLimit.Burst, 1))
	}
	if n := tc.SharedInFlight(); n <= 0 {
		t.sem.Store(nil)
	} else if c := t.sem.Load(); c == nil || cap(*c) != n {
		ch := make(chan struct{}, n) // attempts holding the old one give it back there
		t.sem.Store(&ch)
	}
	t.configureChecks(tc.HealthCheck, st)
}

// schedule returns the smooth weighted round robin order of servers
// (nginx's algorithm), weights divided by their greatest common divisor:
// with weights 5, 1, 1 it is a a b a c a a, not a a a a a b c.
func schedule(servers []*Server) []uint16 {
	if len(servers) == 0 {
		return nil
	}
	g := 0
	for _, s := range servers {
		g = gcd(g, s.weight)
	}
	total := 0
	for _, s := range servers {
		total += s.weight / g
	}
	cur := make([]int, len(servers))
	seq := make([]uint16, 0, total)
	for range total {
		best := 0
		for i, s := range servers {
			cur[i] += s.weight / g
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		seq = append(seq, uint16(best))
	}
	return seq
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// Lease is one attempt's hold on a target: the server it goes to and its
// share of the egress budget. Done gives it back. The zero Lease holds
// nothing (its Done does nothing).
type Lease struct {
	t     *Target
	s     *Server
	sem   *chan struct{}
	probe bool
}

// Target returns the target of the lease.
func (l *Lease) Target() *Target { return l.t }

// Server returns the server the attempt goes to.
func (l *Lease) Server() *Server { return l.s }

// Probe reports whether the attempt is a probe of a half-open circuit:
// its outcome decides whether the circuit closes or opens again.
func (l *Lease) Probe() bool { return l.probe }

// Acquire asks for one attempt at the target: the breaker first (open: it
// fails at once with an error wrapping fanout.ErrCircuitOpen), then the
// rate limit and max_in_flight (it waits; when ctx has a deadline the
// wait would pass, it fails at once, or when the deadline comes, with
// fanout.ErrRateLimited), then a server. retry says an earlier attempt of
// the same call failed: a server without failures is preferred.
func (t *Target) Acquire(ctx context.Context, retry bool) (Lease, error) {
	l := Lease{t: t}
	if b := t.breaker.Load(); b != nil {
		probe, ch, err := b.allow(t.set.now())
		t.report(ch)
		if err != nil {
			return Lease{}, err
		}
		l.probe = probe
	}
	if err := t.wait(ctx, &l); err != nil {
		t.unwind(&l)
		return Lease{}, err
	}
	st := t.st.Load()
	l.s = t.pick(st, retry)
	l.s.inflight.Add(1)
	l.s.attempts.Add(1)
	t.inflight.Add(1)
	return l, nil
}

// wait takes the rate limit's token and max_in_flight's slot.
func (t *Target) wait(ctx context.Context, l *Lease) error {
	if lim := t.limiter.Load(); lim != nil {
		now := t.set.now()
		r := lim.ReserveN(now, 1)
		if d := r.DelayFrom(now); d > 0 {
			if dl, ok := ctx.Deadline(); ok && d > time.Until(dl) {
				r.CancelAt(now)
				return errRateLimited
			}
			timer := time.NewTimer(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				timer.Stop()
				r.Cancel()
				return ctxErr(ctx)
			}
		}
	}
	if sem := t.sem.Load(); sem != nil {
		select {
		case *sem <- struct{}{}:
		default:
			select {
			case *sem <- struct{}{}:
			case <-ctx.Done():
				return ctxErr(ctx)
			}
		}
		l.sem = sem
	}
	return nil
}

var errRateLimited = fanout.ErrRateLimited

// ctxErr is the error of a wait for the budget that ctx ended: rate
// limited when its deadline passed, the context's error otherwise.
func ctxErr(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return errRateLimited
	}
	return ctx.Err()
}

// unwind gives back what a failed Acquire took.
func (t *Target) unwind(l *Lease) {
	if l.probe {
		if b := t.breaker.Load(); b != nil {
			t.report(b.record(t.set.now(), Neutral, true))
		}
	}
}

// Done ends the attempt with its outcome: the server's failure count,
// ejection and the breaker learn from it; the budget is given back.
func (l *Lease) Done(o Outcome) {
	t, s := l.t, l.s
	if t == nil {
		return
	}
	s.inflight.Add(-1)
	t.inflight.Add(-1)
	if l.sem != nil {
		<-*l.sem
	}
	if o == Neutral && !l.probe {
		return
	}
	now := time.Time{}
	if b := t.breaker.Load(); b != nil {
		now = t.set.now()
		t.report(b.record(now, o, l.probe))
	}
	switch o {
	case Success:
		if s.fails.Load() != 0 {
			s.fails.Store(0)
		}
		if s.ejections.Load() != 0 && s.ejectedUntil.Load() == 0 {
			s.ejections.Store(0)
		}
	case Failure:
		n := s.fails.Add(1)
		st := t.st.Load()
		if th := st.outlier.ConsecutiveFailures; th > 0 && n >= int64(th) {
			if now.IsZero() {
				now = t.set.now()
			}
			t.eject(st, s, now)
		}
	}
}

// IsFailure says whether an attempt that got status counts as a failure
// of the server.
func (t *Target) IsFailure(status int) bool {
	fs := t.st.Load().failStatus
	if fs == nil {
		return status >= 500 && status <= 599
	}
	return slices.Contains(fs, status)
}

// eject takes s out until its ejection time has passed, unless it is the
// last available server and eject_last is off.
func (t *Target) eject(st *state, s *Server, now time.Time) {
	if s.ejectedUntil.Load() != 0 {
		return
	}
	if !st.outlier.EjectLast && !t.othersAvailable(st, s, now) {
		return
	}
	base, most := st.outlier.EjectionTime.D(), st.outlier.MaxEjectionTime.D()
	if base <= 0 {
		base = time.Second
	}
	d := base
	for range s.ejections.Load() {
		if d >= most {
			break
		}
		d *= 2
	}
	if most > 0 {
		d = min(d, most)
	}
	if !s.ejectedUntil.CompareAndSwap(0, now.Add(d).UnixNano()) {
		return
	}
	s.ejections.Add(1)
	t.ejected.Add(1)
	t.set.log.Warn("target server ejected", slog.String("target", t.name), slog.String("server", s.raw),
		slog.Int64("consecutive_failures", s.fails.Load()), slog.Duration("for", d))
	if f := t.set.opts.OnServer; f != nil && !s.unhealthy.Load() {
		f(t.name, s.raw, false)
	}
}

// othersAvailable reports whether a server other than s takes attempts.
func (t *Target) othersAvailable(st *state, s *Server, now time.Time) bool {
	for _, o := range slices.Concat(st.primary, st.backup) {
		if o != s && t.available(o, now.UnixNano()) {
			return true
		}
	}
	return false
}

// available reports whether s takes attempts at now (Unix ns).
func (t *Target) available(s *Server, now int64) bool {
	if s.unhealthy.Load() {
		return false
	}
	u := s.ejectedUntil.Load()
	return u == 0 || now >= u
}

// expire ends the ejections that are over at now.
func (t *Target) expire(st *state, now time.Time) {
	ns := now.UnixNano()
	for _, s := range slices.Concat(st.primary, st.backup) {
		u := s.ejectedUntil.Load()
		if u == 0 || ns < u || !s.ejectedUntil.CompareAndSwap(u, 0) {
			continue
		}
		t.ejected.Add(-1)
		// One more failure ejects it again, for longer.
		if th := st.outlier.ConsecutiveFailures; th > 1 {
			s.fails.Store(int64(th - 1))
		}
		t.set.log.Info("target server back after ejection", slog.String("target", t.name), slog.String("server", s.raw))
		if f := t.set.opts.OnServer; f != nil && !s.unhealthy.Load() {
			f(t.name, s.raw, true)
		}
	}
}

// pick chooses the server of an attempt: among the available primary
// servers, else the available backups, else (nothing available) the
// primary servers as if all were.
func (t *Target) pick(st *state, retry bool) *Server {
	if len(st.primary)+len(st.backup) == 1 {
		if len(st.primary) == 1 { // nothing to choose
			return st.primary[0]
		}
		return st.backup[0]
	}
	var now int64
	if t.ejected.Load() > 0 {
		tn := t.set.now()
		t.expire(st, tn)
		now = tn.UnixNano()
	}
	if s := t.choose(st.primary, st.seq, st.balance, retry, now); s != nil {
		return s
	}
	if s := t.choose(st.backup, st.bseq, st.balance, retry, now); s != nil {
		return s
	}
	if len(st.primary) == 0 { // a config built in code with backups only
		return st.backup[st.bseq[t.rr.Add(1)%uint64(len(st.bseq))]]
	}
	return st.primary[st.seq[t.rr.Add(1)%uint64(len(st.seq))]]
}

// choose picks an available server of servers, nil when none is. A retry
// avoids servers with failures when it can.
func (t *Target) choose(servers []*Server, seq []uint16, policy string, retry bool, now int64) *Server {
	if len(servers) == 0 {
		return nil
	}
	ok := func(s *Server, clean bool) bool {
		return t.available(s, now) && (!clean || s.fails.Load() == 0)
	}
	for pass := range 2 {
		clean := retry && pass == 0
		if !retry && pass == 1 {
			break
		}
		var s *Server
		switch policy {
		case config.BalanceLeastRequests:
			s = t.least(servers, clean, ok)
		case config.BalanceP2C:
			s = t.p2c(servers, clean, ok)
		default:
			i := t.rr.Add(1)
			for k := range uint64(len(seq)) {
				if c := servers[seq[(i+k)%uint64(len(seq))]]; ok(c, clean) {
					s = c
					break
				}
			}
		}
		if s != nil {
			return s
		}
	}
	return nil
}

// least returns the available server with the fewest attempts in flight
// per weight; ties go round.
func (t *Target) least(servers []*Server, clean bool, ok func(*Server, bool) bool) *Server {
	var best *Server
	var bestLoad int64
	start := t.rr.Add(1)
	for k := range uint64(len(servers)) {
		s := servers[(start+k)%uint64(len(servers))]
		if !ok(s, clean) {
			continue
		}
		load := s.inflight.Load()
		if best == nil || load*int64(best.weight) < bestLoad*int64(s.weight) {
			best, bestLoad = s, load
		}
	}
	return best
}

// p2c picks two servers at random and returns the less busy of them (per
// weight), scanning when the two are not available.
func (t *Target) p2c(servers []*Server, clean bool, ok func(*Server, bool) bool) *Server {
	n := len(servers)
	if n == 1 {
		if ok(servers[0], clean) {
			return servers[0]
		}
		return nil
	}
	i := rand.IntN(n) //nolint:gosec // balancing, not security
	j := rand.IntN(n - 1)
	if j >= i {
		j++
	}
	a, b := servers[i], servers[j]
	switch oa, ob := ok(a, clean), ok(b, clean); {
	case oa && ob:
		if b.inflight.Load()*int64(a.weight) < a.inflight.Load()*int64(b.weight) {
			return b
		}
		return a
	case oa:
		return a
	case ob:
		return b
	}
	return t.least(servers, clean, ok)
}

// Deferred reports whether the target takes no attempt now because its
// circuit is open (or half-open with its probes taken), and until when at
// least.
func (t *Target) Deferred() (time.Time, bool) {
	b := t.breaker.Load()
	if b == nil {
		return time.Time{}, false
	}
	return b.blocked(t.set.now())
}

// report logs and passes on a change of the breaker's state.
func (t *Target) report(ch *change) {
	if ch == nil {
		return
	}
	lvl := slog.LevelInfo
	if ch.to == Open {
		lvl = slog.LevelWarn
	}
	t.set.log.LogAttrs(context.Background(), lvl, "circuit "+ch.to.String(),
		slog.String("target", t.name), slog.String("from", ch.from.String()), slog.String("to", ch.to.String()))
	if f := t.set.opts.OnCircuit; f != nil {
		f(t.name, ch.from, ch.to)
	}
}

// Status returns the target's live state.
func (t *Target) Status() TargetStatus {
	st := t.st.Load()
	now := t.set.now()
	if t.ejected.Load() > 0 {
		t.expire(st, now)
	}
	out := TargetStatus{Name: t.name, Balance: st.balance, InFlight: t.inflight.Load()}
	if out.Balance == "" {
		out.Balance = config.BalanceRoundRobin
	}
	if b := t.breaker.Load(); b != nil {
		s, until := b.status(now)
		out.Circuit = s.String()
		if s == Open {
			out.CircuitOpenUntil = until
		}
	}
	for _, s := range slices.Concat(st.primary, st.backup) {
		ss := ServerStatus{
			URL: s.raw, Weight: s.weight, Backup: s.backup,
			Up:                  t.available(s, now.UnixNano()),
			Healthy:             !s.unhealthy.Load(),
			ConsecutiveFailures: s.fails.Load(),
			InFlight:            s.inflight.Load(),
			Attempts:            s.attempts.Load(),
		}
		if u := s.ejectedUntil.Load(); u != 0 {
			ss.Ejected, ss.EjectedUntil = true, time.Unix(0, u)
		}
		out.Servers = append(out.Servers, ss)
	}
	return out
}
