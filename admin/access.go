package admin

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/apierror"
	"github.com/fanouthq/fanout/auth"
	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/ratelimit"
)

// This file serves API management decided at run time (docs/security.md):
// subscriptions to routes that need one, their approval, self-service API
// keys, and the audit log of every decision and key change. A tenant admin
// token requests subscriptions and manages its own keys; only the admin
// token decides.

// Limits of the access endpoints.
const (
	// maxNote bounds a subscription's note and a decision's reason.
	maxNote = 1000
	// maxKeyName bounds a key's name.
	maxKeyName = 64
	// maxLiveKeys bounds the keys of a tenant that are not revoked.
	maxLiveKeys = 100
	// keyBurst keys may be created by a tenant at once on a node, and
	// then one more every keyRefill.
	keyBurst  = 10
	keyRefill = 6 * time.Minute
	// keyPrefixLen is how much of a key its listing shows: "fo_" and 7
	// characters (42 of its 256 bits).
	keyPrefixLen = len(auth.KeyPrefix) + 7
)

func withAccess(o *Options) bool { return o.Access != nil }

// actor names who makes the change r asks for.
func actor(r *http.Request) string {
	if t := tenantScope(r); t != "" {
		return fanout.ActorTenant(t)
	}
	return fanout.ActorAdmin
}

// accessChanged tells this node's access view to reload at once (the
// others see the change by polling).
func (s *Server) accessChanged() {
	if s.opts.AccessChanged != nil {
		s.opts.AccessChanged()
	}
}

// ownTenant returns the tenant a change is made for: the tenant of a
// tenant token (asking for another is refused), or the one the admin
// names, which must be in the config.
func (s *Server) ownTenant(r *http.Request, asked string) (string, error) {
	if scope := tenantScope(r); scope != "" {
		if asked != "" && asked != scope {
			return "", apierror.Forbidden("this token acts only for tenant " + scope).
				WithDetails(map[string]any{"tenant": asked})
		}
		return scope, nil
	}
	if asked == "" {
		return "", errParam("tenant", "is required with the admin token")
	}
	if s.config().Tenants[asked] == nil {
		return "", apierror.New(http.StatusNotFound, "tenant_not_found",
			fmt.Sprintf("no tenant %q in the config", asked)).WithDetails(map[string]any{"tenant": asked})
	}
	return asked, nil
}

// scopedTenant is tenantFilter for access listings.
func scopedTenant(r *http.Request, asked string) (string, error) {
	scope := tenantScope(r)
	switch {
	case scope == "":
		return asked, nil
	case asked != "" && asked != scope:
		return "", apierror.Forbidden("this token sees only tenant " + scope).
			WithDetails(map[string]any{"tenant": asked})
	}
	return scope, nil
}

func checkText(name, v string) error {
	if len(v) > maxNote {
		return errParam(name, "is %d bytes long; at most %d", len(v), maxNote)
	}
	return nil
}

func (s *Server) createSubscription(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r.URL.Query()); err != nil {
		return err
	}
	var req SubscriptionRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	if req.Route == "" {
		return errParam("route", "is required")
	}
	if err := checkText("note", req.Note); err != nil {
		return err
	}
	tenant, err := s.ownTenant(r, req.Tenant)
	if err != nil {
		return err
	}
	rc := s.config().Route(req.Route)
	if rc == nil {
		return errRouteNotFound(req.Route)
	}
	if !rc.NeedsSubscription() {
		return apierror.New(http.StatusConflict, "subscription_not_required",
			fmt.Sprintf("route %q needs no subscription (its access.subscription is none)", req.Route)).
			WithDetails(map[string]any{"route": req.Route})
	}
	if len(rc.Tenants) > 0 && !slices.Contains(rc.Tenants, tenant) {
		return apierror.Forbidden(fmt.Sprintf("tenant %q may not call route %q (it is not in the route's tenants)", tenant, req.Route)).
			WithDetails(map[string]any{"route": req.Route, "tenant": tenant})
	}
	state := fanout.SubscriptionPending
	if rc.Access.Subscription == config.SubscriptionAuto {
		state = fanout.SubscriptionActive
	}
	sub, err := s.opts.Access.CreateSubscription(r.Context(), fanout.CreateSubscriptionParams{
		ID: fanout.NewSubscriptionID(), Tenant: tenant, Route: req.Route, Note: req.Note,
		State: state, Actor: actor(r), Now: s.now(),
	})
	if errors.Is(err, fanout.ErrConflict) {
		return apierror.New(http.StatusConflict, "subscription_exists",
			fmt.Sprintf("tenant %q already has a %s subscription to route %q", tenant, sub.State, req.Route)).
			WithDetails(map[string]any{"id": sub.ID, "state": string(sub.State)})
	}
	if err != nil {
		return fmt.Errorf("create subscription: %w", err)
	}
	s.log.InfoContext(r.Context(), "subscription requested", slog.String("subscription", sub.ID),
		slog.String(keyRoute, sub.Route), slog.String("tenant", tenant), slog.String("state", string(sub.State)))
	s.accessChanged()
	return writeJSON(w, http.StatusCreated, subscriptionView(sub))
}

