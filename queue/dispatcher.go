package queue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/upstream"
)

// Dispatcher defaults.
const (
	// DefaultIdlePoll is the default DispatcherOptions.IdlePoll.
	DefaultIdlePoll = 2 * time.Second
	// DefaultShutdownGrace is the default DispatcherOptions.ShutdownGrace.
	DefaultShutdownGrace = 10 * time.Second
	// DefaultMaxResponseBody is the default DispatcherOptions.MaxResponseBody.
	DefaultMaxResponseBody = 1 << 10
	// DefaultLeaseFor is the lease duration used when neither the config's
	// Delivery.LeaseTimeout nor DispatcherOptions.LeaseFor is set.
	DefaultLeaseFor = time.Minute
	// DefaultHeartbeat is the default DispatcherOptions.Heartbeat.
	DefaultHeartbeat = time.Second
	// DefaultDeadAfter is the default DispatcherOptions.DeadAfter.
	DefaultDeadAfter = 5 * time.Second

	// Defaults applied to a target whose policy fields are zero (a config
	// built in Go rather than parsed); they match the config package's.
	defaultMaxInFlight = 64
	defaultMaxAttempts = 10
	defaultMaxAge      = 24 * time.Hour
	defaultInitial     = time.Second
	defaultMaxBackoff  = time.Hour

	// leaseBatch caps the deliveries claimed by one Store.Lease call.
	leaseBatch = 256
	// completeBatch caps the outcomes recorded by one Store.Complete call.
	// One call is one write transaction, which an accept arriving meanwhile
	// waits for: at ~15 CPU-µs per outcome with the SQLite store, 256 keeps
	// that wait to a few milliseconds, and larger batches save no more.
	completeBatch = 256
	// storeTimeout bounds one store call made by the dispatcher.
	storeTimeout = 30 * time.Second
)

// Sender sends one attempt of a delivery to its target. *upstream.Client
// implements it.
type Sender interface {
	Exchange(ctx context.Context, req upstream.Request, maxBody int64) upstream.Result
}

var _ Sender = (*upstream.Client)(nil)

// Deferrer is implemented by a Sender that knows when a target takes no
// attempts for a while (its circuit breaker is open). A worker whose
// sender is one leases nothing for such a target until then, and gives
// back, uncounted, the leases of deliveries whose attempt was refused
// (fanout.ClassCircuitOpen): a delivery spends no attempt while the
// circuit is open (docs/operations.md).
type Deferrer interface {
	// Deferred reports whether target takes no attempt now, and until
	// when at least.
	Deferred(target string) (until time.Time, ok bool)
}

var _ Deferrer = (*upstream.Client)(nil)

// Hooks are optional callbacks for metrics. A nil func is not called.
type Hooks struct {
	// OnAttempt is called after every attempt with the delivery's new
	// state: succeeded, retrying or dead, or pending when the attempt was
	// cut short by shutdown and its lease given back. It runs on the
	// delivery's goroutine and must not block.
	OnAttempt func(route, target string, res upstream.Result, state fanout.DeliveryState)
}

// DispatcherOptions configures a Dispatcher. Zero fields take the
// documented defaults.
type DispatcherOptions struct {
	// Logger receives the dispatcher's log lines, one warning per failed
	// attempt. Nil discards them.
	Logger *slog.Logger
	// Owner names this process in the leases it takes; it must be unique
	// among the processes sharing a store. Default hostname-pid-random.
	Owner string
	// LeaseFor is how long a leased delivery belongs to this process when
	// the config's Delivery.LeaseTimeout is zero. Default 1m. Either must
	// be at least twice the longest target timeout (the config's default
	// ensures it): a leased delivery may wait for one round of attempts
	// before its own starts, and a lease that expires during an attempt
	// lets another worker send the same delivery again.
	LeaseFor time.Duration
	// IdlePoll is the longest an idle worker sleeps before checking the
	// store again; it is a safety net (new local work wakes workers through
	// Notify, due retries through the store's NextDue) and picks up work
	// written by other processes. Default 2s.
	IdlePoll time.Duration
	// ShutdownGrace is how long in-flight attempts may run once Run's
	// context is cancelled (or their target removed) before they are
	// cancelled and their leases given back. Default 10s.
	ShutdownGrace time.Duration
	// MaxResponseBody is how much of a target's response body an attempt
	// record keeps. Default 1KiB.
	MaxResponseBody int64
	// Node names this process across its restarts (unlike Owner, which
	// is new at every start). Run's first Store.Reclaim takes back the
	// leases of the node's earlier runs at once (PostgreSQL; SQLite takes
	// back every lease of its file anyway). It must be unique among the
	// processes sharing a store; empty: none (a dead run's leases are then
	// taken back after DeadAfter).
	Node string
	// Heartbeat is how often Run calls Store.Reclaim, from start until
	// its last outcome is recorded at shutdown: the heartbeat that keeps
	// other processes off this one's leases, and the look for the leases
	// of processes that stopped. Default 1s.
	Heartbeat time.Duration
	// DeadAfter is how long a process sharing the store may miss its
	// heartbeats before this one takes back its leases; several
	// Heartbeats. Default 5s.
	DeadAfter time.Duration
	// Hooks are optional metrics callbacks.
	Hooks Hooks
	// Tracer starts a client span per attempt, as the gateway does for
	// its own (docs/observability.md): the child of the traceparent kept
	// with the message, so that a delivery joins the trace of the request
	// that was accepted, and the target gets the attempt span as its
	// parent. Nil: no spans, and the kept traceparent is sent as is.
	Tracer trace.Tracer
}

