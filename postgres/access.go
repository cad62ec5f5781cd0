package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fanouthq/fanout"
)

// This file implements fanout.AccessStore: subscriptions, self-service
// keys and the audit log. Every change is one transaction that also
// writes its audit entry and moves the access version on; the nodes poll
// the version (one indexed row) and reload on a change.

var _ fanout.AccessStore = (*Store)(nil)

// CreateSubscription inserts the request, or asks again in place for one
// that was rejected or revoked. Two requests of a tenant for a route at
// once meet on the (tenant, route) unique key: the second one finds the
// first.
func (s *Store) CreateSubscription(ctx context.Context, p fanout.CreateSubscriptionParams) (fanout.Subscription, error) {
	now := stored(orNow(p.Now))
	var out fanout.Subscription
	op := "create subscription"
	err := s.withTx(ctx, op, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, qInsertSubscription, p.ID, p.Tenant, p.Route, string(p.State), p.Note, now)
		if err != nil {
			return s.dbErr(op, err)
		}
		id := p.ID
		if tag.RowsAffected() == 0 {
			cur, err := scanSubscription(tx.QueryRow(ctx, qLockSubscriptionOf, p.Tenant, p.Route))
			if err != nil {
				return s.dbErr(op, err)
			}
			if cur.State == fanout.SubscriptionPending || cur.State == fanout.SubscriptionActive {
				out = cur
				return fmt.Errorf("%s: tenant %s already has a subscription to %s (%s, %s): %w",
					op, p.Tenant, p.Route, cur.ID, cur.State, fanout.ErrConflict)
			}
			if _, err := tx.Exec(ctx, qRequestSubscription, string(p.State), p.Note, now, cur.ID); err != nil {
				return s.dbErr(op, err)
			}
			id = cur.ID
		}
		out = fanout.Subscription{ID: id, Tenant: p.Tenant, Route: p.Route, State: p.State, Note: p.Note, RequestedAt: now}
		return s.audit(ctx, tx, fanout.AuditEntry{At: now, Actor: p.Actor, Action: fanout.AuditSubscriptionRequest,
			Subject: id, Tenant: p.Tenant, Route: p.Route, Reason: p.Note})
	})
	return out, err
}

// GetSubscription reads one subscription.
func (s *Store) GetSubscription(ctx context.Context, id string) (fanout.Subscription, error) {
	sub, err := scanSubscription(s.pool.QueryRow(ctx, qGetSubscription, id))
	if err != nil {
		return sub, s.dbErr("get subscription "+id, err)
	}
	return sub, nil
}

// ListSubscriptions reads the subscriptions that match p.
func (s *Store) ListSubscriptions(ctx context.Context, p fanout.ListSubscriptionsParams) ([]fanout.Subscription, error) {
	out, err := querySubscriptions(ctx, s.pool, qListSubscriptions, p.Tenant, p.Route, string(p.State))
	if err != nil {
		return nil, s.dbErr("list subscriptions", err)
	}
	return out, nil
}

// DecideSubscription moves a subscription to p.State when its state
// allows it; the row is locked from the check to the change.
func (s *Store) DecideSubscription(ctx context.Context, p fanout.DecideSubscriptionParams) (fanout.Subscription, error) {
	now := stored(orNow(p.Now))
	var out fanout.Subscription
	op := "decide subscription " + p.ID
	err := s.withTx(ctx, op, func(tx pgx.Tx) error {
		cur, err := scanSubscription(tx.QueryRow(ctx, qLockSubscription, p.ID))
		if err != nil {
			return s.dbErr(op, err)
		}
		out = cur
		if !cur.State.CanMoveTo(p.State) {
			return fmt.Errorf("%s: a %s subscription cannot become %s: %w", op, cur.State, p.State, fanout.ErrConflict)
		}
		if _, err := tx.Exec(ctx, qDecideSubscription, string(p.State), p.Reason, p.Actor, now, p.ID); err != nil {
			return s.dbErr(op, err)
		}
		out.State, out.Reason, out.DecidedBy, out.DecidedAt = p.State, p.Reason, p.Actor, now
		return s.audit(ctx, tx, fanout.AuditEntry{At: now, Actor: p.Actor, Action: fanout.DecisionAction(p.State),
			Subject: cur.ID, Tenant: cur.Tenant, Route: cur.Route, Reason: p.Reason})
	})
	return out, err
}

// CreateKey stores a new key's hash. The version row is locked first, so
// that two keys of one name created at once meet on the name check.
func (s *Store) CreateKey(ctx context.Context, p fanout.CreateKeyParams) error {
	k := p.Key
	now := stored(orNow(k.CreatedAt))
	op := "create key"
	return s.withTx(ctx, op, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, qBumpAccess); err != nil {
			return s.dbErr(op, err)
		}
		var one int
		switch err := tx.QueryRow(ctx, qLiveKeyName, k.Tenant, k.Name).Scan(&one); {
		case err == nil:
			return fmt.Errorf("%s: tenant %s already has a key named %q: %w", op, k.Tenant, k.Name, fanout.ErrConflict)
		case !errors.Is(err, pgx.ErrNoRows):
			return s.dbErr(op, err)
		}
		if _, err := tx.Exec(ctx, qInsertKey, k.ID, k.Tenant, k.Name, k.Prefix, k.SHA256, now, optTime(k.ExpiresAt)); err != nil {
			return s.dbErr(op, err)
		}
		return s.audit(ctx, tx, fanout.AuditEntry{At: now, Actor: p.Actor, Action: fanout.AuditKeyCreate,
			Subject: k.ID, Tenant: k.Tenant, Reason: k.Name})
	})
}

