package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/access"
	"github.com/fanouthq/fanout/admin"
	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/gateway"
	"github.com/fanouthq/fanout/queue"
	"github.com/fanouthq/fanout/stats"
	"github.com/fanouthq/fanout/ui"
	"github.com/fanouthq/fanout/upstream"
)

// Options configures a Server.
type Options struct {
	// Logger receives every log line. Nil discards them.
	Logger *slog.Logger
	// Store, when set, is used instead of opening the store of the config.
	// The server closes it on Shutdown.
	Store fanout.Store
	// Version is reported in traces.
	Version string
	// WatchConfig reloads the config when its file changes (needs
	// Config.File). SIGHUP is handled by the caller through Reload.
	WatchConfig bool
}

// Server is one running Fanout process.
type Server struct {
	logger *slog.Logger
	opts   Options
	cfg    atomic.Pointer[config.Config]

	store      fanout.Store
	client     *upstream.Client
	gateway    *gateway.Gateway
	committer  *queue.Committer
	dispatcher *queue.Dispatcher
	purger     *queue.Purger
	obs        *observability

	dataSrv, adminSrv *http.Server
	dashboard         *ui.Handler
	access            *access.Cache // nil: the store keeps no access state
	dataLn, adminLn   net.Listener
	ready             atomic.Bool
	storeWait         time.Duration // store.timeout, as started

	reloadMu sync.Mutex

	// Each background part runs under its own context so that Shutdown can
	// stop them in order.
	commitStop, workStop, bgStop context.CancelFunc
	commitDone, workDone         chan struct{}
	bg                           sync.WaitGroup
}

