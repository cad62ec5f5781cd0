package sqlite

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fanouthq/fanout"
)

// Page sizes of ListMessages.
const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

// purgeBatch is how many messages Purge deletes per transaction, so that
// a large purge does not hold the write lock away from Accept for long.
const purgeBatch = 1000

// GetMessage reads the message, its deliveries and its attempts from one
// snapshot.
func (s *Store) GetMessage(ctx context.Context, id string) (fanout.MessageDetail, error) {
	var md fanout.MessageDetail
	err := s.withReadTx(ctx, "get message", func(tx *sql.Tx) error {
		if err := scanMessage(tx.QueryRowContext(ctx, qGetMessage, id), &md.Message); err != nil {
			return s.dbErr("get message "+id, err)
		}
		var err error
		if md.Deliveries, err = queryDeliveries(ctx, tx, qMessageDeliveries, id); err != nil {
			return s.dbErr("get message "+id+": deliveries", err)
		}
		if md.Attempts, err = queryAttempts(ctx, tx, id); err != nil {
			return s.dbErr("get message "+id+": attempts", err)
		}
		return nil
	})
	if err != nil {
		return fanout.MessageDetail{}, err
	}
	return md, nil
}

// queryDeliveries runs a query that returns deliveryColumns.
func queryDeliveries(ctx context.Context, tx *sql.Tx, query string, args ...any) (out []fanout.Delivery, err error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer closeRows(rows, &err)
	for rows.Next() {
		var d fanout.Delivery
		if err := scanDelivery(rows, &d); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// queryAttempts returns the attempts of a message, oldest first.
func queryAttempts(ctx context.Context, tx *sql.Tx, messageID string) (out []fanout.Attempt, err error) {
	rows, err := tx.QueryContext(ctx, qMessageAttempts, messageID)
	if err != nil {
		return nil, err
	}
	defer closeRows(rows, &err)
	for rows.Next() {
		var a fanout.Attempt
		if err := scanAttempt(rows, &a); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// listFilter is ListMessagesParams in stored form.
type listFilter struct {
	route, tenant, target, state string
	since, until                 *int64
	cursor                       *listCursor
	limit                        int
}

// listCursor is the position after the last message of a page.
type listCursor struct {
	receivedAt int64
	id         string
}

// encode returns the opaque cursor string.
func (c listCursor) encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.receivedAt, 10) + ":" + c.id))
}

// decodeCursor parses a cursor string from a previous page.
func decodeCursor(s string) (*listCursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("invalid cursor %q", s)
	}
	ms, id, ok := strings.Cut(string(raw), ":")
	at, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || id == "" {
		return nil, fmt.Errorf("invalid cursor %q", s)
	}
	return &listCursor{receivedAt: at, id: id}, nil
}

// optMillis is the stored form of an optional time filter.
func optMillis(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	ms := millis(t)
	return &ms
}

