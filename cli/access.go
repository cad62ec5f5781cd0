package cli

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/fanouthq/fanout/admin"
)

// API management through the admin API: subscriptions, self-service keys
// and the audit log. $FANOUT_ADMIN_TOKEN is the admin token or a tenant
// admin token, as the admin API allows.

const subscriptionsUsage = `usage:
  fanout subscriptions request ROUTE [--note N] [--tenant T]   ask for access to a route
  fanout subscriptions list    [--route R] [--tenant T] [--state S] [--json]
  fanout subscriptions approve ID [--reason R]                 admin token only
  fanout subscriptions reject  ID [--reason R]                 admin token only
  fanout subscriptions revoke  ID [--reason R]                 admin token only

A route with access.subscription auto or approval answers 403
subscription_required until the caller's tenant has an active
subscription. The admin API is reached at $FANOUT_ADMIN_URL (default
http://127.0.0.1:9090) with the bearer token in $FANOUT_ADMIN_TOKEN.

` + exitCodes

const (
	subscriptionsRequestHelp = `usage: fanout subscriptions request ROUTE [--note N] [--tenant T]

Asks for a subscription to ROUTE: active at once when the route's access is
auto, pending until the operator approves it under approval. With a tenant
admin token the tenant is the token's; with the admin token --tenant names it.

` + exitCodes
	subscriptionsListHelp = `usage: fanout subscriptions list [--route R] [--tenant T] [--state S] [--json]

Lists subscriptions, oldest first (a tenant token: its own only).

` + exitCodes
	subscriptionsDecideHelp = `usage: fanout subscriptions %s ID [--reason R]

%s. Needs the admin token; the reason goes to the audit log.

` + exitCodes
	auditHelp = `usage: fanout audit [--since 24h] [--tenant T] [--json]

Prints every decision and key change: when, who (admin or tenant:NAME),
what, on what, and the reason. A tenant token sees its own tenant's.

` + exitCodes
)

func runSubscriptions(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, subscriptionsUsage)
		return exitError{2}
	}
	switch args[0] {
	case "request":
		return runSubscriptionsRequest(ctx, args[1:], env)
	case "list":
		return runSubscriptionsList(ctx, args[1:], env)
	case "approve":
		return runSubscriptionsDecide(ctx, "approve", "Approves a pending (or rejected, or revoked) subscription", args[1:], env)
	case "reject":
		return runSubscriptionsDecide(ctx, "reject", "Rejects a pending subscription", args[1:], env)
	case "revoke":
		return runSubscriptionsDecide(ctx, "revoke", "Revokes an active or pending subscription", args[1:], env)
	case "help", "-h", "--help":
		fmt.Fprint(env.Stdout, subscriptionsUsage)
		return errHelp
	}
	fmt.Fprintf(env.Stderr, "fanout subscriptions: unknown subcommand %q\n\n%s", args[0], subscriptionsUsage)
	return exitError{2}
}

func runSubscriptionsRequest(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("subscriptions request", subscriptionsRequestHelp, env)
	af := addAdminFlags(fs, env)
	note := fs.String("note", "", "why the tenant needs the route, for the operator")
	tenant := fs.String("tenant", "", "the tenant (admin token only)")
	asJSON := fs.Bool("json", false, "print the API's JSON")
	route, err := oneID(fs, args)
	if err != nil {
		return err
	}
	c, ctx, cancel := af.client(ctx, env)
	defer cancel()
	sub, err := c.RequestSubscription(ctx, admin.SubscriptionRequest{Route: route, Note: *note, Tenant: *tenant})
	if err != nil {
		return apiErr(err)
	}
	if *asJSON {
		return printJSON(env.Stdout, sub)
	}
	fmt.Fprintf(env.Stdout, "subscription %s to %s for tenant %s: %s\n", sub.ID, sub.Route, sub.Tenant, sub.State)
	return nil
}