// Start opens the store, applies migrations, listens on the data and admin
// addresses and starts every background worker. It returns once the
// process is ready to serve.
func Start(ctx context.Context, cfg *config.Config, opts Options) (_ *Server, err error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{logger: logger, opts: opts, storeWait: cmp.Or(cfg.Store.Timeout.D(), gateway.DefaultStoreTimeout)}
	s.cfg.Store(cfg)
	logWarnings(logger, cfg)
	defer func() {
		if err != nil {
			s.closeOnFailedStart()
		}
	}()

	s.store = opts.Store
	if s.store == nil {
		if s.store, err = OpenStore(ctx, cfg.Store, logger); err != nil {
			return nil, err
		}
	}
	if err := s.store.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("migrate store: %w", err)
	}

	if s.obs, err = newObservability(ctx, s.store, opts.Version, logger); err != nil {
		return nil, err
	}
	// A target with http1_fast_path: false is sent through net/http's
	// transport (docs/operations.md); the client checks it per attempt, so
	// a reload applies it.
	// Each target's servers, breaker and egress budget live in the client
	// (package balance); SetTargets again on reload keeps their state.
	s.client = upstream.New(upstream.Options{Logger: logger, Balance: s.obs.balanceHooks(func(target string) {
		if d := s.dispatcher; d != nil {
			d.Notify(target) // a circuit that lets attempts through again: deferred deliveries resume
		}
	})})
	s.client.SetTargets(cfg.Targets)
	if err := s.obs.registerTargets(s.client.TargetStatus); err != nil {
		return nil, err
	}
	s.committer = queue.NewCommitter(s.store, queue.CommitterOptions{
		Logger: logger,
		OnCommit: func(targets map[string]struct{}) {
			for t := range targets {
				s.dispatcher.Notify(t)
			}
		},
	})
	s.purger = queue.NewPurger(s.store, queue.PurgerOptions{
		Logger:      logger,
		Retention:   func() time.Duration { return s.cfg.Load().Delivery.Retention.D() },
		DedupWindow: func() time.Duration { return s.cfg.Load().Delivery.DedupWindow.D() },
	})

	if cfg.Admin.Listen != "off" {
		if s.adminLn, err = net.Listen("tcp", cfg.Admin.Listen); err != nil {
			return nil, fmt.Errorf("admin listener: %w", err)
		}
	}
	if s.dataLn, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("data-plane listener: %w", err)
	}
	// The dispatcher comes after the data listener: its default node id
	// is the port it bound.
	s.dispatcher = queue.NewDispatcher(s.store, s.client, queue.DispatcherOptions{
		Logger:        logger,
		LeaseFor:      cfg.Delivery.LeaseTimeout.D(),
		ShutdownGrace: cfg.ShutdownTimeout.D(),
		Node:          nodeID(cfg.Store.NodeID, s.dataLn.Addr()),
		DeadAfter:     cfg.Delivery.HeartbeatTimeout.D(),
		Hooks:         s.obs.queueHooks(),
		Tracer:        s.obs.tracer,
	})
	s.dispatcher.SetConfig(cfg)

	// Subscriptions and self-service keys (package access): loaded before
	// the first request, then followed by polling the store.
	var gwAccess gateway.Access
	var adminAccess fanout.AccessStore
	if as, ok := s.store.(fanout.AccessStore); ok {
		s.access = access.New(as, access.Options{Logger: logger, Tenants: func(name string) bool {
			_, ok := s.cfg.Load().Tenants[name]
			return ok
		}})
		s.access.Refresh(ctx, true)
		gwAccess, adminAccess = s.access, as
	}

	s.gateway, err = gateway.New(cfg, gateway.Options{
		Access:       gwAccess,
		Logger:       logger,
		Client:       s.client,
		Enqueuer:     s.committer,
		StatusURL:    s.statusURL,
		StoreTimeout: s.storeWait,
		Hooks:        s.obs.gatewayHooks(),
		Tracer:       s.obs.tracer,
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}

	// Background workers: the committer must outlive the data plane (a
	// request in flight waits for its commit), the dispatcher outlives both.
	var commitCtx, workCtx, bgCtx context.Context
	commitCtx, s.commitStop = context.WithCancel(context.WithoutCancel(ctx))
	workCtx, s.workStop = context.WithCancel(context.WithoutCancel(ctx))
	bgCtx, s.bgStop = context.WithCancel(context.WithoutCancel(ctx))
	s.commitDone, s.workDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s.commitDone)
		if err := s.committer.Run(commitCtx); err != nil && !errors.Is(err, context.Canceled) {
			logger.Error("committer stopped", slog.Any("error", err))
		}
	}()
	go func() {
		defer close(s.workDone)
		if err := s.dispatcher.Run(workCtx); err != nil && !errors.Is(err, context.Canceled) {
			logger.Error("dispatcher stopped", slog.Any("error", err))
		}
	}()
	s.goBackground(func() {
		if err := s.purger.Run(bgCtx); err != nil && !errors.Is(err, context.Canceled) {
			logger.Error("purger stopped", slog.Any("error", err))
		}
	})
	if l, ok := s.store.(listener); ok {
		// Several processes share the database: wake this one's idle
		// workers when another commits work for a target.
		s.goBackground(func() {
			if err := l.Listen(bgCtx, s.dispatcher.Notify); err != nil && !errors.Is(err, context.Canceled) && bgCtx.Err() == nil {
				logger.Error("store listener stopped", slog.Any("error", err))
			}
		})
	}
	if s.access != nil {
		s.goBackground(func() { s.access.Run(bgCtx) })
	}
	// The backlog history behind /v1/stats/series.
	s.goBackground(func() {
		s.obs.stats.SampleBacklog(bgCtx, s.store, stats.DefaultSampleEvery, func(err error) {
			logger.Debug("stats: backlog sample failed", slog.Any("error", err))
		})
	})
	if opts.WatchConfig && cfg.File != "" {
		if err := s.watchConfig(bgCtx, cfg.File); err != nil {
			return nil, err
		}
	}

	s.dataSrv = &http.Server{
		Handler:           s.gateway,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	s.goBackground(func() { s.serve(s.dataSrv, s.dataLn, "data") })
	if s.adminLn != nil {
		api := admin.New(admin.Options{
			Store:       s.store,
			Config:      s.cfg.Load,
			Token:       cfg.Admin.Token,
			Ready:       s.readyz,
			Notify:      s.dispatcher.Notify,
			Pprof:       cfg.Admin.Pprof,
			Logger:      logger,
			Metrics:     s.obs.metricsHandler(),
			Stats:       s.obs.statsHandler(s.store),
			Targets:     s.client.TargetStatus,
			StatsSeries: stats.SeriesHandler(s.obs.stats),
			Access:      adminAccess,
			AccessChanged: func() {
				if s.access != nil {
					s.access.Changed()
				}
			},
		})
		// The dashboard (package ui) at /ui/, over the same API.
		s.dashboard = ui.New(ui.Options{API: api, Config: s.cfg.Load, Logger: logger})
		dashboard := s.dashboard
		s.adminSrv = &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/ui" || strings.HasPrefix(r.URL.Path, "/ui/") {
					dashboard.ServeHTTP(w, r)
					return
				}
				api.ServeHTTP(w, r)
			}),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		}
		s.goBackground(func() { s.serve(s.adminSrv, s.adminLn, "admin") })
	}
	s.ready.Store(true)
	logger.Info("fanout started",
		slog.String("listen", s.DataAddr()),
		slog.String("admin", s.AdminAddr()),
		slog.String("store", cfg.Store.Driver),
		slog.Int("routes", len(cfg.Routes)),
		slog.Int("targets", len(cfg.Targets)))
	return s, nil
}

