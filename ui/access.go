package ui

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/fanouthq/fanout/admin"
	"github.com/fanouthq/fanout/config"
)

// The access pages (docs/operations.md, API management): for a tenant, the
// developer portal — the routes it may call or ask for, its subscriptions,
// its keys and a way to make one; for the operator, every subscription with
// approve, reject and revoke, every tenant's keys, and the audit log.

// portalRoute is one route as the portal shows it.
type portalRoute struct {
	Name, Method, Path, Mode, Auth string
	State                          string // lifecycle state
	Sunset, Link                   string
	Access                         string // none, auto or approval
	// Subscription is the tenant's subscription to the route, nil when
	// it has none.
	Subscription *admin.Subscription
	// CanRequest: the route needs a subscription and the tenant has none
	// that is pending or active.
	CanRequest bool
	Callable   bool // the tenant's keys may call it now
}

type accessView struct {
	Admin         bool
	Routes        []portalRoute
	Subscriptions []admin.Subscription
	Keys          []admin.Key
	Audit         []admin.AuditEntry
	State         string   // the admin's subscription filter
	States        []string // its choices
	// NewKey is a key just created: shown on this answer only.
	NewKey *admin.NewKeyResponse
	// MinExpiry is the earliest expiry the key form offers (tomorrow).
	MinExpiry string
}

var subscriptionStates = []string{"pending", "active", "rejected", "revoked"}

func (h *Handler) accessPage(w http.ResponseWriter, r *http.Request, s session) error {
	v, err := h.accessData(r, s)
	if err != nil {
		return err
	}
	h.render(w, r, &s, http.StatusOK, "access.html", "Access", "access", v)
	return nil
}

// accessData reads what the access page shows.
func (h *Handler) accessData(r *http.Request, s session) (*accessView, error) {
	ctx, cancel := withTimeout(r)
	defer cancel()
	v := &accessView{Admin: s.admin, States: subscriptionStates,
		MinExpiry: h.now().UTC().Add(24 * time.Hour).Format("2006-01-02")}
	q := url.Values{}
	if s.admin {
		v.State = r.URL.Query().Get("state")
		if v.State != "" && !slices.Contains(subscriptionStates, v.State) {
			v.State = ""
		}
		if v.State != "" {
			q.Set("state", v.State)
		}
	}
	var subs admin.SubscriptionsResponse
	if err := h.call(ctx, s.token, http.MethodGet, "/v1/subscriptions", q, nil, &subs); err != nil {
		return nil, err
	}
	v.Subscriptions = subs.Subscriptions
	var keys admin.KeysResponse
	if err := h.call(ctx, s.token, http.MethodGet, "/v1/keys", nil, nil, &keys); err != nil {
		return nil, err
	}
	v.Keys = keys.Keys
	slices.Reverse(v.Keys) // newest first
	var audit admin.AuditResponse
	if err := h.call(ctx, s.token, http.MethodGet, "/v1/audit", url.Values{"since": {"30d"}, "limit": {"1000"}}, nil, &audit); err != nil {
		return nil, err
	}
	v.Audit = audit.Entries
	slices.Reverse(v.Audit) // newest first
	if len(v.Audit) > 100 {
		v.Audit = v.Audit[:100]
	}
	if !s.admin {
		v.Routes = h.portalRoutes(s.tenant, v.Subscriptions)
	}
	return v, nil
}

// portalRoutes lists the routes tenant may call or ask for: those whose
// tenants list is empty or names it, drafts included as upcoming.
func (h *Handler) portalRoutes(tenant string, subs []admin.Subscription) []portalRoute {
	byRoute := map[string]*admin.Subscription{}
	for i := range subs {
		byRoute[subs[i].Route] = &subs[i]
	}
	var out []portalRoute
	for _, rc := range h.config().Routes {
		if rc == nil || (len(rc.Tenants) > 0 && !slices.Contains(rc.Tenants, tenant)) {
			continue
		}
		p := portalRoute{
			Name: rc.Name, Method: rc.Match.Method, Path: rc.Match.Path, Mode: string(rc.Mode),
			Auth:   cmp.Or(string(rc.Auth), "none"),
			State:  cmp.Or(string(rc.Lifecycle.State), string(config.StatePublished)),
			Sunset: rc.Lifecycle.Sunset, Link: rc.Lifecycle.Link,
			Access:       cmp.Or(string(rc.Access.Subscription), "none"),
			Subscription: byRoute[rc.Name],
		}
		live := p.State == string(config.StatePublished) || p.State == string(config.StateDeprecated)
		if rc.NeedsSubscription() {
			active := p.Subscription != nil && p.Subscription.State == "active"
			p.CanRequest = p.Subscription == nil || (p.Subscription.State != "pending" && !active)
			p.Callable = live && active
		} else {
			p.Callable = live
		}
		out = append(out, p)
	}
	return out
}

