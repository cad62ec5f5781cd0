package ui

import (
	"bytes"
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/fanouthq/fanout/admin"
	"github.com/fanouthq/fanout/config"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Defaults of Options.
const (
	DefaultSessionTTL  = 12 * time.Hour
	DefaultIdleTimeout = 30 * time.Minute
	// DefaultMaxSessions bounds the session map; sign-in is refused when
	// it is full of live sessions.
	DefaultMaxSessions = 10000
)

// cookieName is the session cookie; its value is the session id only.
const cookieName = "fanout_ui_session"

// Options configure a Handler. API is required.
type Options struct {
	// API is the admin API (admin.New). Every page and action is a request
	// to it, in-process, with the session's token.
	API http.Handler
	// Config returns the current configuration: the names offered in the
	// filters and, for a tenant admin token, the tenant's name. Nil: none.
	Config func() *config.Config
	// Logger receives sign-ins, sign-outs and failures; never a token.
	// Nil: slog.Default().
	Logger *slog.Logger
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// SessionTTL ends a session this long after sign-in. Zero:
	// DefaultSessionTTL.
	SessionTTL time.Duration
	// IdleTimeout ends a session this long after its last request. Zero:
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxSessions bounds the live sessions. Zero: DefaultMaxSessions.
	MaxSessions int
	// CleanupEvery is how often expired sessions are dropped (they are
	// refused at once either way). Zero: one minute.
	CleanupEvery time.Duration
}

// Handler serves the dashboard under /ui/. Create it with New and stop it
// with Close.
type Handler struct {
	opts     Options
	log      *slog.Logger
	now      func() time.Time
	sessions *sessions
	pages    map[string]*template.Template
	mux      *http.ServeMux
	cop      *http.CrossOriginProtection
	assets   http.Handler

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// New returns the dashboard handler and starts its session cleanup; call
// Close to stop it. It panics if the embedded templates do not parse,
// which the package's tests rule out.
func New(opts Options) *Handler {
	h := &Handler{
		opts: opts,
		log:  opts.Logger,
		now:  opts.Now,
		mux:  http.NewServeMux(),
		cop:  http.NewCrossOriginProtection(),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.now == nil {
		h.now = time.Now
	}
	ttl, idle, max := opts.SessionTTL, opts.IdleTimeout, opts.MaxSessions
	if ttl <= 0 {
		ttl = DefaultSessionTTL
	}
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	if max <= 0 {
		max = DefaultMaxSessions
	}
	h.sessions = newSessions(ttl, idle, max)
	h.pages = parsePages()
	sub, err := fs.Sub(assetFS, "assets")
	if err != nil {
		panic(err)
	}
	h.assets = http.StripPrefix("/ui/assets/", http.FileServerFS(sub))
	h.routes()
	every := opts.CleanupEvery
	if every <= 0 {
		every = time.Minute
	}
	go h.cleanup(every)
	return h
}

// Close stops the session cleanup goroutine and forgets every session.
// It is safe to call more than once.
func (h *Handler) Close() {
	h.closeOnce.Do(func() {
		close(h.stop)
		<-h.done
	})
}

func (h *Handler) cleanup(every time.Duration) {
	defer close(h.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-tick.C:
			h.sessions.dropExpired(h.now())
		}
	}
}

func (h *Handler) routes() {
	h.mux.HandleFunc("GET /ui/assets/", h.serveAsset)
	h.mux.HandleFunc("GET /ui/login", h.loginPage)
	h.mux.HandleFunc("POST /ui/login", h.login)
	h.mux.Handle("POST /ui/logout", h.action(h.logout))

	h.mux.Handle("GET /ui/{$}", h.page(h.overview))
	h.mux.Handle("GET /ui/stats.json", h.page(h.statsJSON))
	h.mux.Handle("GET /ui/charts", h.page(h.chartsFragment))
	h.mux.Handle("GET /ui/messages", h.page(h.messages))
	h.mux.Handle("GET /ui/messages/{id}", h.page(h.message))
	h.mux.Handle("POST /ui/messages/{id}/replay", h.action(h.replayMessage))
	h.mux.Handle("GET /ui/messages/{id}/delete", h.page(h.confirmDelete))
	h.mux.Handle("POST /ui/messages/{id}/delete", h.action(h.deleteMessage))
	h.mux.Handle("GET /ui/dead", h.page(h.dead))
	h.mux.Handle("GET /ui/dead/replay", h.page(h.previewReplay))
	h.mux.Handle("POST /ui/dead/replay", h.action(h.bulkReplay))
	h.mux.Handle("GET /ui/routes/{name}/backfill", h.page(h.backfillPage))
	h.mux.Handle("POST /ui/routes/{name}/backfill", h.action(h.backfill))

	h.mux.Handle("GET /ui/access", h.page(h.accessPage))
	h.mux.Handle("POST /ui/access/subscriptions", h.action(h.requestAccess))
	h.mux.Handle("POST /ui/access/subscriptions/{id}/{action}", h.action(h.decideAccess))
	h.mux.Handle("POST /ui/access/keys", h.action(h.createKey))
	h.mux.Handle("POST /ui/access/keys/{id}/revoke", h.action(h.revokeKey))
}

// ServeHTTP serves the dashboard; paths outside /ui/ are not its own.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	if r.URL.Path == "/ui" {
		http.Redirect(w, r, "/ui/", http.StatusMovedPermanently)
		return
	}
	if _, pattern := h.mux.Handler(r); pattern == "" {
		h.renderError(w, r, nil, http.StatusNotFound, "There is no dashboard page at "+r.URL.Path+".")
		return
	}
	h.mux.ServeHTTP(w, r)
}