// ListKeys reads a tenant's keys.
func (s *Store) ListKeys(ctx context.Context, tenant string) ([]fanout.APIKey, error) {
	out, err := queryKeys(ctx, s.pool, qListKeys, tenant)
	if err != nil {
		return nil, s.dbErr("list keys", err)
	}
	return out, nil
}

// RevokeKey marks a key revoked.
func (s *Store) RevokeKey(ctx context.Context, p fanout.RevokeKeyParams) (fanout.APIKey, error) {
	now := stored(orNow(p.Now))
	var out fanout.APIKey
	op := "revoke key " + p.ID
	err := s.withTx(ctx, op, func(tx pgx.Tx) error {
		k, err := scanKey(tx.QueryRow(ctx, qLockKey, p.ID, p.Tenant))
		if err != nil {
			return s.dbErr(op, err)
		}
		out = k
		if !k.RevokedAt.IsZero() {
			return fmt.Errorf("%s: already revoked: %w", op, fanout.ErrConflict)
		}
		if _, err := tx.Exec(ctx, qRevokeKey, now, p.ID); err != nil {
			return s.dbErr(op, err)
		}
		out.RevokedAt = now
		return s.audit(ctx, tx, fanout.AuditEntry{At: now, Actor: p.Actor, Action: fanout.AuditKeyRevoke,
			Subject: k.ID, Tenant: k.Tenant, Reason: p.Reason})
	})
	return out, err
}

// TouchKeys records last-used times in one statement.
func (s *Store) TouchKeys(ctx context.Context, lastUsed map[string]time.Time) error {
	if len(lastUsed) == 0 {
		return nil
	}
	ids := make([]string, 0, len(lastUsed))
	ats := make([]time.Time, 0, len(lastUsed))
	for id, at := range lastUsed {
		ids = append(ids, id)
		ats = append(ats, stored(at))
	}
	_, err := s.exec(ctx, "touch keys", qTouchKeys, ids, ats)
	return err
}

// ListAudit reads audit entries.
func (s *Store) ListAudit(ctx context.Context, p fanout.ListAuditParams) ([]fanout.AuditEntry, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	rows, err := s.pool.Query(ctx, qListAudit, optTime(p.Since), p.After, p.Tenant, limit)
	if err != nil {
		return nil, s.dbErr("list audit", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (fanout.AuditEntry, error) {
		var e fanout.AuditEntry
		err := r.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.Subject, &e.Tenant, &e.Route, &e.Reason)
		e.At = e.At.UTC()
		return e, err
	})
	if err != nil {
		return nil, s.dbErr("list audit", err)
	}
	return out, nil
}

// AccessVersion reads the access version.
func (s *Store) AccessVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.pool.QueryRow(ctx, qAccessVersion).Scan(&v); err != nil {
		return 0, s.dbErr("access version", err)
	}
	return v, nil
}

// AccessSnapshot reads the version, the active subscriptions and the live
// keys in one REPEATABLE READ snapshot.
func (s *Store) AccessSnapshot(ctx context.Context) (fanout.AccessSnapshot, error) {
	var out fanout.AccessSnapshot
	op := "access snapshot"
	err := s.readTx(ctx, op, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, qAccessVersion).Scan(&out.Version); err != nil {
			return s.dbErr(op, err)
		}
		var err error
		if out.Subscriptions, err = querySubscriptions(ctx, tx, qActiveSubscriptions); err != nil {
			return s.dbErr(op, err)
		}
		if out.Keys, err = queryKeys(ctx, tx, qLiveKeys); err != nil {
			return s.dbErr(op, err)
		}
		return nil
	})
	return out, err
}

// audit writes e and moves the access version on.
func (s *Store) audit(ctx context.Context, tx pgx.Tx, e fanout.AuditEntry) error {
	if _, err := tx.Exec(ctx, qInsertAudit, stored(e.At), e.Actor, e.Action, e.Subject, e.Tenant, e.Route, e.Reason); err != nil {
		return s.dbErr("audit "+e.Action, err)
	}
	if _, err := tx.Exec(ctx, qBumpAccess); err != nil {
		return s.dbErr("audit "+e.Action, err)
	}
	return nil
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func scanSubscription(r pgx.Row) (fanout.Subscription, error) {
	var sub fanout.Subscription
	var state string
	var decided *time.Time
	if err := r.Scan(&sub.ID, &sub.Tenant, &sub.Route, &state, &sub.Note, &sub.Reason, &sub.DecidedBy, &sub.RequestedAt, &decided); err != nil {
		return sub, err
	}
	sub.State = fanout.SubscriptionState(state)
	sub.RequestedAt = sub.RequestedAt.UTC()
	sub.DecidedAt, _ = fromOpt(decided)
	return sub, nil
}

func querySubscriptions(ctx context.Context, q querier, query string, args ...any) ([]fanout.Subscription, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (fanout.Subscription, error) { return scanSubscription(r) })
}

func scanKey(r pgx.Row) (fanout.APIKey, error) {
	var k fanout.APIKey
	var expires, revoked, used *time.Time
	if err := r.Scan(&k.ID, &k.Tenant, &k.Name, &k.Prefix, &k.SHA256, &k.CreatedAt, &expires, &revoked, &used); err != nil {
		return k, err
	}
	k.CreatedAt = k.CreatedAt.UTC()
	k.ExpiresAt, _ = fromOpt(expires)
	k.RevokedAt, _ = fromOpt(revoked)
	k.LastUsedAt, _ = fromOpt(used)
	return k, nil
}

func queryKeys(ctx context.Context, q querier, query string, args ...any) ([]fanout.APIKey, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (fanout.APIKey, error) { return scanKey(r) })
}
