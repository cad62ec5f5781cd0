package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"time"
)

// checkpointEvery is the shortest time between two checkpoints. At most a
// few checkpoints a second cost a few fsyncs of the database file, while
// the WAL holds no more than that long of writes.
const checkpointEvery = 250 * time.Millisecond

// checkpointer copies the WAL into the database file from its own
// connection and goroutine, so that the writer's commits do not pay for it
// (SQLite's automatic checkpoint runs inside the commit that crosses the
// threshold, which shows as a latency spike on Accept). A PASSIVE
// checkpoint never blocks the writer or the readers.
type checkpointer struct {
	db     *sql.DB
	logger *slog.Logger
	dirty  chan struct{} // a commit happened
	cancel context.CancelFunc
	done   chan struct{}
}

// Keys of the checkpointer's log attributes.
const (
	logKeyError = "error"
	logKeyBusy  = "busy"
	logKeyLog   = "wal_frames"
	logKeyDone  = "checkpointed_frames"
)

// startCheckpointer starts the goroutine; stop ends it and closes db. The
// goroutine keeps the values of ctx but not its cancellation: it lives as
// long as the Store, not as long as the call to Open.
func startCheckpointer(ctx context.Context, db *sql.DB, logger *slog.Logger) *checkpointer {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c := &checkpointer{
		db:     db,
		logger: logger,
		dirty:  make(chan struct{}, 1),
		cancel: cancel,
		done:   make(chan struct{}),
	}
	go c.run(ctx)
	return c
}

// wake tells the checkpointer that the WAL grew. It never blocks.
func (c *checkpointer) wake() {
	select {
	case c.dirty <- struct{}{}:
	default:
	}
}

// run checkpoints after commits, at most once per checkpointEvery.
func (c *checkpointer) run(ctx context.Context) {
	defer close(c.done)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.dirty:
		}
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		c.checkpoint(ctx)
		timer.Reset(checkpointEvery)
	}
}

// checkpoint runs one PASSIVE checkpoint; a failure is logged and the next
// commit tries again (the writer's own automatic checkpoint is the
// backstop).
func (c *checkpointer) checkpoint(ctx context.Context) {
	var busy, log, done int
	err := c.db.QueryRowContext(ctx, qCheckpoint).Scan(&busy, &log, &done)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			c.logger.LogAttrs(ctx, slog.LevelWarn, "sqlite checkpoint failed", slog.String(logKeyError, err.Error()))
		}
		return
	}
	c.logger.LogAttrs(ctx, slog.LevelDebug, "sqlite checkpoint",
		slog.Int(logKeyBusy, busy), slog.Int(logKeyLog, log), slog.Int(logKeyDone, done))
}

// stop ends the goroutine and closes its connection.
func (c *checkpointer) stop() error {
	c.cancel()
	<-c.done
	return c.db.Close()
}
