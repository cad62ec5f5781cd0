package ui

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/fanouthq/fanout/admin"
	"github.com/fanouthq/fanout/stats"
)

// pageSize is the number of messages a list page shows.
const pageSize = 50

// maxPreview bounds how many dead deliveries the bulk replay preview
// counts (in pages of the admin API's largest list).
const maxPreview = 10000

// windows are the overview's choices; the stats keep 24 hours.
var windows = []string{"5m", "15m", "1h", "24h"}

// states are the delivery states offered in the filters.
var states = []string{"blocked", "pending", "delivering", "retrying", "succeeded", "dead", "skipped"}

// loginReasons are the messages of the sign-in page, by the fixed word
// of its reason parameter.
var loginReasons = map[string]string{
	"expired":   "Your session has ended. Sign in again.",
	"revoked":   "The admin API no longer accepts the token of your session (it was changed or removed). Sign in with a current token.",
	"signedout": "You are signed out.",
}

type loginView struct {
	Message string
	Error   bool
	Next    string
}

// safeNext keeps a post-sign-in destination only when it is a dashboard
// path, so the sign-in page cannot be used to send a browser elsewhere.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/ui/") || strings.HasPrefix(next, "/ui//") || strings.ContainsAny(next, "\\\r\n") {
		return ""
	}
	return next
}

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.session(r); ok {
		redirect(w, r, "/ui/")
		return
	}
	reason := r.URL.Query().Get("reason")
	h.render(w, r, nil, http.StatusOK, "login.html", "Sign in", "", loginView{
		Message: loginReasons[reason],
		Error:   reason == "revoked",
		Next:    safeNext(r.URL.Query().Get("next")),
	})
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, msg string) {
		h.render(w, r, nil, status, "login.html", "Sign in", "", loginView{Message: msg, Error: true, Next: safeNext(r.PostFormValue("next"))})
	}
	if err := h.cop.Check(r); err != nil {
		fail(http.StatusForbidden, "This sign-in came from another site and was refused.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	token := strings.TrimSpace(r.PostFormValue("token"))
	if token == "" {
		fail(http.StatusUnauthorized, "Enter the admin token or a tenant admin token.")
		return
	}
	ctx, cancel := withTimeout(r)
	defer cancel()
	// A token the admin API takes for listing messages is the admin token
	// or a tenant's; only the admin token may read the routes.
	err := h.call(ctx, token, http.MethodGet, "/v1/messages", url.Values{"limit": {"1"}}, nil, nil)
	var ae *apiError
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusUnauthorized:
		h.log.InfoContext(r.Context(), "ui sign-in refused", slog.String("reason", "token not accepted"))
		fail(http.StatusUnauthorized, "This token is not accepted: it is neither the admin token nor a tenant's admin token.")
		return
	case err != nil:
		h.log.ErrorContext(r.Context(), "ui sign-in failed", slog.Any("error", err))
		fail(http.StatusInternalServerError, "The token could not be checked: the admin API failed. See the server log.")
		return
	}
	isAdmin := h.call(ctx, token, http.MethodGet, "/v1/routes", nil, nil, nil) == nil
	tenant := ""
	if !isAdmin {
		tenant = h.tenantOf(token)
	}
	if c, err := r.Cookie(cookieName); err == nil {
		h.sessions.delete(c.Value) // a fresh id at every sign-in
	}
	s, ok := h.sessions.create(token, isAdmin, tenant, h.now())
	if !ok {
		fail(http.StatusServiceUnavailable, "Too many dashboard sessions are open; try again later.")
		return
	}
	h.setCookie(w, r, s.id)
	h.log.InfoContext(r.Context(), "ui sign-in", scopeAttr(isAdmin, tenant))
	next := safeNext(r.PostFormValue("next"))
	switch {
	case next != "":
	case isAdmin:
		next = "/ui/"
	default:
		next = "/ui/messages"
	}
	redirect(w, r, next)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request, s session) error {
	h.sessions.delete(s.id)
	h.clearCookie(w, r)
	h.log.InfoContext(r.Context(), "ui sign-out", scopeAttr(s.admin, s.tenant))
	redirect(w, r, "/ui/login?reason=signedout")
	return nil
}

type routeRow struct {
	admin.Route
	Stats    stats.RouteStats
	HasStats bool
}

type targetRow struct {
	admin.Target
	Host     string
	Stats    stats.TargetStats
	HasStats bool
	// Extra are the fields of GET /v1/targets this dashboard does not know
	// (a target's health or circuit state, say), shown as they come.
	Extra []extraField
}

