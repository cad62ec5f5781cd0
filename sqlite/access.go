package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/fanouthq/fanout"
)

// This file implements fanout.AccessStore: subscriptions, self-service
// keys and the audit log. Every change is one durable write transaction
// that also writes its audit entry and moves the access version on.

var _ fanout.AccessStore = (*Store)(nil)

// CreateSubscription inserts the request, or asks again in place for one
// that was rejected or revoked.
func (s *Store) CreateSubscription(ctx context.Context, p fanout.CreateSubscriptionParams) (fanout.Subscription, error) {
	now := orNow(p.Now)
	var out fanout.Subscription
	op := "create subscription"
	err := s.withTx(ctx, op, func(tx *sql.Tx) error {
		cur, err := scanSubscription(tx.QueryRowContext(ctx, qSubscriptionOf, p.Tenant, p.Route))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if _, err := tx.ExecContext(ctx, qInsertSubscription, p.ID, p.Tenant, p.Route, string(p.State), p.Note, millis(now)); err != nil {
				return s.dbErr(op, err)
			}
			cur = fanout.Subscription{ID: p.ID, Tenant: p.Tenant, Route: p.Route}
		case err != nil:
			return s.dbErr(op, err)
		case cur.State == fanout.SubscriptionPending || cur.State == fanout.SubscriptionActive:
			out = cur
			return fmt.Errorf("%s: tenant %s already has a subscription to %s (%s, %s): %w",
				op, p.Tenant, p.Route, cur.ID, cur.State, fanout.ErrConflict)
		default:
			if _, err := tx.ExecContext(ctx, qRequestSubscription, string(p.State), p.Note, millis(now), cur.ID); err != nil {
				return s.dbErr(op, err)
			}
		}
		out = fanout.Subscription{ID: cur.ID, Tenant: p.Tenant, Route: p.Route, State: p.State, Note: p.Note, RequestedAt: now.UTC().Truncate(time.Millisecond)}
		return s.audit(ctx, tx, fanout.AuditEntry{At: now, Actor: p.Actor, Action: fanout.AuditSubscriptionRequest,
			Subject: cur.ID, Tenant: p.Tenant, Route: p.Route, Reason: p.Note})
	})
	return out, err
}

// GetSubscription reads one subscription.
func (s *Store) GetSubscription(ctx context.Context, id string) (fanout.Subscription, error) {
	var out fanout.Subscription
	err := s.withReadTx(ctx, "get subscription", func(tx *sql.Tx) error {
		var err error
		out, err = scanSubscription(tx.QueryRowContext(ctx, qGetSubscription, id))
		if err != nil {
			return s.dbErr("get subscription "+id, err)
		}
		return nil
	})
	return out, err
}

// ListSubscriptions reads the subscriptions that match p.
func (s *Store) ListSubscriptions(ctx context.Context, p fanout.ListSubscriptionsParams) ([]fanout.Subscription, error) {
	var out []fanout.Subscription
	err := s.withReadTx(ctx, "list subscriptions", func(tx *sql.Tx) error {
		var err error
		out, err = querySubscriptions(ctx, tx, qListSubscriptionsSQL, p.Tenant, p.Route, string(p.State))
		return s.orErr("list subscriptions", err)
	})
	return out, err
}

// DecideSubscription moves a subscription to p.State when its state
// allows it.
func (s *Store) DecideSubscription(ctx context.Context, p fanout.DecideSubscriptionParams) (fanout.Subscription, error) {
	now := orNow(p.Now)
	var out fanout.Subscription
	op := "decide subscription " + p.ID
	err := s.withTx(ctx, op, func(tx *sql.Tx) error {
		cur, err := scanSubscription(tx.QueryRowContext(ctx, qGetSubscription, p.ID))
		if err != nil {
			return s.dbErr(op, err)
		}
		if !cur.State.CanMoveTo(p.State) {
			out = cur
			return fmt.Errorf("%s: a %s subscription cannot become %s: %w", op, cur.State, p.State, fanout.ErrConflict)
		}
		if _, err := tx.ExecContext(ctx, qDecideSubscription, string(p.State), p.Reason, p.Actor, millis(now), p.ID); err != nil {
			return s.dbErr(op, err)
		}
		cur.State, cur.Reason, cur.DecidedBy, cur.DecidedAt = p.State, p.Reason, p.Actor, now.UTC().Truncate(time.Millisecond)
		out = cur
		return s.audit(ctx, tx, fanout.AuditEntry{At: now, Actor: p.Actor, Action: fanout.DecisionAction(p.State),
			Subject: cur.ID, Tenant: cur.Tenant, Route: cur.Route, Reason: p.Reason})
	})
	return out, err
}