// requestAccess asks for a subscription for the session's tenant.
func (h *Handler) requestAccess(w http.ResponseWriter, r *http.Request, s session) error {
	route := r.PostFormValue("route")
	ctx, cancel := withTimeout(r)
	defer cancel()
	var sub admin.Subscription
	err := h.call(ctx, s.token, http.MethodPost, "/v1/subscriptions", nil,
		admin.SubscriptionRequest{Route: route, Note: r.PostFormValue("note")}, &sub)
	if err != nil {
		if flashable(err) {
			h.flash(s, "Request refused: "+err.(*apiError).Message, true)
			redirect(w, r, "/ui/access")
			return nil
		}
		return err
	}
	msg := fmt.Sprintf("Access to %s requested: the operator decides (subscription %s, pending).", route, sub.ID)
	if sub.State == "active" {
		msg = fmt.Sprintf("Subscribed to %s: its calls are open to your keys now.", route)
	}
	h.flash(s, msg, false)
	redirect(w, r, "/ui/access")
	return nil
}

// decideAccess approves, rejects or revokes a subscription (the admin
// token; a tenant's is refused by the admin API).
func (h *Handler) decideAccess(w http.ResponseWriter, r *http.Request, s session) error {
	id, action := r.PathValue("id"), r.PathValue("action")
	if !slices.Contains([]string{"approve", "reject", "revoke"}, action) {
		h.renderError(w, r, &s, http.StatusNotFound, "No such action.")
		return nil
	}
	ctx, cancel := withTimeout(r)
	defer cancel()
	var sub admin.Subscription
	err := h.call(ctx, s.token, http.MethodPost, "/v1/subscriptions/"+url.PathEscape(id)+"/"+action, nil,
		admin.DecisionRequest{Reason: r.PostFormValue("reason")}, &sub)
	back := "/ui/access"
	if st := r.PostFormValue("state"); slices.Contains(subscriptionStates, st) {
		back += "?state=" + st
	}
	if err != nil {
		if flashable(err) {
			h.flash(s, "Refused: "+err.(*apiError).Message, true)
			redirect(w, r, back)
			return nil
		}
		return err
	}
	h.flash(s, fmt.Sprintf("Subscription of %s to %s is now %s.", sub.Tenant, sub.Route, sub.State), false)
	redirect(w, r, back)
	return nil
}

// createKey makes a key and shows it on this answer, once: it is not
// kept anywhere the browser could fetch it again.
func (h *Handler) createKey(w http.ResponseWriter, r *http.Request, s session) error {
	req := admin.KeyRequest{Name: r.PostFormValue("name")}
	if d := r.PostFormValue("expires"); d != "" {
		t, err := time.Parse("2006-01-02", d)
		if err != nil {
			h.flash(s, "Key refused: the expiry must be a date such as 2027-06-30.", true)
			redirect(w, r, "/ui/access")
			return nil
		}
		req.ExpiresAt = t.UTC().Format(time.RFC3339)
	}
	if s.admin {
		req.Tenant = r.PostFormValue("tenant")
	}
	ctx, cancel := withTimeout(r)
	defer cancel()
	var nk admin.NewKeyResponse
	if err := h.call(ctx, s.token, http.MethodPost, "/v1/keys", nil, req, &nk); err != nil {
		if flashable(err) {
			h.flash(s, "Key refused: "+err.(*apiError).Message, true)
			redirect(w, r, "/ui/access")
			return nil
		}
		return err
	}
	v, err := h.accessData(r, s)
	if err != nil {
		return err
	}
	v.NewKey = &nk
	h.render(w, r, &s, http.StatusCreated, "access.html", "Access", "access", v)
	return nil
}

// revokeKey revokes one of the session's keys.
func (h *Handler) revokeKey(w http.ResponseWriter, r *http.Request, s session) error {
	id := r.PathValue("id")
	ctx, cancel := withTimeout(r)
	defer cancel()
	var k admin.Key
	if err := h.call(ctx, s.token, http.MethodDelete, "/v1/keys/"+url.PathEscape(id), nil, nil, &k); err != nil {
		if flashable(err) {
			h.flash(s, "Revoke refused: "+err.(*apiError).Message, true)
			redirect(w, r, "/ui/access")
			return nil
		}
		return err
	}
	h.flash(s, fmt.Sprintf("Key %s (%s) revoked: it is refused from its next request.", k.Name, k.Prefix), false)
	redirect(w, r, "/ui/access")
	return nil
}
