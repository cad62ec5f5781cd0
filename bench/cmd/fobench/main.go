// Command fobench is Fanout's benchmark harness: an echo target that counts
// what it receives, a fixed-rate or closed-loop HTTP load generator, and the
// orchestrator that bench/run.sh starts to run the scenarios of
// shared/BENCHMARKS.md (S1–S8) and print one Markdown table.
//
//	fobench echo --listen 127.0.0.1:18081 --name a
//	fobench load --url http://127.0.0.1:8080/all --rate 1000 --duration 10s
//	fobench run  --fanout bin/fanout --scenarios "S1 S2 S3" ...   (see bench/run.sh)
//	fobench report results.jsonl
//
// It uses the standard library only, so that the harness adds nothing to
// go.mod.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const usage = `fobench — Fanout's benchmark harness (see bench/run.sh and docs/performance.md)

  fobench echo   --listen ADDR [--name N] [--delay D]   counting echo target
  fobench load   --url URL [--rate R | --conns C] [--duration D | -n N]
  fobench run    [flags]                                run the scenarios (bench/run.sh)
  fobench report FILE.jsonl                             print the Markdown table of raw results
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "echo":
		err = runEcho(ctx, os.Args[2:])
	case "load":
		err = runLoadCmd(ctx, os.Args[2:])
	case "run":
		err = runBench(ctx, os.Args[2:])
	case "report":
		err = runReportCmd(os.Args[2:])
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "fobench: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "fobench %s: %v\n", os.Args[1], err)
		stop()
		os.Exit(1)
	}
}