// ListMessages returns a page of messages, newest first (by receive time,
// then id), with their deliveries; the cursor is opaque. An invalid cursor
// is an error that does not wrap fanout.ErrStoreUnavailable.
func (s *Store) ListMessages(ctx context.Context, p fanout.ListMessagesParams) ([]fanout.MessageSummary, string, error) {
	f := listFilter{
		route: p.Route, tenant: p.Tenant, target: p.Target, state: string(p.State),
		since: optMillis(p.Since), until: optMillis(p.Until),
		limit: p.Limit,
	}
	if f.limit <= 0 {
		f.limit = defaultListLimit
	}
	f.limit = min(f.limit, maxListLimit)
	if p.Cursor != "" {
		var err error
		if f.cursor, err = decodeCursor(p.Cursor); err != nil {
			return nil, "", fmt.Errorf("list messages: %w", err)
		}
	}
	limit := f.limit
	f.limit++ // one more tells whether there is a next page

	var page []fanout.MessageSummary
	var next string
	err := s.withReadTx(ctx, "list messages", func(tx *sql.Tx) error {
		query, args := listMessagesSQL(f)
		msgs, err := queryMessages(ctx, tx, query, args...)
		if err != nil {
			return s.dbErr("list messages", err)
		}
		if len(msgs) > limit {
			msgs = msgs[:limit]
			last := msgs[limit-1]
			next = listCursor{receivedAt: millis(last.ReceivedAt), id: last.ID}.encode()
		}
		if len(msgs) == 0 {
			return nil
		}
		ids := make([]string, len(msgs))
		for i := range msgs {
			ids[i] = msgs[i].ID
		}
		idsJSON, err := json.Marshal(ids)
		if err != nil {
			return fmt.Errorf("list messages: %w", err)
		}
		deliveries, err := queryDeliveries(ctx, tx, qDeliveriesOfPage, string(idsJSON))
		if err != nil {
			return s.dbErr("list messages: deliveries", err)
		}
		byMessage := make(map[string][]fanout.Delivery, len(msgs))
		for _, d := range deliveries {
			byMessage[d.MessageID] = append(byMessage[d.MessageID], d)
		}
		page = make([]fanout.MessageSummary, len(msgs))
		for i, m := range msgs {
			page[i] = fanout.MessageSummary{Message: m, Deliveries: byMessage[m.ID]}
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return page, next, nil
}

// queryMessages runs a query that returns messageColumns.
func queryMessages(ctx context.Context, tx *sql.Tx, query string, args ...any) (out []fanout.Message, err error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer closeRows(rows, &err)
	for rows.Next() {
		var m fanout.Message
		if err := scanMessage(rows, &m); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// replayFilter is ReplayParams in stored form, for a bulk replay.
type replayFilter struct {
	route, target, tenant string
	since, until          *int64
}

// Replay makes deliveries due now with no attempts made: those of one
// message, or those matching the filters (in State, dead by default).
// Deliveries being delivered are never touched. A zero Now is the current
// time.
func (s *Store) Replay(ctx context.Context, p fanout.ReplayParams) (int, error) {
	now := millis(orNow(p.Now))
	var n int64
	err := s.withTx(ctx, "replay", func(tx *sql.Tx) error {
		var query string
		var args []any
		if p.MessageID != "" {
			var one int
			if err := tx.QueryRowContext(ctx, qMessageExists, p.MessageID, p.Tenant).Scan(&one); err != nil {
				return s.dbErr("replay message "+p.MessageID, err)
			}
			query, args = qReplayMessage, []any{now, p.MessageID, p.Target}
		} else {
			state := p.State
			if state == "" {
				state = fanout.StateDead
			}
			var filters []any
			query, filters = replaySQL(replayFilter{
				route: p.Route, target: p.Target, tenant: p.Tenant,
				since: optMillis(p.Since), until: optMillis(p.Until),
			})
			args = append([]any{now, string(state)}, filters...)
		}
		// Every replayed row is counted; the messages of replayed steps
		// are settled again.
		var stepped []string
		rows, err := tx.QueryContext(ctx, query+qReplayReturning, args...)
		if err != nil {
			return s.dbErr("replay", err)
		}
		for rows.Next() {
			var id string
			var step bool
			if err := rows.Scan(&id, &step); err != nil {
				_ = rows.Close()
				return s.dbErr("replay", err)
			}
			n++
			if step {
				stepped = append(stepped, id)
			}
		}
		err = rows.Err()
		_ = rows.Close()
		if err != nil {
			return s.dbErr("replay", err)
		}
		return s.settleSteps(ctx, tx, stepped, now)
	})
	return int(n), err
}

// Backfill adds the missing deliveries in one statement; they are pending
// and due at Now. A zero Until is Now, a zero Now the current time.
func (s *Store) Backfill(ctx context.Context, p fanout.BackfillParams) (int, error) {
	now := orNow(p.Now)
	until := p.Until
	if until.IsZero() {
		until = now
	}
	n, err := s.exec(ctx, "backfill", writeDurable, qBackfill, p.Target, millis(now), p.Route, millis(p.Since), millis(until))
	return int(n), err
}

// DeleteMessage deletes the message; its deliveries, attempts and
// idempotency key go with it (ON DELETE CASCADE).
func (s *Store) DeleteMessage(ctx context.Context, id string) error {
	n, err := s.exec(ctx, "delete message "+id, writeDurable, qDeleteMessage, id)
	if err != nil {
		return err
	}
	if n == 0 {
		return s.dbErr("delete message "+id, sql.ErrNoRows)
	}
	return nil
}

// Purge deletes old fully succeeded messages in transactions of up to
// purgeBatch messages, then forgets old idempotency keys. A zero
// SucceededBefore or KeysBefore skips that part.
func (s *Store) Purge(ctx context.Context, p fanout.PurgeParams) (int, error) {
	total := 0
	if !p.SucceededBefore.IsZero() {
		before := millis(p.SucceededBefore)
		for {
			n, err := s.exec(ctx, "purge messages", writeDurable, qPurgeMessages, before, purgeBatch)
			if err != nil {
				return total, err
			}
			total += int(n)
			if n < purgeBatch {
				break
			}
		}
	}
	if !p.KeysBefore.IsZero() {
		if _, err := s.exec(ctx, "purge idempotency keys", writeDurable, qPurgeKeys, millis(p.KeysBefore)); err != nil {
			return total, err
		}
	}
	return total, nil
}

// Backlog reads the waiting and dead counts per target from the two
// partial indexes of deliveries.
func (s *Store) Backlog(ctx context.Context) (out []fanout.TargetBacklog, err error) {
	rows, err := s.reader.QueryContext(ctx, qBacklog)
	if err != nil {
		return nil, s.dbErr("backlog", err)
	}
	defer closeRows(rows, &err)
	for rows.Next() {
		var b fanout.TargetBacklog
		var oldest sql.NullInt64
		if err := rows.Scan(&b.Target, &b.Waiting, &b.Dead, &oldest); err != nil {
			return nil, s.dbErr("backlog", err)
		}
		b.OldestWaiting, _ = nullMillis(oldest)
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, s.dbErr("backlog", err)
	}
	return out, nil
}
