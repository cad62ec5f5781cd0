package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// benchCfg is what bench/run.sh passes (from its environment variables).
type benchCfg struct {
	self      string // this binary, for the echo targets
	fanoutBin string // empty: Fanout did not build
	nginxBin  string // empty: no nginx
	wrkBin    string
	goBin     string

	out     string // logs, configs, raw results and the report
	tmp     string // data files
	pidFile string

	scenarios []string
	runs      int
	duration  time.Duration
	warmup    time.Duration
	pause     time.Duration
	conns     []int
	bodySize  int

	s2Rate       float64
	s4Rate       float64
	s4Duration   time.Duration
	s5Messages   int64
	s6Rate       float64
	s6Duration   time.Duration
	s6Delay      time.Duration
	drainTimeout time.Duration
	stallTimeout time.Duration
	s5Timeout    time.Duration

	// S7: PostgreSQL (a URL; empty: S7 is skipped, pgSkip says why),
	// psql to create and drop the schemas, and their names' prefix.
	pgDSN          string
	pgSkip         string
	psqlBin        string
	pgSchemaPrefix string

	profile         bool
	binSize         int64
	binStrippedSize int64
}

type bench struct {
	cfg     benchCfg
	wrk     *wrkRunner
	body    []byte
	mu      sync.Mutex
	results []result
	resFile *os.File
	log     *os.File
	extra   []string // report sections after the table
	s8rss   int64    // Fanout's VmHWM after the S1 runs, kB
	cur     *env     // the env of the running scenario
}

// meter starts measuring the CPU of processes outside the rig.
func (b *bench) meter() meter {
	if b.cur == nil {
		return newMeter(nil)
	}
	return newMeter(b.cur.pgids())
}

func (b *bench) logf(format string, args ...any) {
	line := fmt.Sprintf("[%s] ", time.Now().Format("15:04:05")) + fmt.Sprintf(format, args...)
	fmt.Fprintln(os.Stderr, line)
	if b.log != nil {
		fmt.Fprintln(b.log, line)
	}
}

func (b *bench) record(r result) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.results = append(b.results, r)
	if b.resFile != nil {
		j, _ := json.Marshal(r)
		b.resFile.Write(append(j, '\n'))
	}
	if r.Requests == 0 && r.RPS == 0 && r.Note != "" {
		b.logf("  %s %s round %d: %s", r.group(), r.System, r.Round, r.Note)
		return
	}
	b.logf("  %s %s round %d: %s/s p50 %.2f ms p99 %.2f ms cpu %.2fs errors %d %v %s",
		r.group(), r.System, r.Round, thousands(r.RPS), r.P50ms, r.P99ms, r.CPUs, r.Errors, fmtExtra(r.Extra), r.Note)
}

