package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"

	"github.com/mattn/go-isatty"
)

// Version is set at build time with -ldflags "-X github.com/fanouthq/fanout/cli.Version=v1.2.3".
var Version = ""

// Env is what a command sees of its process.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// Signals delivers SIGHUP (reload) to serve; nil means none.
	Hangup <-chan struct{}
}

// exitError carries an exit code; its message, if any, has been printed.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

const usage = `fanout — receive once, deliver to every API.

Usage:
  fanout serve    [--config fanout.yaml]   run the gateway (no config: the demo)
  fanout validate [--config fanout.yaml]   check a config file
  fanout send PATH [-d @file|-|DATA]       send a request to a running fanout
  fanout messages list|show|replay         inspect and replay messages (admin API)
  fanout migrate  [--config fanout.yaml]   apply store migrations and exit
  fanout keys new [--tenant T --name N]    make an API key and print its config entry
  fanout echo     [--listen ADDR]          run an echo target (for trials and benchmarks)
  fanout version                           print the version

Environment: FANOUT_CONFIG (default config path), FANOUT_URL (send),
FANOUT_ADMIN_URL and FANOUT_ADMIN_TOKEN (messages).
`

// Main runs the command in args (without the program name) and returns the
// process exit code. ctx is cancelled on SIGINT/SIGTERM by the caller.
func Main(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	if env.Stdin == nil {
		env.Stdin = strings.NewReader("")
	}
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = runServe(ctx, args[1:], env)
	case "validate":
		err = runValidate(args[1:], env)
	case "send":
		err = runSend(ctx, args[1:], env)
	case "messages":
		err = runMessages(ctx, args[1:], env)
	case "migrate":
		err = runMigrate(ctx, args[1:], env)
	case "keys":
		err = runKeys(ctx, args[1:], env)
	case "echo":
		err = runEcho(ctx, args[1:], env)
	case "version", "--version", "-v":
		fmt.Fprintln(env.Stdout, "fanout", version())
	case "help", "-h", "--help":
		fmt.Fprint(env.Stdout, usage)
	default:
		fmt.Fprintf(env.Stderr, "fanout: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, flag.ErrHelp):
		return 0
	default:
		fmt.Fprintf(env.Stderr, "fanout %s: %v\n", args[0], err)
		return 1
	}
}

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// newFlagSet returns a flag set that prints errors and usage to stderr.
func newFlagSet(name string, env Env) *flag.FlagSet {
	fs := flag.NewFlagSet("fanout "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	return fs
}

// parseFlags parses args, allowing flags after positional arguments
// ("fanout send /x -d @f"); it returns the positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, exitError{2}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// newLogger builds the process logger: JSON by default, text on a
// terminal, at the given level.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if level == "" {
		level = "info"
	}
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "" || format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return slog.New(slog.NewJSONHandler(w, opts)), nil
}
