package queue

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/fanouthq/fanout"
)

// Purger defaults.
const (
	// DefaultPurgeInterval is the default PurgerOptions.Interval.
	DefaultPurgeInterval = time.Minute
	// DefaultRetention is used when PurgerOptions.Retention is nil or
	// returns a non-positive duration.
	DefaultRetention = 7 * 24 * time.Hour
	// DefaultDedupWindow is used when PurgerOptions.DedupWindow is nil or
	// returns a non-positive duration.
	DefaultDedupWindow = 24 * time.Hour
)

// PurgerOptions configures a Purger. The durations are funcs so that a
// config reload applies without restarting the Purger.
type PurgerOptions struct {
	// Logger receives the purger's log lines. Nil discards them.
	Logger *slog.Logger
	// Interval is the time between two purges. Default 1m.
	Interval time.Duration
	// Retention returns how long succeeded messages are kept. Nil or a
	// non-positive value means 7 days.
	Retention func() time.Duration
	// DedupWindow returns how long idempotency keys are remembered. Nil or
	// a non-positive value means 24 hours.
	DedupWindow func() time.Duration
}

// Purger applies retention: it periodically deletes messages whose
// deliveries all succeeded longer than Retention ago and forgets
// idempotency keys older than DedupWindow. Dead letters are kept.
type Purger struct {
	store fanout.Store
	opts  PurgerOptions
	log   *slog.Logger
}

// NewPurger returns a Purger of store. Start it with Run.
func NewPurger(store fanout.Store, opts PurgerOptions) *Purger {
	if opts.Interval <= 0 {
		opts.Interval = DefaultPurgeInterval
	}
	return &Purger{store: store, opts: opts, log: loggerOrDiscard(opts.Logger)}
}

// Run purges right away, then every Interval, until ctx is cancelled; it
// then returns nil. A failed purge is logged and tried again next time.
func (p *Purger) Run(ctx context.Context) error {
	t := time.NewTicker(p.opts.Interval)
	defer t.Stop()
	for {
		if _, err := p.PurgeOnce(ctx); err != nil && ctx.Err() == nil {
			p.log.Error("purge", slog.Any(keyError, err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// PurgeOnce runs one purge now and returns how many messages it deleted.
func (p *Purger) PurgeOnce(ctx context.Context) (int, error) {
	now := time.Now()
	retention := durationOr(p.opts.Retention, DefaultRetention)
	dedup := durationOr(p.opts.DedupWindow, DefaultDedupWindow)
	ctx, cancel := context.WithTimeout(ctx, max(p.opts.Interval, storeTimeout))
	defer cancel()
	n, err := p.store.Purge(ctx, fanout.PurgeParams{
		SucceededBefore: now.Add(-retention),
		KeysBefore:      now.Add(-dedup),
	})
	if err != nil {
		return 0, fmt.Errorf("queue: purge: %w", err)
	}
	if n > 0 {
		p.log.Info("purged succeeded messages", slog.Int(keyCount, n))
	}
	return n, nil
}

func durationOr(f func() time.Duration, def time.Duration) time.Duration {
	if f == nil {
		return def
	}
	if d := f(); d > 0 {
		return d
	}
	return def
}
