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
	"slices"
	"strings"

	"github.com/mattn/go-isatty"

	"github.com/fanouthq/fanout/config"
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
  fanout serve    [--config FILE]                run the gateway (no config: the demo)
  fanout validate [--config FILE | FILE]         check a config file
  fanout send PATH [-d @file|-|DATA] [-H ...]    send a request to a running fanout
  fanout messages list [filters]                 list messages and their deliveries (admin API)
  fanout messages show ID                        print one message with its attempts
  fanout messages replay ID | --all [filters]    deliver again
  fanout messages delete ID                      delete a message and its deliveries
  fanout messages backfill ROUTE --target T --since 24h
                                                 queue past messages of a route for a target
  fanout migrate  [--config FILE]                apply store migrations and exit
  fanout keys new [--tenant T --name N --admin]  make an API key and print its config entry
  fanout keys hash < keyfile                     print the SHA-256 of a key
  fanout keys create --name N [--expires-at T]   create a self-service API key (admin API)
  fanout keys list [--tenant T]                  list self-service keys, never the keys
  fanout keys revoke ID                          revoke a self-service key
  fanout subscriptions request ROUTE [--note N]  ask for access to a route (admin API)
  fanout subscriptions list [filters]            list subscriptions
  fanout subscriptions approve ID [--reason R]   approve a subscription (admin token)
  fanout subscriptions reject ID [--reason R]    reject a pending subscription
  fanout subscriptions revoke ID [--reason R]    revoke a subscription
  fanout audit    [--since 24h]                  every decision and key change (admin API)
  fanout echo     [--listen ADDR]                run an echo target (for trials and benchmarks)
  fanout version                                 print the version
  fanout help [COMMAND]                          this help, or a command's

Every command takes -h or --help for its flags.

Environment: FANOUT_CONFIG (default config path), FANOUT_URL (send),
FANOUT_ADMIN_URL and FANOUT_ADMIN_TOKEN (messages, keys create|list|revoke,
subscriptions, audit).

` + exitCodes

// exitCodes is the exit status every command shares; send adds 3.
const exitCodes = `Exit codes: 0 done (help included), 1 the command failed (the reason is
on standard error), 2 bad usage (unknown command or flag, missing argument).
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
	case "subscriptions":
		err = runSubscriptions(ctx, args[1:], env)
	case "audit":
		err = runAudit(ctx, args[1:], env)
	case "echo":
		err = runEcho(ctx, args[1:], env)
	case "version", "--version", "-v":
		fmt.Fprintln(env.Stdout, "fanout", version())
	case "help", "-h", "--help":
		if len(args) > 1 && args[0] == "help" && args[1] != "help" {
			// "fanout help messages" is "fanout messages --help".
			return Main(ctx, append(slices.Clone(args[1:]), "--help"), env)
		}
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
	case errors.Is(err, errHelp):
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

// errHelp is returned by a command that printed its help as asked.
var errHelp = flag.ErrHelp

// flagSet is the flags of one command with its help text.
type flagSet struct {
	*flag.FlagSet
	help string
	env  Env
}

// newFlagSet returns the flag set of the command name ("send", "messages
// list"), whose help text (a usage line, what it does, its exit codes) is
// printed with the flags by -h or --help.
func newFlagSet(name, help string, env Env) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet("fanout "+name, flag.ContinueOnError), help: help, env: env}
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {} // parse prints the help itself, where it belongs
	return fs
}

// printHelp writes the help text and the flags to w.
func (fs *flagSet) printHelp(w io.Writer) {
	fmt.Fprint(w, fs.help)
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprint(w, "\nFlags:\n")
	out := fs.Output()
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(out)
}

// usageError prints the help to standard error and returns exit code 2.
func (fs *flagSet) usageError() error {
	fs.printHelp(fs.env.Stderr)
	return exitError{2}
}

// parse parses args, allowing flags after positional arguments
// ("fanout send /x -d @f"), and returns the positional arguments. With -h
// or --help it prints the help to standard output and returns errHelp
// (exit 0); a bad flag prints the error and the help to standard error and
// exits 2.
func (fs *flagSet) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.printHelp(fs.env.Stdout)
				return nil, errHelp
			}
			fmt.Fprintln(fs.env.Stderr)
			return nil, fs.usageError()
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
// terminal, at the given level. Durations are logged as the config writes
// them ("30s", "1m30s", "7d"), not as a number of nanoseconds.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if level == "" {
		level = "info"
	}
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv, ReplaceAttr: humanDuration}
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

// humanDuration renders a duration attribute as config.Duration writes it.
func humanDuration(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, config.Duration(a.Value.Duration()).String())
	}
	return a
}
