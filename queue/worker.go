package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/steps"
	"github.com/fanouthq/fanout/tracing"
	"github.com/fanouthq/fanout/upstream"
)

// minIdleSleep is the shortest sleep after a lease that found nothing,
// so that a store whose NextDue says "due now" while Lease finds nothing
// (clock rounding, a race with another process) cannot make a worker spin.
const minIdleSleep = 10 * time.Millisecond

// worker delivers the deliveries of one target.
type worker struct {
	d    *Dispatcher
	name string
	log  *slog.Logger

	target   atomic.Pointer[config.Target]
	leaseFor atomic.Int64 // time.Duration

	wake chan struct{} // Notify; capacity 1
	slot chan struct{} // an attempt finished; capacity 1

	inflight atomic.Int64
	attempts sync.WaitGroup // delivery goroutines

	stopOnce sync.Once
	cancel   context.CancelFunc // stops leasing; set before run starts
	ctx      context.Context

	mu sync.Mutex
	// outstanding holds the deliveries leased and not yet handed to the
	// completer; whatever is left when the worker stops is released.
	outstanding map[int64]struct{}
	rnd         *rand.Rand

	// ready holds leased deliveries waiting for a slot; only the loop
	// goroutine touches it.
	ready []fanout.LeasedDelivery
}

func newWorker(d *Dispatcher, name string, t *config.Target, leaseFor time.Duration) *worker {
	w := &worker{
		d:           d,
		name:        name,
		log:         d.log.With(slog.String(keyTarget, name)),
		wake:        make(chan struct{}, 1),
		slot:        make(chan struct{}, 1),
		outstanding: make(map[int64]struct{}),
		rnd:         rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())), //nolint:gosec // jitter, not security
	}
	w.ctx, w.cancel = context.WithCancel(d.runCtx)
	w.setPolicy(t, leaseFor)
	return w
}

// setPolicy replaces the target's policy; it applies from the next lease
// and the next attempt.
func (w *worker) setPolicy(t *config.Target, leaseFor time.Duration) {
	w.target.Store(t)
	w.leaseFor.Store(int64(leaseFor))
}

// notify wakes the worker if it sleeps.
func (w *worker) notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// stop makes the worker stop leasing and drain; run returns when done.
func (w *worker) stop() { w.stopOnce.Do(w.cancel) }

// run is the worker's goroutine: the lease loop, then the drain.
func (w *worker) run(runCtx context.Context) {
	// Attempts are not cancelled with the lease loop: they get
	// ShutdownGrace to finish.
	hard, cancelHard := context.WithCancel(context.WithoutCancel(runCtx))
	defer cancelHard()

	w.loop(hard)

	done := make(chan struct{})
	go func() {
		defer close(done)
		w.attempts.Wait()
	}()
	grace := time.NewTimer(w.d.opts.ShutdownGrace)
	select {
	case <-done:
		grace.Stop()
	case <-grace.C:
		w.log.Warn("shutdown grace over: cancelling in-flight attempts",
			slog.Int64(keyCount, w.inflight.Load()))
		cancelHard()
		<-done
	}
	w.releaseOutstanding(runCtx)
}

