package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/fanouthq/fanout"
)

// rowsPerStatement caps the VALUES rows of one statement (SQLite allows
// 32766 bound values per statement; 64 rows of 12 stays far below, and
// larger statements stop paying off).
const rowsPerStatement = 64

// routeKey is an idempotency key in its route.
type routeKey struct{ route, key string }

// keyUse is the message that holds an idempotency key.
type keyUse struct {
	messageID  string
	receivedAt int64
}

// newMessage is an accepted message about to be inserted.
type newMessage struct {
	msg        fanout.Message
	targets    []string
	steps      []fanout.AcceptStep
	receivedAt int64
	headers    []byte
	keyed      bool // remember its key in idempotency_keys
}

// Accept stores the messages and their pending deliveries in one
// transaction, with multi-row INSERTs. A message with no ID gets one from
// fanout.NewMessageID and one with no ReceivedAt is received now; a target
// listed twice gets one delivery.
func (s *Store) Accept(ctx context.Context, params []fanout.AcceptParams) ([]fanout.AcceptResult, error) {
	if len(params) == 0 {
		return nil, nil
	}
	results := make([]fanout.AcceptResult, len(params))
	fresh := make([]newMessage, 0, len(params))
	for i := range params {
		p := &params[i]
		n := newMessage{msg: p.Message, targets: uniqueTargets(p.Targets), steps: p.Steps}
		if err := p.CheckSteps(); err != nil {
			return nil, fmt.Errorf("accept: message %s: %w: %w", n.msg.ID, fanout.ErrInvalidMessage, err)
		}
		if n.msg.ID == "" {
			n.msg.ID = fanout.NewMessageID()
		}
		if n.msg.ReceivedAt.IsZero() {
			n.msg.ReceivedAt = time.Now()
		}
		n.receivedAt = millis(n.msg.ReceivedAt)
		n.keyed = n.msg.IdempotencyKey != "" && p.DedupWindow > 0
		var err error
		if n.headers, err = encodeHeader(n.msg.Header); err != nil {
			return nil, fmt.Errorf("accept: message %s: %w: %w", n.msg.ID, fanout.ErrInvalidMessage, err)
		}
		fresh = append(fresh, n)
		results[i].MessageID = n.msg.ID
	}

	err := s.write(ctx, "accept", writeAccept, func(tx *sql.Tx) error {
		keep, err := s.dedup(ctx, tx, params, fresh, results)
		if err != nil {
			return err
		}
		if err := s.insertMessages(ctx, tx, keep); err != nil {
			return err
		}
		if err := s.insertSteps(ctx, tx, keep); err != nil {
			return s.dbErr("accept: insert steps", err)
		}
		if err := s.upsertKeys(ctx, tx, keep); err != nil {
			return s.dbErr("accept: remember idempotency keys", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

// dedup resolves idempotency keys in order: a message whose key was used by
// an earlier message of its route (stored, or earlier in this batch) within
// its DedupWindow is dropped and its result points at that message. It
// returns the messages to insert.
func (s *Store) dedup(ctx context.Context, tx *sql.Tx, params []fanout.AcceptParams, fresh []newMessage, results []fanout.AcceptResult) ([]newMessage, error) {
	keep := fresh[:0:0]
	seen := make(map[routeKey]keyUse)
	for i, n := range fresh {
		if !n.keyed {
			keep = append(keep, n)
			continue
		}
		rk := routeKey{n.msg.Route, n.msg.IdempotencyKey}
		prev, ok := seen[rk]
		if !ok {
			switch err := s.scanTx(ctx, tx, qLookupKey, []any{rk.route, rk.key}, &prev.messageID, &prev.receivedAt); {
			case errors.Is(err, sql.ErrNoRows):
			case err != nil:
				return nil, s.dbErr("accept: look up idempotency key", err)
			default:
				ok = true
			}
		}
		if ok && prev.receivedAt+params[i].DedupWindow.Milliseconds() > n.receivedAt {
			results[i] = fanout.AcceptResult{MessageID: prev.messageID, Replayed: true}
			continue
		}
		seen[rk] = keyUse{messageID: n.msg.ID, receivedAt: n.receivedAt}
		keep = append(keep, n)
	}
	return keep, nil
}

// insertMessages inserts the messages and their pending deliveries,
// rowsPerStatement messages per statement. The deliveries of a group of
// messages that share one target list (the usual case: one route per
// batch) are copied from the message rows just inserted by one INSERT ...
// SELECT that binds only the targets and the rowid range, instead of one
// VALUES row of 8 bound values per delivery; binding is a large part of an
// Accept's CPU with this driver. Other groups take insertDeliveryRows.
func (s *Store) insertMessages(ctx context.Context, tx *sql.Tx, msgs []newMessage) error {
	args := make([]any, 0, min(len(msgs), rowsPerStatement)*insertMessagesArgs)
	for start := 0; start < len(msgs); start += rowsPerStatement {
		end := min(start+rowsPerStatement, len(msgs))
		args = args[:0]
		for i := start; i < end; i++ {
			n := &msgs[i]
			m := &n.msg
			args = append(args, m.ID, m.Route, m.Tenant, m.Method, m.Path, n.headers, nonNil(m.Body),
				m.IdempotencyKey, n.receivedAt)
		}
		res, err := s.execTx(ctx, tx, valuesSQL(qInsertMessagesHead, qInsertMessagesRow, "", end-start), args...)
		if err != nil {
			return s.dbErr("accept: insert messages", err)
		}
		group := msgs[start:end]
		if !sameTargets(group) {
			if err := s.insertDeliveryRows(ctx, tx, group); err != nil {
				return s.dbErr("accept: insert deliveries", err)
			}
			continue
		}
		if err := s.copyDeliveries(ctx, tx, res, group); err != nil {
			return err
		}
	}
	return nil
}

// copyDeliveries inserts the deliveries of group, messages to the same
// targets just inserted by one statement (res), from their rows. A
// multi-row INSERT gives its rows consecutive rowids ending at
// LastInsertId (SQLite takes one more than the largest rowid for each new
// row); the row count is checked so that a gap fails the transaction
// rather than leaving a message without its deliveries.
func (s *Store) copyDeliveries(ctx context.Context, tx *sql.Tx, res sql.Result, group []newMessage) error {
	targets := group[0].targets
	if len(targets) == 0 {
		return nil
	}
	last, err := res.LastInsertId()
	if err != nil {
		return s.dbErr("accept: insert deliveries", err)
	}
	first := last - int64(len(group)) + 1
	args := make([]any, 0, 2+len(targets))
	args = append(args, first, last)
	for _, t := range targets {
		args = append(args, t)
	}
	dres, err := s.execTx(ctx, tx, copyDeliveriesSQL(len(targets)), args...)
	if err != nil {
		return s.dbErr("accept: insert deliveries", err)
	}
	n, err := dres.RowsAffected()
	if err != nil {
		return s.dbErr("accept: insert deliveries", err)
	}
	if want := int64(len(group) * len(targets)); n != want {
		return s.dbErr("accept: insert deliveries", fmt.Errorf("copied %d deliveries, want %d: message rowids %d..%d not consecutive", n, want, first, last))
	}
	return nil
}

// sameTargets reports whether every message of group has the targets of
// the first, in the same order.
func sameTargets(group []newMessage) bool {
	for i := 1; i < len(group); i++ {
		if !slices.Equal(group[i].targets, group[0].targets) {
			return false
		}
	}
	return true
}

// insertDeliveryRows inserts one pending delivery per message and target,
// due when the message was received, one VALUES row each.
func (s *Store) insertDeliveryRows(ctx context.Context, tx *sql.Tx, msgs []newMessage) error {
	type ref struct{ msg, target int }
	var refs []ref
	for i := range msgs {
		for j := range msgs[i].targets {
			refs = append(refs, ref{i, j})
		}
	}
	return s.execValues(ctx, tx, len(refs), qInsertDeliveriesHead, qInsertDeliveriesRow, "", insertDeliveriesArgs,
		func(args []any, i int) []any {
			n := &msgs[refs[i].msg]
			at := n.receivedAt
			return append(args, n.msg.ID, n.msg.Route, n.targets[refs[i].target], at, at, at, at, at)
		})
}

// execValues runs a statement on VALUES rows (valuesSQL) for n rows, up to
// rowsPerStatement rows at a time; rowArgs appends the width values of row
// i to args.
func (s *Store) execValues(ctx context.Context, tx *sql.Tx, n int, head, row, tail string, width int, rowArgs func(args []any, i int) []any) error {
	args := make([]any, 0, min(n, rowsPerStatement)*width)
	for start := 0; start < n; start += rowsPerStatement {
		end := min(start+rowsPerStatement, n)
		args = args[:0]
		for i := start; i < end; i++ {
			args = rowArgs(args, i)
		}
		if _, err := s.execTx(ctx, tx, valuesSQL(head, row, tail, end-start), args...); err != nil {
			return err
		}
	}
	return nil
}

// upsertKeys remembers the idempotency keys of the inserted messages; a
// later message with the same key takes the row over.
func (s *Store) upsertKeys(ctx context.Context, tx *sql.Tx, msgs []newMessage) error {
	for i := range msgs {
		n := &msgs[i]
		if !n.keyed {
			continue
		}
		if _, err := s.execTx(ctx, tx, qUpsertKey, n.msg.Route, n.msg.IdempotencyKey, n.msg.ID, n.receivedAt); err != nil {
			return err
		}
	}
	return nil
}

// uniqueTargets returns targets without repeats, in order.
func uniqueTargets(targets []string) []string {
	for i := 1; i < len(targets); i++ {
		for j := range i {
			if targets[i] == targets[j] {
				out := make([]string, 0, len(targets))
				seen := make(map[string]bool, len(targets))
				for _, t := range targets {
					if !seen[t] {
						seen[t] = true
						out = append(out, t)
					}
				}
				return out
			}
		}
	}
	return targets
}
