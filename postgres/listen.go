package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fanouthq/fanout"
)

// channelBase is the LISTEN/NOTIFY channel on which Accept, Replay,
// Backfill and ReleaseLeases announce, on commit, each target that got
// deliveries to make; the payload is the target's name.
const channelBase = "fanout_deliveries"

// maxChannelLen is the longest channel name PostgreSQL keeps
// (NAMEDATALEN-1 bytes).
const maxChannelLen = 63

// channelName is the channel of the stores using schema. Channels are per
// database, not per schema, so a schema gets a channel of its own:
// "fanout_deliveries:<schema>", or a hash of the schema when that would be
// too long.
func channelName(schema string) string {
	if schema == "" {
		return channelBase
	}
	if name := channelBase + ":" + schema; len(name) <= maxChannelLen {
		return name
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(schema)) // a hash.Hash never fails
	return fmt.Sprintf("%s:%016x", channelBase, h.Sum64())
}

// Delays between Listen's attempts to get its connection back.
const (
	listenMinBackoff = 100 * time.Millisecond
	listenMaxBackoff = 10 * time.Second
)

// Listen calls fn with the name of a target each time a transaction that
// gave the target work commits, in this process or any other on the same
// database and schema: Accept, Replay, Backfill and ReleaseLeases notify.
// Notifications are hints, never the only way work is found: one may
// arrive for work another process already took, and a target may get one
// call for several commits.
//
// Listen holds one connection of its own, outside the pool, for as long as
// it runs. When the connection is lost it reconnects with exponential
// backoff (logged at warn); after every (re)connection it also calls fn
// once for each target that has waiting deliveries, since notifications
// sent while it was not listening are lost. fn runs on Listen's goroutine
// and should not block: hand the target over (a non-blocking send, a
// dispatcher's Notify) and return.
//
// Listen returns nil when ctx ends, and an error wrapping fanout.ErrClosed
// when the store is closed.
func (s *Store) Listen(ctx context.Context, fn func(target string)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.life, cancel)() //nolint:contextcheck // Close ends Listen too
	backoff := listenMinBackoff
	for {
		listening, err := s.listenOnce(ctx, fn)
		if s.closed() {
			return fmt.Errorf("listen: %w", fanout.ErrClosed)
		}
		if ctx.Err() != nil {
			return nil
		}
		if listening {
			backoff = listenMinBackoff // it worked for a while: start over
		}
		// Jitter keeps a fleet of nodes from reconnecting in step.
		wait := rand.N(backoff) + backoff/2 //nolint:gosec // jitter needs no secrecy
		s.logger.LogAttrs(ctx, slog.LevelWarn, "postgres listen: connection failed",
			slog.String(logKeyError, err.Error()), slog.Duration(logKeyRetryIn, wait))
		select {
		case <-ctx.Done():
			if s.closed() {
				return fmt.Errorf("listen: %w", fanout.ErrClosed)
			}
			return nil
		case <-time.After(wait):
		}
		backoff = min(2*backoff, listenMaxBackoff)
	}
}

// listenOnce connects, listens and calls fn until the connection fails or
// ctx ends. listening reports whether it got as far as LISTEN.
func (s *Store) listenOnce(ctx context.Context, fn func(target string)) (listening bool, err error) {
	cfg := s.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = "fanout listen"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer func() {
		// ctx may be over; the close gets a moment of its own.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = conn.Close(cctx) // the connection is done with either way
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return false, fmt.Errorf("listen: %w", err)
	}
	// Catch up on what was notified while nobody listened. The query runs
	// on the pool (the listening connection only listens), and its failure
	// (a store not migrated yet) costs the catch-up, not the connection.
	rows, err := s.pool.Query(ctx, qTargetsWithWork)
	if err == nil {
		var targets []string
		if targets, err = pgx.CollectRows(rows, pgx.RowTo[string]); err == nil {
			for _, t := range targets {
				fn(t)
			}
		}
	}
	if err != nil && ctx.Err() == nil {
		s.logger.LogAttrs(ctx, slog.LevelWarn, "postgres listen: cannot list the targets with work",
			slog.String(logKeyError, err.Error()))
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return true, ctx.Err()
			}
			return true, fmt.Errorf("wait for notification: %w", err)
		}
		fn(n.Payload)
	}
}