// loop leases and starts deliveries until the worker is stopped.
//
// The worker holds at most two windows of MaxInFlight leased deliveries:
// the ones in flight and, in ready, the ones that start as soon as a slot
// frees. It leases again once at least a window is free, so that one Lease
// transaction (one fsync) claims up to a window of deliveries rather than
// one per finished attempt. A ready delivery waits at most one round of
// attempts, so a lease longer than twice the target timeout (the config
// default) never expires before its attempt ends.
func (w *worker) loop(hard context.Context) {
	ctx := w.ctx
	var (
		errWait  time.Duration
		drained  bool      // the last lease found less than it asked for
		wakeAt   time.Time // when drained: when to look again
		sleeping = time.NewTimer(time.Hour)
	)
	defer sleeping.Stop()
	for ctx.Err() == nil {
		if until, ok := w.deferred(); ok {
			w.waitDeferred(ctx, until)
			drained = false
			continue
		}
		limit := maxInFlight(w.target.Load())
		w.startReady(ctx, hard, limit)
		held := int(w.inflight.Load()) + len(w.ready)

		if !drained && held <= limit {
			select { // a wake-up received now is served by this lease
			case <-w.wake:
			default:
			}
			n := min(2*limit-held, leaseBatch)
			leased, err := w.lease(ctx, n)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				errWait = min(max(2*errWait, 50*time.Millisecond), w.d.opts.IdlePoll)
				w.log.Error("lease deliveries", slog.Any(keyError, err), slog.Duration("retry_in", errWait))
				drained, wakeAt = true, time.Now().Add(errWait)
				continue
			}
			errWait = 0
			w.ready = append(w.ready, leased...)
			if len(leased) < n {
				drained, wakeAt = true, w.nextLook(ctx, len(leased) == 0)
			}
			continue
		}

		// Wait: for a free slot when ready deliveries wait for one or the
		// worker holds too much to lease; for the next due delivery, a
		// Notify or IdlePoll when nothing more is due.
		var slot <-chan struct{}
		if len(w.ready) > 0 || !drained {
			slot = w.slot
		}
		var timer <-chan time.Time
		if drained {
			sleeping.Reset(time.Until(wakeAt))
			timer = sleeping.C
		}
		select {
		case <-ctx.Done():
		case <-slot:
		case <-w.wake:
			drained = false
		case <-timer:
			drained = false
		}
		if timer != nil {
			sleeping.Stop()
		}
	}
}

// startReady starts ready deliveries while slots are free.
func (w *worker) startReady(ctx, hard context.Context, limit int) {
	n := 0
	for n < len(w.ready) && int(w.inflight.Load()) < limit {
		w.start(ctx, hard, &w.ready[n])
		n++
	}
	if n > 0 {
		clear(w.ready[:n]) // drop the references to the messages
		w.ready = w.ready[n:]
		if len(w.ready) == 0 {
			w.ready = nil
		}
	}
}

// lease claims up to n due deliveries. The store call is not cancelled by
// ctx: a lease taken just as the worker stops is then known, and released,
// instead of lost until it expires.
func (w *worker) lease(ctx context.Context, n int) ([]fanout.LeasedDelivery, error) {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	leased, err := w.d.store.Lease(lctx, fanout.LeaseParams{
		Target:   w.name,
		Owner:    w.d.opts.Owner,
		Limit:    n,
		Now:      time.Now(),
		LeaseFor: time.Duration(w.leaseFor.Load()),
	})
	if err != nil {
		return nil, fmt.Errorf("queue: lease %s: %w", w.name, err)
	}
	if len(leased) > 0 {
		w.mu.Lock()
		for i := range leased {
			w.outstanding[leased[i].Delivery.ID] = struct{}{}
		}
		w.mu.Unlock()
	}
	return leased, nil
}

// nextLook returns when a drained worker should look for due deliveries
// again: when the next one is due, or after IdlePoll, whichever is first.
func (w *worker) nextLook(ctx context.Context, empty bool) time.Time {
	now := time.Now()
	at := now.Add(w.d.opts.IdlePoll)
	nctx, cancel := context.WithTimeout(ctx, storeTimeout)
	next, ok, err := w.d.store.NextDue(nctx, w.name)
	cancel()
	switch {
	case err != nil:
		if ctx.Err() == nil {
			w.log.Warn("next due delivery", slog.Any(keyError, err))
		}
	case ok && next.Before(at):
		at = next
	}
	if empty && at.Before(now.Add(minIdleSleep)) {
		at = now.Add(minIdleSleep)
	}
	return at
}