// securityHeaders are set on every answer: no inline script, no framing,
// no referrer, no caching of pages that show messages.
func securityHeaders(hd http.Header) {
	hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
}

func (h *Handler) serveAsset(w http.ResponseWriter, r *http.Request) {
	// Assets change only with the binary.
	w.Header().Set("Cache-Control", "public, max-age=3600")
	h.assets.ServeHTTP(w, r)
}

// pageFunc serves a signed-in page; an error it returns is rendered by
// fail.
type pageFunc func(w http.ResponseWriter, r *http.Request, s session) error

// page admits only a request with a live session; others go to sign-in.
func (h *Handler) page(f pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := h.session(r)
		if !ok {
			h.toLogin(w, r, "")
			return
		}
		if err := f(w, r, s); err != nil {
			h.fail(w, r, s, err)
		}
	})
}

// action is page for a state-changing POST: it also needs the session's
// CSRF token and a same-origin request.
func (h *Handler) action(f pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := h.session(r)
		if !ok {
			h.toLogin(w, r, "expired")
			return
		}
		if err := h.cop.Check(r); err != nil {
			h.log.WarnContext(r.Context(), "ui refused a cross-origin request", slog.String("path", r.URL.Path))
			h.renderError(w, r, &s, http.StatusForbidden, "This request came from another site and was refused.")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		got := r.PostFormValue("csrf")
		if subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) != 1 {
			h.renderError(w, r, &s, http.StatusForbidden, "This form is out of date (its security token does not match your session). Reload the page and try again.")
			return
		}
		if err := f(w, r, s); err != nil {
			h.fail(w, r, s, err)
		}
	})
}

// session returns the request's live session.
func (h *Handler) session(r *http.Request) (session, bool) {
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" {
		return session{}, false
	}
	return h.sessions.get(c.Value, h.now())
}

