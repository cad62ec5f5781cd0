package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/demo"
	"github.com/fanouthq/fanout/server"
)

func runServe(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("serve", env)
	cfgPath := fs.String("config", env.Getenv("FANOUT_CONFIG"), "config file (default $FANOUT_CONFIG; none: the demo)")
	listen := fs.String("listen", "", "override the data-plane listen address")
	adminListen := fs.String("admin-listen", "", "override the admin listen address")
	logLevel := fs.String("log-level", "", "override the log level (debug, info, warn, error)")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}

	var (
		cfg     *config.Config
		targets *demo.Targets
		err     error
	)
	if *cfgPath == "" {
		cfg, targets, err = demoConfig(env)
		if err != nil {
			return err
		}
		defer func() {
			shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = targets.Close(shutCtx)
			_ = os.RemoveAll(filepath.Dir(cfg.Store.DSN))
		}()
	} else {
		cfg, err = config.Load(*cfgPath)
		if err != nil {
			fmt.Fprintln(env.Stderr, err)
			return exitError{1}
		}
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	if *adminListen != "" {
		cfg.Admin.Listen = *adminListen
	}
	if *logLevel != "" {
		cfg.Log.Level = *logLevel
	}
	logger, err := newLogger(env.Stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}

	srv, err := server.Start(ctx, cfg, server.Options{Logger: logger, WatchConfig: cfg.File != "", Version: version()})
	if err != nil {
		return err
	}
	if targets != nil {
		fmt.Fprint(env.Stdout, demo.Instructions("http://"+dialable(srv.DataAddr()), "http://"+dialable(srv.AdminAddr()), cfg.Admin.Token))
	}

	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-env.Hangup:
			if err := srv.Reload(); err != nil {
				logger.Warn("SIGHUP reload failed", slog.Any("error", err))
			}
		}
	}
	logger.Info("shutting down", slog.Duration("timeout", cfg.ShutdownTimeout.D()))
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout.D())
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// demoConfig starts the demo's echo targets and returns the demo config,
// storing messages in a fresh temporary directory.
func demoConfig(env Env) (*config.Config, *demo.Targets, error) {
	targets, err := demo.StartTargets(slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "fanout-demo-")
	if err != nil {
		_ = targets.Close(context.Background())
		return nil, nil, fmt.Errorf("demo store: %w", err)
	}
	token := make([]byte, 8)
	_, _ = rand.Read(token)
	cfg, err := demo.Config(targets, filepath.Join(dir, "fanout.db"), "demo-"+hex.EncodeToString(token))
	if err != nil {
		_ = targets.Close(context.Background())
		return nil, nil, err
	}
	fmt.Fprintf(env.Stderr, "no --config given: starting the demo (store in %s)\n", dir)
	return cfg, targets, nil
}

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

func runValidate(args []string, env Env) error {
	fs := newFlagSet("validate", env)
	cfgPath := fs.String("config", env.Getenv("FANOUT_CONFIG"), "config file (default $FANOUT_CONFIG, else fanout.yaml)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	path := *cfgPath
	if len(pos) == 1 {
		path = pos[0]
	}
	if path == "" {
		path = "fanout.yaml"
	}
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return exitError{1}
	}
	// Warnings do not fail validation: the config is valid and loads.
	warnings := cfg.Warnings()
	for _, w := range warnings {
		fmt.Fprintln(env.Stderr, w)
	}
	fmt.Fprintf(env.Stdout, "%s: ok (%d routes, %d targets", path, len(cfg.Routes), len(cfg.Targets))
	if len(warnings) > 0 {
		fmt.Fprintf(env.Stdout, ", %d warnings", len(warnings))
	}
	fmt.Fprintln(env.Stdout, ")")
	return nil
}

func runMigrate(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("migrate", env)
	cfgPath := fs.String("config", env.Getenv("FANOUT_CONFIG"), "config file (default $FANOUT_CONFIG, else fanout.yaml)")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	path := *cfgPath
	if path == "" {
		path = "fanout.yaml"
	}
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return exitError{1}
	}
	st, err := server.OpenStore(ctx, cfg.Store, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%s store migrated\n", cfg.Store.Driver)
	return nil
}

func runEcho(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("echo", env)
	listen := fs.String("listen", "127.0.0.1:18081", "address to listen on")
	name := fs.String("name", "echo", "name reported in answers")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: &demo.Echo{Name: *name}, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(env.Stdout, "echo target %q on http://%s\n", *name, ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutCtx)
		<-errc
		return nil
	case err := <-errc:
		return err
	}
}
