package postgres

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fanouthq/fanout"
)

// routeKey is an idempotency key in its route.
type routeKey struct{ route, key string }

// keyUse is the message that holds an idempotency key.
type keyUse struct {
	messageID  string
	receivedAt time.Time
}

// newMessage is an accepted message about to be inserted.
type newMessage struct {
	msg        fanout.Message
	targets    []string
	steps      []fanout.AcceptStep
	receivedAt time.Time // stored form
	headers    []byte
	keyed      bool // its key is checked and remembered in idempotency_keys
}

// Accept stores the messages and their pending deliveries in one
// transaction, each table's rows in one statement, and notifies the
// targets that got work once it has committed. A message with no ID gets
// one from fanout.NewMessageID and one with no ReceivedAt is received now;
// a target listed twice gets one delivery.
//
// A batch without idempotency keys to check is one round trip: BEGIN, the
// inserts, COMMIT and the notification are pipelined. Keys take one more:
// they are claimed and locked first, so that two processes accepting the
// same key at once store one message (see qClaimKeys).
//
// The notification runs in a transaction of its own right after COMMIT,
// not inside the Accept transaction: PostgreSQL serializes the commits of
// every transaction that notifies, WAL flush included, database-wide, so
// notifying inside would stop the writers of several nodes from sharing a
// flush. A transaction that only notifies writes no WAL and never waits
// for a flush. The price is that a connection lost between the two leaves
// committed work unannounced, which workers find when they next poll.
func (s *Store) Accept(ctx context.Context, params []fanout.AcceptParams) ([]fanout.AcceptResult, error) {
	if len(params) == 0 {
		return nil, nil
	}
	fresh := make([]newMessage, len(params))
	for i := range params {
		p := &params[i]
		n := &fresh[i]
		n.msg, n.targets, n.steps = p.Message, uniqueTargets(p.Targets), p.Steps
		if err := p.CheckSteps(); err != nil {
			return nil, fmt.Errorf("accept: message %s: %w: %w", n.msg.ID, fanout.ErrInvalidMessage, err)
		}
		if n.msg.ID == "" {
			n.msg.ID = fanout.NewMessageID()
		}
		if n.msg.ReceivedAt.IsZero() {
			n.msg.ReceivedAt = time.Now()
		}
		n.receivedAt = stored(n.msg.ReceivedAt)
		n.keyed = n.msg.IdempotencyKey != "" && p.DedupWindow > 0
		var err error
		if n.headers, err = encodeHeader(n.msg.Header); err != nil {
			return nil, fmt.Errorf("accept: message %s: %w: %w", n.msg.ID, fanout.ErrInvalidMessage, err)
		}
	}
	results := make([]fanout.AcceptResult, len(params))
	err := retry(ctx, func() error { return s.accept(ctx, params, fresh, results) })
	if err != nil {
		if rerr := refusedErr("accept", err); rerr != nil && !s.closed() {
			return nil, rerr
		}
		return nil, err
	}
	return results, nil
}

// accept runs the Accept transaction once, on one connection, and fills
// results.
func (s *Store) accept(ctx context.Context, params []fanout.AcceptParams, fresh []newMessage, results []fanout.AcceptResult) error {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return s.dbErr("accept", err)
	}
	conn := pc.Conn()
	defer func() {
		if conn.PgConn().TxStatus() != 'I' {
			// A failure left the transaction open: end it so that the
			// connection can go back to the pool (if this fails too, the
			// pool drops the connection).
			_, _ = conn.Exec(ctx, "ROLLBACK")
		}
		pc.Release()
	}()

	for i := range fresh {
		results[i] = fanout.AcceptResult{MessageID: fresh[i].msg.ID}
	}
	var b opBatch
	keep := fresh
	if slices.ContainsFunc(fresh, func(n newMessage) bool { return n.keyed }) {
		// resolveKeys begins the transaction.
		if keep, err = s.resolveKeys(ctx, conn, &b, params, fresh, results); err != nil {
			return err
		}
	} else {
		b.queue("accept: begin", "BEGIN")
	}
	s.queueInserts(&b, keep)
	b.commit("accept: commit")
	if targets := targetsOf(keep); len(targets) > 0 {
		b.hint("accept: notify", qNotify, s.channel, targets)
	}
	return s.sendOps(ctx, conn, &b)
}