// nodeID is the config's store.node_id, else "<hostname>:<port>" of the
// data listener: the same across restarts of a process on one host and
// one port (docs/operations.md), and different for two processes on one
// host, which cannot share a port.
func nodeID(configured string, data net.Addr) string {
	if configured != "" {
		return configured
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "fanout"
	}
	port := ""
	if a, ok := data.(*net.TCPAddr); ok {
		port = strconv.Itoa(a.Port)
	}
	return host + ":" + port
}

// readyz reports whether the process takes traffic (for GET /readyz): it
// has started, is not shutting down, and its store answers a probe within
// store.timeout (docs/operations.md). A store that is down or stalled
// makes /readyz fail, so that a load balancer sends the traffic elsewhere.
func (s *Server) readyz() bool {
	if !s.ready.Load() {
		return false
	}
	p, ok := s.store.(pinger)
	if !ok {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.storeWait)
	defer cancel()
	if err := p.Ping(ctx); err != nil {
		s.logger.Warn("readiness probe: the store did not answer", slog.Any("error", err))
		return false
	}
	return true
}

func (s *Server) goBackground(f func()) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		f()
	}()
}

func (s *Server) serve(srv *http.Server, ln net.Listener, name string) {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.logger.Error("listener stopped", slog.String("listener", name), slog.Any("error", err))
	}
}

// DataAddr is the data plane's listening address.
func (s *Server) DataAddr() string {
	if s.dataLn == nil {
		return ""
	}
	return s.dataLn.Addr().String()
}

// AdminAddr is the admin listener's address, "" when it is off.
func (s *Server) AdminAddr() string {
	if s.adminLn == nil {
		return ""
	}
	return s.adminLn.Addr().String()
}

func (s *Server) statusURL(id string) string {
	if s.adminLn == nil {
		return ""
	}
	return s.AdminURL() + "/v1/messages/" + id
}

// DataURL is the data plane's base URL for a client on this machine
// (http://, an unspecified listening host replaced by the loopback).
func (s *Server) DataURL() string { return "http://" + dialable(s.DataAddr()) }

// AdminURL is DataURL for the admin listener, "" when it is off.
func (s *Server) AdminURL() string {
	if s.adminLn == nil {
		return ""
	}
	return "http://" + dialable(s.AdminAddr())
}

// dialable turns a listening address into one a client on this machine can
// dial: an unspecified host becomes the loopback address.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// Reload reads the config file again and applies it. An invalid config is
// refused: the error is returned and logged, and the old config stays.
// Listener and store settings need a restart; a change to them is logged
// and otherwise ignored.
func (s *Server) Reload() error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	old := s.cfg.Load()
	if old.File == "" {
		return errors.New("reload: the config was not read from a file")
	}
	cfg, err := config.Load(old.File)
	if err != nil {
		s.logger.Error("config reload refused; keeping the old config", slog.String("file", old.File), slog.Any("error", err))
		return fmt.Errorf("reload: %w", err)
	}
	return s.apply(cfg)
}

