package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// The Client's calls of the access endpoints (access.go).

// RequestSubscription asks for a subscription to a route (req.Tenant with
// the admin token only).
func (c *Client) RequestSubscription(ctx context.Context, req SubscriptionRequest) (Subscription, error) {
	var out Subscription
	if err := c.do(ctx, http.MethodPost, "/v1/subscriptions", nil, req, &out); err != nil {
		return Subscription{}, fmt.Errorf("request subscription to %s: %w", req.Route, err)
	}
	return out, nil
}

// ListSubscriptions lists subscriptions; empty filters select all.
func (c *Client) ListSubscriptions(ctx context.Context, route, tenant, state string) ([]Subscription, error) {
	q := url.Values{}
	for k, v := range map[string]string{"route": route, "tenant": tenant, "state": state} {
		if v != "" {
			q.Set(k, v)
		}
	}
	var out SubscriptionsResponse
	if err := c.do(ctx, http.MethodGet, "/v1/subscriptions", q, nil, &out); err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	return out.Subscriptions, nil
}

// DecideSubscription approves, rejects or revokes a subscription: action
// is "approve", "reject" or "revoke".
func (c *Client) DecideSubscription(ctx context.Context, id, action, reason string) (Subscription, error) {
	var out Subscription
	path := "/v1/subscriptions/" + url.PathEscape(id) + "/" + url.PathEscape(action)
	if err := c.do(ctx, http.MethodPost, path, nil, DecisionRequest{Reason: reason}, &out); err != nil {
		return Subscription{}, fmt.Errorf("%s subscription %s: %w", action, id, err)
	}
	return out, nil
}

// Audit returns a page of the audit log; since is RFC 3339 or a duration
// before now, after the NextAfter of the previous page.
func (c *Client) Audit(ctx context.Context, since, tenant string, after int64) (AuditResponse, error) {
	q := url.Values{}
	if since != "" {
		q.Set("since", since)
	}
	if tenant != "" {
		q.Set("tenant", tenant)
	}
	if after > 0 {
		q.Set("after", strconv.FormatInt(after, 10))
	}
	var out AuditResponse
	if err := c.do(ctx, http.MethodGet, "/v1/audit", q, nil, &out); err != nil {
		return AuditResponse{}, fmt.Errorf("list audit: %w", err)
	}
	return out, nil
}

// CreateKey creates an API key; the answer holds the key, shown once.
func (c *Client) CreateKey(ctx context.Context, req KeyRequest) (NewKeyResponse, error) {
	var out NewKeyResponse
	if err := c.do(ctx, http.MethodPost, "/v1/keys", nil, req, &out); err != nil {
		return NewKeyResponse{}, fmt.Errorf("create key %s: %w", req.Name, err)
	}
	return out, nil
}

// ListKeys lists self-service keys (tenant "" for every tenant's, with
// the admin token).
func (c *Client) ListKeys(ctx context.Context, tenant string) ([]Key, error) {
	var q url.Values
	if tenant != "" {
		q = url.Values{"tenant": {tenant}}
	}
	var out KeysResponse
	if err := c.do(ctx, http.MethodGet, "/v1/keys", q, nil, &out); err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return out.Keys, nil
}

// RevokeKey revokes a self-service key.
func (c *Client) RevokeKey(ctx context.Context, id string) (Key, error) {
	var out Key
	if err := c.do(ctx, http.MethodDelete, "/v1/keys/"+url.PathEscape(id), nil, nil, &out); err != nil {
		return Key{}, fmt.Errorf("revoke key %s: %w", id, err)
	}
	return out, nil
}
