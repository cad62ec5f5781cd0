package stats

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/apierror"
)

// BacklogSource reports the undelivered work per target. fanout.Store
// implements it.
type BacklogSource interface {
	Backlog(ctx context.Context) ([]fanout.TargetBacklog, error)
}

var _ BacklogSource = fanout.Store(nil)

// Handler serves GET (and HEAD) /v1/stats?window=5m: the Report of s over
// the window (a Go duration, 1ns to 24h, default 5m), with each target's
// backlog read from backlog when it is not nil. A bad window is a 400, a
// failed backlog read the error apierror.From maps it to (503 when the
// store is unavailable), both in the apierror shape. Authentication is
// the caller's business: mount it behind the admin token.
func Handler(s *Stats, backlog BacklogSource) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := serve(s, backlog, w, r); err != nil {
			apierror.Write(w, err)
		}
	})
}

// SeriesHandler serves GET (and HEAD) /v1/stats/series?window=1h: the
// SeriesReport of s over the window (as Handler's), step by step. Bad
// windows and authentication are as with Handler.
func SeriesHandler(s *Stats) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := serveJSON(w, r, func(window time.Duration) (any, error) { return s.Series(window), nil })
		if err != nil {
			apierror.Write(w, err)
		}
	})
}

func serve(s *Stats, backlog BacklogSource, w http.ResponseWriter, r *http.Request) error {
	return serveJSON(w, r, func(window time.Duration) (any, error) {
		rep := s.Snapshot(window)
		if backlog != nil {
			bl, err := backlog.Backlog(r.Context())
			if err != nil {
				return nil, fmt.Errorf("stats: read backlog: %w", err)
			}
			rep.AddBacklog(bl, s.now())
		}
		return rep, nil
	})
}

// serveJSON answers a GET or HEAD with the JSON of report(window).
func serveJSON(w http.ResponseWriter, r *http.Request, report func(time.Duration) (any, error)) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		e := apierror.New(http.StatusMethodNotAllowed, "method_not_allowed", "use GET")
		e.Header = http.Header{"Allow": {"GET, HEAD"}}
		return e
	}
	window, err := ParseWindow(r.URL.Query().Get("window"))
	if err != nil {
		return err
	}
	rep, err := report(window)
	if err != nil {
		return err
	}
	body, err := json.Marshal(rep)
	if err != nil {
		return fmt.Errorf("stats: encode report: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(append(body, '\n'))
	}
	return nil
}

// ParseWindow parses the window query parameter: "" is DefaultWindow,
// otherwise a Go duration greater than 0 and at most MaxWindow. Its
// error is an *apierror.Error with status 400 and code bad_request.
func ParseWindow(v string) (time.Duration, error) {
	if v == "" {
		return DefaultWindow, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 || d > MaxWindow {
		return 0, apierror.BadRequest("window must be a duration greater than 0 and at most 24h, such as 5m").
			WithDetails(map[string]any{"window": v})
	}
	return d, nil
}
