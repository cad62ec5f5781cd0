package admin

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/apierror"
	"github.com/fanouthq/fanout/balance"
	"github.com/fanouthq/fanout/config"
)

func (s *Server) listRoutes(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r.URL.Query()); err != nil {
		return err
	}
	cfg := s.config()
	out := RoutesResponse{Routes: make([]Route, 0, len(cfg.Routes))}
	for _, rt := range cfg.Routes {
		if rt != nil {
			out.Routes = append(out.Routes, routeView(rt))
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

func routeView(rt *config.Route) Route {
	v := Route{
		Name: rt.Name,
		Mode: string(rt.Mode),
		Match: RouteMatch{
			Method: rt.Match.Method,
			Path:   rt.Match.Path,
			Host:   rt.Match.Host,
		},
		Targets:         make([]RouteTarget, 0, len(rt.Targets)),
		Deadline:        durationString(rt.Deadline),
		FailFast:        rt.FailFast,
		Require:         rt.Require,
		ContentType:     rt.ContentType,
		MaxBody:         int64(rt.MaxBody),
		MaxResponseBody: int64(rt.MaxResponseBody),
		Primary:         rt.Primary,
		SamplePercent:   rt.SamplePercent,
		HedgeAfter:      durationString(rt.HedgeAfter),
		Durable:         rt.Durable,
		OnFailure:       rt.OnFailure,
		Respond:         rt.Respond,
		Async:           rt.Async,
		Auth:            string(rt.Auth),
		Tenants:         slices.Clone(rt.Tenants),
		Schema:          rt.Schema,
	}
	for _, t := range rt.Targets {
		v.Targets = append(v.Targets, RouteTarget{Name: t.Name, Optional: t.Optional, BodyTemplate: t.Body != ""})
	}
	for _, st := range rt.Steps {
		if st == nil {
			continue
		}
		sv := RouteStep{
			Name:         st.Name,
			Target:       st.Target,
			After:        slices.Clone(st.After),
			Method:       st.Method,
			Path:         st.Path,
			BodyTemplate: st.Body != "",
			Secret:       slices.Clone(st.Secret),
		}
		if len(st.Headers) > 0 {
			sv.Headers = slices.Sorted(maps.Keys(st.Headers))
		}
		v.Steps = append(v.Steps, sv)
	}
	if rl := rt.RateLimit; rl != nil {
		v.RateLimit = &RouteRateLimit{RPS: rl.RPS, Burst: rl.Burst}
	}
	if l := rt.Lifecycle; l != (config.Lifecycle{}) {
		v.Lifecycle = &RouteLifecycle{
			State:        cmp.Or(string(l.State), string(config.StatePublished)),
			DeprecatedAt: l.DeprecatedAt,
			Sunset:       l.Sunset,
			Link:         l.Link,
		}
	}
	return v
}

// durationString shows d as the config writes it ("30s", "24h", "7d"),
// empty when unset.
func durationString(d config.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

func (s *Server) listTargets(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r.URL.Query()); err != nil {
		return err
	}
	cfg := s.config()
	live := map[string]balance.TargetStatus{}
	if s.opts.Targets != nil {
		for _, st := range s.opts.Targets() {
			live[st.Name] = st
		}
	}
	out := TargetsResponse{Targets: make([]Target, 0, len(cfg.Targets))}
	for name, t := range cfg.Targets {
		if t != nil {
			v := targetView(name, t)
			liveView(&v, t, live[name])
			out.Targets = append(out.Targets, v)
		}
	}
	slices.SortFunc(out.Targets, func(a, b Target) int { return strings.Compare(a.Name, b.Name) })
	return writeJSON(w, http.StatusOK, out)
}

// liveView adds the servers and the circuit of t to v: their live state
// when st has it (st.Name set), else as configured, all up.
func liveView(v *Target, t *config.Target, st balance.TargetStatus) {
	v.Balance = cmp.Or(t.Balance, config.BalanceRoundRobin)
	if r := t.RateLimit; r != nil {
		v.RateLimit = &RateLimit{RPS: r.RPS, Burst: r.Burst}
	}
	if st.Name == "" {
		servers := t.Servers
		if len(servers) == 0 {
			servers = []*config.Server{{URL: t.URL, Weight: 1}}
		}
		for _, sc := range servers {
			if sc != nil {
				v.Servers = append(v.Servers, TargetServer{URL: redactURL(sc.URL), Weight: max(sc.Weight, 1), Backup: sc.Backup, Up: true, Healthy: true})
			}
		}
		if t.CircuitBreaker != nil {
			v.Circuit = &Circuit{State: balance.Closed.String()}
		}
		return
	}
	v.InFlight = st.InFlight
	for _, ss := range st.Servers {
		ts := TargetServer{
			URL: redactURL(ss.URL), Weight: ss.Weight, Backup: ss.Backup, Up: ss.Up, Healthy: ss.Healthy,
			Ejected: ss.Ejected, ConsecutiveFailures: ss.ConsecutiveFailures, InFlight: ss.InFlight, Attempts: ss.Attempts,
		}
		if ss.Ejected {
			u := ss.EjectedUntil.UTC()
			ts.EjectedUntil = &u
		}
		v.Servers = append(v.Servers, ts)
	}
	if st.Circuit != "" {
		v.Circuit = &Circuit{State: st.Circuit}
		if !st.CircuitOpenUntil.IsZero() {
			u := st.CircuitOpenUntil.UTC()
			v.Circuit.OpenUntil = &u
		}
	}
}

// targetView shows t without any configured header value.
func targetView(name string, t *config.Target) Target {
	v := Target{
		Name:    name,
		URL:     redactURL(t.URL),
		Method:  t.Method,
		Timeout: durationString(t.Timeout),
		Retry: Retry{
			Initial:         durationString(t.Retry.Initial),
			Max:             durationString(t.Retry.Max),
			MaxAttempts:     t.Retry.MaxAttempts,
			MaxAge:          durationString(t.Retry.MaxAge),
			SyncMaxAttempts: t.Retry.SyncMaxAttempts,
			RetryStatus:     slices.Clone(t.Retry.RetryStatus),
			RetryAll4xx:     t.Retry.RetryAll4xx,
		},
		MaxInFlight: t.MaxInFlight,
		Redact:      slices.Clone(t.Redact),
	}
	if len(t.Headers) > 0 {
		v.Headers = make(map[string]string, len(t.Headers))
		for k := range t.Headers {
			v.Headers[k] = RedactedValue
		}
	}
	return v
}

// listMessagesQuery are the query parameters of GET /v1/messages.
var listMessagesQuery = []string{"route", "target", "tenant", "state", "since", "until", "cursor", "limit"}

// maxListLimit is the largest page the store serves.
const maxListLimit = 1000

func (s *Server) listMessages(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := checkQuery(q, listMessagesQuery...); err != nil {
		return err
	}
	state, err := parseState("state", q.Get("state"))
	if err != nil {
		return err
	}
	since, until, err := parseRange(q.Get("since"), q.Get("until"), s.now())
	if err != nil {
		return err
	}
	limit := 0
	if v := q.Get("limit"); v != "" {
		limit, err = strconv.Atoi(v)
		if err != nil || limit < 1 || limit > maxListLimit {
			return errParam("limit", "want an integer from 1 to %d, got %q", maxListLimit, v)
		}
	}
	tenant, err := tenantFilter(r, q.Get("tenant"))
	if err != nil {
		return err
	}
	msgs, next, err := s.opts.Store.ListMessages(r.Context(), fanout.ListMessagesParams{
		Route:  q.Get("route"),
		Target: q.Get("target"),
		Tenant: tenant,
		State:  state,
		Since:  since,
		Until:  until,
		Cursor: q.Get("cursor"),
		Limit:  limit,
	})
	if err != nil {
		// The cursor is opaque here; the stores refuse a bad one with an
		// error that does not wrap ErrStoreUnavailable (sqlite documents
		// it), which is the caller's fault, not a 5xx.
		if q.Get("cursor") != "" && !isServerSide(err) {
			return errParam("cursor", "not a cursor from a previous page")
		}
		return fmt.Errorf("list messages: %w", err)
	}
	out := ListResponse{Messages: make([]Message, 0, len(msgs)), NextCursor: next}
	for _, m := range msgs {
		out.Messages = append(out.Messages, messageView(m.Message, m.Deliveries))
	}
	return writeJSON(w, http.StatusOK, out)
}

// isServerSide reports whether err is the store's own failure rather than
// a refusal of what the caller sent.
func isServerSide(err error) bool {
	return errors.Is(err, fanout.ErrStoreUnavailable) || errors.Is(err, fanout.ErrClosed) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

func messageView(m fanout.Message, ds []fanout.Delivery) Message {
	v := Message{
		ID:             m.ID,
		Route:          m.Route,
		Tenant:         m.Tenant,
		Method:         m.Method,
		Path:           m.Path,
		IdempotencyKey: m.IdempotencyKey,
		ReceivedAt:     m.ReceivedAt.UTC(),
		Deliveries:     make([]Delivery, 0, len(ds)),
	}
	for _, d := range ds {
		v.Deliveries = append(v.Deliveries, deliveryView(d))
	}
	return v
}

func deliveryView(d fanout.Delivery) Delivery {
	v := Delivery{
		ID:         d.ID,
		Target:     d.Target,
		Step:       d.Step,
		After:      d.After,
		State:      string(d.State),
		Attempts:   d.AttemptNumber(),
		LastStatus: d.LastStatus,
		LastError:  d.LastError,
		LastClass:  string(d.LastClass),
		CreatedAt:  d.CreatedAt.UTC(),
		UpdatedAt:  d.UpdatedAt.UTC(),
	}
	if (d.State == fanout.StatePending || d.State == fanout.StateRetrying) && !d.NextAttemptAt.IsZero() {
		t := d.NextAttemptAt.UTC()
		v.NextAttemptAt = &t
	}
	return v
}

// errMessageNotFound is the 404 of an unknown message id.
func errMessageNotFound(id string) *apierror.Error {
	return apierror.New(http.StatusNotFound, "message_not_found", fmt.Sprintf("no message %q", id)).
		WithDetails(map[string]any{"id": id})
}

// getMessage loads a message, mapping ErrNotFound to a 404 naming it.
func (s *Server) getMessage(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r.URL.Query()); err != nil {
		return err
	}
	id := r.PathValue("id")
	md, err := s.loadMessage(r, id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.detailView(md))
}

func (s *Server) loadMessage(r *http.Request, id string) (fanout.MessageDetail, error) {
	md, err := s.opts.Store.GetMessage(r.Context(), id)
	if errors.Is(err, fanout.ErrNotFound) || err == nil && !visible(r, md.Message) {
		return fanout.MessageDetail{}, errMessageNotFound(id)
	}
	if err != nil {
		return md, fmt.Errorf("get message %s: %w", id, err)
	}
	return md, nil
}

func (s *Server) detailView(md fanout.MessageDetail) MessageDetail {
	cfg := s.config()
	red := messageRedactor(cfg)
	v := MessageDetail{
		Message:  messageView(md.Message, md.Deliveries),
		Headers:  red.header(md.Message.Header),
		Attempts: make([]Attempt, 0, len(md.Attempts)),
	}
	if v.Headers == nil {
		v.Headers = http.Header{}
	}
	v.Body, v.BodyEncoding = encodeBody(md.Message.Body)
	for _, a := range md.Attempts {
		// Attempts are stored redacted; redact again in case a target's
		// redact list or headers changed since.
		ared := red.forTarget(cfg.Targets[a.Target])
		av := Attempt{
			ID:              a.ID,
			DeliveryID:      a.DeliveryID,
			Target:          a.Target,
			Number:          a.Number,
			StartedAt:       a.StartedAt.UTC(),
			DurationMS:      float64(a.Duration) / float64(time.Millisecond),
			RequestMethod:   a.RequestMethod,
			RequestURL:      redactURL(a.RequestURL),
			RequestHeaders:  ared.header(a.RequestHeader),
			Status:          a.Status,
			ResponseHeaders: ared.header(a.ResponseHeader),
			Class:           string(a.Class),
			Error:           a.Error,
		}
		av.ResponseBody, av.ResponseBodyEncoding = textOrBase64(a.ResponseBody)
		v.Attempts = append(v.Attempts, av)
	}
	return v
}

func (s *Server) deleteMessage(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r.URL.Query()); err != nil {
		return err
	}
	id := r.PathValue("id")
	if tenantScope(r) != "" {
		if _, err := s.loadMessage(r, id); err != nil {
			return err // another tenant's message: not found
		}
	}
	err := s.opts.Store.DeleteMessage(r.Context(), id)
	if errors.Is(err, fanout.ErrNotFound) {
		return errMessageNotFound(id)
	}
	if err != nil {
		return fmt.Errorf("delete message %s: %w", id, err)
	}
	s.log.InfoContext(r.Context(), "admin deleted message", slog.String(keyMessage, id))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) replayMessage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := checkQuery(q, "target"); err != nil {
		return err
	}
	id, target := r.PathValue("id"), q.Get("target")
	md, err := s.loadMessage(r, id)
	if err != nil {
		return err
	}
	var targets []string
	for _, d := range md.Deliveries {
		if target == "" || d.Target == target {
			targets = append(targets, d.Target)
		}
	}
	if target != "" && len(targets) == 0 {
		return apierror.New(http.StatusNotFound, "delivery_not_found",
			fmt.Sprintf("message %q has no delivery to target %q", id, target)).
			WithDetails(map[string]any{"id": id, "target": target})
	}
	n, err := s.opts.Store.Replay(r.Context(), fanout.ReplayParams{MessageID: id, Target: target, Tenant: tenantScope(r), Now: s.now()})
	if errors.Is(err, fanout.ErrNotFound) {
		return errMessageNotFound(id) // deleted meanwhile
	}
	if err != nil {
		return fmt.Errorf("replay message %s: %w", id, err)
	}
	s.log.InfoContext(r.Context(), "admin replayed message",
		slog.String(keyMessage, id), slog.String(keyTarget, target), slog.Int(keyCount, n))
	if n > 0 {
		s.notify(targets...)
	}
	return writeJSON(w, http.StatusOK, ReplayResponse{Replayed: n})
}

