package postgres

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fanouthq/fanout"
)

// Page sizes of ListMessages.
const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

// purgeBatch is how many messages Purge deletes per transaction, so that a
// large purge holds its row locks and its WAL for a short time only.
const purgeBatch = 1000

// GetMessage reads the message, its deliveries and its attempts from one
// snapshot, the three queries pipelined in one round trip.
func (s *Store) GetMessage(ctx context.Context, id string) (fanout.MessageDetail, error) {
	var md fanout.MessageDetail
	err := s.readTx(ctx, "get message", func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(qGetMessage, id)
		b.Queue(qMessageDeliveries, id)
		b.Queue(qMessageAttempts, id)
		br := tx.SendBatch(ctx, b)
		defer func() { _ = br.Close() }() // errors are read from the results
		rows, err := br.Query()
		if err == nil {
			md.Message, err = pgx.CollectExactlyOneRow(rows, scanMessage)
		}
		if err != nil {
			return s.dbErr("get message "+id, err)
		}
		if rows, err = br.Query(); err == nil {
			md.Deliveries, err = pgx.CollectRows(rows, scanDelivery)
		}
		if err != nil {
			return s.dbErr("get message "+id+": deliveries", err)
		}
		if rows, err = br.Query(); err == nil {
			md.Attempts, err = pgx.CollectRows(rows, scanAttempt)
		}
		if err != nil {
			return s.dbErr("get message "+id+": attempts", err)
		}
		return nil
	})
	if err != nil {
		return fanout.MessageDetail{}, err
	}
	if len(md.Deliveries) == 0 {
		md.Deliveries = nil
	}
	if len(md.Attempts) == 0 {
		md.Attempts = nil
	}
	return md, nil
}

// listFilter is ListMessagesParams in stored form.
type listFilter struct {
	route, tenant, target, state string
	since, until                 *time.Time
	cursor                       *listCursor
	limit                        int
}

// listCursor is the position after the last message of a page.
type listCursor struct {
	receivedAt time.Time
	id         string
}

// encode returns the opaque cursor string: the receive time in Unix
// microseconds and the id.
func (c listCursor) encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.receivedAt.UnixMicro(), 10) + ":" + c.id))
}

// decodeCursor parses a cursor string from a previous page.
func decodeCursor(s string) (*listCursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("invalid cursor %q", s)
	}
	us, id, ok := strings.Cut(string(raw), ":")
	at, err := strconv.ParseInt(us, 10, 64)
	if !ok || err != nil || id == "" {
		return nil, fmt.Errorf("invalid cursor %q", s)
	}
	return &listCursor{receivedAt: time.UnixMicro(at).UTC(), id: id}, nil
}