// CreateKey stores a new key's hash.
func (s *Store) CreateKey(ctx context.Context, p fanout.CreateKeyParams) error {
	k := p.Key
	now := orNow(k.CreatedAt)
	op := "create key"
	return s.withTx(ctx, op, func(tx *sql.Tx) error {
		var one int
		switch err := tx.QueryRowContext(ctx, qLiveKeyName, k.Tenant, k.Name).Scan(&one); {
		case err == nil:
			return fmt.Errorf("%s: tenant %s already has a key named %q: %w", op, k.Tenant, k.Name, fanout.ErrConflict)
		case !errors.Is(err, sql.ErrNoRows):
			return s.dbErr(op, err)
		}
		if _, err := tx.ExecContext(ctx, qInsertKey, k.ID, k.Tenant, k.Name, k.Prefix, k.SHA256, millis(now), optMillis(k.ExpiresAt)); err != nil {
			return s.dbErr(op, err)
		}
		return s.audit(ctx, tx, fanout.AuditEntry{At: now, Actor: p.Actor, Action: fanout.AuditKeyCreate,
			Subject: k.ID, Tenant: k.Tenant, Reason: k.Name})
	})
}

// ListKeys reads a tenant's keys.
func (s *Store) ListKeys(ctx context.Context, tenant string) ([]fanout.APIKey, error) {
	var out []fanout.APIKey
	err := s.withReadTx(ctx, "list keys", func(tx *sql.Tx) error {
		var err error
		out, err = queryKeys(ctx, tx, qListKeys, tenant)
		return s.orErr("list keys", err)
	})
	return out, err
}

// RevokeKey marks a key revoked.
func (s *Store) RevokeKey(ctx context.Context, p fanout.RevokeKeyParams) (fanout.APIKey, error) {
	now := orNow(p.Now)
	var out fanout.APIKey
	op := "revoke key " + p.ID
	err := s.withTx(ctx, op, func(tx *sql.Tx) error {
		k, err := scanKey(tx.QueryRowContext(ctx, qGetKey, p.ID, p.Tenant))
		if err != nil {
			return s.dbErr(op, err)
		}
		out = k
		if !k.RevokedAt.IsZero() {
			return fmt.Errorf("%s: already revoked: %w", op, fanout.ErrConflict)
		}
		if _, err := tx.ExecContext(ctx, qRevokeKey, millis(now), p.ID); err != nil {
			return s.dbErr(op, err)
		}
		out.RevokedAt = now.UTC().Truncate(time.Millisecond)
		return s.audit(ctx, tx, fanout.AuditEntry{At: now, Actor: p.Actor, Action: fanout.AuditKeyRevoke,
			Subject: k.ID, Tenant: k.Tenant, Reason: p.Reason})
	})
	return out, err
}

// TouchKeys records last-used times, in one relaxed write: losing one to
// a power cut only makes a key look used a little earlier.
func (s *Store) TouchKeys(ctx context.Context, lastUsed map[string]time.Time) error {
	if len(lastUsed) == 0 {
		return nil
	}
	return s.write(ctx, "touch keys", writeRelaxed, func(tx *sql.Tx) error {
		for id, at := range lastUsed {
			if _, err := tx.ExecContext(ctx, qTouchKey, id, millis(at)); err != nil {
				return s.dbErr("touch keys", err)
			}
		}
		return nil
	})
}

