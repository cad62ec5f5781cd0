package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clkTck is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100 on
// every Linux architecture Go supports (sysconf would need cgo).
const clkTck = 100

// proc is a process the harness started, in its own process group so that
// it and its children (nginx workers) can be measured and stopped together.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// procs starts processes and stops every one of them in stopAll. Their
// process group ids are also written to pidFile, one a line, so that the
// shell's trap can kill them if this process itself is killed.
type procs struct {
	dir     string
	pidFile string
	mu      sync.Mutex
	list    []*proc
}

func (ps *procs) start(name string, args []string, env []string) (*proc, error) {
	logPath := filepath.Join(ps.dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	inOwnGroup(cmd)
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	ps.mu.Lock()
	ps.list = append(ps.list, p)
	ps.mu.Unlock()
	if ps.pidFile != "" {
		if pf, err := os.OpenFile(ps.pidFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
			fmt.Fprintln(pf, p.pid())
			pf.Close()
		}
	}
	return p, nil
}

// stop ends p's process group: SIGTERM, then SIGKILL after grace.
func (ps *procs) stop(p *proc, grace time.Duration) {
	if p == nil {
		return
	}
	pgid := p.pid()
	if !p.exited() {
		signalGroup(pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
		}
	}
	// The leader may be gone while children of the group live on.
	signalGroup(pgid, syscall.SIGKILL)
	<-p.done
}

func (ps *procs) stopAll() {
	ps.mu.Lock()
	list := ps.list
	ps.list = nil
	ps.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range list {
		wg.Add(1)
		go func() { defer wg.Done(); ps.stop(p, 5*time.Second) }()
	}
	wg.Wait()
}

// tail returns the last n bytes of a process's log, for error messages.
func (p *proc) tail(n int) string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// groupMembers lists the pids whose process group is pgid.
func groupMembers(pgid int) []int {
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
		f, err := statFields(pid)
		if err != nil || len(f) < 13 {
			continue
		}
		if pg, _ := strconv.Atoi(f[2]); pg == pgid {
			out = append(out, pid)
		}
	}
	return out
}

// statFields returns the fields of /proc/PID/stat after the command name:
// index 0 is the state (field 3 in proc(5)), 2 the pgrp (5), 11 utime (14),
// 12 stime (15).
func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, errors.New("bad stat")
	}
	return strings.Fields(s[i+1:]), nil
}

// groupCPU is the user+system CPU time of every live process in the group.
func groupCPU(pgid int) time.Duration {
	var ticks int64
	for _, pid := range groupMembers(pgid) {
		f, err := statFields(pid)
		if err != nil || len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + s
	}
	return time.Duration(ticks) * time.Second / clkTck
}

// statusKB reads a "Key: N kB" line of /proc/PID/status.
func statusKB(pid int, key string) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// groupKB sums a /proc/PID/status value (VmHWM, VmRSS) over the group.
// Shared pages (nginx's master and workers share code) are counted once per
// process, so for a multi-process server it is an upper bound.
func groupKB(pgid int, key string) int64 {
	var n int64
	for _, pid := range groupMembers(pgid) {
		n += statusKB(pid, key)
	}
	return n
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitTCP waits until addr accepts connections, p exits, or timeout.
func waitTCP(ctx context.Context, p *proc, addr string, timeout time.Duration) error {
	end := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited before listening on %s: %v\n%s", p.name, addr, p.err, p.tail(2000))
		}
		if time.Now().After(end) {
			return fmt.Errorf("%s: nothing listening on %s after %s", p.name, addr, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitHTTP waits until GET url answers with a status below 500.
func waitHTTP(ctx context.Context, p *proc, url string, timeout time.Duration) error {
	end := time.Now().Add(timeout)
	c := &http.Client{Timeout: time.Second}
	for {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return nil
			}
		}
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, p.tail(2000))
		}
		if time.Now().After(end) {
			return fmt.Errorf("%s: %s not ready after %s", p.name, url, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// machineTicks reads the first line of /proc/stat: process (user, nice,
// system) and total ticks of all CPUs.
func machineTicks() (busy, total int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(strings.SplitN(string(b), "\n", 2)[0])
	for i, v := range f[1:] {
		x, _ := strconv.ParseInt(v, 10, 64)
		if i >= 8 { // guest time is already in user
			break
		}
		total += x
		// user, nice, system: time charged to processes. irq and softirq
		// (loopback packet processing, mostly the rig's own) and steal are
		// left out.
		if i <= 2 {
			busy += x
		}
	}
	return busy, total
}

// selfCPU is this process's user+system CPU time (the in-process load
// generator's cost).
func selfCPU() time.Duration {
	f, err := statFields(os.Getpid())
	if err != nil || len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * time.Second / clkTck
}

// meter measures, over a run, the CPU that processes outside the rig used:
// all busy CPU time of the machine less the rig's own (the processes this
// harness started, itself, and wrk). It is the noise indicator of a shared
// machine.
type meter struct {
	start time.Time
	busy0 int64
	own0  time.Duration
	pgids []int
}

func newMeter(pgids []int) meter {
	m := meter{start: time.Now(), pgids: pgids}
	m.busy0, _ = machineTicks()
	m.own0 = m.own()
	return m
}

func (m meter) own() time.Duration {
	d := selfCPU()
	for _, pg := range m.pgids {
		d += groupCPU(pg)
	}
	return d
}

// others returns the cores used by other processes since newMeter; extra
// is rig CPU not visible in /proc any more (wrk, which has exited).
func (m meter) others(extra time.Duration) float64 {
	busy1, _ := machineTicks()
	wall := time.Since(m.start).Seconds()
	if wall <= 0 {
		return 0
	}
	busy := float64(busy1-m.busy0) / clkTck
	own := (m.own() - m.own0 + extra).Seconds()
	return max(0, (busy-own)/wall)
}