func (s *Server) listSubscriptions(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := checkQuery(q, "route", "tenant", "state"); err != nil {
		return err
	}
	tenant, err := scopedTenant(r, q.Get("tenant"))
	if err != nil {
		return err
	}
	state := fanout.SubscriptionState(q.Get("state"))
	switch state {
	case "", fanout.SubscriptionPending, fanout.SubscriptionActive, fanout.SubscriptionRejected, fanout.SubscriptionRevoked:
	default:
		return errParam("state", "unknown state %q (known: pending, active, rejected, revoked)", state)
	}
	subs, err := s.opts.Access.ListSubscriptions(r.Context(), fanout.ListSubscriptionsParams{
		Tenant: tenant, Route: q.Get("route"), State: state,
	})
	if err != nil {
		return fmt.Errorf("list subscriptions: %w", err)
	}
	out := SubscriptionsResponse{Subscriptions: make([]Subscription, 0, len(subs))}
	for _, sub := range subs {
		out.Subscriptions = append(out.Subscriptions, subscriptionView(sub))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) getSubscription(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r.URL.Query()); err != nil {
		return err
	}
	sub, err := s.loadSubscription(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, subscriptionView(sub))
}

// loadSubscription reads the subscription of the path, as "not found" when
// it is another tenant's.
func (s *Server) loadSubscription(r *http.Request) (fanout.Subscription, error) {
	id := r.PathValue("id")
	sub, err := s.opts.Access.GetSubscription(r.Context(), id)
	if errors.Is(err, fanout.ErrNotFound) || (err == nil && tenantScope(r) != "" && sub.Tenant != tenantScope(r)) {
		return sub, errSubscriptionNotFound(id)
	}
	if err != nil {
		return sub, fmt.Errorf("get subscription %s: %w", id, err)
	}
	return sub, nil
}

func errSubscriptionNotFound(id string) *apierror.Error {
	return apierror.New(http.StatusNotFound, "subscription_not_found", fmt.Sprintf("no subscription %q", id)).
		WithDetails(map[string]any{"id": id})
}

func (s *Server) approveSubscription(w http.ResponseWriter, r *http.Request) error {
	return s.decide(w, r, fanout.SubscriptionActive)
}

func (s *Server) rejectSubscription(w http.ResponseWriter, r *http.Request) error {
	return s.decide(w, r, fanout.SubscriptionRejected)
}

func (s *Server) revokeSubscription(w http.ResponseWriter, r *http.Request) error {
	return s.decide(w, r, fanout.SubscriptionRevoked)
}