func (s *Server) replayDeliveries(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r.URL.Query()); err != nil {
		return err
	}
	var f ReplayFilter
	if err := decodeBody(w, r, &f); err != nil {
		return err
	}
	state, err := parseState("state", f.State)
	if err != nil {
		return err
	}
	if state == "" {
		state = fanout.StateDead
	}
	if state == fanout.StateDelivering {
		return errParam("state", "deliveries being delivered cannot be replayed")
	}
	since, until, err := parseRange(f.Since, f.Until, s.now())
	if err != nil {
		return err
	}
	tenant, err := tenantFilter(r, f.Tenant)
	if err != nil {
		return err
	}
	cfg := s.config()
	if f.Target != "" && cfg.Targets[f.Target] == nil {
		return errTargetNotFound(f.Target)
	}
	n, err := s.opts.Store.Replay(r.Context(), fanout.ReplayParams{
		Route:  f.Route,
		Target: f.Target,
		Tenant: tenant,
		State:  state,
		Since:  since,
		Until:  until,
		Now:    s.now(),
	})
	if err != nil {
		return fmt.Errorf("replay deliveries: %w", err)
	}
	s.log.InfoContext(r.Context(), "admin replayed deliveries",
		slog.String(keyRoute, f.Route), slog.String(keyTarget, f.Target),
		slog.String("state", string(state)), slog.Int(keyCount, n))
	if n > 0 {
		s.notify(affectedTargets(cfg, f.Route, f.Target)...)
	}
	return writeJSON(w, http.StatusOK, ReplayResponse{Replayed: n})
}

