package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fanouthq/fanout/admin"
	"github.com/fanouthq/fanout/apierror"
)

const messagesUsage = `usage:
  fanout messages list     [--route R] [--target T] [--tenant T] [--state S] [--since 1h] [--until T] [--limit N] [--cursor C] [--json]
  fanout messages show     ID
  fanout messages replay   ID [--target T]
  fanout messages replay   --all [--route R] [--target T] [--tenant T] [--state dead] [--since 1h] [--until T]
  fanout messages delete   ID
  fanout messages backfill ROUTE --target T --since 24h [--until T]

Run "fanout messages SUBCOMMAND --help" for its flags. The admin API is
reached at $FANOUT_ADMIN_URL (default http://127.0.0.1:9090) with the
bearer token in $FANOUT_ADMIN_TOKEN.

` + exitCodes

// The help of each messages subcommand.
const (
	messagesListHelp = `usage: fanout messages list [--route R] [--target T] [--tenant T] [--state S] [--since 1h] [--until T] [--limit N] [--cursor C] [--json]

Lists messages, newest first, with the state of each delivery.

` + exitCodes
	messagesShowHelp = `usage: fanout messages show ID

Prints one message with its deliveries and their attempts, as JSON.

` + exitCodes
	messagesReplayHelp = `usage: fanout messages replay ID [--target T]
       fanout messages replay --all [--route R] [--target T] [--tenant T] [--state dead] [--since 1h] [--until T]

Delivers a message again (to every target, or to --target), or with --all
every delivery matching the filters (default state dead).

` + exitCodes
	messagesDeleteHelp = `usage: fanout messages delete ID

Deletes a message and its deliveries.

` + exitCodes
	messagesBackfillHelp = `usage: fanout messages backfill ROUTE --target T --since 24h [--until T]

Queues a delivery to the target for every message of the route received
in the window (a target added to the route after they arrived).

` + exitCodes
)

// adminFlags are the flags every messages subcommand has.
type adminFlags struct {
	baseURL *string
}

func addAdminFlags(fs *flagSet, env Env) adminFlags {
	return adminFlags{baseURL: fs.String("admin-url", env.Getenv("FANOUT_ADMIN_URL"), "admin API URL (default $FANOUT_ADMIN_URL, else http://127.0.0.1:9090)")}
}

// client returns the admin API client and a context bounding the call.
func (a adminFlags) client(ctx context.Context, env Env) (*admin.Client, context.Context, context.CancelFunc) {
	base := *a.baseURL
	if base == "" {
		base = "http://127.0.0.1:9090"
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	return admin.NewClient(base, env.Getenv("FANOUT_ADMIN_TOKEN"), &http.Client{Timeout: time.Minute}), ctx, cancel
}

// filterFlags select deliveries: list and replay --all.
type filterFlags struct {
	route, target, tenant, state, since, until *string
}

func addFilterFlags(fs *flagSet, stateHelp string) filterFlags {
	return filterFlags{
		route:  fs.String("route", "", "route name"),
		target: fs.String("target", "", "target name"),
		tenant: fs.String("tenant", "", "tenant"),
		state:  fs.String("state", "", stateHelp),
		since:  fs.String("since", "", "received at or after: RFC 3339 or a duration before now (1h, 2d)"),
		until:  fs.String("until", "", "received before: RFC 3339 or a duration before now"),
	}
}

const deliveryStates = "blocked, pending, delivering, retrying, succeeded, dead, skipped"

func runMessages(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, messagesUsage)
		return exitError{2}
	}
	switch args[0] {
	case "list":
		return runMessagesList(ctx, args[1:], env)
	case "show":
		return runMessagesShow(ctx, args[1:], env)
	case "replay":
		return runMessagesReplay(ctx, args[1:], env)
	case "delete":
		return runMessagesDelete(ctx, args[1:], env)
	case "backfill":
		return runMessagesBackfill(ctx, args[1:], env)
	case "help", "-h", "--help":
		fmt.Fprint(env.Stdout, messagesUsage)
		return errHelp
	default:
		fmt.Fprintf(env.Stderr, "fanout messages: unknown subcommand %q\n\n%s", args[0], messagesUsage)
		return exitError{2}
	}
}

func runMessagesList(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("messages list", messagesListHelp, env)
	af := addAdminFlags(fs, env)
	f := addFilterFlags(fs, "delivery state: "+deliveryStates)
	cursor := fs.String("cursor", "", "next_cursor of the previous page")
	limit := fs.Int("limit", 0, "page size (default 100)")
	asJSON := fs.Bool("json", false, "print the API's JSON")
	if pos, err := fs.parse(args); err != nil {
		return err
	} else if len(pos) > 0 {
		return fs.usageError()
	}
	c, ctx, cancel := af.client(ctx, env)
	defer cancel()
	resp, err := c.ListMessages(ctx, admin.ListParams{
		Route: *f.route, Target: *f.target, Tenant: *f.tenant, State: *f.state,
		Since: *f.since, Until: *f.until, Cursor: *cursor, Limit: *limit,
	})
	if err != nil {
		return apiErr(err)
	}
	if *asJSON {
		return printJSON(env.Stdout, resp)
	}
	printMessages(env.Stdout, resp)
	return nil
}

