package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// system is one system under test: where to send the load, and the process
// group whose CPU and memory are its cost.
type system struct {
	name string
	url  string
	pgid int
}

// env is the set of processes one scenario runs against: two counting echo
// targets, and optionally nginx and Fanout in front of them.
type env struct {
	b     *bench
	ps    *procs
	dir   string // logs and configs
	tmp   string // data (the SQLite file)
	a, bb *proc
	aPort int
	bPort int

	nginx     *proc
	nginxPort int

	fanout     *proc
	fanoutPort int
	adminPort  int
	fanoutErr  string // why Fanout is not running, if it is not

	// S7: Fanout on PostgreSQL, one cluster of 1 node and one of 2 nodes,
	// each on a schema of its own (dropped by close).
	clusters []*cluster
	pgErr    string   // why they are not running, if they are not
	schemas  []string // created here, to drop
}

// envOpts choose what an env runs.
type envOpts struct {
	nginx  bool
	fanout bool
	// retryB overrides target qb's retry policy (S5: short backoff, many
	// attempts, so that the backlog drains soon after B returns).
	retryB string
	// pg also starts the S7 clusters (Fanout on PostgreSQL, 1 and 2 nodes).
	pg bool
}

const adminToken = "bench-admin-token"

func (b *bench) newEnv(ctx context.Context, name string, o envOpts) (*env, error) {
	dir := filepath.Join(b.cfg.out, name)
	tmp := filepath.Join(b.cfg.tmp, name)
	for _, d := range []string{dir, tmp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	e := &env{b: b, dir: dir, tmp: tmp, ps: &procs{dir: dir, pidFile: b.cfg.pidFile}}
	b.cur = e
	ok := false
	defer func() {
		if !ok {
			e.close()
		}
	}()
	var err error
	if e.aPort, err = freePort(); err != nil {
		return nil, err
	}
	if e.bPort, err = freePort(); err != nil {
		return nil, err
	}
	if e.a, err = e.startEcho(ctx, "echo-a", "a", e.aPort); err != nil {
		return nil, err
	}
	if e.bb, err = e.startEcho(ctx, "echo-b", "b", e.bPort); err != nil {
		return nil, err
	}
	if o.nginx && b.cfg.nginxBin != "" {
		if err := e.startNginx(ctx); err != nil {
			return nil, err
		}
	}
	if o.fanout {
		if b.cfg.fanoutBin == "" {
			e.fanoutErr = "not run: fanout did not build"
		} else if err := e.startFanout(ctx, o); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			e.fanoutErr = "not run: fanout failed to start: " + firstLine(err.Error())
			b.logf("%s: %v", name, err)
		}
	}
	if o.pg {
		switch {
		case b.cfg.fanoutBin == "":
			e.pgErr = "not run: fanout did not build"
		case b.cfg.pgDSN == "":
			e.pgErr = b.pgSkipNote()
		default:
			if err := e.startClusters(ctx, name, o); err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				e.pgErr = "not run: " + firstLine(err.Error())
				b.logf("%s: PostgreSQL: %v", name, err)
				e.stopClusters()
			}
		}
	}
	ok = true
	return e, nil
}

func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "{") {
			return l
		}
	}
	s = strings.TrimSpace(s)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// close stops every process of the env, then drops its schemas.
func (e *env) close() {
	e.ps.stopAll()
	e.dropSchemas()
}

// pgids lists the process groups of the env's live processes.
func (e *env) pgids() []int {
	e.ps.mu.Lock()
	defer e.ps.mu.Unlock()
	var out []int
	for _, p := range e.ps.list {
		if !p.exited() {
			out = append(out, p.pid())
		}
	}
	return out
}

func (e *env) startEcho(ctx context.Context, logName, name string, port int) (*proc, error) {
	p, err := e.ps.start(logName, []string{e.b.cfg.self, "echo", "--listen", "127.0.0.1:" + strconv.Itoa(port), "--name", name}, nil)
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, p, fmt.Sprintf("http://127.0.0.1:%d/_bench/count", port), 15*time.Second); err != nil {
		return nil, err
	}
	return p, nil
}

// restartEcho starts target b again on its port (S5).
func (e *env) restartB(ctx context.Context) error {
	p, err := e.startEcho(ctx, "echo-b", "b", e.bPort)
	if err != nil {
		return err
	}
	e.bb = p
	return nil
}

// nginxConf is the S1 comparison: proxy_pass to A and mirror to B, both
// upstreams with keep-alive, 2 workers, no access log. keepalive_requests
// is raised on both sides so that nginx is not made to reconnect every
// 1,000 requests (Go's servers and clients have no such limit).
func (e *env) nginxConf(port int) string {
	d := filepath.Join(e.tmp, "nginx")
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;\n"
	}
	return fmt.Sprintf(`# written by fobench
%sworker_processes 2;
daemon off;
master_process on;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
worker_rlimit_nofile 65536;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path %[2]s/body;
  proxy_temp_path %[2]s/proxy;
  fastcgi_temp_path %[2]s/fastcgi;
  uwsgi_temp_path %[2]s/uwsgi;
  scgi_temp_path %[2]s/scgi;
  keepalive_requests 1000000;
  upstream a { server 127.0.0.1:%[3]d; keepalive 64; keepalive_requests 1000000; }
  upstream b { server 127.0.0.1:%[4]d; keepalive 64; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:%[5]d;
    location / {
      mirror /_mirror;
      mirror_request_body on;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://a;
    }
    location = /_mirror {
      internal;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://b$request_uri;
    }
  }
}
`, user, d, e.aPort, e.bPort, port)
}

