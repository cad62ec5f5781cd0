package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/fanouthq/fanout"
)

// defaultLeaseFor is the lease of a LeaseParams with no LeaseFor.
const defaultLeaseFor = 30 * time.Second

// Lease claims up to Limit due deliveries of the target in one write
// transaction: it selects them, oldest due first, joined with their
// messages, then marks them delivering. A Limit of zero or less leases
// nothing; a zero Now is the current time; a zero LeaseFor is 30s. The
// transaction commits without an fsync (writeRelaxed): see Store.write.
func (s *Store) Lease(ctx context.Context, p fanout.LeaseParams) ([]fanout.LeasedDelivery, error) {
	if p.Limit <= 0 {
		return nil, nil
	}
	now := orNow(p.Now)
	leaseFor := p.LeaseFor
	if leaseFor <= 0 {
		leaseFor = defaultLeaseFor
	}
	nowMS := millis(now)
	until := millis(now.Add(leaseFor))

	var leased []fanout.LeasedDelivery
	err := s.write(ctx, "lease", writeRelaxed, func(tx *sql.Tx) error {
		var err error
		leased, err = s.leaseCandidates(ctx, tx, p.Target, nowMS, p.Limit)
		if err != nil {
			return s.dbErr("lease: select", err)
		}
		if len(leased) == 0 {
			return nil
		}
		ids := make([]int64, len(leased))
		for i := range leased {
			ids[i] = leased[i].Delivery.ID
		}
		idsJSON, err := json.Marshal(ids)
		if err != nil {
			return fmt.Errorf("lease: %w", err)
		}
		if _, err := s.execTx(ctx, tx, qLeaseMark, p.Owner, until, nowMS, string(idsJSON)); err != nil {
			return s.dbErr("lease: mark", err)
		}
		if err := s.attachStepResponses(ctx, tx, leased); err != nil {
			return s.dbErr("lease: step responses", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	updated := fromMillis(nowMS)
	for i := range leased {
		d := &leased[i].Delivery
		d.State = fanout.StateDelivering
		d.Attempts++
		d.UpdatedAt = updated
	}
	return leased, nil
}

// leaseCandidates returns the due deliveries of target with their messages.
func (s *Store) leaseCandidates(ctx context.Context, tx *sql.Tx, target string, now int64, limit int) ([]fanout.LeasedDelivery, error) {
	out := make([]fanout.LeasedDelivery, 0, min(limit, 1024))
	err := s.queryTx(ctx, tx, qLeaseCandidates, []any{target, now, limit}, func(rows *sql.Rows) error {
		var l fanout.LeasedDelivery
		if err := scanLeased(rows, &l); err != nil {
			return err
		}
		out = append(out, l)
		return nil
	})
	return out, err
}

// Complete records the attempts and moves the deliveries still leased by
// their Owner to their new state, all in one transaction and with one
// statement per 64 params for each. An attempt with no Number takes the
// delivery's attempt count; its DeliveryID, MessageID and Target always
// come from the delivery. An invalid State fails the whole call before
// anything is written.
func (s *Store) Complete(ctx context.Context, params []fanout.CompleteParams) error {
	if len(params) == 0 {
		return nil
	}
	type row struct {
		next                    any // NULL: nothing left to do
		reqHeaders, respHeaders []byte
	}
	rows := make([]row, len(params))
	for i := range params {
		p := &params[i]
		r := &rows[i]
		switch p.State {
		case fanout.StateSucceeded, fanout.StateDead:
		case fanout.StateRetrying:
			at := p.NextAttemptAt
			if at.IsZero() {
				at = orNow(p.Now)
			}
			r.next = millis(at)
		default:
			return fmt.Errorf("complete delivery %d: state %q is not succeeded, retrying or dead", p.DeliveryID, p.State)
		}
		var err error
		if r.reqHeaders, err = encodeHeader(p.Attempt.RequestHeader); err != nil {
			return fmt.Errorf("complete delivery %d: request %w", p.DeliveryID, err)
		}
		if r.respHeaders, err = encodeHeader(p.Attempt.ResponseHeader); err != nil {
			return fmt.Errorf("complete delivery %d: response %w", p.DeliveryID, err)
		}
	}
	now := time.Now() // for params with no Now
	return s.write(ctx, "complete", writeRelaxed, func(tx *sql.Tx) error {
		err := s.execValues(ctx, tx, len(params), qInsertAttemptsHead, qInsertAttemptsRow, qInsertAttemptsTail, insertAttemptsArgs,
			func(args []any, i int) []any {
				p, a := &params[i], &params[i].Attempt
				return append(args, p.DeliveryID, a.Number, millis(a.StartedAt), a.Duration.Microseconds(),
					a.RequestMethod, a.RequestURL, rows[i].reqHeaders, a.Status, rows[i].respHeaders, a.ResponseBody,
					string(a.Class), a.Error)
			})
		if err != nil {
			return s.dbErr("complete: insert attempts", err)
		}
		err = s.execValues(ctx, tx, len(params), qCompleteHead, qCompleteRow, qCompleteTail, completeArgs,
			func(args []any, i int) []any {
				p := &params[i]
				at := p.Now
				if at.IsZero() {
					at = now
				}
				uncounted := 0
				if p.Uncounted {
					uncounted = 1
				}
				return append(args, p.DeliveryID, p.Owner, string(p.State), rows[i].next,
					p.Attempt.Status, p.Attempt.Error, string(p.Attempt.Class), millis(at), uncounted)
			})
		if err != nil {
			return s.dbErr("complete: update deliveries", err)
		}
		return s.completeSteps(ctx, tx, params, now)
	})
}

// ReleaseLeases gives back the deliveries leased by Owner (those in IDs
// when IDs is not empty). A zero Now is the current time.
func (s *Store) ReleaseLeases(ctx context.Context, p fanout.ReleaseParams) (int, error) {
	now := millis(orNow(p.Now))
	query, args := qReleaseLeases, []any{now, p.Owner}
	if len(p.IDs) > 0 {
		ids, err := json.Marshal(p.IDs)
		if err != nil {
			return 0, fmt.Errorf("release leases: %w", err)
		}
		query, args = qReleaseLeaseIDs, append(args, string(ids))
	}
	n, err := s.exec(ctx, "release leases", writeRelaxed, query, args...)
	return int(n), err
}

// Reclaim takes back, on the first call after Open, every delivery leased
// by an owner other than p.Owner: Open holds the file's lock, so whoever
// leased them is a process that has stopped. Later calls do nothing and
// cost nothing: while the lock is held no other process leases, and the
// owners of this process give their leases back themselves. Node and
// DeadAfter do not matter here. A zero Now is the current time. A failed
// call leaves the work to the next one.
func (s *Store) Reclaim(ctx context.Context, p fanout.ReclaimParams) (int, error) {
	s.reclaimMu.Lock()
	defer s.reclaimMu.Unlock()
	if s.reclaimed {
		return 0, nil
	}
	n, err := s.exec(ctx, "reclaim leases", writeRelaxed, qReclaimLeases, millis(orNow(p.Now)), p.Owner)
	if err != nil {
		return 0, err
	}
	s.reclaimed = true
	return int(n), nil
}

// NextDue returns the earliest due_at of the target's deliveries.
func (s *Store) NextDue(ctx context.Context, target string) (time.Time, bool, error) {
	var due sql.NullInt64
	if err := s.reader.QueryRowContext(ctx, qNextDue, target).Scan(&due); err != nil {
		return time.Time{}, false, s.dbErr("next due", err)
	}
	t, ok := nullMillis(due)
	return t, ok, nil
}

// orNow is t, or the current time when t is zero.
func orNow(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}
