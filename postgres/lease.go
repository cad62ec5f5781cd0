package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fanouthq/fanout"
)

// defaultLeaseFor is the lease of a LeaseParams with no LeaseFor.
const defaultLeaseFor = 30 * time.Second

// Lease claims up to Limit due deliveries of the target in one statement:
// it picks them, oldest due first, with FOR UPDATE SKIP LOCKED (so that
// workers of any number of processes leasing the same target at once never
// wait on each other nor get the same delivery), marks them delivering and
// returns them joined with their messages. A Limit of zero or less leases
// nothing; a zero Now is the current time; a zero LeaseFor is 30s.
//
// The lease commits without waiting for its WAL flush
// (synchronous_commit=off for this transaction only), which halves the
// flushes of a lease-and-complete cycle. Only a crash of the database
// server can lose a lease that way, and only one whose delivery has not
// completed yet (Complete waits for its flush, which covers all earlier
// WAL): the delivery is then due again and delivered again, a duplicate
// that at-least-once delivery allows, as when a worker dies.
func (s *Store) Lease(ctx context.Context, p fanout.LeaseParams) ([]fanout.LeasedDelivery, error) {
	if p.Limit <= 0 {
		return nil, nil
	}
	now := stored(orNow(p.Now))
	leaseFor := p.LeaseFor
	if leaseFor <= 0 {
		leaseFor = defaultLeaseFor
	}
	b := &pgx.Batch{}
	b.Queue(qLeaseSettings)
	b.Queue(leaseSQL(p.Limit), p.Target, now, p.Owner, now.Add(leaseFor))
	br := s.pool.SendBatch(ctx, b)
	leased, err := readLeased(br)
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, s.dbErr("lease", err)
	}
	if err := s.attachStepResponses(ctx, leased); err != nil {
		return nil, s.dbErr("lease: step responses", err)
	}
	return leased, nil
}

// readLeased reads the results of the Lease batch.
func readLeased(br pgx.BatchResults) ([]fanout.LeasedDelivery, error) {
	if _, err := br.Exec(); err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanLeased)
}

// Complete records the attempts and moves the deliveries still leased by
// their Owner to their new state, both statements pipelined in one
// round trip and one transaction. An attempt with no Number takes the
// delivery's attempt count; its DeliveryID, MessageID and Target always
// come from the delivery. An invalid State fails the whole call before
// anything is written.
func (s *Store) Complete(ctx context.Context, params []fanout.CompleteParams) error {
	if len(params) == 0 {
		return nil
	}
	n := len(params)
	// Attempts.
	aDelivery, aNumber, aStarted, aDuration := make([]int64, n), make([]int32, n), make([]time.Time, n), make([]int64, n)
	aMethod, aURL, aReqHeaders, aStatus := make([]string, n), make([]string, n), make([][]byte, n), make([]int32, n)
	aRespHeaders, aBody, aClass, aError := make([][]byte, n), make([][]byte, n), make([]string, n), make([]string, n)
	// Deliveries.
	dID, dOwner, dState, dNext := make([]int64, n), make([]string, n), make([]string, n), make([]*time.Time, n)
	dStatus, dError, dClass, dNow := make([]int32, n), make([]string, n), make([]string, n), make([]time.Time, n)
	dUncounted := make([]int32, n)
	now := time.Now() // for params with no Now
	for i := range params {
		p, a := &params[i], &params[i].Attempt
		switch p.State {
		case fanout.StateSucceeded, fanout.StateDead:
		case fanout.StateRetrying:
			dNext[i] = optTime(orNow(p.NextAttemptAt))
		default:
			return fmt.Errorf("complete delivery %d: state %q is not succeeded, retrying or dead", p.DeliveryID, p.State)
		}
		var err error
		if aReqHeaders[i], err = encodeHeader(a.RequestHeader); err != nil {
			return fmt.Errorf("complete delivery %d: request %w", p.DeliveryID, err)
		}
		if aRespHeaders[i], err = encodeHeader(a.ResponseHeader); err != nil {
			return fmt.Errorf("complete delivery %d: response %w", p.DeliveryID, err)
		}
		aDelivery[i], aNumber[i], aStarted[i], aDuration[i] = p.DeliveryID, int32(a.Number), stored(a.StartedAt), a.Duration.Microseconds() //nolint:gosec // attempt numbers are small
		aMethod[i], aURL[i], aStatus[i] = text(a.RequestMethod), text(a.RequestURL), int32(a.Status)                                        //nolint:gosec // HTTP statuses are small
		aBody[i], aClass[i], aError[i] = a.ResponseBody, string(a.Class), text(a.Error)
		at := p.Now
		if at.IsZero() {
			at = now
		}
		dID[i], dOwner[i], dState[i] = p.DeliveryID, p.Owner, string(p.State)
		dStatus[i], dError[i], dClass[i], dNow[i] = int32(a.Status), aError[i], string(a.Class), stored(at) //nolint:gosec // HTTP statuses are small
		if p.Uncounted {
			dUncounted[i] = 1
		}
	}
	if slices.ContainsFunc(params, func(p fanout.CompleteParams) bool { return p.Step != nil }) {
		// Steps settle in the same transaction as their completion.
		return s.inTx(ctx, "complete", func(tx pgx.Tx) ([]string, error) {
			if err := lockSteps(ctx, tx, params); err != nil {
				return nil, err
			}
			if _, err := tx.Exec(ctx, qInsertAttempts, aDelivery, aNumber, aStarted, aDuration,
				aMethod, aURL, aReqHeaders, aStatus, aRespHeaders, aBody, aClass, aError); err != nil {
				return nil, err
			}
			if _, err := tx.Exec(ctx, qComplete, dID, dOwner, dState, dNext, dStatus, dError, dClass, dNow, dUncounted); err != nil {
				return nil, err
			}
			return s.completeSteps(ctx, tx, params, now)
		})
	}
	return retry(ctx, func() error {
		var b opBatch // a batch is sent once
		b.queue("complete: insert attempts", qInsertAttempts, aDelivery, aNumber, aStarted, aDuration,
			aMethod, aURL, aReqHeaders, aStatus, aRespHeaders, aBody, aClass, aError)
		b.queue("complete: update deliveries", qComplete, dID, dOwner, dState, dNext, dStatus, dError, dClass, dNow, dUncounted)
		return s.sendOps(ctx, s.pool, &b)
	})
}

