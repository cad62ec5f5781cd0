package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// wrkScript makes wrk POST body as JSON and print, when done, one line
// "WRKJSON {...}" with the counts and latency percentiles (microseconds).
// summary.errors.status counts answers with a status above 399, so the
// 2xx/3xx answers are requests - status.
func wrkScript(body []byte) string {
	return `-- written by fobench: POST a JSON body, print a JSON summary.
wrk.method = "POST"
wrk.body = [==[` + string(body) + `]==]
wrk.headers["Content-Type"] = "application/json"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50_us":%.0f,"p90_us":%.0f,"p99_us":%.0f,"p999_us":%.0f,"max_us":%.0f,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean))
end
`
}

// wrkResult is the WRKJSON line.
type wrkResult struct {
	Requests   int64   `json:"requests"`
	DurationUS int64   `json:"duration_us"`
	Bytes      int64   `json:"bytes"`
	Connect    int64   `json:"connect"`
	Read       int64   `json:"read"`
	Write      int64   `json:"write"`
	Status     int64   `json:"status"`
	Timeout    int64   `json:"timeout"`
	P50us      float64 `json:"p50_us"`
	P90us      float64 `json:"p90_us"`
	P99us      float64 `json:"p99_us"`
	P999us     float64 `json:"p999_us"`
	MaxUS      float64 `json:"max_us"`
	MeanUS     float64 `json:"mean_us"`

	cpu time.Duration // wrk's own CPU time
}

// good is the number of 2xx/3xx answers.
func (w wrkResult) good() int64 { return w.Requests - w.Status }

// perSecond is good answers per second of the run.
func (w wrkResult) perSecond() float64 {
	if w.DurationUS <= 0 {
		return 0
	}
	return float64(w.good()) / (float64(w.DurationUS) / 1e6)
}

// socketErrors adds up wrk's connect/read/write/timeout errors.
func (w wrkResult) socketErrors() int64 { return w.Connect + w.Read + w.Write + w.Timeout }

type wrkRunner struct {
	bin    string
	script string // path of the Lua script
	logDir string
}

// run runs wrk -t threads -c conns -d dur at url and parses its summary.
func (wr *wrkRunner) run(ctx context.Context, url string, threads, conns int, dur time.Duration) (wrkResult, error) {
	secs := max(1, int(dur.Round(time.Second)/time.Second))
	ctx, cancel := context.WithTimeout(ctx, dur+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, wr.bin,
		"-t"+strconv.Itoa(threads), "-c"+strconv.Itoa(conns), "-d"+strconv.Itoa(secs)+"s",
		"--timeout", "10s", "-s", wr.script, url)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if wr.logDir != "" {
		if f, e := os.OpenFile(wr.logDir+"/wrk.log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); e == nil {
			fmt.Fprintf(f, "== wrk -t%d -c%d -d%ds %s\n%s%s\n", threads, conns, secs, url, out.String(), errb.String())
			f.Close()
		}
	}
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %v: %s", err, strings.TrimSpace(errb.String()))
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if j, ok := strings.CutPrefix(line, "WRKJSON "); ok {
			var r wrkResult
			if err := json.Unmarshal([]byte(j), &r); err != nil {
				return wrkResult{}, fmt.Errorf("wrk summary %q: %w", j, err)
			}
			if ps := cmd.ProcessState; ps != nil {
				r.cpu = ps.UserTime() + ps.SystemTime()
			}
			return r, nil
		}
	}
	return wrkResult{}, fmt.Errorf("wrk printed no summary:\n%s%s", out.String(), errb.String())
}
