package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fanouthq/fanout"
)

// The deliveries of async steps routes, as in the sqlite package: one row
// per step with its name and the steps it runs after; fanout.SettleSteps
// moves them between blocked, pending and skipped in the transactions
// that change what they depend on (Complete, Replay). Those transactions
// lock the message's step rows (FOR UPDATE) before settling them, so that
// two nodes completing two steps of one message at once settle one after
// the other, the second seeing the first's result.

const (
	// qInsertSteps inserts step deliveries; a blocked one has no due_at.
	qInsertSteps = `INSERT INTO deliveries (message_id, route, target, step, after_steps, state, attempts,
    next_attempt_at, due_at, received_at, created_at, updated_at)
SELECT v.message_id, v.route, v.target, v.step, v.after_steps, v.state, 0, v.at,
    CASE WHEN v.state = 'pending' THEN v.at END, v.at, v.at, v.at
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[])
    WITH ORDINALITY AS v (message_id, route, target, step, after_steps, state, at, ord)
ORDER BY v.ord`

	qLockSteps = `SELECT count(*) FROM (SELECT id FROM deliveries
WHERE message_id = ANY($1::text[]) AND step <> '' ORDER BY id FOR UPDATE) AS locked`
	qMessageSteps = `SELECT id, step, after_steps, state, target FROM deliveries
WHERE message_id = $1 AND step <> '' ORDER BY id FOR UPDATE`
	qStepResponses = `SELECT message_id, step, last_status, response_headers, response_body FROM deliveries
WHERE message_id = ANY($1::text[]) AND step <> '' AND state = 'succeeded'`
	qKeepResponse = `UPDATE deliveries SET last_status = $2, response_headers = $3, response_body = $4
WHERE id = $1 AND state = 'succeeded'`
	// qSettleStep moves a step delivery to blocked, pending (due at $3) or
	// skipped; due_at is set only when pending.
	qSettleStep = `UPDATE deliveries SET state = $2,
    due_at = CASE WHEN $2 = 'pending' THEN $3::timestamptz END,
    next_attempt_at = CASE WHEN $2 = 'pending' THEN $3::timestamptz ELSE next_attempt_at END,
    attempts_before = CASE WHEN $2 = 'pending' THEN attempts_before + attempts ELSE attempts_before END,
    attempts = CASE WHEN $2 = 'pending' THEN 0 ELSE attempts END,
    last_class = CASE WHEN $2 = 'skipped' THEN 'skipped' ELSE last_class END,
    last_error = CASE WHEN $2 = 'skipped' THEN $4 ELSE last_error END,
    lease_owner = NULL, lease_expires_at = NULL, updated_at = $3
WHERE id = $1 AND state <> 'delivering'`
)

// queueSteps queues the insert of the step deliveries of msgs, if any.
func queueSteps(b *opBatch, msgs []newMessage) {
	var ids, routes, targets, steps, afters, states []string
	var ats []time.Time
	for i := range msgs {
		m := &msgs[i]
		for _, st := range m.steps {
			state := fanout.StatePending
			if len(st.After) > 0 {
				state = fanout.StateBlocked
			}
			ids, routes, targets = append(ids, m.msg.ID), append(routes, m.msg.Route), append(targets, st.Target)
			steps, afters = append(steps, st.Name), append(afters, strings.Join(st.After, ","))
			states, ats = append(states, string(state)), append(ats, m.receivedAt)
		}
	}
	if len(ids) > 0 {
		b.queue("accept: insert steps", qInsertSteps, ids, routes, targets, steps, afters, states, ats)
	}
}