// toLogin sends the browser to the sign-in page; reason is a fixed word
// the page turns into a message ("expired", "revoked").
func (h *Handler) toLogin(w http.ResponseWriter, r *http.Request, reason string) {
	if strings.HasSuffix(r.URL.Path, ".json") {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":{"code":"unauthorized","message":"sign in again"}}` + "\n"))
		return
	}
	q := url.Values{}
	if reason != "" {
		q.Set("reason", reason)
	}
	if r.Method == http.MethodGet && r.URL.Path != "/ui/" {
		q.Set("next", r.URL.RequestURI())
	}
	target := "/ui/login"
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// fail renders err: a token the admin API no longer accepts ends the
// session; the API's refusals are shown with its message; anything else
// is logged and shown as a failure.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, s session, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		switch {
		case ae.Status == http.StatusUnauthorized:
			h.sessions.delete(s.id)
			h.clearCookie(w, r)
			h.toLogin(w, r, "revoked")
			return
		case ae.Status < 500:
			h.renderError(w, r, &s, ae.Status, ae.Message)
			return
		}
	}
	h.log.ErrorContext(r.Context(), "ui page failed", slog.String("path", r.URL.Path), slog.Any("error", err))
	h.renderError(w, r, &s, http.StatusInternalServerError, "The admin API failed to answer; see the server log.")
}

// flash keeps an action's result for the page the browser is sent to.
func (h *Handler) flash(s session, msg string, isErr bool) {
	h.sessions.setFlash(s.id, msg, isErr)
}

// redirect sends the browser to a dashboard path after an action.
func redirect(w http.ResponseWriter, r *http.Request, path string) {
	http.Redirect(w, r, path, http.StatusSeeOther)
}

// tenantOf returns the tenant whose admin token token is, "" when none
// (the dashboard only shows the name; the admin API does the scoping).
func (h *Handler) tenantOf(token string) string { return admin.TenantOfToken(h.config(), token) }

func (h *Handler) config() *config.Config {
	if h.opts.Config != nil {
		if c := h.opts.Config(); c != nil {
			return c
		}
	}
	return &config.Config{}
}

func (h *Handler) setCookie(w http.ResponseWriter, r *http.Request, id string) {
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName,
		Value:    id,
		Path:     "/ui/",
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
		MaxAge:   int(h.sessions.ttl / time.Second),
	})
}

func (h *Handler) clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: "", Path: "/ui/", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: -1,
	})
}

// view is what every page template gets.
type view struct {
	Title      string
	Nav        string // the current section: overview, messages, dead
	Signed     bool
	Admin      bool
	Tenant     string
	CSRF       string
	Flash      string
	FlashError bool
	Status     int
	Data       any
}

// render writes page name with data, for session s (nil on the sign-in
// page). It renders into a buffer first so that a template failure is a
// clean 500.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, s *session, status int, name, title, nav string, data any) {
	v := view{Title: title, Nav: nav, Status: status, Data: data}
	if s != nil {
		v.Signed, v.Admin, v.Tenant, v.CSRF = true, s.admin, s.tenant, s.csrf
		v.Flash, v.FlashError = h.sessions.takeFlash(s.id)
	}
	t := h.pages[name]
	var buf bytes.Buffer
	if t == nil {
		h.log.ErrorContext(r.Context(), "ui page template missing", slog.String("page", name))
		http.Error(w, "dashboard page missing", http.StatusInternalServerError)
		return
	}
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		h.log.ErrorContext(r.Context(), "ui render failed", slog.String("page", name), slog.Any("error", err))
		http.Error(w, "the dashboard failed to render this page; see the server log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (h *Handler) renderError(w http.ResponseWriter, r *http.Request, s *session, status int, msg string) {
	h.render(w, r, s, status, "error.html", http.StatusText(status), "", msg)
}

// pageNames are the templates under templates/, each rendered inside
// layout.html.
var pageNames = []string{"login.html", "error.html", "overview.html", "messages.html", "message.html",
	"delete.html", "dead.html", "replay.html", "backfill.html", "access.html"}

func parsePages() map[string]*template.Template {
	out := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t := template.Must(template.New(name).Funcs(funcs).Option("missingkey=zero").ParseFS(templateFS, "templates/layout.html", "templates/partials.html", "templates/charts.html", "templates/"+name))
		out[name] = t
	}
	return out
}

// logAttrs are the attributes of a sign-in line: which kind of token,
// never the token.
func scopeAttr(admin bool, tenant string) slog.Attr {
	if admin {
		return slog.String("scope", "admin")
	}
	return slog.String("tenant", tenant)
}

// withTimeout bounds an in-process API call made for a page.
func withTimeout(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 30*time.Second)
}