// affectedTargets are the targets whose workers a bulk replay must wake:
// the target when known, else the route's targets, else every target.
func affectedTargets(cfg *config.Config, route, target string) []string {
	if target != "" {
		return []string{target}
	}
	if rt := cfg.Route(route); route != "" && rt != nil {
		out := make([]string, 0, len(rt.Targets))
		for _, t := range rt.Targets {
			out = append(out, t.Name)
		}
		return out
	}
	out := make([]string, 0, len(cfg.Targets))
	for name := range cfg.Targets {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

func errTargetNotFound(name string) *apierror.Error {
	return apierror.New(http.StatusNotFound, "target_not_found", fmt.Sprintf("no target %q in the config", name)).
		WithDetails(map[string]any{"target": name})
}

func (s *Server) backfill(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r.URL.Query()); err != nil {
		return err
	}
	name := r.PathValue("name")
	var req BackfillRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	cfg := s.config()
	rt := cfg.Route(name)
	if rt == nil {
		return apierror.New(http.StatusNotFound, "route_not_found", fmt.Sprintf("no route %q in the config", name)).
			WithDetails(map[string]any{"route": name})
	}
	if rt.Mode != config.ModeAsync {
		return apierror.New(http.StatusBadRequest, "route_not_async",
			fmt.Sprintf("route %q is %s; only async routes keep messages to backfill", name, rt.Mode)).
			WithDetails(map[string]any{"route": name, "mode": string(rt.Mode)})
	}
	if req.Target == "" {
		return errParam("target", "required")
	}
	if cfg.Targets[req.Target] == nil {
		return errTargetNotFound(req.Target)
	}
	if !slices.ContainsFunc(rt.Targets, func(t config.RouteTarget) bool { return t.Name == req.Target }) {
		return apierror.New(http.StatusBadRequest, "target_not_in_route",
			fmt.Sprintf("target %q is not a target of route %q; add it to the route first", req.Target, name)).
			WithDetails(map[string]any{"route": name, "target": req.Target})
	}
	if req.Since == "" {
		return errParam("since", "required: the receive time of the first message to send")
	}
	now := s.now()
	since, until, err := parseRange(req.Since, req.Until, now)
	if err != nil {
		return err
	}
	n, err := s.opts.Store.Backfill(r.Context(), fanout.BackfillParams{
		Route:  name,
		Target: req.Target,
		Since:  since,
		Until:  until,
		Now:    now,
	})
	if err != nil {
		return fmt.Errorf("backfill route %s to %s: %w", name, req.Target, err)
	}
	s.log.InfoContext(r.Context(), "admin backfilled route",
		slog.String(keyRoute, name), slog.String(keyTarget, req.Target), slog.Int(keyCount, n))
	if n > 0 {
		s.notify(req.Target)
	}
	return writeJSON(w, http.StatusOK, BackfillResponse{Queued: n})
}