func fmtExtra(m map[string]float64) string {
	if len(m) == 0 {
		return ""
	}
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	var parts []string
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("%s=%.4g", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func (b *bench) has(s string) bool { return slices.Contains(b.cfg.scenarios, s) }

func (b *bench) sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func runBench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("fobench run", flag.ContinueOnError)
	var c benchCfg
	var scen, conns string
	fs.StringVar(&c.fanoutBin, "fanout", "", "fanout binary (empty: run direct and nginx only)")
	fs.StringVar(&c.nginxBin, "nginx", "", "nginx binary (empty: no nginx rows)")
	fs.StringVar(&c.wrkBin, "wrk", "wrk", "wrk binary")
	fs.StringVar(&c.goBin, "go", "go", "go command (for go tool pprof)")
	fs.StringVar(&c.out, "out", "bench/out/run", "output directory")
	fs.StringVar(&c.tmp, "tmp", "", "directory for data files (default: a new temporary directory)")
	fs.StringVar(&c.pidFile, "pidfile", "", "append the process group id of every process started here")
	fs.StringVar(&scen, "scenarios", "S1 S2 S3 S4 S6 S8", "scenarios to run (S5 and S7 only when named)")
	fs.IntVar(&c.runs, "runs", 3, "interleaved rounds")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "length of one measured run")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "warm-up per system before the rounds")
	fs.DurationVar(&c.pause, "pause", 500*time.Millisecond, "pause between runs")
	fs.StringVar(&conns, "conns", "64 8", "wrk connections for S1 (space separated)")
	fs.IntVar(&c.bodySize, "body-size", 1024, "JSON body size")
	fs.Float64Var(&c.s2Rate, "s2-rate", 1000, "S2 fixed rate (req/s)")
	fs.Float64Var(&c.s4Rate, "s4-rate", 10000, "S4 offered rate (messages/s)")
	fs.DurationVar(&c.s4Duration, "s4-duration", 30*time.Second, "S4 load duration")
	fs.Int64Var(&c.s5Messages, "s5-messages", 500000, "S5 messages accepted while B is down")
	fs.DurationVar(&c.s5Timeout, "s5-timeout", 20*time.Minute, "S5 bound on the accept phase and on the drain")
	fs.Float64Var(&c.s6Rate, "s6-rate", 1000, "S6 offered rate (messages/s)")
	fs.DurationVar(&c.s6Duration, "s6-duration", 0, "S6 load per phase (default: -duration)")
	fs.DurationVar(&c.s6Delay, "s6-delay", 2*time.Second, "S6: B answers after this delay")
	fs.DurationVar(&c.drainTimeout, "drain-timeout", 180*time.Second, "bound on waiting for async deliveries")
	fs.DurationVar(&c.stallTimeout, "stall-timeout", 30*time.Second, "stop waiting for deliveries when none arrived for this long")
	fs.StringVar(&c.pgDSN, "pg-dsn", "", "S7: PostgreSQL URL (empty: skip S7)")
	fs.StringVar(&c.pgSkip, "pg-skip", "", "S7: why there is no PostgreSQL (shown in the report)")
	fs.StringVar(&c.psqlBin, "psql", "psql", "S7: psql, to create and drop the schemas")
	fs.StringVar(&c.pgSchemaPrefix, "pg-schema-prefix", "", "S7: prefix of the schemas created (default fobench_PID)")
	fs.BoolVar(&c.profile, "profile", true, "take a CPU profile of Fanout under S1 (admin pprof)")
	fs.Int64Var(&c.binSize, "bin-size", 0, "size of the fanout binary (S8)")
	fs.Int64Var(&c.binStrippedSize, "bin-size-stripped", 0, "size of the fanout binary built with -s -w (S8)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c.scenarios = strings.Fields(strings.ToUpper(strings.ReplaceAll(scen, ",", " ")))
	for _, f := range strings.Fields(strings.ReplaceAll(conns, ",", " ")) {
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return fmt.Errorf("bad -conns %q", conns)
		}
		c.conns = append(c.conns, n)
	}
	if c.runs < 1 {
		return errors.New("-runs must be at least 1")
	}
	if c.s6Duration <= 0 {
		c.s6Duration = c.duration
	}
	if c.pgSchemaPrefix == "" {
		c.pgSchemaPrefix = fmt.Sprintf("fobench_%d", os.Getpid())
	}
	c.pgSchemaPrefix = strings.ToLower(c.pgSchemaPrefix)
	if !schemaName.MatchString(c.pgSchemaPrefix) || len(c.pgSchemaPrefix) > 30 {
		return fmt.Errorf("bad -pg-schema-prefix %q (lower-case letters, digits and _, at most 30)", c.pgSchemaPrefix)
	}
	if c.pgDSN != "" && c.psqlBin == "" {
		c.pgDSN, c.pgSkip = "", "no psql to create the schemas"
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	c.self = self
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return err
	}
	if c.tmp == "" {
		if c.tmp, err = os.MkdirTemp("", "fobench-"); err != nil {
			return err
		}
		defer os.RemoveAll(c.tmp)
	}
	b := &bench{cfg: c, body: jsonBody(c.bodySize)}
	script := filepath.Join(c.out, "post.lua")
	if err := os.WriteFile(script, []byte(wrkScript(b.body)), 0o644); err != nil {
		return err
	}
	b.wrk = &wrkRunner{bin: c.wrkBin, script: script, logDir: c.out}
	if b.resFile, err = os.Create(filepath.Join(c.out, "results.jsonl")); err != nil {
		return err
	}
	defer b.resFile.Close()
	if b.log, err = os.Create(filepath.Join(c.out, "bench.log")); err != nil {
		return err
	}
	defer b.log.Close()

	header := b.header(ctx)
	if c.runs < 3 {
		header += fmt.Sprintf("- **%d round(s) only**: medians of fewer than 3 rounds are not quotable (shared/BENCHMARKS.md)\n", c.runs)
	}
	b.logf("scenarios %v, %d rounds of %s, output in %s", c.scenarios, c.runs, c.duration, c.out)

	type step struct {
		id  string
		run func(context.Context) error
	}
	steps := []step{
		{"S1", func(ctx context.Context) error { return b.s1(ctx) }},
		{"S2", b.s2}, {"S3", b.s3}, {"S4", b.s4}, {"S5", b.s5}, {"S6", b.s6}, {"S7", b.s7},
	}
	var failed []string
	for _, s := range steps {
		// S7 runs inside S3 and S4 (its SQLite references).
		want := b.has(s.id) || (s.id == "S1" && b.has("S8")) ||
			((s.id == "S3" || s.id == "S4") && b.has("S7") && b.cfg.pgDSN != "")
		if !want {
			continue
		}
		b.logf("== %s", s.id)
		if err := s.run(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			b.logf("%s failed: %v", s.id, err)
			failed = append(failed, fmt.Sprintf("%s: %s", s.id, firstLine(err.Error())))
			b.record(result{Scenario: s.id, System: "harness", Note: "failed: " + firstLine(err.Error())})
		}
	}
	if b.has("S8") {
		b.s8()
	}

	var rep bytes.Buffer
	rep.WriteString(header)
	rep.WriteString(b.footerInfo())
	rep.WriteString("\n")
	rows := renderTable(&rep, b.results)
	rep.WriteString(legend)
	var gb bytes.Buffer
	renderGoals(&gb, rows)
	if gb.Len() > 0 {
		rep.WriteString("\nGoals (one run on a shared machine: indicative, not a verdict):\n\n")
		rep.Write(gb.Bytes())
	}
	for _, s := range b.extra {
		rep.WriteString("\n" + s)
	}
	if err := os.WriteFile(filepath.Join(c.out, "report.md"), rep.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Println()
	fmt.Print(rep.String())
	if len(failed) > 0 {
		return fmt.Errorf("some scenarios failed: %s", strings.Join(failed, "; "))
	}
	return nil
}

const legend = `
Medians of the interleaved rounds. req/s: answered 2xx per second (S3: accepted 202/s; S4: messages
delivered to both targets per second; S6: target A's deliveries per second; S7: as S3 for accept, as
S4 for deliver). ×direct and ×nginx:
median of the per-round ratios. req per CPU-s: answered (accepted) requests per CPU second of the
system under test (utime+stime from /proc, nginx's master and workers added; direct: the echo
target; S7 on PostgreSQL: Fanout's processes plus every postgres process on the machine). S7:
×SQLite and ×1 node are medians of per-round ratios against the SQLite Fanout (S3's row for
accept; the "fanout, SQLite" row for deliver, same rate and window) and the 1-node cluster; 2 nodes
split the load evenly across both ingress ports (two wrk -c32; two generators at half the rate), with
p50/p99 the worse of the two halves for accept. peak RSS: VmHWM of the system's processes, summed
for nginx and for a cluster's nodes, at the end of its last run.
others' CPU: cores used during the runs by processes this harness did not start (machine busy time
from /proc/stat less the rig's own: the systems, the echo targets, the load generator); above ~0.1
the machine was shared and every figure is noisier, latencies most.
`

