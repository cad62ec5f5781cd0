package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
)

// result is one measured run of one system in one scenario, one line of
// the raw results file (JSON lines).
type result struct {
	Scenario string  `json:"scenario"`
	Variant  string  `json:"variant,omitempty"`
	System   string  `json:"system"`
	Round    int     `json:"round"`
	RPS      float64 `json:"rps"`
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
	// Requests is what the CPU time is divided by (answered requests, or
	// accepted messages).
	Requests int64   `json:"requests"`
	CPUs     float64 `json:"cpu_s"`
	RSSkB    int64   `json:"rss_kb"`
	Errors   int64   `json:"errors"`
	// Others is the CPU (in cores) used during the run by processes the
	// harness did not start: the noise of a shared machine.
	Others float64 `json:"others_cores"`
	// Extra holds scenario-specific figures; see extraLabel for units.
	Extra map[string]float64 `json:"extra,omitempty"`
	// Note is free text (e.g. why a run was skipped); a row with a note and
	// no requests is shown as not run.
	Note string `json:"note,omitempty"`
}

func (r result) group() string {
	if r.Variant == "" {
		return r.Scenario
	}
	return r.Scenario + " " + r.Variant
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// extraOrder fixes the order in which extra figures are shown; unknown
// keys come after, sorted.
var extraOrder = []string{
	"x_sqlite", "x_1node", "deliveries_per_s",
	"d_p50_ms", "d_p99_ms", "offered_per_s", "accepted_per_s", "delivered_a_per_s", "delivered_b_per_s",
	"a_ratio", "backlog_end", "backlog_slope_per_s", "drain_s", "e2e_per_s", "dup", "missing",
	"undelivered", "skipped", "rss_max_mb", "binary_mb", "binary_stripped_mb", "cpu_e2e_s", "db_cpu_s",
}

// extraLabel formats one extra figure; keys name their unit by suffix.
func extraLabel(k string, v float64) string {
	switch k {
	case "delivered_a_per_s":
		return fmt.Sprintf("A got %s/s", thousands(v))
	case "delivered_b_per_s":
		return fmt.Sprintf("B got %s/s", thousands(v))
	case "backlog_end":
		return fmt.Sprintf("backlog at end %s", thousands(v))
	case "backlog_slope_per_s":
		return fmt.Sprintf("backlog slope %+.0f/s (2nd half)", v)
	case "e2e_per_s":
		return fmt.Sprintf("end to end %s/s", thousands(v))
	case "dup":
		return fmt.Sprintf("duplicates %s", thousands(v))
	case "missing":
		return fmt.Sprintf("missing %s", thousands(v))
	case "x_sqlite":
		return fmt.Sprintf("**%.2f× SQLite**", v)
	case "x_1node":
		return fmt.Sprintf("**%.2f× 1 node**", v)
	case "deliveries_per_s":
		return fmt.Sprintf("deliveries %s/s", thousands(v))
	case "db_cpu_s":
		return fmt.Sprintf("PostgreSQL CPU %.1f s (in req per CPU-s)", v)
	case "cpu_e2e_s":
		return fmt.Sprintf("CPU incl. drain %.1f s", v)
	case "binary_mb":
		return fmt.Sprintf("binary %.1f MB", v)
	case "binary_stripped_mb":
		return fmt.Sprintf("with -s -w %.1f MB", v)
	case "rss_max_mb":
		return fmt.Sprintf("RSS max (sampled 1/s) %.1f MB", v)
	}
	name := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(k, "_ms"), "_per_s"), "_mb"), "_s")
	switch {
	case k == "d_p50_ms" || k == "d_p99_ms":
		return fmt.Sprintf("%s %+.2f ms vs direct", strings.TrimPrefix(name, "d_"), v)
	case strings.HasSuffix(k, "_ms"):
		return fmt.Sprintf("%s %.2f ms", name, v)
	case strings.HasSuffix(k, "_per_s"):
		return fmt.Sprintf("%s %s/s", name, thousands(v))
	case strings.HasSuffix(k, "_mb"):
		return fmt.Sprintf("%s %.1f MB", name, v)
	case strings.HasSuffix(k, "_s"):
		return fmt.Sprintf("%s %.1f s", name, v)
	case k == "a_ratio":
		return fmt.Sprintf("A rate %.2f× of B-fast", v)
	default:
		return fmt.Sprintf("%s %s", name, thousands(v))
	}
}