// splitAfter reverses the comma-joined after_steps column.
func splitAfter(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// attachStepResponses gives each leased step delivery the kept responses
// of its message's succeeded steps. A succeeded step's response does not
// change, so they are read after the lease, in one query.
func (s *Store) attachStepResponses(ctx context.Context, leased []fanout.LeasedDelivery) error {
	var ids []string
	for i := range leased {
		if d := &leased[i].Delivery; d.Step != "" && !slices.Contains(ids, d.MessageID) {
			ids = append(ids, d.MessageID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	byMessage := make(map[string]map[string]fanout.StepResponse, len(ids))
	for _, id := range ids {
		byMessage[id] = map[string]fanout.StepResponse{}
	}
	rows, err := s.pool.Query(ctx, qStepResponses, ids)
	if err != nil {
		return err
	}
	var id, name string
	var r fanout.StepResponse
	var header []byte
	_, err = pgx.ForEachRow(rows, []any{&id, &name, &r.Status, &header, &r.Body}, func() error {
		h, err := decodeHeader(header)
		if err != nil {
			return fmt.Errorf("step %s of message %s: %w", name, id, err)
		}
		byMessage[id][name] = fanout.StepResponse{Status: r.Status, Header: h, Body: emptyNil(slices.Clone(r.Body))}
		return nil
	})
	if err != nil {
		return err
	}
	for i := range leased {
		if d := &leased[i].Delivery; d.Step != "" {
			leased[i].Steps = byMessage[d.MessageID]
		}
	}
	return nil
}

// lockSteps locks the step rows of the messages of the step params, in
// id order, before Complete changes any of them: two transactions
// completing two steps of one message then take the rows one after the
// other instead of each holding one and waiting for the other's
// (a deadlock PostgreSQL would break only after deadlock_timeout).
func lockSteps(ctx context.Context, tx pgx.Tx, params []fanout.CompleteParams) error {
	var ids []string
	for i := range params {
		if st := params[i].Step; st != nil && st.MessageID != "" && !slices.Contains(ids, st.MessageID) {
			ids = append(ids, st.MessageID)
		}
	}
	_, err := tx.Exec(ctx, qLockSteps, ids)
	return err
}

// completeSteps keeps, in tx, the responses of the step deliveries among
// params that succeeded and settles their messages' other steps. It
// returns the targets of steps that became pending.
func (s *Store) completeSteps(ctx context.Context, tx pgx.Tx, params []fanout.CompleteParams, now time.Time) ([]string, error) {
	var woken []string
	for i := range params {
		p := &params[i]
		if p.Step == nil {
			continue
		}
		if p.State == fanout.StateSucceeded {
			header, err := encodeHeader(p.Step.Response.Header)
			if err != nil {
				return nil, fmt.Errorf("complete delivery %d: step response %w", p.DeliveryID, err)
			}
			if _, err := tx.Exec(ctx, qKeepResponse, p.DeliveryID, p.Step.Response.Status, header, nonNil(p.Step.Response.Body)); err != nil {
				return nil, err
			}
		}
		if p.State != fanout.StateRetrying && p.Step.MessageID != "" {
			at := p.Now
			if at.IsZero() {
				at = now
			}
			t, err := settleSteps(ctx, tx, []string{p.Step.MessageID}, stored(at))
			if err != nil {
				return nil, err
			}
			woken = append(woken, t...)
		}
	}
	return woken, nil
}

// settleSteps applies fanout.SettleSteps to each message's steps, with
// their rows locked, and returns the targets of steps that became pending.
func settleSteps(ctx context.Context, tx pgx.Tx, messages []string, now time.Time) ([]string, error) {
	var woken []string
	seen := make(map[string]bool, len(messages))
	for _, id := range messages {
		if seen[id] {
			continue
		}
		seen[id] = true
		rows, err := tx.Query(ctx, qMessageSteps, id)
		if err != nil {
			return nil, err
		}
		var nodes []fanout.StepNode
		targets := map[int64]string{}
		var n fanout.StepNode
		var after, state, target string
		_, err = pgx.ForEachRow(rows, []any{&n.ID, &n.Step, &after, &state, &target}, func() error {
			nodes = append(nodes, fanout.StepNode{ID: n.ID, Step: n.Step, After: splitAfter(after), State: fanout.DeliveryState(state)})
			targets[n.ID] = target
			return nil
		})
		if err != nil {
			return nil, err
		}
		for _, c := range fanout.SettleSteps(nodes) {
			cause := ""
			if c.State == fanout.StateSkipped {
				cause = "depends on step " + c.Cause + ", which failed"
			}
			if _, err := tx.Exec(ctx, qSettleStep, c.ID, string(c.State), now, cause); err != nil {
				return nil, err
			}
			if c.State == fanout.StatePending && !slices.Contains(woken, targets[c.ID]) {
				woken = append(woken, targets[c.ID])
			}
		}
	}
	return woken, nil
}

// inTx runs fn in a transaction on the pool, tried again on a lost race,
// then notifies the targets it returns.
func (s *Store) inTx(ctx context.Context, op string, fn func(tx pgx.Tx) ([]string, error)) error {
	var woken []string
	err := retry(ctx, func() error {
		tx, err := s.pool.Begin(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(ctx) }() // after Commit: a no-op
		if woken, err = fn(tx); err != nil {
			return err
		}
		return tx.Commit(ctx)
	})
	if err != nil {
		return s.dbErr(op, err)
	}
	if len(woken) > 0 {
		if _, err := s.pool.Exec(ctx, qNotify, s.channel, woken); err != nil {
			// Workers find the work when they next poll.
			return nil //nolint:nilerr // the transaction committed: the work is stored
		}
	}
	return nil
}
