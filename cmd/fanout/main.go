// Command fanout receives information once over HTTP and delivers it to two
// or more downstream APIs. See the README and docs/ for how to run it.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/fanouthq/fanout/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	reload := make(chan struct{}, 1)
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default:
			}
		}
	}()
	code := cli.Main(ctx, os.Args[1:], cli.Env{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		Getenv: os.Getenv, Hangup: reload,
	})
	stop()
	os.Exit(code)
}
