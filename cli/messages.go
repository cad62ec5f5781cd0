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
  fanout messages list   [--route R] [--target T] [--state S] [--since 1h] [--until T] [--limit N] [--cursor C] [--json]
  fanout messages show   ID
  fanout messages replay ID [--target T]
  fanout messages replay --all [--route R] [--target T] [--state dead] [--since 1h] [--until T]
  fanout messages delete ID
  fanout messages backfill ROUTE --target T --since 24h [--until T]

The admin API is reached at $FANOUT_ADMIN_URL (default http://127.0.0.1:9090)
with the bearer token in $FANOUT_ADMIN_TOKEN.
`

func runMessages(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, messagesUsage)
		return exitError{2}
	}
	fs := newFlagSet("messages "+args[0], env)
	baseURL := fs.String("admin-url", env.Getenv("FANOUT_ADMIN_URL"), "admin API URL (default $FANOUT_ADMIN_URL, else http://127.0.0.1:9090)")
	route := fs.String("route", "", "route name")
	target := fs.String("target", "", "target name")
	tenant := fs.String("tenant", "", "tenant")
	state := fs.String("state", "", "delivery state: blocked, pending, delivering, retrying, succeeded, dead, skipped")
	since := fs.String("since", "", "received at or after: RFC 3339 or a duration before now (1h, 2d)")
	until := fs.String("until", "", "received before: RFC 3339 or a duration before now")
	cursor := fs.String("cursor", "", "next_cursor of the previous page")
	limit := fs.Int("limit", 0, "page size (default 100)")
	asJSON := fs.Bool("json", false, "print the API's JSON")
	all := fs.Bool("all", false, "replay: every delivery matching the filters (default state dead)")
	pos, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	if *baseURL == "" {
		*baseURL = "http://127.0.0.1:9090"
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	c := admin.NewClient(*baseURL, env.Getenv("FANOUT_ADMIN_TOKEN"), &http.Client{Timeout: time.Minute})

	needID := func() (string, error) {
		if len(pos) != 1 {
			fmt.Fprint(env.Stderr, messagesUsage)
			return "", exitError{2}
		}
		return pos[0], nil
	}
	switch args[0] {
	case "list":
		resp, err := c.ListMessages(ctx, admin.ListParams{
			Route: *route, Target: *target, Tenant: *tenant, State: *state,
			Since: *since, Until: *until, Cursor: *cursor, Limit: *limit,
		})
		if err != nil {
			return apiErr(err)
		}
		if *asJSON {
			return printJSON(env.Stdout, resp)
		}
		printMessages(env.Stdout, resp)
		return nil
	case "show":
		id, err := needID()
		if err != nil {
			return err
		}
		msg, err := c.GetMessage(ctx, id)
		if err != nil {
			return apiErr(err)
		}
		return printJSON(env.Stdout, msg)
	case "replay":
		var n int
		if *all {
			if len(pos) != 0 {
				return fmt.Errorf("replay --all takes filters, not a message id")
			}
			n, err = c.ReplayDeliveries(ctx, admin.ReplayFilter{
				Route: *route, Target: *target, Tenant: *tenant, State: *state, Since: *since, Until: *until,
			})
		} else {
			id, idErr := needID()
			if idErr != nil {
				return idErr
			}
			n, err = c.ReplayMessage(ctx, id, *target)
		}
		if err != nil {
			return apiErr(err)
		}
		fmt.Fprintf(env.Stdout, "%d deliveries replayed\n", n)
		return nil
	case "delete":
		id, err := needID()
		if err != nil {
			return err
		}
		if err := c.DeleteMessage(ctx, id); err != nil {
			return apiErr(err)
		}
		fmt.Fprintf(env.Stdout, "%s deleted\n", id)
		return nil
	case "backfill":
		if len(pos) != 1 || *target == "" || *since == "" {
			fmt.Fprint(env.Stderr, messagesUsage)
			return exitError{2}
		}
		n, err := c.Backfill(ctx, pos[0], admin.BackfillRequest{Target: *target, Since: *since, Until: *until})
		if err != nil {
			return apiErr(err)
		}
		fmt.Fprintf(env.Stdout, "%d deliveries queued for %s\n", n, *target)
		return nil
	default:
		fmt.Fprintf(env.Stderr, "fanout messages: unknown subcommand %q\n%s", args[0], messagesUsage)
		return exitError{2}
	}
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