// ListAudit reads audit entries.
func (s *Store) ListAudit(ctx context.Context, p fanout.ListAuditParams) ([]fanout.AuditEntry, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	var out []fanout.AuditEntry
	err := s.withReadTx(ctx, "list audit", func(tx *sql.Tx) (err error) {
		since := int64(0)
		if !p.Since.IsZero() {
			since = millis(p.Since)
		}
		rows, err := tx.QueryContext(ctx, qListAudit, since, p.After, p.Tenant, limit)
		if err != nil {
			return s.dbErr("list audit", err)
		}
		defer closeRows(rows, &err)
		for rows.Next() {
			var e fanout.AuditEntry
			var at int64
			if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Subject, &e.Tenant, &e.Route, &e.Reason); err != nil {
				return s.dbErr("list audit", err)
			}
			e.At = fromMillis(at)
			out = append(out, e)
		}
		return s.orErr("list audit", rows.Err())
	})
	return out, err
}

// AccessVersion reads the access version.
func (s *Store) AccessVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.reader.QueryRowContext(ctx, qAccessVersion).Scan(&v); err != nil {
		return 0, s.dbErr("access version", err)
	}
	return v, nil
}

// AccessSnapshot reads the version, the active subscriptions and the live
// keys in one read transaction (one snapshot of the WAL).
func (s *Store) AccessSnapshot(ctx context.Context) (fanout.AccessSnapshot, error) {
	var out fanout.AccessSnapshot
	err := s.withReadTx(ctx, "access snapshot", func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, qAccessVersion).Scan(&out.Version); err != nil {
			return s.dbErr("access snapshot", err)
		}
		var err error
		if out.Subscriptions, err = querySubscriptions(ctx, tx, qActiveSubscriptions); err != nil {
			return s.dbErr("access snapshot", err)
		}
		out.Keys, err = queryKeys(ctx, tx, qLiveKeys)
		return s.orErr("access snapshot", err)
	})
	return out, err
}

// audit writes e and moves the access version on.
func (s *Store) audit(ctx context.Context, tx *sql.Tx, e fanout.AuditEntry) error {
	if _, err := tx.ExecContext(ctx, qInsertAudit, millis(e.At), e.Actor, e.Action, e.Subject, e.Tenant, e.Route, e.Reason); err != nil {
		return s.dbErr("audit "+e.Action, err)
	}
	if _, err := tx.ExecContext(ctx, qBumpAccess); err != nil {
		return s.dbErr("audit "+e.Action, err)
	}
	return nil
}

// rowScanner is a *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }

func scanSubscription(r rowScanner) (fanout.Subscription, error) {
	var sub fanout.Subscription
	var state string
	var requested int64
	var decided sql.NullInt64
	if err := r.Scan(&sub.ID, &sub.Tenant, &sub.Route, &state, &sub.Note, &sub.Reason, &sub.DecidedBy, &requested, &decided); err != nil {
		return sub, err
	}
	sub.State = fanout.SubscriptionState(state)
	sub.RequestedAt = fromMillis(requested)
	sub.DecidedAt, _ = nullMillis(decided)
	return sub, nil
}

func querySubscriptions(ctx context.Context, tx *sql.Tx, query string, args ...any) (out []fanout.Subscription, err error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer closeRows(rows, &err)
	for rows.Next() {
		sub, err := scanSubscription(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sub)
	}
	return out, rows.Err()
}

func scanKey(r rowScanner) (fanout.APIKey, error) {
	var k fanout.APIKey
	var created int64
	var expires, revoked, used sql.NullInt64
	if err := r.Scan(&k.ID, &k.Tenant, &k.Name, &k.Prefix, &k.SHA256, &created, &expires, &revoked, &used); err != nil {
		return k, err
	}
	k.CreatedAt = fromMillis(created)
	k.ExpiresAt, _ = nullMillis(expires)
	k.RevokedAt, _ = nullMillis(revoked)
	k.LastUsedAt, _ = nullMillis(used)
	return k, nil
}

func queryKeys(ctx context.Context, tx *sql.Tx, query string, args ...any) (out []fanout.APIKey, err error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer closeRows(rows, &err)
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// orErr is dbErr for an error that may be nil.
func (s *Store) orErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return s.dbErr(op, err)
}