type extraField struct{ Key, Value string }

// targetList is GET /v1/targets with each target's unknown fields.
type targetList struct {
	admin.TargetsResponse
	extra map[string][]extraField
}

// knownTargetFields are the JSON names of admin.Target's fields.
var knownTargetFields = func() map[string]bool {
	known := map[string]bool{}
	rt := reflect.TypeFor[admin.Target]()
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		known[name] = true
	}
	return known
}()

func (h *Handler) targets(ctx context.Context, s session) (targetList, error) {
	var raw json.RawMessage
	if err := h.call(ctx, s.token, http.MethodGet, "/v1/targets", nil, nil, &raw); err != nil {
		return targetList{}, err
	}
	var tl targetList
	if err := json.Unmarshal(raw, &tl.TargetsResponse); err != nil {
		return targetList{}, fmt.Errorf("decode targets: %w", err)
	}
	var loose struct {
		Targets []map[string]json.RawMessage `json:"targets"`
	}
	if err := json.Unmarshal(raw, &loose); err != nil {
		return targetList{}, fmt.Errorf("decode targets: %w", err)
	}
	tl.extra = map[string][]extraField{}
	for i, t := range loose.Targets {
		if i >= len(tl.Targets) {
			break
		}
		for _, k := range slices.Sorted(maps.Keys(t)) {
			if knownTargetFields[k] {
				continue
			}
			val := string(t[k])
			var str string
			if json.Unmarshal(t[k], &str) == nil {
				val = str
			}
			tl.extra[tl.Targets[i].Name] = append(tl.extra[tl.Targets[i].Name], extraField{Key: k, Value: val})
		}
	}
	return tl, nil
}

type overviewView struct {
	Window   string
	Windows  []string
	Routes   []routeRow
	Targets  []targetRow
	NoStats  bool
	StatsURL string
	Charts   chartsView
}

func (h *Handler) overview(w http.ResponseWriter, r *http.Request, s session) error {
	if !s.admin {
		// The routes, targets and stats are the operator's (the admin API
		// refuses them to a tenant token).
		redirect(w, r, "/ui/messages")
		return nil
	}
	window := r.URL.Query().Get("window")
	if !slices.Contains(windows, window) {
		window = windows[0]
	}
	ctx, cancel := withTimeout(r)
	defer cancel()
	var routes admin.RoutesResponse
	if err := h.call(ctx, s.token, http.MethodGet, "/v1/routes", nil, nil, &routes); err != nil {
		return err
	}
	targets, err := h.targets(ctx, s)
	if err != nil {
		return err
	}
	v := overviewView{Window: window, Windows: windows, StatsURL: "/ui/stats.json?window=" + window}
	var rep stats.Report
	err = h.call(ctx, s.token, http.MethodGet, "/v1/stats", url.Values{"window": {window}}, nil, &rep)
	var ae *apiError
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
		v.NoStats = true
	case err != nil:
		return err
	}
	var routeNames, targetNames []string
	for _, rt := range routes.Routes {
		st, ok := rep.Routes[rt.Name]
		v.Routes = append(v.Routes, routeRow{Route: rt, Stats: st, HasStats: ok})
		routeNames = append(routeNames, rt.Name)
	}
	for _, t := range targets.Targets {
		st, ok := rep.Targets[t.Name]
		host := t.URL
		if u, err := url.Parse(t.URL); err == nil && u.Host != "" {
			host = u.Host
		}
		v.Targets = append(v.Targets, targetRow{Target: t, Host: host, Stats: st, HasStats: ok, Extra: targets.extra[t.Name]})
		targetNames = append(targetNames, t.Name)
	}
	if v.Charts, err = h.charts(ctx, s, window, routeNames, targetNames); err != nil {
		return err
	}
	h.render(w, r, &s, http.StatusOK, "overview.html", "Overview", "overview", v)
	return nil
}

// charts reads the history of window and lays out the charts of the
// routes and targets named, in that order.
func (h *Handler) charts(ctx context.Context, s session, window string, routes, targets []string) (chartsView, error) {
	var rep stats.SeriesReport
	err := h.call(ctx, s.token, http.MethodGet, "/v1/stats/series", url.Values{"window": {window}}, nil, &rep)
	var ae *apiError
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
		return chartsView{Window: window, None: true}, nil
	case err != nil:
		return chartsView{}, err
	}
	return newChartsView(rep, routes, targets), nil
}