// resolveKeys begins the transaction on conn, claims the batch's keys that
// are free and locks the rows of all of them, in one round trip. Then it
// resolves the keys in the order of the batch: a message whose key is held
// by a message received within its DedupWindow (stored, or earlier in this
// batch) is dropped and its result points at that message; any other keyed
// message is kept and holds its key from then on. It returns the messages
// to insert and queues on b the statement that points taken-over keys at
// their new message.
func (s *Store) resolveKeys(ctx context.Context, conn *pgx.Conn, b *opBatch, params []fanout.AcceptParams, fresh []newMessage, results []fanout.AcceptResult) ([]newMessage, error) {
	// The distinct keys of the batch, each with the first message that
	// uses it, in byte order: every Accept claims and locks in this order.
	first := make(map[routeKey]int)
	var keys []routeKey
	for i := range fresh {
		if !fresh[i].keyed {
			continue
		}
		rk := routeKey{fresh[i].msg.Route, fresh[i].msg.IdempotencyKey}
		if _, ok := first[rk]; !ok {
			first[rk] = i
			keys = append(keys, rk)
		}
	}
	slices.SortFunc(keys, func(a, b routeKey) int {
		return cmp.Or(cmp.Compare(a.route, b.route), cmp.Compare(a.key, b.key))
	})
	routes, names := make([]string, len(keys)), make([]string, len(keys))
	ids, ats := make([]string, len(keys)), make([]time.Time, len(keys))
	for i, rk := range keys {
		n := &fresh[first[rk]]
		routes[i], names[i], ids[i], ats[i] = rk.route, rk.key, n.msg.ID, n.receivedAt
	}

	pb := &pgx.Batch{}
	pb.Queue("BEGIN")
	pb.Queue(qClaimKeys, routes, names, ids, ats)
	pb.Queue(qLockKeys, routes, names)
	br := conn.SendBatch(ctx, pb)
	claimed, held, err := readKeys(br)
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, s.dbErr("accept: claim idempotency keys", err)
	}

	keep := make([]newMessage, 0, len(fresh))
	taken := make(map[routeKey]bool)
	for i := range fresh {
		n := &fresh[i]
		if !n.keyed {
			keep = append(keep, *n)
			continue
		}
		rk := routeKey{n.msg.Route, n.msg.IdempotencyKey}
		prev, ok := held[rk]
		switch {
		case !ok:
			// Neither claimed nor found: a concurrent Purge or delete
			// removed the row between the two statements.
			return nil, s.dbErr("accept: claim idempotency keys", errRetry)
		case claimed[rk] && first[rk] == i:
			// The claim made the row point at this message already.
		case prev.receivedAt.Add(params[i].DedupWindow).After(n.receivedAt):
			results[i] = fanout.AcceptResult{MessageID: prev.messageID, Replayed: true}
			continue
		default:
			held[rk] = keyUse{messageID: n.msg.ID, receivedAt: n.receivedAt}
			taken[rk] = true
		}
		keep = append(keep, *n)
	}

	if len(taken) > 0 {
		var tRoutes, tNames, tIDs []string
		var tAts []time.Time
		for _, rk := range keys {
			if taken[rk] {
				u := held[rk]
				tRoutes, tNames = append(tRoutes, rk.route), append(tNames, rk.key)
				tIDs, tAts = append(tIDs, u.messageID), append(tAts, u.receivedAt)
			}
		}
		// The key rows may point at messages inserted after them in the
		// transaction: the foreign key is checked at commit.
		b.queue("accept: take over idempotency keys", qTakeKeys, tRoutes, tNames, tIDs, tAts)
	}
	return keep, nil
}