func thousands(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	neg := v < 0
	n := int64(math.Round(math.Abs(v)))
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func fmtK(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0) || v <= 0:
		return "–"
	case v >= 1000:
		return fmt.Sprintf("%.1fk", v/1000)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

func fmtRatio(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	return fmt.Sprintf("%.2f", v)
}

func fmtMs(v float64) string {
	if math.IsNaN(v) || v <= 0 {
		return "–"
	}
	if v < 10 {
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// renderTable writes the Markdown table of medians over rounds. The ratios
// ×direct and ×nginx are medians of the per-round ratios (each against the
// run of the same round), which cancels most of the machine's drift.
func renderTable(w io.Writer, rs []result) []row {
	var rows []row
	var groups []string
	by := map[string][]result{}
	for _, r := range rs {
		g := r.group()
		if _, ok := by[g]; !ok {
			groups = append(groups, g)
		}
		by[g] = append(by[g], r)
	}
	fmt.Fprintln(w, "| scenario | system | req/s | ×direct | ×nginx | p50 ms | p99 ms | req per CPU-s | peak RSS MB | others' CPU | runs | notes |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, g := range groups {
		grs := by[g]
		var systems []string
		bySys := map[string][]result{}
		for _, r := range grs {
			if _, ok := bySys[r.System]; !ok {
				systems = append(systems, r.System)
			}
			bySys[r.System] = append(bySys[r.System], r)
		}
		// round -> rps of the reference systems
		refRPS := func(sys string) map[int]float64 {
			m := map[int]float64{}
			for _, r := range bySys[sys] {
				if r.RPS > 0 {
					m[r.Round] = r.RPS
				}
			}
			return m
		}
		refP := func(sys string) (map[int]float64, map[int]float64) {
			p50, p99 := map[int]float64{}, map[int]float64{}
			for _, r := range bySys[sys] {
				if r.P50ms > 0 {
					p50[r.Round], p99[r.Round] = r.P50ms, r.P99ms
				}
			}
			return p50, p99
		}
		slices.SortStableFunc(systems, func(x, y string) int { return sysRank(x) - sysRank(y) })
		direct, nginx := refRPS("direct"), refRPS("nginx")
		if strings.HasPrefix(g, "S2") {
			// A fixed rate: every system answers it; ratios say nothing.
			direct, nginx = map[int]float64{}, map[int]float64{}
		}
		dp50, dp99 := refP("direct")
		for _, sys := range systems {
			runs := bySys[sys]
			var rps, p50, p99, perCPU, errs, xd, xn, d50, d99, others []float64
			var rss int64
			var notes, runNotes []string
			noteCount := map[string]int{}
			extras := map[string][]float64{}
			ran := 0
			for _, r := range runs {
				if r.Requests == 0 && r.RPS == 0 && r.Note != "" {
					if !slices.Contains(notes, r.Note) {
						notes = append(notes, r.Note)
					}
					continue
				}
				ran++
				rps = append(rps, r.RPS)
				if r.P50ms > 0 {
					p50 = append(p50, r.P50ms)
					p99 = append(p99, r.P99ms)
				}
				if r.CPUs > 0 {
					perCPU = append(perCPU, float64(r.Requests)/r.CPUs)
				}
				errs = append(errs, float64(r.Errors))
				if r.Others > 0 {
					others = append(others, r.Others)
				}
				rss = max(rss, r.RSSkB)
				if d, ok := direct[r.Round]; ok && d > 0 && r.RPS > 0 {
					xd = append(xd, r.RPS/d)
				}
				if n, ok := nginx[r.Round]; ok && n > 0 && r.RPS > 0 {
					xn = append(xn, r.RPS/n)
				}
				if r.Scenario == "S2" && sys != "direct" {
					if d, ok := dp50[r.Round]; ok && r.P50ms > 0 {
						d50 = append(d50, r.P50ms-d)
						d99 = append(d99, r.P99ms-dp99[r.Round])
					}
				}
				for k, v := range r.Extra {
					extras[k] = append(extras[k], v)
				}
				if r.Note != "" {
					if noteCount[r.Note] == 0 {
						runNotes = append(runNotes, r.Note)
					}
					noteCount[r.Note]++
				}
			}
			if len(d50) > 0 {
				extras["d_p50_ms"] = []float64{median(d50)}
				extras["d_p99_ms"] = []float64{median(d99)}
			}
			var keys []string
			for _, k := range extraOrder {
				if _, ok := extras[k]; ok {
					keys = append(keys, k)
				}
			}
			var rest []string
			for k := range extras {
				if !slices.Contains(extraOrder, k) {
					rest = append(rest, k)
				}
			}
			slices.Sort(rest)
			keys = append(keys, rest...)
			var parts []string
			for _, k := range keys {
				parts = append(parts, extraLabel(k, median(extras[k])))
			}
			if e := median(errs); e > 0 {
				parts = append(parts, fmt.Sprintf("errors %s", thousands(e)))
			}
			for _, n := range runNotes {
				if noteCount[n] < ran {
					n = fmt.Sprintf("%d of %d rounds: %s", noteCount[n], ran, n)
				}
				parts = append(parts, n)
			}
			parts = append(parts, notes...)
			rssCell := "–"
			if rss > 0 {
				rssCell = fmt.Sprintf("%.1f", float64(rss)/1024)
			}
			rpsCell := "–"
			if ran > 0 && median(rps) > 0 {
				rpsCell = thousands(median(rps))
			}
			xdCell, xnCell := "–", "–"
			if sys != "direct" && len(xd) > 0 {
				xdCell = fmtRatio(median(xd))
			} else if sys == "direct" && ran > 0 && len(direct) > 0 {
				xdCell = "1.00"
			}
			if sys != "nginx" && len(xn) > 0 {
				xnCell = fmtRatio(median(xn))
			} else if sys == "nginx" && ran > 0 && len(nginx) > 0 {
				xnCell = "1.00"
			}
			if ran > 0 {
				rw := row{group: g, scenario: grs[0].Scenario, system: sys, rps: median(rps), xDirect: math.NaN(), xNginx: math.NaN(),
					p50: median(p50), p99: median(p99), perCPU: median(perCPU), rssMB: float64(rss) / 1024, extra: map[string]float64{}}
				if len(xd) > 0 {
					rw.xDirect = median(xd)
				}
				if len(xn) > 0 {
					rw.xNginx = median(xn)
				}
				for k, v := range extras {
					rw.extra[k] = median(v)
				}
				rows = append(rows, rw)
			}
			othersCell := "–"
			if len(others) > 0 {
				othersCell = fmt.Sprintf("%.2f", median(others))
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d | %s |\n",
				g, sys, rpsCell, xdCell, xnCell, fmtMs(median(p50)), fmtMs(median(p99)),
				fmtK(median(perCPU)), rssCell, othersCell, ran, strings.Join(parts, "; "))
		}
	}
	return rows
}

// sysRank orders the rows of a group: direct, nginx, then Fanout's.
func sysRank(s string) int {
	switch {
	case s == "direct":
		return 0
	case s == "nginx":
		return 1
	case strings.HasPrefix(s, "fanout"):
		return 2
	default:
		return 3
	}
}

func readResults(path string) ([]result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rs []result
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var r result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		rs = append(rs, r)
	}
	return rs, sc.Err()
}

func runReportCmd(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: fobench report results.jsonl")
	}
	rs, err := readResults(args[0])
	if err != nil {
		return err
	}
	rows := renderTable(os.Stdout, rs)
	fmt.Println()
	renderGoals(os.Stdout, rows)
	return nil
}

// row is one line of the table: medians over the rounds.
type row struct {
	group, scenario, system string
	rps, xDirect, xNginx    float64
	p50, p99, perCPU, rssMB float64
	extra                   map[string]float64
}

// goal is one line of shared/BENCHMARKS.md checked against the table.
type goal struct {
	id, text string
	// check returns what the run measured and whether the goal is met;
	// known is false when the table has nothing to judge it by.
	check func(rows []row) (got string, ok, known bool)
}

func find(rows []row, scenario, system, groupHas string) (row, bool) {
	for _, r := range rows {
		if r.scenario == scenario && r.system == system && strings.Contains(r.group, groupHas) {
			return r, true
		}
	}
	return row{}, false
}

func okAll(bs ...bool) bool {
	for _, b := range bs {
		if !b {
			return false
		}
	}
	return true
}

var goals = []goal{
	{"S1", "c=64 Fanout ≥ 1.2× nginx, ≥ 10,000 req per CPU-s", func(rows []row) (string, bool, bool) {
		r, ok := find(rows, "S1", "fanout", "c=64")
		if !ok {
			return "", false, false
		}
		return fmt.Sprintf("%s× nginx, %s× direct, %s req per CPU-s", fmtRatio(r.xNginx), fmtRatio(r.xDirect), fmtK(r.perCPU)),
			r.xNginx >= 1.2 && r.perCPU >= 10000, !math.IsNaN(r.xNginx)
	}},
	{"S1", "c=8 Fanout ≥ 1.2× nginx", func(rows []row) (string, bool, bool) {
		r, ok := find(rows, "S1", "fanout", "c=8")
		if !ok || math.IsNaN(r.xNginx) {
			return "", false, false
		}
		return fmt.Sprintf("%s× nginx, %s× direct", fmtRatio(r.xNginx), fmtRatio(r.xDirect)), r.xNginx >= 1.2, true
	}},
	{"S2", "p50 ≤ direct + 0.3 ms, p99 ≤ direct + 1 ms", func(rows []row) (string, bool, bool) {
		r, ok := find(rows, "S2", "fanout", "")
		d50, ok1 := r.extra["d_p50_ms"]
		d99, ok2 := r.extra["d_p99_ms"]
		if !ok || !ok1 || !ok2 {
			return "", false, false
		}
		return fmt.Sprintf("p50 %+.2f ms, p99 %+.2f ms", d50, d99), d50 <= 0.3 && d99 <= 1, true
	}},
	{"S3", "accepted/s ≥ 0.6× direct and ≥ 20,000/s, p99 ≤ 20 ms, none missing", func(rows []row) (string, bool, bool) {
		r, ok := find(rows, "S3", "fanout", "")
		if !ok {
			return "", false, false
		}
		missing := r.extra["missing"]
		return fmt.Sprintf("%s/s = %s× direct, p99 %s ms, missing %s", thousands(r.rps), fmtRatio(r.xDirect), fmtMs(r.p99), thousands(missing)),
			okAll(r.xDirect >= 0.6, r.rps >= 20000, r.p99 <= 20, missing == 0), true
	}},
	{"S4", "≥ 10,000 msg/s delivered to both, flat backlog", func(rows []row) (string, bool, bool) {
		r, ok := find(rows, "S4", "fanout", "")
		if !ok {
			return "", false, false
		}
		sl := r.extra["backlog_slope_per_s"]
		return fmt.Sprintf("%s/s to both, backlog slope %+.0f/s", thousands(r.rps), sl),
			r.rps >= 10000 && sl <= 0.05*r.rps, true
	}},
	{"S5", "RSS ≤ 150 MB throughout, drain ≥ 10,000 deliveries/s", func(rows []row) (string, bool, bool) {
		r, ok := find(rows, "S5", "fanout", "")
		if !ok {
			return "", false, false
		}
		rss, dr := r.extra["rss_max_mb"], r.extra["delivered_b_per_s"]
		return fmt.Sprintf("RSS max %.0f MB, drain %s/s", rss, thousands(dr)), rss <= 150 && dr >= 10000, true
	}},
	{"S6", "A's rate with B slow ≥ 0.9× with B fast", func(rows []row) (string, bool, bool) {
		for _, r := range rows {
			v, ok := r.extra["a_ratio"]
			if !ok || r.scenario != "S6" {
				continue
			}
			got := fmt.Sprintf("%.2f×", v)
			for _, f := range rows {
				if f.scenario == "S6" && strings.HasSuffix(f.system, "B fast") && f.extra["accepted_per_s"] < 0.95*f.extra["offered_per_s"] {
					return got + " (inconclusive: Fanout did not keep up with the offered rate with B fast)", false, true
				}
			}
			return got, v >= 0.9, true
		}
		return "", false, false
	}},
	{"S7", "PostgreSQL, 1 node ≥ 15,000 accepts/s and ≥ 15,000 deliveries/s, none missing; 2 nodes/1 node reported", func(rows []row) (string, bool, bool) {
		acc, ok1 := find(rows, "S7", clusterName(1), "accept")
		del, ok2 := find(rows, "S7", clusterName(1), "deliver")
		if !ok1 && !ok2 {
			return "", false, false
		}
		var parts []string
		met := ok1 && ok2
		if ok1 {
			p := fmt.Sprintf("1 node accepts %s/s (%s× SQLite)", thousands(acc.rps), fmtRatio(nanIfMissing(acc.extra, "x_sqlite")))
			if r2, ok := find(rows, "S7", clusterName(2), "accept"); ok {
				p += fmt.Sprintf(", 2 nodes %s/s (%s× 1 node)", thousands(r2.rps), fmtRatio(nanIfMissing(r2.extra, "x_1node")))
				met = met && r2.extra["missing"] == 0
			}
			parts = append(parts, p)
			met = met && acc.rps >= 15000 && acc.extra["missing"] == 0
		}
		if ok2 {
			p := fmt.Sprintf("1 node delivers %s/s (%s× SQLite)", thousands(del.extra["deliveries_per_s"]), fmtRatio(nanIfMissing(del.extra, "x_sqlite")))
			if r2, ok := find(rows, "S7", clusterName(2), "deliver"); ok {
				p += fmt.Sprintf(", 2 nodes %s/s (%s× 1 node)", thousands(r2.extra["deliveries_per_s"]), fmtRatio(nanIfMissing(r2.extra, "x_1node")))
				met = met && r2.extra["missing"] == 0
			}
			parts = append(parts, p)
			met = met && del.extra["deliveries_per_s"] >= 15000 && del.extra["missing"] == 0
		}
		return strings.Join(parts, "; "), met, true
	}},
	{"S8", "RSS under S1 load ≤ 60 MB, binary ≤ 40 MB", func(rows []row) (string, bool, bool) {
		r, ok := find(rows, "S8", "fanout", "")
		if !ok || r.rssMB == 0 {
			return "", false, false
		}
		bin := r.extra["binary_mb"]
		return fmt.Sprintf("RSS %.1f MB, binary %.1f MB", r.rssMB, bin), r.rssMB <= 60 && (bin == 0 || bin <= 40), true
	}},
}

func nanIfMissing(m map[string]float64, k string) float64 {
	if v, ok := m[k]; ok {
		return v
	}
	return math.NaN()
}

// renderGoals checks the table against shared/BENCHMARKS.md's goals.
func renderGoals(w io.Writer, rows []row) {
	var lines []string
	for _, g := range goals {
		got, ok, known := g.check(rows)
		if !known {
			continue
		}
		mark := "miss"
		switch {
		case ok:
			mark = "met"
		case strings.Contains(got, "inconclusive"):
			mark = "–"
		}
		lines = append(lines, fmt.Sprintf("| %s | %s | %s | %s |", g.id, g.text, got, mark))
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintln(w, "| goal | target (shared/BENCHMARKS.md) | this run | |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}