func (s *Server) apply(cfg *config.Config) error {
	old := s.cfg.Load()
	if err := s.gateway.Load(cfg); err != nil {
		s.logger.Error("config reload refused; keeping the old config", slog.Any("error", err))
		return fmt.Errorf("reload: %w", err)
	}
	if cfg.Listen != old.Listen || cfg.Admin.Listen != old.Admin.Listen || cfg.Store != old.Store || cfg.Admin.Token != old.Admin.Token {
		s.logger.Warn("listen, admin and store settings changed in the config need a restart to take effect")
		// Keep the settings the process actually runs with.
		cfg.Listen, cfg.Admin, cfg.Store = old.Listen, old.Admin, old.Store
	}
	s.cfg.Store(cfg)
	s.client.SetTargets(cfg.Targets)
	s.dispatcher.SetConfig(cfg)
	logWarnings(s.logger, cfg)
	s.logger.Info("config reloaded", slog.Int("routes", len(cfg.Routes)), slog.Int("targets", len(cfg.Targets)))
	return nil
}

// logWarnings logs what cfg says that is allowed but probably a mistake
// (config.Config.Warnings), one line each.
func logWarnings(logger *slog.Logger, cfg *config.Config) {
	for _, w := range cfg.Warnings() {
		logger.Warn("config warning", slog.String("warning", w.String()))
	}
}

func (s *Server) watchConfig(ctx context.Context, file string) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch config: %w", err)
	}
	// Watch the directory: editors and config management replace the file
	// by renaming a new one over it.
	if err := w.Add(filepath.Dir(file)); err != nil {
		_ = w.Close()
		return fmt.Errorf("watch config: %w", err)
	}
	abs, _ := filepath.Abs(file)
	s.goBackground(func() {
		defer w.Close()
		var debounce <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if p, _ := filepath.Abs(ev.Name); p == abs && ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename) != 0 {
					debounce = time.After(200 * time.Millisecond)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				s.logger.Warn("config watcher", slog.Any("error", err))
			case <-debounce:
				debounce = nil
				_ = s.Reload()
			}
		}
	})
	return nil
}

// Shutdown stops the process in order: /readyz fails, the data plane stops
// accepting and finishes in-flight requests, accepted messages are
// committed, delivery workers finish in-flight attempts and release their
// leases, and the store is closed. ctx bounds the whole shutdown.
func (s *Server) Shutdown(ctx context.Context) error {
	s.ready.Store(false)
	var errs []error
	if err := s.dataSrv.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("data plane: %w", err))
		_ = s.dataSrv.Close()
	}
	if err := s.gateway.Close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("gateway: %w", err))
	}
	s.commitStop()
	<-s.commitDone
	s.workStop()
	<-s.workDone
	if s.adminSrv != nil {
		if err := s.adminSrv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("admin: %w", err))
			_ = s.adminSrv.Close()
		}
		s.dashboard.Close()
	}
	s.bgStop()
	s.bg.Wait()
	s.client.Close()
	if err := s.obs.shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("tracing: %w", err))
	}
	if err := s.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close store: %w", err))
	}
	s.logger.Info("fanout stopped")
	return errors.Join(errs...)
}

// closeOnFailedStart releases what Start opened before it failed.
func (s *Server) closeOnFailedStart() {
	if s.dataLn != nil {
		_ = s.dataLn.Close()
	}
	if s.adminLn != nil {
		_ = s.adminLn.Close()
	}
	if s.commitStop != nil {
		s.commitStop()
		s.workStop()
		s.bgStop()
		<-s.commitDone
		<-s.workDone
		s.bg.Wait()
	}
	if s.client != nil {
		s.client.Close() // its health checks
	}
	if s.obs != nil {
		_ = s.obs.shutdown(context.Background())
	}
	if s.store != nil {
		_ = s.store.Close()
	}
}