func runSubscriptionsList(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("subscriptions list", subscriptionsListHelp, env)
	af := addAdminFlags(fs, env)
	route := fs.String("route", "", "route name")
	tenant := fs.String("tenant", "", "tenant")
	state := fs.String("state", "", "pending, active, rejected or revoked")
	asJSON := fs.Bool("json", false, "print the API's JSON")
	if pos, err := fs.parse(args); err != nil {
		return err
	} else if len(pos) > 0 {
		return fs.usageError()
	}
	c, ctx, cancel := af.client(ctx, env)
	defer cancel()
	subs, err := c.ListSubscriptions(ctx, *route, *tenant, *state)
	if err != nil {
		return apiErr(err)
	}
	if *asJSON {
		return printJSON(env.Stdout, admin.SubscriptionsResponse{Subscriptions: subs})
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTENANT\tROUTE\tSTATE\tREQUESTED\tDECIDED")
	for _, s := range subs {
		decided := ""
		if s.DecidedAt != nil {
			decided = s.DecidedAt.Format(time.RFC3339) + " by " + s.DecidedBy
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Tenant, s.Route, s.State, s.RequestedAt.Format(time.RFC3339), decided)
	}
	return tw.Flush()
}

func runSubscriptionsDecide(ctx context.Context, action, what string, args []string, env Env) error {
	fs := newFlagSet("subscriptions "+action, fmt.Sprintf(subscriptionsDecideHelp, action, what), env)
	af := addAdminFlags(fs, env)
	reason := fs.String("reason", "", "why, for the tenant and the audit log")
	id, err := oneID(fs, args)
	if err != nil {
		return err
	}
	c, ctx, cancel := af.client(ctx, env)
	defer cancel()
	sub, err := c.DecideSubscription(ctx, id, action, *reason)
	if err != nil {
		return apiErr(err)
	}
	fmt.Fprintf(env.Stdout, "subscription %s to %s for tenant %s: %s\n", sub.ID, sub.Route, sub.Tenant, sub.State)
	return nil
}

func runAudit(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("audit", auditHelp, env)
	af := addAdminFlags(fs, env)
	since := fs.String("since", "", "at or after: RFC 3339 or a duration before now (24h, 7d)")
	tenant := fs.String("tenant", "", "tenant")
	asJSON := fs.Bool("json", false, "print the entries as JSON")
	if pos, err := fs.parse(args); err != nil {
		return err
	} else if len(pos) > 0 {
		return fs.usageError()
	}
	c, ctx, cancel := af.client(ctx, env)
	defer cancel()
	var all []admin.AuditEntry
	var after int64
	for range 1000 { // at most 1000 pages of 100
		page, err := c.Audit(ctx, *since, *tenant, after)
		if err != nil {
			return apiErr(err)
		}
		all = append(all, page.Entries...)
		if page.NextAfter == 0 {
			break
		}
		after = page.NextAfter
	}
	if *asJSON {
		return printJSON(env.Stdout, admin.AuditResponse{Entries: all})
	}
	printAudit(env.Stdout, all)
	return nil
}

func printAudit(w io.Writer, entries []admin.AuditEntry) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tACTOR\tACTION\tSUBJECT\tTENANT\tROUTE\tREASON")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.At.Format(time.RFC3339), e.Actor, e.Action, e.Subject, e.Tenant, e.Route, e.Reason)
	}
	_ = tw.Flush()
}

const (
	keysCreateHelp = `usage: fanout keys create --name N [--expires-at T] [--tenant T] [--json]

Creates a self-service API key through the admin API and prints it once:
only its SHA-256 is stored. With a tenant admin token the key is the
token's tenant's; with the admin token --tenant names it.

` + exitCodes
	keysListHelp = `usage: fanout keys list [--tenant T] [--json]

Lists self-service keys: name, prefix, created, last used, expiry; never
the key.

` + exitCodes
	keysRevokeHelp = `usage: fanout keys revoke ID

Revokes a self-service key: every node refuses it (401) from its next
request.

` + exitCodes
)

func runKeysCreate(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("keys create", keysCreateHelp, env)
	af := addAdminFlags(fs, env)
	name := fs.String("name", "", "the key's name (letters, digits, '_', '-', '.')")
	expires := fs.String("expires-at", "", "when the key stops working, RFC 3339 (default never)")
	tenant := fs.String("tenant", "", "the tenant (admin token only)")
	asJSON := fs.Bool("json", false, "print the API's JSON")
	if pos, err := fs.parse(args); err != nil {
		return err
	} else if len(pos) > 0 || *name == "" {
		return fs.usageError()
	}
	c, ctx, cancel := af.client(ctx, env)
	defer cancel()
	k, err := c.CreateKey(ctx, admin.KeyRequest{Name: *name, ExpiresAt: *expires, Tenant: *tenant})
	if err != nil {
		return apiErr(err)
	}
	if *asJSON {
		return printJSON(env.Stdout, k)
	}
	fmt.Fprintf(env.Stdout, "key: %s\n\n# %s of tenant %s (id %s). It is not shown again.\n", k.Secret, k.Name, k.Tenant, k.ID)
	return nil
}

func runKeysList(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("keys list", keysListHelp, env)
	af := addAdminFlags(fs, env)
	tenant := fs.String("tenant", "", "tenant")
	asJSON := fs.Bool("json", false, "print the API's JSON")
	if pos, err := fs.parse(args); err != nil {
		return err
	} else if len(pos) > 0 {
		return fs.usageError()
	}
	c, ctx, cancel := af.client(ctx, env)
	defer cancel()
	keys, err := c.ListKeys(ctx, *tenant)
	if err != nil {
		return apiErr(err)
	}
	if *asJSON {
		return printJSON(env.Stdout, admin.KeysResponse{Keys: keys})
	}
	opt := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.Format(time.RFC3339)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTENANT\tNAME\tPREFIX\tCREATED\tLAST USED\tEXPIRES\tREVOKED")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Tenant, k.Name, k.Prefix, k.CreatedAt.Format(time.RFC3339),
			opt(k.LastUsedAt), opt(k.ExpiresAt), opt(k.RevokedAt))
	}
	return tw.Flush()
}

func runKeysRevoke(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("keys revoke", keysRevokeHelp, env)
	af := addAdminFlags(fs, env)
	id, err := oneID(fs, args)
	if err != nil {
		return err
	}
	c, ctx, cancel := af.client(ctx, env)
	defer cancel()
	k, err := c.RevokeKey(ctx, id)
	if err != nil {
		return apiErr(err)
	}
	fmt.Fprintf(env.Stdout, "key %s (%s of tenant %s) revoked\n", k.ID, k.Name, k.Tenant)
	return nil
}
