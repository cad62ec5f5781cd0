package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// S7 runs Fanout on PostgreSQL beside the SQLite figures of S3 and S4: in
// every round of those scenarios, after the SQLite Fanout, the same load
// goes to a cluster of one Fanout process and to a cluster of two on one
// database, each cluster on a fresh schema of its own (created here with
// psql, dropped when the scenario's processes have stopped; bench/run.sh
// drops whatever is left with the run's prefix, however the run ends).

// sut is a system under test made of one or more Fanout processes: the
// SQLite Fanout (one process), or a PostgreSQL cluster, whose load is split
// evenly across its nodes' ingress ports.
type sut struct {
	name  string
	urls  []string
	procs []*proc
	// db: the PostgreSQL server's CPU (every process of the cluster on the
	// machine) is part of the system's cost.
	db bool
}

func (s sut) alive() bool {
	for _, p := range s.procs {
		if p == nil || p.exited() {
			return false
		}
	}
	return len(s.procs) > 0
}

// cpu is the CPU time of the Fanout processes (not the database's).
func (s sut) cpu() time.Duration {
	var d time.Duration
	for _, p := range s.procs {
		d += groupCPU(p.pid())
	}
	return d
}

// rssKB adds up a /proc status value (VmHWM) over the Fanout processes.
func (s sut) rssKB(key string) int64 {
	var n int64
	for _, p := range s.procs {
		n += groupKB(p.pid(), key)
	}
	return n
}

// dbCPU snapshots the PostgreSQL server's CPU when the system uses it
// (nil otherwise); dbSince(snapshot) is the CPU it used since.
func (s sut) dbCPU() pgSnap {
	if !s.db {
		return nil
	}
	return pgServerSnap()
}

func clusterName(nodes int) string {
	if nodes == 1 {
		return "fanout, PostgreSQL 1 node"
	}
	return fmt.Sprintf("fanout, PostgreSQL %d nodes", nodes)
}

// cluster is S7's Fanout processes on one PostgreSQL schema.
type cluster struct {
	nodes  int
	schema string
	procs  []*proc
	ports  []int
}

func (c *cluster) sut(path string) sut {
	s := sut{name: clusterName(c.nodes), procs: c.procs, db: true}
	for _, p := range c.ports {
		s.urls = append(s.urls, fmt.Sprintf("http://127.0.0.1:%d%s", p, path))
	}
	return s
}

// sqliteSut is the env's SQLite Fanout as a sut.
func (e *env) sqliteSut(path string) (sut, bool) {
	fs, ok := e.fanoutSys(path)
	if !ok {
		return sut{}, false
	}
	return sut{name: fs.name, urls: []string{fs.url}, procs: []*proc{e.fanout}}, true
}

