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
	fs := newFlagSet("serve", `usage: fanout serve [--config FILE] [--listen ADDR] [--admin-listen ADDR] [--log-level LEVEL]

Runs the gateway until SIGINT or SIGTERM, then shuts down within the
config's shutdown_timeout; SIGHUP or a change to the file reloads the
config. Without a config file it runs the demo and prints curl lines to try.

`+exitCodes, env)
	cfgPath := fs.String("config", env.Getenv("FANOUT_CONFIG"), "config file (default $FANOUT_CONFIG; none: the demo)")
	listen := fs.String("listen", "", "override the data-plane listen address")
	adminListen := fs.String("admin-listen", "", "override the admin listen address")
	logLevel := fs.String("log-level", "", "override the log level (debug, info, warn, error)")
	if pos, err := fs.parse(args); err != nil {
		return err
	} else if len(pos) > 0 {
		return fs.usageError()
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
		fmt.Fprint(env.Stdout, demo.Instructions(srv.DataURL(), srv.AdminURL(), cfg.Admin.Token))
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
	logger.Info("shutting down", slog.String("timeout", cfg.ShutdownTimeout.String()))
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

func runValidate(args []string, env Env) error {
	fs := newFlagSet("validate", `usage: fanout validate [--config FILE | FILE]

Checks a config file and prints every mistake as file:line:col: field:
message. Exit codes: 0 the file is valid, 1 it is not (or cannot be read),
2 bad usage.
`, env)
	cfgPath := fs.String("config", env.Getenv("FANOUT_CONFIG"), "config file (default $FANOUT_CONFIG, else fanout.yaml)")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return fs.usageError()
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
	fs := newFlagSet("migrate", `usage: fanout migrate [--config FILE]

Applies the store's migrations and exits (serve applies them too).

`+exitCodes, env)
	cfgPath := fs.String("config", env.Getenv("FANOUT_CONFIG"), "config file (default $FANOUT_CONFIG, else fanout.yaml)")
	if pos, err := fs.parse(args); err != nil {
		return err
	} else if len(pos) > 0 {
		return fs.usageError()
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
	fs := newFlagSet("echo", `usage: fanout echo [--listen ADDR] [--name NAME]

Runs an echo target until SIGINT or SIGTERM: it answers 200 with a JSON
description of each request; a path ending in /status/NNN answers NNN.

`+exitCodes, env)
	listen := fs.String("listen", "127.0.0.1:18081", "address to listen on")
	name := fs.String("name", "echo", "name reported in answers")
	if pos, err := fs.parse(args); err != nil {
		return err
	} else if len(pos) > 0 {
		return fs.usageError()
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