// header describes the machine and the run.
func (b *bench) header(ctx context.Context) string {
	var h strings.Builder
	now := time.Now()
	fmt.Fprintf(&h, "## Fanout benchmark run — %s\n\n", now.UTC().Format("2006-01-02 15:04 UTC"))
	model := "?"
	if ci, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(ci), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	fmt.Fprintf(&h, "- machine: %d CPUs (%s), Linux %s, %s\n", runtime.NumCPU(), model, strings.TrimSpace(string(kernel)), runtime.Version())
	busy := machineBusy(ctx, time.Second)
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(&h, "- before the run: load average %s, CPU busy %.0f%% over 1 s (other processes on the machine add noise)\n",
		strings.Join(strings.Fields(string(load))[:3], " "), busy*100)
	fmt.Fprintf(&h, "- data (SQLite) on %s\n", fsType(b.cfg.tmp))
	if b.has("S7") {
		fmt.Fprintf(&h, "- S7: %s\n", b.pgInfo(ctx))
	}
	fmt.Fprintf(&h, "- tools: %s; %s; fanout %s\n", toolVersion(b.cfg.wrkBin, "-v"), toolVersion(b.cfg.nginxBin, "-v"), toolVersion(b.cfg.fanoutBin, "version"))
	fmt.Fprintf(&h, "- parameters: scenarios %s, %d rounds, %s per run, warm-up %s, wrk -t1 -c%v, %d B JSON POST, S2 %.0f req/s, S4 %.0f msg/s for %s, S6 %.0f msg/s for %s (B delay %s)\n",
		strings.Join(b.cfg.scenarios, " "), b.cfg.runs, b.cfg.duration, b.cfg.warmup, b.cfg.conns, b.cfg.bodySize,
		b.cfg.s2Rate, b.cfg.s4Rate, b.cfg.s4Duration, b.cfg.s6Rate, b.cfg.s6Duration, b.cfg.s6Delay)
	return h.String()
}

func (b *bench) footerInfo() string {
	load, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(load))
	if len(f) < 3 {
		return ""
	}
	return fmt.Sprintf("- after the run: load average %s\n", strings.Join(f[:3], " "))
}

func toolVersion(bin string, arg string) string {
	if bin == "" {
		return "(none)"
	}
	out, _ := exec.Command(bin, arg).CombinedOutput()
	line := strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	if line == "" {
		return filepath.Base(bin) + " ?"
	}
	return line
}

// fsType names the file system that holds path, from /proc/mounts.
func fsType(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "?"
	}
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return "?"
	}
	best, typ, dev := "", "?", ""
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 3 {
			continue
		}
		mp := f[1]
		if (abs == mp || strings.HasPrefix(abs, strings.TrimSuffix(mp, "/")+"/")) && len(mp) >= len(best) {
			best, typ, dev = mp, f[2], f[0]
		}
	}
	if typ == "tmpfs" {
		return "tmpfs (fsync costs nothing there: S3/S4 figures are not durable-disk figures)"
	}
	return fmt.Sprintf("%s (%s, mounted on %s)", typ, dev, best)
}

// machineBusy samples /proc/stat: the busy fraction of all CPUs over d.
func machineBusy(ctx context.Context, d time.Duration) float64 {
	read := func() (busy, total float64) {
		b, err := os.ReadFile("/proc/stat")
		if err != nil {
			return 0, 0
		}
		line := strings.SplitN(string(b), "\n", 2)[0]
		f := strings.Fields(line)
		for i, v := range f[1:] {
			x, _ := strconv.ParseFloat(v, 64)
			total += x
			if i != 3 && i != 4 { // idle, iowait
				busy += x
			}
		}
		return busy, total
	}
	b0, t0 := read()
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
	b1, t1 := read()
	if t1 <= t0 {
		return 0
	}
	return (b1 - b0) / (t1 - t0)
}

// measureWrk runs wrk against s and measures s's CPU and memory.
func (b *bench) measureWrk(ctx context.Context, scen, variant string, s system, round, conns int) (result, wrkResult, error) {
	m := b.meter()
	cpu0 := groupCPU(s.pgid)
	w, err := b.wrk.run(ctx, s.url, 1, conns, b.cfg.duration)
	cpu1 := groupCPU(s.pgid)
	r := result{Scenario: scen, Variant: variant, System: s.name, Round: round, Others: m.others(w.cpu)}
	if err != nil {
		r.Note = "wrk failed: " + firstLine(err.Error())
		return r, w, err
	}
	r.RPS = w.perSecond()
	r.P50ms, r.P99ms = w.P50us/1000, w.P99us/1000
	r.Requests = w.good()
	r.CPUs = (cpu1 - cpu0).Seconds()
	r.RSSkB = groupKB(s.pgid, "VmHWM")
	r.Errors = w.Status + w.socketErrors()
	return r, w, nil
}

// s1 is the sync fan-out throughput: direct, nginx and Fanout interleaved,
// at each wrk concurrency. When only S8 is asked for, it runs Fanout alone
// for one round at the first concurrency.
func (b *bench) s1(ctx context.Context) error {
	full := b.has("S1")
	e, err := b.newEnv(ctx, "s1", envOpts{nginx: full, fanout: true})
	if err != nil {
		return err
	}
	defer e.close()
	var systems []system
	if full {
		systems = append(systems, e.direct())
		if s, ok := e.nginxSys(); ok {
			systems = append(systems, s)
		} else {
			b.record(result{Scenario: "S1", Variant: fmt.Sprintf("c=%d", b.cfg.conns[0]), System: "nginx", Note: "not run: no nginx"})
		}
	}
	fs, fanoutOK := e.fanoutSys("/all")
	if fanoutOK {
		systems = append(systems, fs)
	} else if full {
		for _, c := range b.cfg.conns {
			b.record(result{Scenario: "S1", Variant: fmt.Sprintf("c=%d", c), System: "fanout", Note: e.fanoutErr})
		}
	}
	if len(systems) == 0 {
		return nil
	}
	runs, conns := b.cfg.runs, b.cfg.conns
	if !full {
		runs, conns = 1, conns[:1]
	}
	for _, s := range systems {
		b.logf("warm-up %s %s", s.name, b.cfg.warmup)
		if _, err := b.wrk.run(ctx, s.url, 1, conns[0], b.cfg.warmup); err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
	}
	for round := 1; round <= runs; round++ {
		for _, c := range conns {
			for _, s := range systems {
				var a0, b0 int64
				if s.name != "direct" {
					a0, _, _ = counts(ctx, e.aPort, "/all")
					b0, _, _ = counts(ctx, e.bPort, "/all")
				}
				r, _, err := b.measureWrk(ctx, "S1", fmt.Sprintf("c=%d", c), s, round, c)
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if s.name != "direct" && err == nil && r.Requests > 0 {
					// Every answered request must have reached both targets
					// (nginx's mirror may finish just after the answer).
					_ = b.sleep(ctx, 200*time.Millisecond)
					a1, _, _ := counts(ctx, e.aPort, "/all")
					b1, _, _ := counts(ctx, e.bPort, "/all")
					fa, fb := float64(a1-a0)/float64(r.Requests), float64(b1-b0)/float64(r.Requests)
					if fa < 0.99 || fb < 0.99 {
						r.Note = fmt.Sprintf("only %.0f%% reached A, %.0f%% B", fa*100, fb*100)
					}
				}
				if full {
					b.record(r)
				}
				_ = err
				if err := b.sleep(ctx, b.cfg.pause); err != nil {
					return err
				}
			}
		}
	}
	if fanoutOK {
		b.s8rss = groupKB(fs.pgid, "VmHWM")
		if b.cfg.profile {
			if err := b.profileS1(ctx, e, fs); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				b.logf("profile: %v", err)
				b.extra = append(b.extra, fmt.Sprintf("### CPU profile of Fanout under S1\n\nnot taken: %s\n", firstLine(err.Error())))
			}
		}
	}
	return nil
}