// chartsFragment is what the overview's script swaps in: the charts
// section alone, for the window asked.
func (h *Handler) chartsFragment(w http.ResponseWriter, r *http.Request, s session) error {
	window := r.URL.Query().Get("window")
	if !slices.Contains(windows, window) {
		window = windows[0]
	}
	ctx, cancel := withTimeout(r)
	defer cancel()
	routes, targets, err := h.chartNames(ctx, s)
	if err != nil {
		return err
	}
	v, err := h.charts(ctx, s, window, routes, targets)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := h.pages["overview.html"].ExecuteTemplate(&buf, "charts", v); err != nil {
		return fmt.Errorf("render charts: %w", err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
	return nil
}

// chartNames returns the routes and targets whose charts s sees, in the
// admin API's order.
func (h *Handler) chartNames(ctx context.Context, s session) (routes, targets []string, err error) {
	var rl admin.RoutesResponse
	if err := h.call(ctx, s.token, http.MethodGet, "/v1/routes", nil, nil, &rl); err != nil {
		return nil, nil, err
	}
	tl, err := h.targets(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	for _, rt := range rl.Routes {
		routes = append(routes, rt.Name)
	}
	for _, t := range tl.Targets {
		targets = append(targets, t.Name)
	}
	return routes, targets, nil
}

// statsJSON is what the overview's script polls: GET /v1/stats as is.
func (h *Handler) statsJSON(w http.ResponseWriter, r *http.Request, s session) error {
	window := r.URL.Query().Get("window")
	if !slices.Contains(windows, window) {
		window = windows[0]
	}
	ctx, cancel := withTimeout(r)
	defer cancel()
	raw, err := h.callRaw(ctx, s.token, "/v1/stats", url.Values{"window": {window}})
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
		h.sessions.delete(s.id)
		h.toLogin(w, r, "revoked")
		return nil
	}
	if err != nil {
		status := http.StatusInternalServerError
		if ae != nil {
			status = ae.Status
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"error":{"code":"stats_unavailable","message":"the stats could not be read"}}` + "\n"))
		return nil
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(raw)
	return nil
}

// filterKeys are the list filters passed on to GET /v1/messages.
var filterKeys = []string{"route", "target", "state", "since", "until"}

type messagesView struct {
	Filter      map[string]string
	States      []string
	RouteNames  []string
	TargetNames []string
	Messages    []admin.Message
	NextURL     string
	FirstURL    string
	Paged       bool
	Error       string
}

// names returns the route and target names offered in the filters: the
// operator's config for the admin token, none for a tenant's (the admin
// API does not show a tenant the config).
func (h *Handler) names(s session) (routes, targets []string) {
	if !s.admin {
		return nil, nil
	}
	cfg := h.config()
	for _, rt := range cfg.Routes {
		if rt != nil {
			routes = append(routes, rt.Name)
		}
	}
	for name := range cfg.Targets {
		targets = append(targets, name)
	}
	slices.Sort(targets)
	return routes, targets
}

func (h *Handler) messages(w http.ResponseWriter, r *http.Request, s session) error {
	q := r.URL.Query()
	if id := strings.TrimSpace(q.Get("id")); id != "" {
		redirect(w, r, "/ui/messages/"+url.PathEscape(id))
		return nil
	}
	v := messagesView{Filter: map[string]string{}, States: states}
	v.RouteNames, v.TargetNames = h.names(s)
	api := url.Values{"limit": {strconv.Itoa(pageSize)}}
	first := url.Values{}
	for _, k := range filterKeys {
		if val := strings.TrimSpace(q.Get(k)); val != "" {
			v.Filter[k] = val
			api.Set(k, val)
			first.Set(k, val)
		}
	}
	if c := q.Get("cursor"); c != "" {
		api.Set("cursor", c)
		v.Paged = true
	}
	v.FirstURL = "/ui/messages?" + first.Encode()
	ctx, cancel := withTimeout(r)
	defer cancel()
	var list admin.ListResponse
	err := h.call(ctx, s.token, http.MethodGet, "/v1/messages", api, nil, &list)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusBadRequest {
		v.Error = ae.Message
		h.render(w, r, &s, http.StatusBadRequest, "messages.html", "Messages", "messages", v)
		return nil
	}
	if err != nil {
		return err
	}
	v.Messages = list.Messages
	if list.NextCursor != "" {
		next := url.Values{}
		for k, val := range first {
			next[k] = val
		}
		next.Set("cursor", list.NextCursor)
		v.NextURL = "/ui/messages?" + next.Encode()
	}
	h.render(w, r, &s, http.StatusOK, "messages.html", "Messages", "messages", v)
	return nil
}

type deliveryRow struct {
	admin.Delivery
	// History is the delivery's attempts, oldest first.
	History []admin.Attempt
}

type messageView struct {
	admin.MessageDetail
	BodyKind   string // json, text, binary, empty
	BodyText   string
	BodySize   int
	Rows       []deliveryRow
	Graph      *stepsGraph
	HeaderKeys []string
}

func (h *Handler) message(w http.ResponseWriter, r *http.Request, s session) error {
	id := r.PathValue("id")
	ctx, cancel := withTimeout(r)
	defer cancel()
	var md admin.MessageDetail
	if err := h.call(ctx, s.token, http.MethodGet, "/v1/messages/"+url.PathEscape(id), nil, nil, &md); err != nil {
		return err
	}
	v := messageView{MessageDetail: md}
	v.BodyKind, v.BodyText, v.BodySize = bodyView(md.Body, md.BodyEncoding)
	for k := range md.Headers {
		v.HeaderKeys = append(v.HeaderKeys, k)
	}
	slices.Sort(v.HeaderKeys)
	byDelivery := map[int64][]admin.Attempt{}
	for _, a := range md.Attempts {
		byDelivery[a.DeliveryID] = append(byDelivery[a.DeliveryID], a)
	}
	for _, d := range md.Deliveries {
		v.Rows = append(v.Rows, deliveryRow{Delivery: d, History: byDelivery[d.ID]})
	}
	v.Graph = newStepsGraph(md.Deliveries)
	h.render(w, r, &s, http.StatusOK, "message.html", "Message "+md.ID, "messages", v)
	return nil
}

// bodyView returns how to show a body of the admin API's encoding: JSON
// pretty-printed, text as is, binary by its size.
func bodyView(body json.RawMessage, enc string) (kind, text string, size int) {
	if len(body) == 0 {
		return "empty", "", 0
	}
	switch enc {
	case admin.EncodingJSON:
		var buf bytes.Buffer
		if err := json.Indent(&buf, body, "", "  "); err == nil {
			return "json", buf.String(), len(body)
		}
		return "json", string(body), len(body)
	case admin.EncodingText:
		var s string
		if err := json.Unmarshal(body, &s); err == nil {
			return "text", s, len(s)
		}
	}
	var b64 string
	if err := json.Unmarshal(body, &b64); err == nil {
		if raw, err := base64.StdEncoding.DecodeString(b64); err == nil {
			return "binary", "", len(raw)
		}
	}
	return "binary", "", len(body)
}

func (h *Handler) replayMessage(w http.ResponseWriter, r *http.Request, s session) error {
	id := r.PathValue("id")
	target := r.PostFormValue("target")
	q := url.Values{}
	if target != "" {
		q.Set("target", target)
	}
	ctx, cancel := withTimeout(r)
	defer cancel()
	var out admin.ReplayResponse
	err := h.call(ctx, s.token, http.MethodPost, "/v1/messages/"+url.PathEscape(id)+"/replay", q, nil, &out)
	if err != nil {
		if flashable(err) {
			h.flash(s, "Replay refused: "+err.(*apiError).Message, true)
			redirect(w, r, "/ui/messages/"+url.PathEscape(id))
			return nil
		}
		return err
	}
	what := "message " + id
	if target != "" {
		what = "the delivery of message " + id + " to " + target
	}
	msg := fmt.Sprintf("Replayed %s: %d %s due again.", what, out.Replayed, plural(out.Replayed, "delivery", "deliveries"))
	if out.Replayed == 0 {
		msg = "Nothing was replayed for " + what + ": its deliveries are being delivered right now."
	}
	h.flash(s, msg, false)
	redirect(w, r, "/ui/messages/"+url.PathEscape(id))
	return nil
}

// flashable reports whether err is a refusal of the admin API that an
// action shows as its result (a 4xx other than 401).
func flashable(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 && ae.Status != http.StatusUnauthorized
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func (h *Handler) confirmDelete(w http.ResponseWriter, r *http.Request, s session) error {
	id := r.PathValue("id")
	ctx, cancel := withTimeout(r)
	defer cancel()
	var md admin.MessageDetail
	if err := h.call(ctx, s.token, http.MethodGet, "/v1/messages/"+url.PathEscape(id), nil, nil, &md); err != nil {
		return err
	}
	h.render(w, r, &s, http.StatusOK, "delete.html", "Delete message "+md.ID, "messages", md)
	return nil
}

func (h *Handler) deleteMessage(w http.ResponseWriter, r *http.Request, s session) error {
	id := r.PathValue("id")
	ctx, cancel := withTimeout(r)
	defer cancel()
	if err := h.call(ctx, s.token, http.MethodDelete, "/v1/messages/"+url.PathEscape(id), nil, nil, nil); err != nil {
		if flashable(err) {
			h.flash(s, "Delete refused: "+err.(*apiError).Message, true)
			redirect(w, r, "/ui/messages")
			return nil
		}
		return err
	}
	h.log.InfoContext(r.Context(), "ui deleted message", slog.String("message_id", id), scopeAttr(s.admin, s.tenant))
	h.flash(s, "Deleted message "+id+" with its deliveries and attempts.", false)
	redirect(w, r, "/ui/messages")
	return nil
}

// deadKeys are the filters of the dead letters page and its bulk replay.
var deadKeys = []string{"target", "route", "since", "until"}

type deadTarget struct {
	Name string
	Dead int
}

type deadView struct {
	Filter      map[string]string
	PreviewURL  string // the bulk replay preview of the filters
	BackURL     string // the dead letters page of the filters
	Targets     []deadTarget
	TargetNames []string
	RouteNames  []string
	Messages    []admin.Message
	NextURL     string
	Error       string
	// Preview: how many dead deliveries the bulk replay will replay.
	Count   int
	AtLeast bool
}

func deadFilter(q url.Values) (map[string]string, url.Values) {
	f := map[string]string{}
	vals := url.Values{}
	for _, k := range deadKeys {
		if v := strings.TrimSpace(q.Get(k)); v != "" {
			f[k] = v
			vals.Set(k, v)
		}
	}
	return f, vals
}

func (h *Handler) dead(w http.ResponseWriter, r *http.Request, s session) error {
	f, vals := deadFilter(r.URL.Query())
	v := deadView{Filter: f, PreviewURL: "/ui/dead/replay?" + vals.Encode(), BackURL: "/ui/dead?" + vals.Encode()}
	v.RouteNames, v.TargetNames = h.names(s)
	ctx, cancel := withTimeout(r)
	defer cancel()
	if s.admin {
		// The dead count of every target, from the store's backlog.
		var rep stats.Report
		err := h.call(ctx, s.token, http.MethodGet, "/v1/stats", nil, nil, &rep)
		var ae *apiError
		if err != nil && !(errors.As(err, &ae) && ae.Status == http.StatusNotFound) {
			return err
		}
		for _, name := range v.TargetNames {
			v.Targets = append(v.Targets, deadTarget{Name: name, Dead: rep.Targets[name].Dead})
		}
	}
	if f["target"] != "" {
		api := url.Values{"state": {"dead"}, "limit": {strconv.Itoa(pageSize)}}
		for k, val := range vals {
			api[k] = val
		}
		if c := r.URL.Query().Get("cursor"); c != "" {
			api.Set("cursor", c)
		}
		var list admin.ListResponse
		err := h.call(ctx, s.token, http.MethodGet, "/v1/messages", api, nil, &list)
		if flashable(err) {
			v.Error = err.(*apiError).Message
			h.render(w, r, &s, err.(*apiError).Status, "dead.html", "Dead letters", "dead", v)
			return nil
		}
		if err != nil {
			return err
		}
		v.Messages = list.Messages
		if list.NextCursor != "" {
			next := url.Values{"cursor": {list.NextCursor}}
			for k, val := range vals {
				next[k] = val
			}
			v.NextURL = "/ui/dead?" + next.Encode()
		}
	}
	h.render(w, r, &s, http.StatusOK, "dead.html", "Dead letters", "dead", v)
	return nil
}

// previewReplay counts the dead deliveries a bulk replay with the page's
// filters would replay, through the admin API's indexed list (at most
// maxPreview), and asks to confirm.
func (h *Handler) previewReplay(w http.ResponseWriter, r *http.Request, s session) error {
	f, vals := deadFilter(r.URL.Query())
	v := deadView{Filter: f, PreviewURL: "/ui/dead/replay?" + vals.Encode(), BackURL: "/ui/dead?" + vals.Encode()}
	if f["target"] == "" {
		v.Error = "Choose a target first: a bulk replay applies to one target's dead letters."
		h.render(w, r, &s, http.StatusBadRequest, "replay.html", "Replay dead letters", "dead", v)
		return nil
	}
	ctx, cancel := withTimeout(r)
	defer cancel()
	api := url.Values{"state": {"dead"}, "limit": {"1000"}}
	for k, val := range vals {
		api[k] = val
	}
	for {
		var list admin.ListResponse
		err := h.call(ctx, s.token, http.MethodGet, "/v1/messages", api, nil, &list)
		if flashable(err) {
			v.Error = err.(*apiError).Message
			h.render(w, r, &s, err.(*apiError).Status, "replay.html", "Replay dead letters", "dead", v)
			return nil
		}
		if err != nil {
			return err
		}
		for _, m := range list.Messages {
			for _, d := range m.Deliveries {
				if d.Target == f["target"] && d.State == "dead" {
					v.Count++
				}
			}
		}
		if list.NextCursor == "" {
			break
		}
		if v.Count >= maxPreview {
			v.AtLeast = true
			break
		}
		api.Set("cursor", list.NextCursor)
	}
	h.render(w, r, &s, http.StatusOK, "replay.html", "Replay dead letters", "dead", v)
	return nil
}

func (h *Handler) bulkReplay(w http.ResponseWriter, r *http.Request, s session) error {
	f, vals := deadFilter(r.Form)
	back := "/ui/dead?" + vals.Encode()
	if f["target"] == "" {
		h.flash(s, "Choose a target first: a bulk replay applies to one target's dead letters.", true)
		redirect(w, r, "/ui/dead")
		return nil
	}
	body := admin.ReplayFilter{Target: f["target"], Route: f["route"], Since: f["since"], Until: f["until"], State: "dead"}
	ctx, cancel := withTimeout(r)
	defer cancel()
	var out admin.ReplayResponse
	if err := h.call(ctx, s.token, http.MethodPost, "/v1/deliveries/replay", nil, body, &out); err != nil {
		if flashable(err) {
			h.flash(s, "Bulk replay refused: "+err.(*apiError).Message, true)
			redirect(w, r, back)
			return nil
		}
		return err
	}
	h.flash(s, fmt.Sprintf("Replayed %d dead %s to %s.", out.Replayed, plural(out.Replayed, "delivery", "deliveries"), f["target"]), false)
	redirect(w, r, back)
	return nil
}

type backfillView struct {
	Route admin.Route
	Since string
	Until string
}

func (h *Handler) backfillPage(w http.ResponseWriter, r *http.Request, s session) error {
	rt, err := h.route(r, s, r.PathValue("name"))
	if err != nil {
		return err
	}
	h.render(w, r, &s, http.StatusOK, "backfill.html", "Backfill "+rt.Name, "overview", backfillView{Route: rt, Since: "24h"})
	return nil
}

// route returns a route of the admin API's list; a tenant token gets the
// API's 403.
func (h *Handler) route(r *http.Request, s session, name string) (admin.Route, error) {
	ctx, cancel := withTimeout(r)
	defer cancel()
	var routes admin.RoutesResponse
	if err := h.call(ctx, s.token, http.MethodGet, "/v1/routes", nil, nil, &routes); err != nil {
		return admin.Route{}, err
	}
	for _, rt := range routes.Routes {
		if rt.Name == name {
			return rt, nil
		}
	}
	return admin.Route{}, &apiError{Status: http.StatusNotFound, Code: "route_not_found", Message: fmt.Sprintf("There is no route %q in the config.", name)}
}

func (h *Handler) backfill(w http.ResponseWriter, r *http.Request, s session) error {
	name := r.PathValue("name")
	body := admin.BackfillRequest{
		Target: r.PostFormValue("target"),
		Since:  strings.TrimSpace(r.PostFormValue("since")),
		Until:  strings.TrimSpace(r.PostFormValue("until")),
	}
	back := "/ui/routes/" + url.PathEscape(name) + "/backfill"
	ctx, cancel := withTimeout(r)
	defer cancel()
	var out admin.BackfillResponse
	if err := h.call(ctx, s.token, http.MethodPost, "/v1/routes/"+url.PathEscape(name)+"/backfill", nil, body, &out); err != nil {
		if flashable(err) {
			h.flash(s, "Backfill refused: "+err.(*apiError).Message, true)
			redirect(w, r, back)
			return nil
		}
		return err
	}
	h.log.InfoContext(r.Context(), "ui backfilled route", slog.String("route", name), slog.String("target", body.Target), slog.Int("count", out.Queued))
	h.flash(s, fmt.Sprintf("Queued %d %s of route %s to %s.", out.Queued, plural(out.Queued, "delivery", "deliveries"), name, body.Target), false)
	redirect(w, r, back)
	return nil
}