// readKeys reads the results of the first round trip of resolveKeys: the
// BEGIN, the keys claimed and the rows of every key.
func readKeys(br pgx.BatchResults) (claimed map[routeKey]bool, held map[routeKey]keyUse, err error) {
	if _, err := br.Exec(); err != nil {
		return nil, nil, err
	}
	rows, err := br.Query()
	if err != nil {
		return nil, nil, err
	}
	claimed = make(map[routeKey]bool)
	var rk routeKey
	_, err = pgx.ForEachRow(rows, []any{&rk.route, &rk.key}, func() error {
		claimed[rk] = true
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	rows, err = br.Query()
	if err != nil {
		return nil, nil, err
	}
	held = make(map[routeKey]keyUse)
	var u keyUse
	_, err = pgx.ForEachRow(rows, []any{&rk.route, &rk.key, &u.messageID, &u.receivedAt}, func() error {
		held[rk] = keyUse{messageID: u.messageID, receivedAt: u.receivedAt.UTC()}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return claimed, held, nil
}

// queueInserts queues the statements that store msgs with their
// deliveries.
func (s *Store) queueInserts(b *opBatch, msgs []newMessage) {
	if len(msgs) == 0 {
		return
	}
	n := len(msgs)
	ids, routes, tenants, methods, paths := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	headers, bodies := make([][]byte, n), make([][]byte, n)
	keys, ats := make([]string, n), make([]time.Time, n)
	var dIDs, dRoutes, dTargets []string
	var dAts []time.Time
	for i := range msgs {
		m := &msgs[i]
		ids[i], routes[i], tenants[i], methods[i], paths[i] = m.msg.ID, m.msg.Route, m.msg.Tenant, m.msg.Method, m.msg.Path
		headers[i], bodies[i], keys[i], ats[i] = m.headers, nonNil(m.msg.Body), m.msg.IdempotencyKey, m.receivedAt
		for _, t := range m.targets {
			dIDs, dRoutes, dTargets, dAts = append(dIDs, m.msg.ID), append(dRoutes, m.msg.Route), append(dTargets, t), append(dAts, m.receivedAt)
		}
	}
	b.queue("accept: insert messages", qInsertMessages, ids, routes, tenants, methods, paths, headers, bodies, keys, ats)
	if len(dIDs) > 0 {
		b.queue("accept: insert deliveries", qInsertDeliveries, dIDs, dRoutes, dTargets, dAts)
	}
	queueSteps(b, msgs)
}

// targetsOf returns the distinct targets of msgs.
func targetsOf(msgs []newMessage) []string {
	var targets []string
	for i := range msgs {
		for _, t := range msgs[i].targets {
			if !slices.Contains(targets, t) {
				targets = append(targets, t)
			}
		}
		for _, st := range msgs[i].steps {
			if len(st.After) == 0 && !slices.Contains(targets, st.Target) {
				targets = append(targets, st.Target)
			}
		}
	}
	return targets
}

// uniqueTargets returns targets without repeats, in order.
func uniqueTargets(targets []string) []string {
	for i := 1; i < len(targets); i++ {
		if slices.Contains(targets[:i], targets[i]) {
			out := make([]string, 0, len(targets))
			for _, t := range targets {
				if !slices.Contains(out, t) {
					out = append(out, t)
				}
			}
			return out
		}
	}
	return targets
}

// opBatch is a pgx.Batch of statements whose rows are not read, each
// named for the error it would cause.
type opBatch struct {
	b   pgx.Batch
	ops []op
}

// op is a statement of an opBatch.
type op struct {
	name string
	kind opKind
}

// opKind says how sendOps treats a statement's outcome.
type opKind int

const (
	opWrite  opKind = iota // its failure fails the batch
	opCommit               // COMMIT: a failure, or a ROLLBACK in its place, fails the batch
	opHint                 // after the commit: a failure is logged only
)

// queue adds a statement.
func (b *opBatch) queue(name, query string, args ...any) {
	b.b.Queue(query, args...)
	b.ops = append(b.ops, op{name: name})
}

// commit adds the COMMIT of a transaction begun earlier.
func (b *opBatch) commit(name string) {
	b.b.Queue("COMMIT")
	b.ops = append(b.ops, op{name: name, kind: opCommit})
}

// hint adds a statement whose failure does not matter to the caller, such
// as a notification after the commit.
func (b *opBatch) hint(name, query string, args ...any) {
	b.b.Queue(query, args...)
	b.ops = append(b.ops, op{name: name, kind: opHint})
}

// batchSender is a pool, a connection or a transaction.
type batchSender interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// sendOps sends b in one round trip and returns the first failure, named
// after its statement. Without BEGIN and COMMIT statements in b, they run
// in one implicit transaction: all of them commit, or none.
func (s *Store) sendOps(ctx context.Context, on batchSender, b *opBatch) error {
	if len(b.ops) == 0 {
		return nil
	}
	br := on.SendBatch(ctx, &b.b)
	for _, o := range b.ops {
		tag, err := br.Exec()
		switch {
		case err != nil && o.kind == opHint:
			s.logger.LogAttrs(ctx, slog.LevelWarn, "postgres: "+o.name+" failed", slog.String(logKeyError, err.Error()))
			_ = br.Close() // nothing follows a hint
			return nil
		case err != nil:
			_ = br.Close() // reports the same failure
			return s.dbErr(o.name, err)
		case o.kind == opCommit && tag.String() != "COMMIT":
			_ = br.Close()
			return s.dbErr(o.name, fmt.Errorf("the transaction ended with %s", tag))
		}
	}
	if err := br.Close(); err != nil {
		if b.ops[len(b.ops)-1].kind == opHint {
			s.logger.LogAttrs(ctx, slog.LevelWarn, "postgres: "+b.ops[len(b.ops)-1].name+" failed", slog.String(logKeyError, err.Error()))
			return nil
		}
		return s.dbErr(b.ops[len(b.ops)-1].name, err)
	}
	return nil
}