// profileS1 runs one extra S1 run of Fanout at the first concurrency (not
// counted in the table) while taking, through the admin listener's pprof, a
// CPU profile and a delta allocation profile of the same window.
func (b *bench) profileS1(ctx context.Context, e *env, fs system) error {
	secs := max(1, int(b.cfg.duration/time.Second)-2)
	cpuPath := filepath.Join(b.cfg.out, "s1-fanout-cpu.pprof")
	allocPath := filepath.Join(b.cfg.out, "s1-fanout-allocs.pprof")
	base := fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/", e.adminPort)
	cpuc, allocc := make(chan error, 1), make(chan error, 1)
	go func() { cpuc <- fetchProfile(ctx, base+"profile?seconds="+strconv.Itoa(secs), cpuPath, secs) }()
	go func() { allocc <- fetchProfile(ctx, base+"allocs?seconds="+strconv.Itoa(secs), allocPath, secs) }()
	b.logf("profiling fanout under S1 c=%d for %ds", b.cfg.conns[0], secs)
	w, werr := b.wrk.run(ctx, fs.url, 1, b.cfg.conns[0], b.cfg.duration)
	cpuErr, allocErr := <-cpuc, <-allocc
	if err := errors.Join(cpuErr, werr); err != nil {
		return err
	}
	pprof := func(args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, b.cfg.goBin, append([]string{"tool", "pprof"}, args...)...).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("go tool pprof: %v: %s", err, out)
		}
		return string(out), nil
	}
	top, err := pprof("-top", "-nodecount=40", b.cfg.fanoutBin, cpuPath)
	if err != nil {
		return err
	}
	cum, _ := pprof("-top", "-cum", "-nodecount=40", b.cfg.fanoutBin, cpuPath)
	text := top + "\n\n" + cum
	sec := fmt.Sprintf("### CPU profile of Fanout under S1 c=%d (%s/s during the profile; %s)\n\n```\n%s```\n\ncumulative:\n\n```\n%s```\n",
		b.cfg.conns[0], thousands(w.perSecond()), cpuPath, trimPprof(top, 25), trimPprof(cum, 25))
	if allocErr == nil {
		if al, err := pprof("-top", "-sample_index=alloc_space", "-nodecount=25", b.cfg.fanoutBin, allocPath); err == nil {
			text += "\n\n" + al
			sec += fmt.Sprintf("\nallocations (alloc_space, same window; about %s requests answered in it):\n\n```\n%s```\n",
				thousands(w.perSecond()*float64(secs)), trimPprof(al, 15))
		}
	}
	_ = os.WriteFile(filepath.Join(b.cfg.out, "s1-fanout-profile-top.txt"), []byte(text), 0o644)
	b.extra = append(b.extra, sec)
	return nil
}