// decide moves the subscription of the path to state, with the admin
// token only (tenant tokens never reach it: see tenantEndpoints).
func (s *Server) decide(w http.ResponseWriter, r *http.Request, state fanout.SubscriptionState) error {
	if err := checkQuery(r.URL.Query()); err != nil {
		return err
	}
	var req DecisionRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	if err := checkText("reason", req.Reason); err != nil {
		return err
	}
	id := r.PathValue("id")
	sub, err := s.opts.Access.DecideSubscription(r.Context(), fanout.DecideSubscriptionParams{
		ID: id, State: state, Reason: req.Reason, Actor: actor(r), Now: s.now(),
	})
	switch {
	case errors.Is(err, fanout.ErrNotFound):
		return errSubscriptionNotFound(id)
	case errors.Is(err, fanout.ErrConflict):
		return apierror.New(http.StatusConflict, "invalid_transition",
			fmt.Sprintf("subscription %q is %s and cannot become %s", id, sub.State, state)).
			WithDetails(map[string]any{"id": id, "state": string(sub.State)})
	case err != nil:
		return fmt.Errorf("decide subscription %s: %w", id, err)
	}
	s.log.InfoContext(r.Context(), "subscription decided", slog.String("subscription", id),
		slog.String(keyRoute, sub.Route), slog.String("tenant", sub.Tenant), slog.String("state", string(state)))
	s.accessChanged()
	return writeJSON(w, http.StatusOK, subscriptionView(sub))
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := checkQuery(q, "since", "tenant", "after", "limit"); err != nil {
		return err
	}
	since, err := parseTime("since", q.Get("since"), s.now())
	if err != nil {
		return err
	}
	tenant, err := scopedTenant(r, q.Get("tenant"))
	if err != nil {
		return err
	}
	var after int64
	if v := q.Get("after"); v != "" {
		if after, err = strconv.ParseInt(v, 10, 64); err != nil || after < 0 {
			return errParam("after", "want the next_after of a previous page, got %q", v)
		}
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 1000 {
			return errParam("limit", "want 1 to 1000, got %q", v)
		}
	}
	entries, err := s.opts.Access.ListAudit(r.Context(), fanout.ListAuditParams{Since: since, Tenant: tenant, After: after, Limit: limit})
	if err != nil {
		return fmt.Errorf("list audit: %w", err)
	}
	out := AuditResponse{Entries: make([]AuditEntry, 0, len(entries))}
	for _, e := range entries {
		out.Entries = append(out.Entries, AuditEntry{ID: e.ID, At: e.At, Actor: e.Actor, Action: e.Action,
			Subject: e.Subject, Tenant: e.Tenant, Route: e.Route, Reason: e.Reason})
	}
	if len(entries) == limit {
		out.NextAfter = entries[len(entries)-1].ID
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r.URL.Query()); err != nil {
		return err
	}
	var req KeyRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	if !validKeyName(req.Name) {
		return errParam("name", "want 1 to %d letters, digits, '_', '-' or '.', got %q", maxKeyName, req.Name)
	}
	now := s.now()
	var expires time.Time
	if req.ExpiresAt != "" {
		t, err := time.Parse(time.RFC3339, req.ExpiresAt)
		if err != nil {
			return errParam("expires_at", "want an RFC 3339 time (2027-01-31T00:00:00Z), got %q", req.ExpiresAt)
		}
		if !t.After(now) {
			return errParam("expires_at", "must be in the future")
		}
		expires = t.UTC()
	}
	tenant, err := s.ownTenant(r, req.Tenant)
	if err != nil {
		return err
	}
	if t := s.config().Tenants[tenant]; t != nil {
		for _, k := range t.Keys {
			if k.Name == req.Name {
				return errKeyName(tenant, req.Name)
			}
		}
	}
	if ok, wait := s.keyLimit.Allow(tenant); !ok {
		secs := ratelimit.RetryAfterSeconds(wait)
		e := apierror.New(http.StatusTooManyRequests, "rate_limited",
			fmt.Sprintf("tenant %q created too many keys lately; retry after %ds", tenant, secs)).
			WithDetails(map[string]any{"retry_after_seconds": secs})
		e.Header = http.Header{"Retry-After": {strconv.Itoa(secs)}}
		return e
	}
	keys, err := s.opts.Access.ListKeys(r.Context(), tenant)
	if err != nil {
		return fmt.Errorf("list keys: %w", err)
	}
	live := 0
	for _, k := range keys {
		if k.RevokedAt.IsZero() {
			live++
		}
	}
	if live >= maxLiveKeys {
		return apierror.New(http.StatusConflict, "too_many_keys",
			fmt.Sprintf("tenant %q has %d keys; revoke one first (at most %d)", tenant, live, maxLiveKeys))
	}
	secret, hash := auth.NewKey()
	k := fanout.APIKey{ID: fanout.NewKeyID(), Tenant: tenant, Name: req.Name, Prefix: secret[:keyPrefixLen],
		SHA256: hash, CreatedAt: now, ExpiresAt: expires}
	err = s.opts.Access.CreateKey(r.Context(), fanout.CreateKeyParams{Key: k, Actor: actor(r)})
	if errors.Is(err, fanout.ErrConflict) {
		return errKeyName(tenant, req.Name)
	}
	if err != nil {
		return fmt.Errorf("create key: %w", err)
	}
	s.log.InfoContext(r.Context(), "key created", slog.String("key_id", k.ID), slog.String("tenant", tenant), slog.String("name", k.Name))
	s.accessChanged()
	return writeJSON(w, http.StatusCreated, NewKeyResponse{Key: keyView(k), Secret: secret})
}