// oneID parses the flags of a subcommand that takes one message id.
func oneID(fs *flagSet, args []string) (string, error) {
	pos, err := fs.parse(args)
	if err != nil {
		return "", err
	}
	if len(pos) != 1 {
		return "", fs.usageError()
	}
	return pos[0], nil
}

func runMessagesShow(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("messages show", messagesShowHelp, env)
	af := addAdminFlags(fs, env)
	id, err := oneID(fs, args)
	if err != nil {
		return err
	}
	c, ctx, cancel := af.client(ctx, env)
	defer cancel()
	msg, err := c.GetMessage(ctx, id)
	if err != nil {
		return apiErr(err)
	}
	return printJSON(env.Stdout, msg)
}

func runMessagesReplay(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("messages replay", messagesReplayHelp, env)
	af := addAdminFlags(fs, env)
	f := addFilterFlags(fs, "with --all: delivery state (default dead)")
	all := fs.Bool("all", false, "every delivery matching the filters (default state dead)")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if !*all && (len(pos) != 1 || *f.route != "" || *f.tenant != "" || *f.state != "" || *f.since != "" || *f.until != "") {
		// One message: only --target applies.
		return fs.usageError()
	}
	if *all && len(pos) != 0 {
		fmt.Fprintln(env.Stderr, "fanout messages replay: --all takes filters, not a message id")
		return exitError{2}
	}
	c, ctx, cancel := af.client(ctx, env)
	defer cancel()
	var n int
	if *all {
		n, err = c.ReplayDeliveries(ctx, admin.ReplayFilter{
			Route: *f.route, Target: *f.target, Tenant: *f.tenant, State: *f.state, Since: *f.since, Until: *f.until,
		})
	} else {
		n, err = c.ReplayMessage(ctx, pos[0], *f.target)
	}
	if err != nil {
		return apiErr(err)
	}
	fmt.Fprintf(env.Stdout, "%d deliveries replayed\n", n)
	return nil
}

func runMessagesDelete(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("messages delete", messagesDeleteHelp, env)
	af := addAdminFlags(fs, env)
	id, err := oneID(fs, args)
	if err != nil {
		return err
	}
	c, ctx, cancel := af.client(ctx, env)
	defer cancel()
	if err := c.DeleteMessage(ctx, id); err != nil {
		return apiErr(err)
	}
	fmt.Fprintf(env.Stdout, "%s deleted\n", id)
	return nil
}

func runMessagesBackfill(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("messages backfill", messagesBackfillHelp, env)
	af := addAdminFlags(fs, env)
	target := fs.String("target", "", "the target to deliver to (required)")
	since := fs.String("since", "", "received at or after: RFC 3339 or a duration before now (required)")
	until := fs.String("until", "", "received before: RFC 3339 or a duration before now")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *target == "" || *since == "" {
		return fs.usageError()
	}
	c, ctx, cancel := af.client(ctx, env)
	defer cancel()
	n, err := c.Backfill(ctx, pos[0], admin.BackfillRequest{Target: *target, Since: *since, Until: *until})
	if err != nil {
		return apiErr(err)
	}
	fmt.Fprintf(env.Stdout, "%d deliveries queued for %s\n", n, *target)
	return nil
}

// apiErr turns an admin API error into one readable line.
func apiErr(err error) error {
	var e *apierror.Error
	if errors.As(err, &e) {
		return fmt.Errorf("%s (%d %s)", e.Message, e.Status, e.Code)
	}
	return err
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printMessages(w io.Writer, resp admin.ListResponse) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tROUTE\tRECEIVED\tDELIVERIES")
	for _, m := range resp.Messages {
		var ds []string
		for _, d := range m.Deliveries {
			s := d.Target + ":" + d.State
			if d.Step != "" {
				s = d.Step + "→" + s // a step of an async steps route
			}
			if d.Attempts > 1 || d.State == "dead" {
				s += fmt.Sprintf("(%d)", d.Attempts)
			}
			ds = append(ds, s)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.ID, m.Route, m.ReceivedAt.Format(time.RFC3339), strings.Join(ds, " "))
	}
	_ = tw.Flush()
	if resp.NextCursor != "" {
		fmt.Fprintf(w, "more: --cursor %s\n", resp.NextCursor)
	}
}