// ReleaseLeases gives back the deliveries leased by Owner (those in IDs
// when IDs is not empty) and notifies their targets, so that workers of
// other processes pick them up at once. With IDs empty it also deletes
// Owner's heartbeat row (see Reclaim): Owner has stopped. A zero Now is
// the current time.
func (s *Store) ReleaseLeases(ctx context.Context, p fanout.ReleaseParams) (int, error) {
	query, args := qReleaseLeases, []any{s.channel, stored(orNow(p.Now)), p.Owner}
	if len(p.IDs) > 0 {
		query, args = qReleaseLeaseIDs, append(args, p.IDs)
	}
	var n, notified int64
	err := s.pool.QueryRow(ctx, query, args...).Scan(&n, &notified)
	if err != nil {
		return 0, s.dbErr("release leases", err)
	}
	if len(p.IDs) == 0 {
		s.forgetOwner(p.Owner)
	}
	return int(n), nil
}

// Reclaim is p.Owner's heartbeat: it records that the owner (of node
// p.Node) is alive, in the nodes table, and takes back the leases of the
// owners that are gone: at once those of p.Node's earlier owners (the
// node restarted: an owner is one run of a process), and those of any
// owner whose last heartbeat is older than p.DeadAfter, once p.Owner has
// itself been heartbeating without a gap for p.DeadAfter (so that a
// database outage, which stops every heartbeat, makes nobody look gone).
// A zero Now is the database server's clock, shared by every node; a
// zero DeadAfter takes back only p.Node's earlier owners. An owner that
// never called Reclaim has no row: its leases wait for their expiry.
//
// In the common case, nothing gone, it is one statement; taking leases
// back is a second one, which checks again under the rows' locks that
// each owner is still gone, so a heartbeat that lands meanwhile keeps
// its leases. An owner that finds its row gone (others judged it gone
// after a gap longer than DeadAfter) is registered again, with a warning:
// its leases were taken back and what it is sending now may be sent
// twice.
func (s *Store) Reclaim(ctx context.Context, p fanout.ReclaimParams) (int, error) {
	var at *time.Time
	if !p.Now.IsZero() {
		at = optTime(p.Now)
	}
	var (
		now      time.Time
		inserted bool
		gone     []string
	)
	err := s.pool.QueryRow(ctx, qHeartbeat, p.Owner, p.Node, at, p.DeadAfter.Microseconds()).Scan(&now, &inserted, &gone)
	if err != nil {
		return 0, s.dbErr("reclaim: heartbeat", err)
	}
	s.noteHeartbeat(ctx, p.Owner, inserted)
	if len(gone) == 0 {
		return 0, nil
	}
	cutoff := now.Add(-p.DeadAfter)
	if p.DeadAfter <= 0 {
		cutoff = time.Time{} // no heartbeat is that old: only the node's earlier owners
	}
	var n, notified int64
	if err := s.pool.QueryRow(ctx, qReclaimGone, s.channel, now, gone, p.Node, cutoff).Scan(&n, &notified); err != nil {
		return 0, s.dbErr("reclaim: take back leases", err)
	}
	return int(n), nil
}

// noteHeartbeat keeps the owners this Store has registered, and warns when
// one of them had to be registered again.
func (s *Store) noteHeartbeat(ctx context.Context, owner string, inserted bool) {
	s.ownersMu.Lock()
	_, known := s.owners[owner]
	s.owners[owner] = struct{}{}
	s.ownersMu.Unlock()
	if inserted && known {
		s.logger.LogAttrs(ctx, slog.LevelWarn,
			"postgres: another node judged this one gone (no heartbeat for the heartbeat timeout) and took back its leases; "+
				"deliveries in flight here may be sent twice",
			slog.String(logKeyOwner, owner))
	}
}

// forgetOwner is called when owner has released all its leases: it has
// left, and its row with it.
func (s *Store) forgetOwner(owner string) {
	s.ownersMu.Lock()
	delete(s.owners, owner)
	s.ownersMu.Unlock()
}

// NextDue returns the earliest due_at of the target's deliveries.
func (s *Store) NextDue(ctx context.Context, target string) (time.Time, bool, error) {
	var due *time.Time
	if err := s.pool.QueryRow(ctx, qNextDue, target).Scan(&due); err != nil {
		return time.Time{}, false, s.dbErr("next due", err)
	}
	t, ok := fromOpt(due)
	return t, ok, nil
}

// orNow is t, or the current time when t is zero.
func orNow(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}