// pgSuts lists the env's PostgreSQL clusters as suts.
func (e *env) pgSuts(path string) []sut {
	var out []sut
	for _, c := range e.clusters {
		out = append(out, c.sut(path))
	}
	return out
}

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,40}$`)

func (b *bench) pgSkipNote() string {
	why := b.cfg.pgSkip
	if why == "" {
		why = "no PostgreSQL to run against (fobench run -pg-dsn)"
	}
	return "skipped: " + why
}

// psql runs one SQL command on the -pg-dsn database and returns its output
// (unaligned, tuples only).
func (b *bench) psql(ctx context.Context, sql string) (string, error) {
	if b.cfg.psqlBin == "" || b.cfg.pgDSN == "" {
		return "", errors.New("no psql or no PostgreSQL DSN")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.cfg.psqlBin, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", b.cfg.pgDSN, "-c", sql)
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=5")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("psql %q: %v: %s", sql, err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// withSearchPath adds search_path=schema to a PostgreSQL DSN, a URL or a
// keyword/value string.
func withSearchPath(dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		return dsn + sep + "search_path=" + schema
	}
	return strings.TrimSpace(dsn) + " search_path=" + schema
}

// startClusters creates a schema for each of a 1-node and a 2-node cluster
// and starts their Fanout processes (the two nodes together, so that they
// migrate the schema at the same moment, as in production).
func (e *env) startClusters(ctx context.Context, name string, o envOpts) error {
	b := e.b
	for _, n := range []int{1, 2} {
		schema := fmt.Sprintf("%s_%s_n%d", b.cfg.pgSchemaPrefix, name, n)
		if !schemaName.MatchString(schema) {
			return fmt.Errorf("bad schema name %q", schema)
		}
		if _, err := b.psql(ctx, "CREATE SCHEMA "+schema); err != nil {
			return err
		}
		e.schemas = append(e.schemas, schema)
		store := fmt.Sprintf("{driver: postgres, dsn: %q}", withSearchPath(b.cfg.pgDSN, schema))
		c := &cluster{nodes: n, schema: schema}
		e.clusters = append(e.clusters, c)
		for i := 1; i <= n; i++ {
			port, err := freePort()
			if err != nil {
				return err
			}
			admin, err := freePort()
			if err != nil {
				return err
			}
			pname := fmt.Sprintf("fanout-pg-n%d-%d", n, i)
			conf := filepath.Join(e.dir, pname+".yaml")
			if err := os.WriteFile(conf, []byte(e.fanoutYAMLFor(o, port, admin, store)), 0o644); err != nil {
				return err
			}
			p, err := e.ps.start(pname, []string{b.cfg.fanoutBin, "serve", "--config", conf}, nil)
			if err != nil {
				return err
			}
			c.procs = append(c.procs, p)
			c.ports = append(c.ports, port)
		}
		for i, p := range c.procs {
			if err := waitTCP(ctx, p, "127.0.0.1:"+strconv.Itoa(c.ports[i]), 30*time.Second); err != nil {
				return err
			}
		}
		b.logf("%s: %s on schema %s, ports %v", name, clusterName(n), schema, c.ports)
	}
	return nil
}

// stopClusters stops the clusters' processes (after a failed start).
func (e *env) stopClusters() {
	for _, c := range e.clusters {
		for _, p := range c.procs {
			e.ps.stop(p, 5*time.Second)
		}
	}
	e.clusters = nil
}

// dropSchemas drops the env's schemas; its processes must have stopped.
func (e *env) dropSchemas() {
	for _, s := range e.schemas {
		if _, err := e.b.psql(context.Background(), "DROP SCHEMA IF EXISTS "+s+" CASCADE"); err != nil {
			e.b.logf("dropping schema %s: %v", s, err)
		}
	}
	e.schemas = nil
}

// pgServerPIDs lists the processes named postgres: the servers' postmasters
// and their children (backends, WAL writer, checkpointer, ...).
func pgServerPIDs() []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/comm"); err == nil && strings.TrimSpace(string(b)) == "postgres" {
			out = append(out, pid)
		}
	}
	return out
}

// pgSnap is the CPU time (ticks) of each postgres process at one moment.
type pgSnap map[int]int64

func pgServerSnap() pgSnap {
	m := pgSnap{}
	for _, pid := range pgServerPIDs() {
		f, err := statFields(pid)
		if err != nil || len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		m[pid] = u + s
	}
	return m
}

// since is the CPU the postgres processes used from s0 to s: each process
// alive at s counts what it used since s0 (all of it if it started since).
// Backends that exited in between take theirs with them (the pool's
// connections live as long as Fanout, so that is little).
func (s pgSnap) since(s0 pgSnap) time.Duration {
	var ticks int64
	for pid, t := range s {
		if t0, ok := s0[pid]; ok && t0 <= t {
			ticks += t - t0
		} else if !ok {
			ticks += t
		}
	}
	return time.Duration(ticks) * time.Second / clkTck
}

// pgInfo describes the PostgreSQL server for the report's header.
func (b *bench) pgInfo(ctx context.Context) string {
	if b.cfg.pgDSN == "" {
		return b.pgSkipNote()
	}
	out, err := b.psql(ctx, `SELECT current_setting('server_version') || '|' || current_setting('fsync') || '|' ||
		current_setting('synchronous_commit') || '|' || current_setting('data_directory')`)
	if err != nil {
		return "PostgreSQL: " + firstLine(err.Error())
	}
	f := strings.Split(out, "|")
	if len(f) != 4 {
		return "PostgreSQL: " + out
	}
	return fmt.Sprintf("PostgreSQL %s (fsync %s, synchronous_commit %s), data on %s; schemas %s_*",
		strings.Fields(f[0])[0], f[1], f[2], fsType(f[3]), b.cfg.pgSchemaPrefix)
}

// wrkSplit runs wrk -t1 against every url at once for dur, conns
// connections split evenly between them, and adds up their summaries:
// counts add, the duration is the longest, latencies are the worst of the
// runs' percentiles (an upper bound of the whole's).
func (b *bench) wrkSplit(ctx context.Context, urls []string, conns int, dur time.Duration) (wrkResult, error) {
	if len(urls) == 1 {
		return b.wrk.run(ctx, urls[0], 1, conns, dur)
	}
	res := make([]wrkResult, len(urls))
	errs := make([]error, len(urls))
	var wg sync.WaitGroup
	for i, u := range urls {
		c := conns / len(urls)
		if i < conns%len(urls) {
			c++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i], errs[i] = b.wrk.run(ctx, u, 1, max(1, c), dur)
		}()
	}
	wg.Wait()
	return mergeWrk(res), errors.Join(errs...)
}

func mergeWrk(rs []wrkResult) wrkResult {
	var m wrkResult
	for _, r := range rs {
		m.Requests += r.Requests
		m.Bytes += r.Bytes
		m.Connect += r.Connect
		m.Read += r.Read
		m.Write += r.Write
		m.Status += r.Status
		m.Timeout += r.Timeout
		m.DurationUS = max(m.DurationUS, r.DurationUS)
		m.P50us = max(m.P50us, r.P50us)
		m.P90us = max(m.P90us, r.P90us)
		m.P99us = max(m.P99us, r.P99us)
		m.P999us = max(m.P999us, r.P999us)
		m.MaxUS = max(m.MaxUS, r.MaxUS)
		m.MeanUS += r.MeanUS * float64(r.Requests)
		m.cpu += r.cpu
	}
	if m.Requests > 0 {
		m.MeanUS /= float64(m.Requests)
	}
	return m
}

// addRatios adds S7's ratios to r: ×SQLite (the SQLite Fanout's figure of
// the same round) and, for more than one node, ×1 node (the 1-node
// cluster's figure of the same round).
func addRatios(r *result, sqlite, oneNode float64, nodes int) {
	if r.RPS <= 0 {
		return
	}
	if r.Extra == nil {
		r.Extra = map[string]float64{}
	}
	if sqlite > 0 {
		r.Extra["x_sqlite"] = r.RPS / sqlite
	}
	if nodes > 1 && oneNode > 0 {
		r.Extra["x_1node"] = r.RPS / oneNode
	}
}

// s7Variants are the S7 groups of the table.
func (b *bench) s7AcceptVariant(conns int) string { return fmt.Sprintf("accept c=%d", conns) }
func (b *bench) s7DeliverVariant() string {
	return fmt.Sprintf("deliver %s msg/s offered, %s", thousands(b.cfg.s4Rate), b.cfg.duration)
}

// s7NotRun records why the S7 rows of a variant have no figures.
func (b *bench) s7NotRun(variant, note string) {
	for _, n := range []int{1, 2} {
		b.record(result{Scenario: "S7", Variant: variant, System: clusterName(n), Note: note})
	}
}

// s7 runs inside S3 and S4 (which run whenever S7 is named); here it only
// says so, or why it was skipped.
func (b *bench) s7(context.Context) error {
	if b.cfg.pgDSN == "" {
		note := b.pgSkipNote()
		b.s7NotRun(b.s7AcceptVariant(64), note)
		b.s7NotRun(b.s7DeliverVariant(), note)
		return nil
	}
	b.logf("S7 ran inside the S3 and S4 rounds")
	return nil
}