// fetchProfile GETs a pprof endpoint (with the admin token) into path,
// starting a second into the load.
func fetchProfile(ctx context.Context, url, path string, secs int) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Second):
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := (&http.Client{Timeout: time.Duration(secs+30) * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return fmt.Errorf("GET %s: %s %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// trimPprof keeps pprof's summary lines and the first n rows.
func trimPprof(s string, n int) string {
	var out []string
	rows := 0
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") || strings.HasPrefix(l, "Type:") || strings.HasPrefix(l, "Time:") {
			continue
		}
		if strings.TrimSpace(l) == "" {
			continue
		}
		out = append(out, l)
		if strings.Contains(l, "flat%") {
			continue
		}
		if len(out) > 3 {
			rows++
		}
		if rows >= n {
			break
		}
	}
	return strings.Join(out, "\n") + "\n"
}

// s2 is the added latency at a fixed rate: direct, nginx and Fanout.
func (b *bench) s2(ctx context.Context) error {
	e, err := b.newEnv(ctx, "s2", envOpts{nginx: true, fanout: true})
	if err != nil {
		return err
	}
	defer e.close()
	systems := []system{e.direct()}
	if s, ok := e.nginxSys(); ok {
		systems = append(systems, s)
	}
	if s, ok := e.fanoutSys("/all"); ok {
		systems = append(systems, s)
	} else {
		b.record(result{Scenario: "S2", Variant: rateVariant(b.cfg.s2Rate), System: "fanout", Note: e.fanoutErr})
	}
	for _, s := range systems {
		b.fixedRate(ctx, s, b.cfg.s2Rate, b.cfg.warmup)
	}
	for round := 1; round <= b.cfg.runs; round++ {
		for _, s := range systems {
			m := b.meter()
			cpu0 := groupCPU(s.pgid)
			res := b.fixedRate(ctx, s, b.cfg.s2Rate, b.cfg.duration)
			cpu1 := groupCPU(s.pgid)
			others := m.others(0)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r := result{Scenario: "S2", Variant: rateVariant(b.cfg.s2Rate), System: s.name, Round: round,
				RPS: res.OKPerS, P50ms: res.P50ms, P99ms: res.P99ms, Requests: res.OK, CPUs: (cpu1 - cpu0).Seconds(),
				RSSkB: groupKB(s.pgid, "VmHWM"), Errors: res.Non2xx + res.Errors, Others: others}
			if res.Skipped > 0 {
				r.Extra = map[string]float64{"skipped": float64(res.Skipped)}
			}
			b.record(r)
			if err := b.sleep(ctx, b.cfg.pause); err != nil {
				return err
			}
		}
	}
	return nil
}

func rateVariant(r float64) string { return fmt.Sprintf("%s req/s", thousands(r)) }

func (b *bench) fixedRate(ctx context.Context, s system, rate float64, d time.Duration) loadResult {
	g := newLoadGen(loadOpts{URL: s.url, Body: b.body, Rate: rate, Conns: 1024, Duration: d})
	return g.run(ctx)
}

// s3 is the durable accept: wrk -c64 at an async route, then every
// accepted message must reach both targets. With S7 named, each round also
// measures Fanout on PostgreSQL, 1 node and 2 nodes (S7 rows).
func (b *bench) s3(ctx context.Context) error {
	pg := b.has("S7")
	e, err := b.newEnv(ctx, "s3", envOpts{fanout: true, pg: pg && b.cfg.pgDSN != ""})
	if err != nil {
		return err
	}
	defer e.close()
	conns := 64
	variant := "c=64"
	direct := e.direct()
	fs, ok := e.sqliteSut("/async")
	if !ok {
		b.record(result{Scenario: "S3", Variant: variant, System: "fanout", Note: e.fanoutErr})
	}
	pgs := e.pgSuts("/async")
	if pg && len(pgs) == 0 && b.cfg.pgDSN != "" {
		b.s7NotRun(b.s7AcceptVariant(conns), e.pgErr)
	}
	b.logf("warm-up %s", b.cfg.warmup)
	_, _ = b.wrk.run(ctx, direct.url, 1, conns, b.cfg.warmup)
	for _, s := range append([]sut{fs}, pgs...) {
		if s.alive() {
			_, _ = b.wrkSplit(ctx, s.urls, conns, b.cfg.warmup)
			_, _ = b.waitQuiet(ctx, e, "/async", b.cfg.drainTimeout)
		}
	}
	for round := 1; round <= b.cfg.runs; round++ {
		r, _, _ := b.measureWrk(ctx, "S3", variant, direct, round, conns)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b.record(r)
		if err := b.sleep(ctx, b.cfg.pause); err != nil {
			return err
		}
		var sqliteRPS, oneNode float64
		if ok && fs.alive() {
			r, err := b.acceptRound(ctx, e, fs, "S3", variant, round, conns)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			b.record(r)
			if err == nil {
				sqliteRPS = r.RPS
			}
			if err := b.sleep(ctx, b.cfg.pause); err != nil {
				return err
			}
		}
		for i, s := range pgs {
			nodes := len(s.procs)
			v := b.s7AcceptVariant(conns)
			if !s.alive() {
				b.record(result{Scenario: "S7", Variant: v, System: s.name, Round: round, Note: "not run: a node exited (see its log)"})
				continue
			}
			r, err := b.acceptRound(ctx, e, s, "S7", v, round, conns)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			addRatios(&r, sqliteRPS, oneNode, nodes)
			if i == 0 && nodes == 1 && err == nil {
				oneNode = r.RPS
			}
			b.record(r)
			if err := b.sleep(ctx, b.cfg.pause); err != nil {
				return err
			}
		}
	}
	return nil
}

// acceptRound is one S3-style run against s: wrk -c conns at its ingress
// port(s) for the run's duration, then a bounded wait until both targets
// have every accepted message. The result is not recorded.
func (b *bench) acceptRound(ctx context.Context, e *env, s sut, scen, variant string, round, conns int) (result, error) {
	r := result{Scenario: scen, Variant: variant, System: s.name, Round: round}
	base, err := tallyOf(ctx, e, "/async")
	if err != nil {
		r.Note = "echo targets: " + firstLine(err.Error())
		return r, err
	}
	m := b.meter()
	cpu0, db0 := s.cpu(), s.dbCPU()
	w, err := b.wrkSplit(ctx, s.urls, conns, b.cfg.duration)
	cpu1, db1 := s.cpu(), s.dbCPU()
	r.Others = m.others(w.cpu + db1.since(db0))
	if err != nil {
		r.Note = "wrk failed: " + firstLine(err.Error())
		return r, err
	}
	r.RPS = w.perSecond()
	r.P50ms, r.P99ms = w.P50us/1000, w.P99us/1000
	r.Requests = w.good()
	r.CPUs = (cpu1 - cpu0 + db1.since(db0)).Seconds()
	r.RSSkB = s.rssKB("VmHWM")
	r.Errors = w.Status + w.socketErrors()
	accepted := w.good()
	dr := b.drainAlive(ctx, e, s.alive, "/async", base, accepted, b.cfg.drainTimeout)
	cpu2, db2 := s.cpu(), s.dbCPU()
	got := dr.t.minus(base)
	r.Extra = map[string]float64{"drain_s": dr.drainS}
	if dr.done {
		r.Extra["e2e_per_s"] = float64(accepted) / (float64(w.DurationUS)/1e6 + dr.drainS)
	} else {
		r.Note = fmt.Sprintf("not all delivered within %s", b.cfg.drainTimeout)
		if dr.stalled {
			r.Note = fmt.Sprintf("deliveries stalled (none for %s)", b.cfg.stallTimeout)
		}
		if !s.alive() {
			r.Note = "a Fanout process exited during the run"
		}
	}
	// Distinct message ids at each target against the 202s counted by
	// wrk (a few more may be accepted while wrk closes: missing is a
	// lower bound of what was lost).
	r.Extra["missing"] = float64(max(0, accepted-got.ua, accepted-got.ub))
	r.Extra["dup"] = float64(got.dups())
	r.Extra["cpu_e2e_s"] = (cpu2 - cpu0 + db2.since(db0)).Seconds()
	if s.db {
		r.Extra["db_cpu_s"] = db1.since(db0).Seconds()
	}
	r.RSSkB = s.rssKB("VmHWM")
	return r, nil
}

// tally is what the two targets counted on a path: requests (a, b) and
// distinct message ids (ua, ub).
type tally struct{ a, b, ua, ub int64 }

func (t tally) minus(o tally) tally { return tally{t.a - o.a, t.b - o.b, t.ua - o.ua, t.ub - o.ub} }

// dups is the number of deliveries beyond the first of each message.
func (t tally) dups() int64 { return (t.a - t.ua) + (t.b - t.ub) }

func tallyOf(ctx context.Context, e *env, path string) (tally, error) {
	a, ua, err1 := counts(ctx, e.aPort, path)
	b, ub, err2 := counts(ctx, e.bPort, path)
	return tally{a, b, ua, ub}, errors.Join(err1, err2)
}

type drainResult struct {
	done, stalled bool
	drainS        float64
	t             tally // the last reading
}

// drain waits until both targets have seen want more distinct messages on
// path than in base (duplicates do not count), then until the counts stop
// moving (at most 5 s more). It gives up after timeout, or when nothing
// arrived for -stall-timeout.
func (b *bench) drain(ctx context.Context, e *env, path string, base tally, want int64, timeout time.Duration) drainResult {
	alive := func() bool { return e.fanout == nil || !e.fanout.exited() }
	return b.drainAlive(ctx, e, alive, path, base, want, timeout)
}

// drainAlive is drain that gives up as soon as alive says the system under
// test is down.
func (b *bench) drainAlive(ctx context.Context, e *env, alive func() bool, path string, base tally, want int64, timeout time.Duration) drainResult {
	start := time.Now()
	var dr drainResult
	lastChange := start
	for {
		if t, err := tallyOf(ctx, e, path); err == nil {
			if t != dr.t {
				lastChange = time.Now()
			}
			dr.t = t
			got := t.minus(base)
			if got.ua >= want && got.ub >= want {
				dr.done = true
				dr.drainS = time.Since(start).Seconds()
				break
			}
		}
		if time.Since(start) > timeout || time.Since(lastChange) > b.cfg.stallTimeout ||
			ctx.Err() != nil || !alive() {
			dr.drainS = time.Since(start).Seconds()
			dr.stalled = time.Since(lastChange) > b.cfg.stallTimeout
			return dr
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Messages accepted while the load was closing are delivered too: wait
	// for quiet so that they do not count in the next run.
	if t, ok := b.waitQuiet(ctx, e, path, 5*time.Second); ok {
		dr.t = t
	}
	return dr
}

// waitQuiet waits until neither target's count on path moved for 1 s.
func (b *bench) waitQuiet(ctx context.Context, e *env, path string, timeout time.Duration) (tally, bool) {
	start := time.Now()
	var last tally
	lastChange := time.Now()
	for time.Since(start) < timeout && ctx.Err() == nil {
		if t, err := tallyOf(ctx, e, path); err == nil {
			if t != last {
				last, lastChange = t, time.Now()
			} else if time.Since(lastChange) >= time.Second {
				return last, true
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return last, false
}

// sample is one second of an async load: messages accepted so far and
// what the targets counted since the start.
type sample struct {
	t        float64
	accepted int64
	got      tally
}

// asyncLoad offers rate messages/s for d, split evenly across urls (one
// generator each, side by side), while sampling the targets every second;
// it returns the load's result, the samples and the targets' tally at the
// start.
func (b *bench) asyncLoad(ctx context.Context, e *env, urls []string, rate float64, d time.Duration) (res loadResult, samples []sample, base tally, err error) {
	if base, err = tallyOf(ctx, e, "/async"); err != nil {
		return loadResult{}, nil, base, err
	}
	gens := make([]*loadGen, len(urls))
	for i, u := range urls {
		gens[i] = newLoadGen(loadOpts{URL: u, Body: b.body, Rate: rate / float64(len(urls)), Conns: 2048 / len(urls), Duration: d})
	}
	done := make(chan loadResult, 1)
	start := time.Now()
	go func() {
		rs := make([]loadResult, len(gens))
		var wg sync.WaitGroup
		for i, g := range gens {
			wg.Add(1)
			go func() { defer wg.Done(); rs[i] = g.run(ctx) }()
		}
		wg.Wait()
		done <- mergeLoad(rs)
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	take := func() {
		t, _ := tallyOf(ctx, e, "/async")
		var acc int64
		for _, g := range gens {
			acc += g.ok.Load()
		}
		samples = append(samples, sample{t: time.Since(start).Seconds(), accepted: acc, got: t.minus(base)})
	}
	for {
		select {
		case res = <-done:
			take()
			return res, samples, base, nil
		case <-tick.C:
			take()
		}
	}
}

// mergeLoad adds up loads that ran side by side: counts and rates add,
// latencies are pooled.
func mergeLoad(rs []loadResult) loadResult {
	if len(rs) == 1 {
		return rs[0]
	}
	var m loadResult
	m.Status = map[int]int64{}
	var lat []time.Duration
	for _, r := range rs {
		m.Sent += r.Sent
		m.OK += r.OK
		m.Non2xx += r.Non2xx
		m.Errors += r.Errors
		m.Skipped += r.Skipped
		m.OKPerS += r.OKPerS
		m.ElapsedS = max(m.ElapsedS, r.ElapsedS)
		for k, v := range r.Status {
			m.Status[k] += v
		}
		if r.LastError != "" {
			m.LastError = r.LastError
		}
		lat = append(lat, r.lat...)
	}
	slices.Sort(lat)
	m.lat = lat
	m.P50ms = ms(percentile(lat, 50))
	m.P90ms = ms(percentile(lat, 90))
	m.P99ms = ms(percentile(lat, 99))
	m.P999ms = ms(percentile(lat, 99.9))
	if len(lat) > 0 {
		m.MaxMs = ms(lat[len(lat)-1])
	}
	return m
}

// slope is the least-squares slope of ys over xs.
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / den
}

// s4 is async end to end, sustained: a fixed offered rate for S4_DURATION,
// deliveries counted at both targets every second. With S7 named, each
// round also offers the same rate for -duration to the SQLite Fanout and
// to Fanout on PostgreSQL, 1 node and 2 nodes (S7 rows).
func (b *bench) s4(ctx context.Context) error {
	pg := b.has("S7")
	e, err := b.newEnv(ctx, "s4", envOpts{fanout: true, pg: pg && b.cfg.pgDSN != ""})
	if err != nil {
		return err
	}
	defer e.close()
	variant := fmt.Sprintf("%s msg/s offered, %s", thousands(b.cfg.s4Rate), b.cfg.s4Duration)
	v7 := b.s7DeliverVariant()
	fs, ok := e.sqliteSut("/async")
	if !ok {
		if b.has("S4") {
			b.record(result{Scenario: "S4", Variant: variant, System: "fanout", Note: e.fanoutErr})
		}
		if pg {
			b.record(result{Scenario: "S7", Variant: v7, System: "fanout, SQLite", Note: e.fanoutErr})
		}
	}
	pgs := e.pgSuts("/async")
	if pg && len(pgs) == 0 && b.cfg.pgDSN != "" {
		b.s7NotRun(v7, e.pgErr)
	}
	for round := 1; round <= b.cfg.runs; round++ {
		if b.has("S4") && ok && fs.alive() {
			r, err := b.deliverRound(ctx, e, fs, "S4", variant, round, b.cfg.s4Duration)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				return err
			}
			b.record(r)
			if err := b.sleep(ctx, b.cfg.pause); err != nil {
				return err
			}
		}
		if !pg || len(pgs) == 0 {
			continue
		}
		// S7: the SQLite reference and the clusters, same rate and window.
		var sqliteRPS, oneNode float64
		sref := fs
		sref.name = "fanout, SQLite"
		for i, s := range append([]sut{sref}, pgs...) {
			if !s.alive() {
				if i > 0 || ok {
					b.record(result{Scenario: "S7", Variant: v7, System: s.name, Round: round, Note: "not run: a Fanout process exited (see its log)"})
				}
				continue
			}
			r, err := b.deliverRound(ctx, e, s, "S7", v7, round, b.cfg.duration)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				return err
			}
			switch {
			case i == 0:
				sqliteRPS = r.RPS
			default:
				addRatios(&r, sqliteRPS, oneNode, len(s.procs))
				if len(s.procs) == 1 {
					oneNode = r.RPS
				}
			}
			b.record(r)
			if err := b.sleep(ctx, b.cfg.pause); err != nil {
				return err
			}
		}
	}
	return nil
}

// deliverRound is one S4-style run against s: S4_RATE messages/s offered
// for d, split across its ingress ports; req/s is the messages delivered
// to both targets per second of the window; then a bounded drain, after
// which every accepted message must have reached both. Not recorded.
func (b *bench) deliverRound(ctx context.Context, e *env, s sut, scen, variant string, round int, d time.Duration) (result, error) {
	cpu0, db0 := s.cpu(), s.dbCPU()
	m := b.meter()
	res, samples, base, err := b.asyncLoad(ctx, e, s.urls, b.cfg.s4Rate, d)
	db1 := s.dbCPU()
	others := m.others(db1.since(db0))
	if err != nil {
		return result{}, err
	}
	// Messages (distinct ids) delivered during the load window.
	last := samples[len(samples)-1]
	win := d.Seconds()
	both := min(last.got.ua, last.got.ub)
	r := result{Scenario: scen, Variant: variant, System: s.name, Round: round,
		RPS: float64(both) / win, P50ms: res.P50ms, P99ms: res.P99ms,
		Errors: res.Non2xx + res.Errors, Others: others, Extra: map[string]float64{
			"offered_per_s":     b.cfg.s4Rate,
			"accepted_per_s":    res.OKPerS,
			"delivered_a_per_s": float64(last.got.ua) / win,
			"delivered_b_per_s": float64(last.got.ub) / win,
			"backlog_end":       float64(last.accepted - both),
		}}
	if scen == "S7" {
		r.Extra["deliveries_per_s"] = float64(last.got.ua+last.got.ub) / win
	}
	// Backlog slope over the second half of the load.
	var xs, ys []float64
	for _, sm := range samples {
		if sm.t >= win/2 && sm.t <= win+0.5 {
			xs = append(xs, sm.t)
			ys = append(ys, float64(sm.accepted-min(sm.got.ua, sm.got.ub)))
		}
	}
	r.Extra["backlog_slope_per_s"] = slope(xs, ys)
	if res.Skipped > 0 {
		r.Extra["skipped"] = float64(res.Skipped)
	}
	// Then drain what is left, bounded, so the next run starts empty.
	dr := b.drainAlive(ctx, e, s.alive, "/async", base, res.OK, b.cfg.drainTimeout)
	got := dr.t.minus(base)
	r.Extra["drain_s"] = dr.drainS
	r.Extra["dup"] = float64(got.dups())
	r.Extra["missing"] = float64(max(0, res.OK-got.ua, res.OK-got.ub))
	if !dr.done {
		r.Note = fmt.Sprintf("not all delivered within %s of the end", b.cfg.drainTimeout)
		if dr.stalled {
			r.Note = fmt.Sprintf("deliveries stalled (none for %s)", b.cfg.stallTimeout)
		}
		if !s.alive() {
			r.Note = "a Fanout process exited during the run"
		}
	}
	cpu1, db2 := s.cpu(), s.dbCPU()
	r.Requests, r.CPUs = res.OK, (cpu1 - cpu0 + db2.since(db0)).Seconds()
	if s.db {
		r.Extra["db_cpu_s"] = db2.since(db0).Seconds()
	}
	r.RSSkB = s.rssKB("VmHWM")
	return r, nil
}

// s5 is the backlog: target B down while S5_MESSAGES are accepted, then
// back; Fanout's RSS is sampled every second throughout.
func (b *bench) s5(ctx context.Context) error {
	e, err := b.newEnv(ctx, "s5", envOpts{fanout: true, retryB: "{initial: 1s, max: 5s, max_attempts: 100000, max_age: 24h}"})
	if err != nil {
		return err
	}
	defer e.close()
	variant := fmt.Sprintf("%s messages, B down", thousands(float64(b.cfg.s5Messages)))
	fs, ok := e.fanoutSys("/async")
	if !ok {
		b.record(result{Scenario: "S5", Variant: variant, System: "fanout", Note: e.fanoutErr})
		return nil
	}
	var rssMax int64
	var rssMu sync.Mutex
	stopRSS := make(chan struct{})
	var rssWG sync.WaitGroup
	rssWG.Add(1)
	go func() {
		defer rssWG.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopRSS:
				return
			case <-t.C:
				v := groupKB(fs.pgid, "VmRSS")
				rssMu.Lock()
				rssMax = max(rssMax, v)
				rssMu.Unlock()
			}
		}
	}()
	defer func() { close(stopRSS); rssWG.Wait() }()

	b.logf("stopping target B")
	e.ps.stop(e.bb, 3*time.Second)
	cpu0 := groupCPU(fs.pgid)
	b.logf("accepting %d messages (closed loop, 64 connections)", b.cfg.s5Messages)
	g := newLoadGen(loadOpts{URL: fs.url, Body: b.body, Conns: 64, N: b.cfg.s5Messages, Duration: b.cfg.s5Timeout})
	res := g.run(ctx)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	cpuAccept := groupCPU(fs.pgid) - cpu0
	rssMu.Lock()
	rssAccept := rssMax
	rssMu.Unlock()
	b.logf("accepted %d in %.1fs (%s/s), RSS so far %.1f MB; starting B again", res.OK, res.ElapsedS, thousands(res.OKPerS), float64(rssAccept)/1024)
	if err := e.restartB(ctx); err != nil {
		return err
	}
	start := time.Now()
	dr := b.drain(ctx, e, "/async", tally{}, res.OK, b.cfg.s5Timeout)
	drain := time.Since(start).Seconds()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	rssMu.Lock()
	peak := rssMax
	rssMu.Unlock()
	r := result{Scenario: "S5", Variant: variant, System: "fanout", Round: 1,
		RPS: res.OKPerS, P50ms: res.P50ms, P99ms: res.P99ms, Requests: res.OK, CPUs: cpuAccept.Seconds(),
		RSSkB: groupKB(fs.pgid, "VmHWM"), Errors: res.Non2xx + res.Errors,
		Extra: map[string]float64{
			"rss_max_mb":        float64(peak) / 1024,
			"drain_s":           drain,
			"delivered_b_per_s": float64(dr.t.ub) / drain,
			"dup":               float64(dr.t.dups()),
		}}
	if !dr.done {
		r.Note = fmt.Sprintf("B got %d of %d within %s", dr.t.ub, res.OK, b.cfg.s5Timeout)
		if dr.stalled {
			r.Note += fmt.Sprintf(" (stalled: none for %s)", b.cfg.stallTimeout)
		}
	}
	b.record(r)
	return nil
}

// s6 is isolation: target A's delivery rate with B fast, then with B
// answering after S6_DELAY, at the same offered rate.
func (b *bench) s6(ctx context.Context) error {
	e, err := b.newEnv(ctx, "s6", envOpts{fanout: true})
	if err != nil {
		return err
	}
	defer e.close()
	variant := fmt.Sprintf("%s msg/s offered", thousands(b.cfg.s6Rate))
	fs, ok := e.fanoutSys("/async")
	if !ok {
		b.record(result{Scenario: "S6", Variant: variant, System: "fanout", Note: e.fanoutErr})
		return nil
	}
	slowName := fmt.Sprintf("fanout, B answers in %s", b.cfg.s6Delay)
	for round := 1; round <= b.cfg.runs; round++ {
		var fastRate float64
		for _, slow := range []bool{false, true} {
			if e.fanout.exited() {
				return errors.New("fanout exited")
			}
			d := time.Duration(0)
			name := "fanout, B fast"
			if slow {
				d, name = b.cfg.s6Delay, slowName
			}
			if err := setDelay(ctx, e.bPort, d); err != nil {
				return err
			}
			cpu0 := groupCPU(fs.pgid)
			m := b.meter()
			res, samples, base, err := b.asyncLoad(ctx, e, []string{fs.url}, b.cfg.s6Rate, b.cfg.s6Duration)
			others := m.others(0)
			if err != nil {
				return err
			}
			cpu1 := groupCPU(fs.pgid)
			last := samples[len(samples)-1]
			win := b.cfg.s6Duration.Seconds()
			aRate := float64(last.got.ua) / win
			r := result{Scenario: "S6", Variant: variant, System: name, Round: round,
				RPS: aRate, P50ms: res.P50ms, P99ms: res.P99ms, Requests: res.OK, CPUs: (cpu1 - cpu0).Seconds(),
				RSSkB: groupKB(fs.pgid, "VmHWM"), Errors: res.Non2xx + res.Errors, Others: others,
				Extra: map[string]float64{
					"offered_per_s":     b.cfg.s6Rate,
					"accepted_per_s":    res.OKPerS,
					"delivered_b_per_s": float64(last.got.ub) / win,
				}}
			if !slow {
				fastRate = aRate
			} else if fastRate > 0 {
				r.Extra["a_ratio"] = aRate / fastRate
			}
			if res.OKPerS < 0.95*b.cfg.s6Rate {
				r.Note = "Fanout did not accept the offered rate: the A ratio measures overload, not isolation (lower S6_RATE)"
			}
			b.record(r)
			// B fast again; let the backlog drain (bounded) before the next phase.
			if err := setDelay(ctx, e.bPort, 0); err != nil {
				return err
			}
			dr := b.drain(ctx, e, "/async", base, res.OK, b.cfg.drainTimeout)
			if !dr.done {
				b.logf("S6: backlog not drained (stalled: %v)", dr.stalled)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	return nil
}

// s8 reports the footprint: Fanout's peak RSS under the S1 load and the
// binary's size.
func (b *bench) s8() {
	r := result{Scenario: "S8", System: "fanout", Round: 1, RSSkB: b.s8rss, Extra: map[string]float64{}}
	if b.cfg.binSize > 0 {
		r.Extra["binary_mb"] = float64(b.cfg.binSize) / (1 << 20)
	}
	if b.cfg.binStrippedSize > 0 {
		r.Extra["binary_stripped_mb"] = float64(b.cfg.binStrippedSize) / (1 << 20)
	}
	if b.s8rss == 0 {
		r.Note = "RSS not measured: fanout did not run S1"
	} else {
		r.Note = "peak RSS over the S1 runs"
		r.Requests = 1 // a row with figures, not a "not run" row
	}
	b.record(r)
}