// start runs one delivery on its own goroutine.
func (w *worker) start(ctx, hard context.Context, ld *fanout.LeasedDelivery) {
	w.inflight.Add(1)
	w.attempts.Add(1)
	ld2 := *ld
	go func() {
		defer func() {
			w.inflight.Add(-1)
			w.attempts.Done()
			select {
			case w.slot <- struct{}{}:
			default:
			}
		}()
		// A delivery not yet started when the worker stops is not
		// attempted: its lease is given back.
		if ctx.Err() != nil {
			return
		}
		w.deliver(hard, &ld2)
	}()
}

// deliver makes one attempt and hands its outcome to the completer.
func (w *worker) deliver(ctx context.Context, ld *fanout.LeasedDelivery) {
	t := w.target.Load()
	msg, del := &ld.Message, &ld.Delivery
	req := upstream.Request{
		Target:    t,
		Method:    msg.Method,
		Header:    msg.Header,
		Body:      msg.Body,
		MessageID: msg.ID,
		Attempt:   del.AttemptNumber(), // counts on across replays
		// The stored header already carries X-Forwarded-* and traceparent
		// (upstream.ForwardedHeader); an empty Inbound forwards them as is.
	}
	var res upstream.Result
	var err error
	if del.Step != "" {
		err = w.d.steps.Load().render(ld, &req)
	} else {
		err = w.d.bodies.Load().mapBody(msg, t, &req)
	}
	actx, span := w.startSpan(ctx, msg, &req)
	if err != nil {
		res = templateFailure(req, err) // not sent: its step or body template failed
	} else {
		res = w.d.sender.Exchange(actx, req, w.d.opts.MaxResponseBody)
	}
	if span != nil {
		tracing.End(span, res.Status, string(res.Class))
	}
	var mask *steps.Mask // the secret values of a steps route's responses
	if del.Step != "" {
		mask = w.d.steps.Load().mask(ld, &res)
	}

	if res.Class == fanout.ClassCircuitOpen {
		w.giveBack(ctx, del.ID) // not attempted: no attempt spent
		return
	}

	success := res.Err == nil && upstream.IsSuccess(res.Status)
	if !success && ctx.Err() != nil && (res.Class == fanout.ClassCanceled || errors.Is(res.Err, context.Canceled)) {
		// Cut short by shutdown: the lease stays outstanding and is given
		// back, so the attempt does not count against the budget.
		w.log.Info("attempt cancelled by shutdown",
			slog.String(keyRoute, msg.Route), slog.String(keyMessageID, msg.ID), slog.Int(keyAttempt, del.AttemptNumber()))
		w.hook(msg.Route, res, fanout.StatePending)
		return
	}

	now := time.Now()
	state, next, reason := w.decide(t, ld, res, success, now)
	errText := ""
	if res.Err != nil {
		errText = res.Err.Error()
	} else if !success {
		errText = fmt.Sprintf("status %d", res.Status)
	}
	if state == fanout.StateDead {
		// The store keeps the last attempt's error on the delivery; the
		// reason it was given up goes with it.
		errText += " (dead: " + reason + ")"
	}
	errText = mask.String(errText)
	p := fanout.CompleteParams{
		DeliveryID: del.ID,
		Owner:      w.d.opts.Owner,
		Attempt: fanout.Attempt{
			DeliveryID:     del.ID,
			MessageID:      msg.ID,
			Target:         w.name,
			Number:         del.AttemptNumber(),
			StartedAt:      res.StartedAt,
			Duration:       res.Duration,
			RequestMethod:  res.RequestMethod,
			RequestURL:     mask.String(res.RequestURL),
			RequestHeader:  mask.Header(res.RequestHeader),
			Status:         res.Status,
			ResponseHeader: mask.Header(upstream.Redact(res.Header, t.Redact)),
			// Masked whole, then cut: a cut must not leave part of a
			// secret.
			ResponseBody: truncate(mask.Bytes(res.Body), w.d.opts.MaxResponseBody),
			Class:        res.Class,
			Error:        errText,
		},
		State:         state,
		NextAttemptAt: next,
		// A failed probe spends none of the budget (see decide).
		Uncounted: res.Probe && state == fanout.StateRetrying,
		Now:       now,
	}
	if del.Step != "" {
		// The steps after this one see its response whole, headers
		// unredacted and secrets unmasked: they may carry what they need
		// (a token, say).
		p.Step = &fanout.StepCompletion{MessageID: msg.ID}
		if state == fanout.StateSucceeded {
			p.Step.Response = fanout.StepResponse{Status: res.Status, Header: res.Header, Body: res.Body}
		}
	}
	if p.Attempt.StartedAt.IsZero() {
		p.Attempt.StartedAt = now
	}

	if !success {
		attrs := []slog.Attr{
			slog.String(keyRoute, msg.Route),
			slog.String(keyMessageID, msg.ID),
			slog.Int64(keyDelivery, del.ID),
			slog.Int(keyAttempt, del.AttemptNumber()),
			slog.String(keyClass, string(res.Class)),
			slog.Int(keyStatus, res.Status),
			slog.String(keyState, string(state)),
			slog.String(keyError, errText),
		}
		if state == fanout.StateRetrying {
			attrs = append(attrs, slog.Time("next_attempt_at", next))
		}
		if res.Probe {
			attrs = append(attrs, slog.Bool("circuit_probe", true))
		}
		w.log.LogAttrs(context.Background(), slog.LevelWarn, "delivery attempt failed", attrs...)
	}

	w.mu.Lock()
	delete(w.outstanding, del.ID)
	w.mu.Unlock()
	c := completion{params: p, target: w.name}
	if del.Step != "" && state == fanout.StateSucceeded {
		c.wake = w.d.steps.Load().nextTargets(msg.Route, del.Step)
	}
	w.d.comp.add(c)
	w.hook(msg.Route, res, state)
}

