package config

// This file holds a route's access settings (docs/configuration.md,
// Access): whether a tenant needs a subscription to call the route.

// SubscriptionMode says whether a route needs a subscription.
type SubscriptionMode string

// The subscription modes.
const (
	// SubscriptionNone: every caller the route's auth admits may call it
	// (the default, also written "").
	SubscriptionNone SubscriptionMode = "none"
	// SubscriptionAuto: a tenant needs an active subscription, and a
	// request for one is active at once.
	SubscriptionAuto SubscriptionMode = "auto"
	// SubscriptionApproval: a tenant needs an active subscription, and a
	// request for one waits (pending) for the operator to approve it.
	SubscriptionApproval SubscriptionMode = "approval"
)

// Access is who may call a route beyond its auth and tenants.
type Access struct {
	// Subscription is none (default), auto or approval. With auto or
	// approval the route needs auth api_key or jwt (a caller must have a
	// tenant), and a tenant's callers are refused 403
	// subscription_required until the tenant has an active subscription
	// to the route.
	Subscription SubscriptionMode `yaml:"subscription"`
}

// NeedsSubscription reports whether callers of r need their tenant to
// hold an active subscription to it.
func (r *Route) NeedsSubscription() bool {
	s := r.Access.Subscription
	return s == SubscriptionAuto || s == SubscriptionApproval
}

// access checks a route's access settings.
func (v *validator) access(p fieldPath, r *Route) {
	sp := p.key("access").key("subscription")
	s := r.Access.Subscription
	if s == "" {
		return
	}
	v.oneOf(sp, string(s), string(SubscriptionNone), string(SubscriptionAuto), string(SubscriptionApproval))
	if r.NeedsSubscription() && (r.Auth == "" || r.Auth == AuthNone) {
		v.add(sp, "%s needs auth api_key or jwt: a subscription belongs to a tenant, and without authentication a caller has none", s)
	}
}