// Dispatcher delivers stored messages to their targets: one worker per
// configured target leases due deliveries, sends them through a Sender and
// records each outcome. Its methods are safe for concurrent use.
type Dispatcher struct {
	store  fanout.Store
	sender Sender
	opts   DispatcherOptions
	log    *slog.Logger

	mu      sync.RWMutex
	cfg     *config.Config
	workers map[string]*worker
	state   runState
	runCtx  context.Context
	comp    *completer
	wg      sync.WaitGroup // worker goroutines
	// bodies are the body templates of cfg's route targets (bodymap.go).
	bodies atomic.Pointer[bodyMap]
	// steps are the compiled async steps routes of cfg (steps.go).
	steps atomic.Pointer[stepRoutes]
}

type runState int

const (
	stateIdle runState = iota
	stateStarting
	stateRunning
	stateStopped
)

// NewDispatcher returns a Dispatcher that leases from store and sends with
// sender. Give it a config with SetConfig and start it with Run.
func NewDispatcher(store fanout.Store, sender Sender, opts DispatcherOptions) *Dispatcher {
	if opts.Owner == "" {
		opts.Owner = defaultOwner()
	}
	if opts.LeaseFor <= 0 {
		opts.LeaseFor = DefaultLeaseFor
	}
	if opts.IdlePoll <= 0 {
		opts.IdlePoll = DefaultIdlePoll
	}
	if opts.ShutdownGrace <= 0 {
		opts.ShutdownGrace = DefaultShutdownGrace
	}
	if opts.MaxResponseBody <= 0 {
		opts.MaxResponseBody = DefaultMaxResponseBody
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = DefaultHeartbeat
	}
	if opts.DeadAfter <= 0 {
		opts.DeadAfter = DefaultDeadAfter
	}
	return &Dispatcher{
		store:   store,
		sender:  sender,
		opts:    opts,
		log:     loggerOrDiscard(opts.Logger).With(slog.String(keyOwner, opts.Owner)),
		workers: make(map[string]*worker),
	}
}

// defaultOwner returns hostname-pid-random.
func defaultOwner() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "fanout"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// Owner returns the name this dispatcher leases deliveries under.
func (d *Dispatcher) Owner() string { return d.opts.Owner }

// SetConfig makes cfg the config in force. While Run is running it starts a
// worker for each new target, stops the workers of removed targets (their
// in-flight attempts finish as at shutdown) and gives the others the new
// target policies, which apply from their next lease. Before Run it only
// records cfg; after Run has returned it has no effect.
func (d *Dispatcher) SetConfig(cfg *config.Config) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cfg = cfg
	bodies := compileBodies(cfg)
	d.bodies.Store(&bodies)
	steps := compileSteps(cfg)
	d.steps.Store(&steps)
	if d.state == stateRunning {
		d.applyLocked()
	}
}

// Notify wakes the worker of target if it is sleeping; it never blocks.
// Call it when new deliveries of target became due (the Committer's
// OnCommit, a replay, a backfill). Unknown targets are ignored.
func (d *Dispatcher) Notify(target string) {
	d.mu.RLock()
	w := d.workers[target]
	d.mu.RUnlock()
	if w != nil {
		w.notify()
	}
}

