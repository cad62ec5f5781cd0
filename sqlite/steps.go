package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/fanouthq/fanout"
)

// The deliveries of async steps routes: one row per step, with its name
// and the steps it runs after; the rules that move them between blocked,
// pending and skipped are fanout.SettleSteps, applied here in the
// transactions that change what they depend on (Complete, Replay).

const (
	// qInsertStepsHead and qInsertStepsRow insert step deliveries; a
	// blocked one has no due_at.
	qInsertStepsHead = `INSERT INTO deliveries (message_id, route, target, step, after_steps, state, attempts,
    next_attempt_at, due_at, received_at, created_at, updated_at) VALUES `
	qInsertStepsRow = `(?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)`
	insertStepsArgs = 10

	qMessageSteps = `SELECT id, step, after_steps, state FROM deliveries WHERE message_id = ? AND step <> ''`
	// qStepResponses reads the kept responses of a message's succeeded
	// steps.
	qStepResponses = `SELECT step, last_status, response_headers, response_body FROM deliveries
WHERE message_id = ? AND step <> '' AND state = 'succeeded'`
	// qKeepResponse keeps a succeeded step's response.
	qKeepResponse = `UPDATE deliveries SET last_status = ?2, response_headers = ?3, response_body = ?4
WHERE id = ?1 AND state = 'succeeded'`
	// qSettleStep moves a step delivery to blocked, pending (due at ?3) or
	// skipped; due_at is set only when pending.
	qSettleStep = `UPDATE deliveries SET state = ?2,
    due_at = CASE WHEN ?2 = 'pending' THEN ?3 END,
    next_attempt_at = CASE WHEN ?2 = 'pending' THEN ?3 ELSE next_attempt_at END,
    attempts_before = CASE WHEN ?2 = 'pending' THEN attempts_before + attempts ELSE attempts_before END,
    attempts = CASE WHEN ?2 = 'pending' THEN 0 ELSE attempts END,
    last_class = CASE WHEN ?2 = 'skipped' THEN 'skipped' ELSE last_class END,
    last_error = CASE WHEN ?2 = 'skipped' THEN ?4 ELSE last_error END,
    lease_owner = NULL, lease_expires_at = NULL, updated_at = ?3
WHERE id = ?1 AND state <> 'delivering'`
)

// insertSteps inserts the step deliveries of the messages that have steps.
func (s *Store) insertSteps(ctx context.Context, tx *sql.Tx, msgs []newMessage) error {
	type ref struct{ msg, step int }
	var refs []ref
	for i := range msgs {
		for j := range msgs[i].steps {
			refs = append(refs, ref{i, j})
		}
	}
	if len(refs) == 0 {
		return nil
	}
	return s.execValues(ctx, tx, len(refs), qInsertStepsHead, qInsertStepsRow, "", insertStepsArgs,
		func(args []any, i int) []any {
			n := &msgs[refs[i].msg]
			st := &n.steps[refs[i].step]
			at := n.receivedAt
			state, due := fanout.StatePending, any(at)
			if len(st.After) > 0 {
				state, due = fanout.StateBlocked, nil
			}
			return append(args, n.msg.ID, n.msg.Route, st.Target, st.Name, strings.Join(st.After, ","),
				string(state), at, due, at, at, at)
		})
}

// splitAfter reverses the comma-joined after_steps column.
func splitAfter(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// attachStepResponses gives each leased step delivery the kept responses
// of its message's succeeded steps.
func (s *Store) attachStepResponses(ctx context.Context, tx *sql.Tx, leased []fanout.LeasedDelivery) error {
	byMessage := map[string]map[string]fanout.StepResponse{}
	for i := range leased {
		l := &leased[i]
		if l.Delivery.Step == "" {
			continue
		}
		id := l.Delivery.MessageID
		responses, ok := byMessage[id]
		if !ok {
			responses = map[string]fanout.StepResponse{}
			err := s.queryTx(ctx, tx, qStepResponses, []any{id}, func(rows *sql.Rows) error {
				var name string
				var r fanout.StepResponse
				var header []byte
				if err := rows.Scan(&name, &r.Status, &header, &r.Body); err != nil {
					return err
				}
				h, err := decodeHeader(header)
				if err != nil {
					return fmt.Errorf("step %s of message %s: %w", name, id, err)
				}
				r.Header, r.Body = h, emptyNil(r.Body)
				responses[name] = r
				return nil
			})
			if err != nil {
				return err
			}
			byMessage[id] = responses
		}
		l.Steps = responses
	}
	return nil
}

// completeSteps keeps the responses of the step deliveries among params
// that succeeded, then settles their messages' other steps at the params'
// Now (now when zero).
func (s *Store) completeSteps(ctx context.Context, tx *sql.Tx, params []fanout.CompleteParams, now time.Time) error {
	for i := range params {
		p := &params[i]
		if p.Step == nil {
			continue
		}
		if p.State == fanout.StateSucceeded {
			header, err := encodeHeader(p.Step.Response.Header)
			if err != nil {
				return fmt.Errorf("complete delivery %d: step response %w", p.DeliveryID, err)
			}
			if _, err := s.execTx(ctx, tx, qKeepResponse, p.DeliveryID, p.Step.Response.Status, header, nonNil(p.Step.Response.Body)); err != nil {
				return s.dbErr("complete: keep step response", err)
			}
		}
		if p.State != fanout.StateRetrying && p.Step.MessageID != "" {
			at := p.Now
			if at.IsZero() {
				at = now
			}
			if err := s.settleSteps(ctx, tx, []string{p.Step.MessageID}, millis(at)); err != nil {
				return err
			}
		}
	}
	return nil
}

// settleSteps applies fanout.SettleSteps to each message's steps.
func (s *Store) settleSteps(ctx context.Context, tx *sql.Tx, messages []string, now int64) error {
	seen := make(map[string]bool, len(messages))
	for _, id := range messages {
		if seen[id] {
			continue
		}
		seen[id] = true
		var nodes []fanout.StepNode
		err := s.queryTx(ctx, tx, qMessageSteps, []any{id}, func(rows *sql.Rows) error {
			var n fanout.StepNode
			var after, state string
			if err := rows.Scan(&n.ID, &n.Step, &after, &state); err != nil {
				return err
			}
			n.After, n.State = splitAfter(after), fanout.DeliveryState(state)
			nodes = append(nodes, n)
			return nil
		})
		if err != nil {
			return s.dbErr("settle steps of "+id, err)
		}
		for _, c := range fanout.SettleSteps(nodes) {
			cause := ""
			if c.State == fanout.StateSkipped {
				cause = "depends on step " + c.Cause + ", which failed"
			}
			if _, err := s.execTx(ctx, tx, qSettleStep, c.ID, string(c.State), now, cause); err != nil {
				return s.dbErr("settle steps of "+id, err)
			}
		}
	}
	return nil
}