func errKeyName(tenant, name string) *apierror.Error {
	return apierror.New(http.StatusConflict, "key_name_taken",
		fmt.Sprintf("tenant %q already has a key named %q", tenant, name)).
		WithDetails(map[string]any{"name": name})
}

func validKeyName(s string) bool {
	if s == "" || len(s) > maxKeyName {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := checkQuery(q, "tenant"); err != nil {
		return err
	}
	tenant, err := scopedTenant(r, q.Get("tenant"))
	if err != nil {
		return err
	}
	keys, err := s.opts.Access.ListKeys(r.Context(), tenant)
	if err != nil {
		return fmt.Errorf("list keys: %w", err)
	}
	out := KeysResponse{Keys: make([]Key, 0, len(keys))}
	for _, k := range keys {
		out.Keys = append(out.Keys, keyView(k))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r.URL.Query()); err != nil {
		return err
	}
	id := r.PathValue("id")
	k, err := s.opts.Access.RevokeKey(r.Context(), fanout.RevokeKeyParams{ID: id, Tenant: tenantScope(r), Actor: actor(r), Now: s.now()})
	switch {
	case errors.Is(err, fanout.ErrNotFound):
		return apierror.New(http.StatusNotFound, "key_not_found", fmt.Sprintf("no key %q", id)).
			WithDetails(map[string]any{"id": id})
	case errors.Is(err, fanout.ErrConflict):
		return apierror.New(http.StatusConflict, "key_revoked", fmt.Sprintf("key %q is already revoked", id)).
			WithDetails(map[string]any{"id": id})
	case err != nil:
		return fmt.Errorf("revoke key %s: %w", id, err)
	}
	s.log.InfoContext(r.Context(), "key revoked", slog.String("key_id", id), slog.String("tenant", k.Tenant))
	s.accessChanged()
	return writeJSON(w, http.StatusOK, keyView(k))
}

func subscriptionView(s fanout.Subscription) Subscription {
	return Subscription{ID: s.ID, Tenant: s.Tenant, Route: s.Route, State: string(s.State), Note: s.Note,
		Reason: s.Reason, DecidedBy: s.DecidedBy, RequestedAt: s.RequestedAt, DecidedAt: optTime(s.DecidedAt)}
}

func keyView(k fanout.APIKey) Key {
	return Key{ID: k.ID, Tenant: k.Tenant, Name: k.Name, Prefix: k.Prefix, CreatedAt: k.CreatedAt,
		ExpiresAt: optTime(k.ExpiresAt), RevokedAt: optTime(k.RevokedAt), LastUsedAt: optTime(k.LastUsedAt)}
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func errRouteNotFound(name string) *apierror.Error {
	return apierror.New(http.StatusNotFound, "route_not_found", fmt.Sprintf("no route %q in the config", name)).
		WithDetails(map[string]any{"route": name})
}