// startSpan starts the client span of an attempt when tracing: the child
// of the traceparent kept with the message, and the parent of the one the
// target gets.
func (w *worker) startSpan(ctx context.Context, msg *fanout.Message, req *upstream.Request) (context.Context, trace.Span) {
	tr := w.d.opts.Tracer
	if tr == nil {
		return ctx, nil
	}
	actx, span := tracing.StartAttempt(tracing.Extract(ctx, msg.Header), tr, msg.Route, w.name, req.Attempt)
	span.SetAttributes(tracing.AttrMessageID.String(msg.ID))
	if tp := tracing.Traceparent(actx); tp != "" {
		req.Inbound.Traceparent = tp
	}
	return actx, span
}

func (w *worker) hook(route string, res upstream.Result, state fanout.DeliveryState) {
	if f := w.d.opts.Hooks.OnAttempt; f != nil {
		f(route, w.name, res, state)
	}
}

// decide returns the delivery's new state after an attempt, when a
// retrying delivery is due again, and why a dead one was given up.
func (w *worker) decide(t *config.Target, ld *fanout.LeasedDelivery, res upstream.Result, success bool, now time.Time) (fanout.DeliveryState, time.Time, string) {
	if success {
		return fanout.StateSucceeded, time.Time{}, ""
	}
	if !res.Retryable {
		if res.Class == fanout.ClassStatus || (res.Err == nil && res.Status != 0) {
			return fanout.StateDead, time.Time{}, fmt.Sprintf("non-retryable status %d", res.Status)
		}
		return fanout.StateDead, time.Time{}, fmt.Sprintf("non-retryable error (%s)", res.Class)
	}
	p := retryPolicy(t)
	deadline := ld.Message.ReceivedAt.Add(p.MaxAge.D())
	if res.Probe {
		// A failed probe of the half-open circuit: the target is still
		// down. The delivery spends no attempt (deliver completes it
		// Uncounted) and is due again at once, which is when the circuit
		// next lets an attempt through. max_age still applies.
		if !now.Before(deadline) {
			return fanout.StateDead, time.Time{}, "max age exceeded"
		}
		return fanout.StateRetrying, now, ""
	}
	if ld.Delivery.Attempts >= p.MaxAttempts {
		return fanout.StateDead, time.Time{}, "max attempts reached"
	}
	if !now.Before(deadline) {
		return fanout.StateDead, time.Time{}, "max age exceeded"
	}
	w.mu.Lock()
	wait := upstream.Backoff(p, ld.Delivery.Attempts, w.rnd)
	w.mu.Unlock()
	wait = max(wait, res.RetryAfter)
	next := now.Add(wait)
	if next.After(deadline) {
		// The next attempt would fall past max age: none is left.
		return fanout.StateDead, time.Time{}, "max age exceeded"
	}
	return fanout.StateRetrying, next, ""
}