// ListMessages returns a page of messages, newest first (by receive time,
// then id), with their deliveries, read from one snapshot; the cursor is
// opaque. An invalid cursor is an error that does not wrap
// fanout.ErrStoreUnavailable.
func (s *Store) ListMessages(ctx context.Context, p fanout.ListMessagesParams) ([]fanout.MessageSummary, string, error) {
	f := listFilter{
		route: p.Route, tenant: p.Tenant, target: p.Target, state: string(p.State),
		since: optTime(p.Since), until: optTime(p.Until),
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
	err := s.readTx(ctx, "list messages", func(tx pgx.Tx) error {
		query, args := listMessagesSQL(f)
		rows, err := tx.Query(ctx, query, args...)
		if err != nil {
			return s.dbErr("list messages", err)
		}
		msgs, err := pgx.CollectRows(rows, scanMessage)
		if err != nil {
			return s.dbErr("list messages", err)
		}
		if len(msgs) > limit {
			msgs = msgs[:limit]
			last := msgs[limit-1]
			next = listCursor{receivedAt: last.ReceivedAt, id: last.ID}.encode()
		}
		if len(msgs) == 0 {
			return nil
		}
		ids := make([]string, len(msgs))
		for i := range msgs {
			ids[i] = msgs[i].ID
		}
		rows, err = tx.Query(ctx, qDeliveriesOfPage, ids)
		if err != nil {
			return s.dbErr("list messages: deliveries", err)
		}
		deliveries, err := pgx.CollectRows(rows, scanDelivery)
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

// replayFilter is ReplayParams in stored form, for a bulk replay.
type replayFilter struct {
	route, target, tenant string
	since, until          *time.Time
}

// Replay makes deliveries due now with no attempts made: those of one
// message, or those matching the filters (in State, dead by default), in
// one statement that also notifies their targets on commit. Deliveries
// being delivered are never touched. A zero Now is the current time.
func (s *Store) Replay(ctx context.Context, p fanout.ReplayParams) (int, error) {
	now := stored(orNow(p.Now))
	var n, notified int64
	var stepped []string // messages of replayed steps, settled in the same transaction
	if p.MessageID != "" {
		var found int64
		err := s.inTx(ctx, "replay message "+p.MessageID, func(tx pgx.Tx) ([]string, error) {
			err := tx.QueryRow(ctx, qReplayMessage, s.channel, now, p.MessageID, p.Tenant, p.Target).
				Scan(&found, &n, &notified, &stepped)
			if err != nil || found == 0 {
				return nil, err
			}
			return settleSteps(ctx, tx, stepped, now)
		})
		if err != nil {
			return 0, err
		}
		if found == 0 {
			return 0, s.dbErr("replay message "+p.MessageID, pgx.ErrNoRows)
		}
		return int(n), nil
	}
	state := p.State
	if state == "" {
		state = fanout.StateDead
	}
	query, args := replaySQL(s.channel, now, string(state), replayFilter{
		route: p.Route, target: p.Target, tenant: p.Tenant,
		since: optTime(p.Since), until: optTime(p.Until),
	})
	err := s.inTx(ctx, "replay", func(tx pgx.Tx) ([]string, error) {
		if err := tx.QueryRow(ctx, query, args...).Scan(&n, &notified, &stepped); err != nil {
			return nil, err
		}
		return settleSteps(ctx, tx, stepped, now)
	})
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

// Backfill adds the missing deliveries in one statement, which notifies
// the target on commit; they are pending and due at Now. A zero Until is
// Now, a zero Now the current time.
func (s *Store) Backfill(ctx context.Context, p fanout.BackfillParams) (int, error) {
	now := stored(orNow(p.Now))
	until := now
	if !p.Until.IsZero() {
		until = stored(p.Until)
	}
	var n, notified int64
	err := s.pool.QueryRow(ctx, qBackfill, s.channel, p.Target, now, p.Route, stored(p.Since), until).Scan(&n, &notified)
	if err != nil {
		return 0, s.dbErr("backfill", err)
	}
	return int(n), nil
}

// DeleteMessage deletes the message; its deliveries, attempts and
// idempotency key go with it (ON DELETE CASCADE).
func (s *Store) DeleteMessage(ctx context.Context, id string) error {
	n, err := s.exec(ctx, "delete message "+id, qDeleteMessage, id)
	if err != nil {
		return err
	}
	if n == 0 {
		return s.dbErr("delete message "+id, pgx.ErrNoRows)
	}
	return nil
}

// Purge deletes old fully succeeded messages in transactions of up to
// purgeBatch messages, then forgets old idempotency keys. A zero
// SucceededBefore or KeysBefore skips that part.
func (s *Store) Purge(ctx context.Context, p fanout.PurgeParams) (int, error) {
	total := 0
	if !p.SucceededBefore.IsZero() {
		before := stored(p.SucceededBefore)
		for {
			n, err := s.exec(ctx, "purge messages", qPurgeMessages, before, purgeBatch)
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
		if _, err := s.exec(ctx, "purge idempotency keys", qPurgeKeys, stored(p.KeysBefore)); err != nil {
			return total, err
		}
	}
	return total, nil
}

// Backlog reads the waiting and dead counts per target from the two
// partial indexes of deliveries.
func (s *Store) Backlog(ctx context.Context) ([]fanout.TargetBacklog, error) {
	rows, err := s.pool.Query(ctx, qBacklog)
	if err != nil {
		return nil, s.dbErr("backlog", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (fanout.TargetBacklog, error) {
		var b fanout.TargetBacklog
		var waiting, dead int64
		var oldest *time.Time
		if err := row.Scan(&b.Target, &waiting, &dead, &oldest); err != nil {
			return b, err
		}
		b.Waiting, b.Dead = int(waiting), int(dead)
		b.OldestWaiting, _ = fromOpt(oldest)
		return b, nil
	})
	if err != nil {
		return nil, s.dbErr("backlog", err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}