func (e *env) startNginx(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	d := filepath.Join(e.tmp, "nginx")
	if err := os.MkdirAll(d, 0o755); err != nil {
		return err
	}
	conf := filepath.Join(e.dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(e.nginxConf(port)), 0o644); err != nil {
		return err
	}
	p, err := e.ps.start("nginx", []string{e.b.cfg.nginxBin, "-p", d, "-e", filepath.Join(d, "error.log"), "-c", conf}, nil)
	if err != nil {
		return err
	}
	if err := waitTCP(ctx, p, fmt.Sprintf("127.0.0.1:%d", port), 15*time.Second); err != nil {
		if b, e2 := os.ReadFile(filepath.Join(d, "error.log")); e2 == nil {
			err = fmt.Errorf("%w\n%s", err, b)
		}
		return err
	}
	e.nginx, e.nginxPort = p, port
	return nil
}

// fanoutYAML is the config of the Fanout under test: a sync route (`all`)
// and an async one, each to its own pair of targets so that the echo
// targets count them apart by path.
func (e *env) fanoutYAML(o envOpts) string {
	return e.fanoutYAMLFor(o, e.fanoutPort, e.adminPort, fmt.Sprintf("{driver: sqlite, dsn: %q}", filepath.Join(e.tmp, "fanout.db")))
}

// fanoutYAMLFor is the config of one Fanout process listening on port,
// with its admin API on adminPort and store as the store: mapping.
func (e *env) fanoutYAMLFor(o envOpts, port, adminPort int, store string) string {
	pprof := "false"
	if e.b.cfg.profile {
		pprof = "true"
	}
	retryB := "{initial: 500ms, max: 5s}"
	if o.retryB != "" {
		retryB = o.retryB
	}
	return fmt.Sprintf(`# written by fobench
listen: "127.0.0.1:%d"
admin: {listen: "127.0.0.1:%d", token: "%s", pprof: %s}
store: %s
log: {level: warn}
targets:
  sa: {url: "http://127.0.0.1:%d/all", timeout: 10s}
  sb: {url: "http://127.0.0.1:%d/all", timeout: 10s}
  qa: {url: "http://127.0.0.1:%d/async", timeout: 10s, retry: {initial: 500ms, max: 5s}}
  qb: {url: "http://127.0.0.1:%d/async", timeout: 10s, retry: %s}
routes:
  - name: sync-all
    match: {method: POST, path: /all}
    mode: all
    targets: [sa, sb]
    deadline: 10s
  - name: async
    match: {method: POST, path: /async}
    mode: async
    targets: [qa, qb]
`, port, adminPort, adminToken, pprof, store,
		e.aPort, e.bPort, e.aPort, e.bPort, retryB)
}

func (e *env) startFanout(ctx context.Context, o envOpts) error {
	var err error
	if e.fanoutPort, err = freePort(); err != nil {
		return err
	}
	if e.adminPort, err = freePort(); err != nil {
		return err
	}
	conf := filepath.Join(e.dir, "fanout.yaml")
	if err := os.WriteFile(conf, []byte(e.fanoutYAML(o)), 0o644); err != nil {
		return err
	}
	p, err := e.ps.start("fanout", []string{e.b.cfg.fanoutBin, "serve", "--config", conf}, nil)
	if err != nil {
		return err
	}
	if err := waitTCP(ctx, p, fmt.Sprintf("127.0.0.1:%d", e.fanoutPort), 30*time.Second); err != nil {
		return err
	}
	e.fanout = p
	return nil
}

func (e *env) direct() system {
	return system{name: "direct", url: fmt.Sprintf("http://127.0.0.1:%d/direct", e.aPort), pgid: e.a.pid()}
}

func (e *env) nginxSys() (system, bool) {
	if e.nginx == nil {
		return system{}, false
	}
	return system{name: "nginx", url: fmt.Sprintf("http://127.0.0.1:%d/all", e.nginxPort), pgid: e.nginx.pid()}, true
}

func (e *env) fanoutSys(path string) (system, bool) {
	if e.fanout == nil || e.fanout.exited() {
		return system{}, false
	}
	return system{name: "fanout", url: fmt.Sprintf("http://127.0.0.1:%d%s", e.fanoutPort, path), pgid: e.fanout.pid()}, true
}

// counts reads an echo target's counters for path.
func counts(ctx context.Context, port int, path string) (count, unique int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/_bench/count?path=%s", port, path), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	var c echoCount
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		return 0, 0, err
	}
	pc := c.Paths[path]
	return pc.Count, pc.Unique, nil
}

// setDelay makes an echo target answer after d.
func setDelay(ctx context.Context, port int, d time.Duration) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/_bench/delay?d=%s", port, d), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("set delay: %s", resp.Status)
	}
	return nil
}