// Run takes back the leases of processes that stopped without giving
// them back (Store.Reclaim), starts the workers, the completer and the
// heartbeat, and blocks until ctx is cancelled. It then stops leasing,
// lets in-flight attempts finish for up to ShutdownGrace (and cancels the
// rest), records every outcome, stops the heartbeat, gives back the
// leases it did not use, and returns nil once every goroutine it started
// has stopped. Run may be called once.
func (d *Dispatcher) Run(ctx context.Context) error {
	d.mu.Lock()
	if d.state != stateIdle {
		d.mu.Unlock()
		return errors.New("queue: dispatcher: Run called twice")
	}
	d.state = stateStarting
	d.mu.Unlock()
	// Before any worker leases: what a dead run held is due again, and the
	// workers' first leases find it. SetConfig meanwhile only records its
	// config, and Notify finds no worker, as before Run.
	var hb heartbeat
	hb.beat(ctx, d, storeTimeout, false)
	hbCtx, hbStop := context.WithCancel(context.WithoutCancel(ctx))
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		hb.run(hbCtx, d)
	}()

	d.mu.Lock()
	d.state = stateRunning
	d.runCtx = ctx
	d.comp = newCompleter(d.store, d.log, d.Notify)
	compDone := make(chan struct{})
	go func() {
		defer close(compDone)
		d.comp.run(context.WithoutCancel(ctx))
	}()
	d.applyLocked()
	d.mu.Unlock()

	<-ctx.Done()

	d.mu.Lock()
	d.state = stateStopped
	for name, w := range d.workers {
		w.stop()
		delete(d.workers, name)
	}
	d.mu.Unlock()
	d.wg.Wait()
	d.comp.close()
	<-compDone
	// The heartbeat lasts as long as this process may still send or
	// record anything: during the shutdown grace the leases are still
	// ours.
	hbStop()
	<-hbDone

	// Safety net: nothing of this process runs any more, so whatever is
	// still leased by Owner (an outcome the completer could not record)
	// is given back rather than left until its lease expires.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	n, err := d.store.ReleaseLeases(rctx, fanout.ReleaseParams{Owner: d.opts.Owner, Now: time.Now()})
	switch {
	case err != nil:
		d.log.Error("release leases at shutdown", slog.Any(keyError, err))
	case n > 0:
		d.log.Warn("released leases left at shutdown", slog.Int(keyCount, n))
	}
	return nil
}

// heartbeat calls Store.Reclaim for Run; it belongs to Run's goroutine
// until Run hands it to the heartbeat goroutine.
type heartbeat struct {
	failing bool // the last call failed: log the next failure at debug only
}

// run beats every Heartbeat until ctx ends.
func (h *heartbeat) run(ctx context.Context, d *Dispatcher) {
	tick := time.NewTicker(d.opts.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			h.beat(ctx, d, d.opts.DeadAfter, true) // a heartbeat later than DeadAfter is too late anyway
		}
	}
}

// beat makes one Store.Reclaim call and, with wake, wakes every worker
// when it took deliveries back.
func (h *heartbeat) beat(ctx context.Context, d *Dispatcher, timeout time.Duration, wake bool) {
	rctx, cancel := context.WithTimeout(ctx, timeout)
	n, err := d.store.Reclaim(rctx, fanout.ReclaimParams{
		Owner:     d.opts.Owner,
		Node:      d.opts.Node,
		DeadAfter: d.opts.DeadAfter,
	})
	cancel()
	switch {
	case err != nil:
		if ctx.Err() != nil {
			return
		}
		level := slog.LevelWarn
		if h.failing {
			level = slog.LevelDebug
		}
		h.failing = true
		d.log.Log(ctx, level, "heartbeat: reclaim leases failed; retrying every heartbeat", slog.Any(keyError, err))
		return
	case h.failing:
		h.failing = false
		d.log.Info("heartbeat: store reachable again")
	}
	if n > 0 {
		d.log.Info("took back the leases of stopped processes", slog.Int(keyCount, n))
		if !wake {
			return
		}
		d.mu.RLock()
		for _, w := range d.workers {
			w.notify()
		}
		d.mu.RUnlock()
	}
}

// applyLocked reconciles the workers with d.cfg. d.mu must be held and the
// dispatcher running.
func (d *Dispatcher) applyLocked() {
	cfg := d.cfg
	var targets map[string]*config.Target
	var leaseFor time.Duration
	if cfg != nil {
		targets = cfg.Targets
		leaseFor = cfg.Delivery.LeaseTimeout.D()
	}
	if leaseFor <= 0 {
		leaseFor = d.opts.LeaseFor
	}
	for name, w := range d.workers {
		if t, ok := targets[name]; !ok || t == nil {
			w.stop()
			delete(d.workers, name)
		}
	}
	for name, t := range targets {
		if t == nil {
			continue
		}
		if w, ok := d.workers[name]; ok {
			w.setPolicy(t, leaseFor)
			w.notify()
			continue
		}
		w := newWorker(d, name, t, leaseFor)
		d.workers[name] = w
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			w.run(d.runCtx)
		}()
	}
}