// deferred reports whether the target takes no attempts for now (its
// circuit is open) and until when; its ready deliveries are given back
// then, so that a long outage does not hold their leases.
func (w *worker) deferred() (time.Time, bool) {
	df, ok := w.d.sender.(Deferrer)
	if !ok {
		return time.Time{}, false
	}
	until, ok := df.Deferred(w.name)
	if ok && len(w.ready) > 0 {
		for i := range w.ready {
			w.giveBack(w.ctx, w.ready[i].Delivery.ID)
		}
		w.ready = nil
	}
	return until, ok
}

// waitDeferred sleeps until until, a Notify (the circuit half-opened or
// closed), a finished attempt (a probe) or the worker's end.
func (w *worker) waitDeferred(ctx context.Context, until time.Time) {
	t := time.NewTimer(max(time.Until(until), minIdleSleep))
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-w.wake:
	case <-w.slot:
	case <-t.C:
	}
}

// giveBack releases the lease of a delivery that was not attempted: it is
// due again with its attempt count as before the lease. A failed release
// leaves it outstanding (released when the worker stops, or when the
// lease expires).
func (w *worker) giveBack(ctx context.Context, id int64) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	if _, err := w.d.store.ReleaseLeases(rctx, fanout.ReleaseParams{Owner: w.d.opts.Owner, IDs: []int64{id}, Now: time.Now()}); err != nil {
		w.log.Warn("give back deferred delivery", slog.Int64(keyDelivery, id), slog.Any(keyError, err))
		return
	}
	w.mu.Lock()
	delete(w.outstanding, id)
	w.mu.Unlock()
}

// releaseOutstanding gives back the leases of deliveries that were never
// attempted or whose attempt was cancelled.
func (w *worker) releaseOutstanding(runCtx context.Context) {
	w.mu.Lock()
	ids := make([]int64, 0, len(w.outstanding))
	for id := range w.outstanding {
		ids = append(ids, id)
	}
	clear(w.outstanding)
	w.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(runCtx), storeTimeout)
	defer cancel()
	n, err := w.d.store.ReleaseLeases(ctx, fanout.ReleaseParams{Owner: w.d.opts.Owner, IDs: ids, Now: time.Now()})
	if err != nil {
		w.log.Error("release leases", slog.Int(keyCount, len(ids)), slog.Any(keyError, err))
		return
	}
	w.log.Info("released leases", slog.Int(keyCount, n))
}

// maxInFlight is the target's concurrency limit, defaulted.
func maxInFlight(t *config.Target) int {
	if t == nil || t.MaxInFlight <= 0 {
		return defaultMaxInFlight
	}
	return t.MaxInFlight
}

// retryPolicy is the target's retry policy with zero fields defaulted.
func retryPolicy(t *config.Target) config.Retry {
	p := t.Retry
	if p.Initial <= 0 {
		p.Initial = config.Duration(defaultInitial)
	}
	if p.Max <= 0 {
		p.Max = config.Duration(defaultMaxBackoff)
	}
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = defaultMaxAttempts
	}
	if p.MaxAge <= 0 {
		p.MaxAge = config.Duration(defaultMaxAge)
	}
	return p
}

func truncate(b []byte, n int64) []byte {
	if int64(len(b)) > n {
		return b[:n]
	}
	return b
}
