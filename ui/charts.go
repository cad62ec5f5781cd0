package ui

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fanouthq/fanout/stats"
)

// The overview's charts are inline SVG written here, server side: a page
// works without script, and the script only swaps in a fresh copy of the
// charts section (GET /ui/charts). Every chart has a text alternative: an
// aria-label that says what it shows, and a table of its figures.

// Chart geometry, in SVG user units.
const (
	chartW, chartH = 300, 90
	padL, padR     = 38, 6
	padT, padB     = 8, 16
)

// chart is one SVG line chart.
type chart struct {
	Title string
	Label string // the aria-label: what it shows, in words
	W, H  int
	Plot  struct{ X0, X1, Y0, Y1 int }
	// Where the axis labels go.
	TickX, TopY, XLabelY int
	YMax                 string
	XFrom                string
	XTo                  string
	Lines                []chartLine
}

// chartLine is one series of a chart: its polylines (broken where a step
// has no value) and its style class, which also differs in dash pattern
// so that lines are told apart without colour.
type chartLine struct {
	Name     string
	Class    string
	Segments []string
	Last     string
}

// seriesPanel is a route's or a target's charts and their table.
type seriesPanel struct {
	Kind   string // routes, targets
	Name   string
	Mode   string
	Charts []chart
	Rows   []seriesRow
	Target bool
}

// seriesRow is one step of a panel's table.
type seriesRow struct {
	At        string
	Count     int
	PerSecond string
	Success   string
	P50       string
	P95       string
	P99       string
	Failures  string
	Backlog   string
	Oldest    string
}

type chartsView struct {
	Window string
	Step   string
	From   string
	To     string
	Routes []seriesPanel
	Target []seriesPanel
	None   bool // the process keeps no stats
}

// newChartsView lays out the charts of rep, routes and targets in the
// order given (the config's).
func newChartsView(rep stats.SeriesReport, routes, targets []string) chartsView {
	long := rep.To.Sub(rep.From) > 12*time.Hour // the ends are on different days
	rep.From, rep.To = rep.From.UTC(), rep.To.UTC()
	v := chartsView{Window: rep.Window, Step: rep.Step, From: clock(rep.From, long), To: clock(rep.To, long)}
	for _, name := range routes {
		rs := rep.Routes[name]
		v.Routes = append(v.Routes, newPanel("routes", name, rs.Mode, rs.Points, rep, v, false))
	}
	for _, name := range targets {
		v.Target = append(v.Target, newPanel("targets", name, "", rep.Targets[name].Points, rep, v, true))
	}
	return v
}

// clock is a chart's axis time: with the date when the window spans
// days.
func clock(t time.Time, withDate bool) string {
	if t.IsZero() {
		return ""
	}
	if withDate {
		return t.UTC().Format("Jan 2 15:04")
	}
	return t.UTC().Format("15:04")
}

func newPanel(kind, name, mode string, pts []stats.Point, rep stats.SeriesReport, v chartsView, target bool) seriesPanel {
	p := seriesPanel{Kind: kind, Name: name, Mode: mode, Target: target}
	from, to := v.From, v.To
	what := "Requests"
	if target {
		what = "Attempts"
	}
	n := len(pts)
	val := func(f func(stats.Point) (float64, bool)) []*float64 {
		out := make([]*float64, n)
		for i, pt := range pts {
			if v, ok := f(pt); ok {
				out[i] = &v
			}
		}
		return out
	}
	rate := val(func(pt stats.Point) (float64, bool) { return pt.PerSecond, true })
	success := val(func(pt stats.Point) (float64, bool) {
		if pt.SuccessRate == nil {
			return 0, false
		}
		return *pt.SuccessRate * 100, true
	})
	lat := func(q func(*stats.Latency) float64) []*float64 {
		return val(func(pt stats.Point) (float64, bool) {
			if pt.LatencyMS == nil {
				return 0, false
			}
			return q(pt.LatencyMS), true
		})
	}
	classes := map[string]bool{}
	for _, pt := range pts {
		for c := range pt.Failures {
			classes[c] = true
		}
	}
	subject := name + " over the last " + rep.Window + " (" + rep.Step + " steps, " + from + " to " + to + " UTC)"
	p.Charts = append(p.Charts,
		newChart(what+" per second", "", subject, from, to, []namedValues{{what + "/s", rate}}),
		newChart("Success ratio", "%", subject, from, to, []namedValues{{"success %", success}}, 100),
		newChart("Latency p50 / p95 / p99", "ms", subject, from, to, []namedValues{
			{"p50", lat(func(l *stats.Latency) float64 { return l.P50 })},
			{"p95", lat(func(l *stats.Latency) float64 { return l.P95 })},
			{"p99", lat(func(l *stats.Latency) float64 { return l.P99 })},
		}))
	var fails []namedValues
	for _, c := range slices.Sorted(maps.Keys(classes)) {
		fails = append(fails, namedValues{c, val(func(pt stats.Point) (float64, bool) { return float64(pt.Failures[c]), true })})
	}
	if len(fails) == 0 {
		fails = []namedValues{{"failures", val(func(stats.Point) (float64, bool) { return 0, true })}}
	}
	p.Charts = append(p.Charts, newChart("Failures by class", "", subject, from, to, fails))
	if target {
		p.Charts = append(p.Charts,
			newChart("Backlog", "", subject, from, to, []namedValues{{"waiting", val(func(pt stats.Point) (float64, bool) {
				if pt.Backlog == nil {
					return 0, false
				}
				return float64(*pt.Backlog), true
			})}}),
			newChart("Oldest waiting message", "s", subject, from, to, []namedValues{{"age s", val(func(pt stats.Point) (float64, bool) {
				if pt.OldestPendingSeconds == nil {
					return 0, false
				}
				return *pt.OldestPendingSeconds, true
			})}}))
	}
	// The table, newest first, only the steps with something to say.
	for i := n - 1; i >= 0; i-- {
		pt := pts[i]
		if pt.Count == 0 && pt.Backlog == nil {
			continue
		}
		row := seriesRow{At: pt.At.UTC().Format("2006-01-02 15:04:05Z"), Count: pt.Count, PerSecond: num(pt.PerSecond),
			Success: "–", P50: "–", P95: "–", P99: "–", Failures: failureText(pt.Failures), Backlog: "–", Oldest: "–"}
		if pt.SuccessRate != nil {
			row.Success = fmt.Sprintf("%.1f%%", *pt.SuccessRate*100)
		}
		if l := pt.LatencyMS; l != nil {
			row.P50, row.P95, row.P99 = num(l.P50), num(l.P95), num(l.P99)
		}
		if pt.Backlog != nil {
			row.Backlog = strconv.Itoa(*pt.Backlog)
			row.Oldest = num(*pt.OldestPendingSeconds) + " s"
		}
		p.Rows = append(p.Rows, row)
	}
	return p
}

type namedValues struct {
	name   string
	values []*float64
}

// newChart plots lines on a shared scale from 0 to the largest value (at
// least fixedMax when given).
func newChart(title, unit, subject, from, to string, lines []namedValues, fixedMax ...float64) chart {
	c := chart{Title: title, W: chartW, H: chartH, XFrom: from, XTo: to}
	c.Plot.X0, c.Plot.X1, c.Plot.Y0, c.Plot.Y1 = padL, chartW-padR, padT, chartH-padB
	c.TickX, c.TopY, c.XLabelY = padL-4, padT+7, chartH-3
	top := 0.0
	for _, fm := range fixedMax {
		top = max(top, fm)
	}
	fixed := top > 0
	for _, l := range lines {
		for _, v := range l.values {
			if v != nil && !fixed {
				top = max(top, *v)
			}
		}
	}
	if top <= 0 {
		top = 1
	}
	c.YMax = num(top) + unit
	var said []string
	for i, l := range lines {
		cl := chartLine{Name: l.name, Class: "s" + strconv.Itoa(i%4)}
		n := len(l.values)
		var seg []string
		var last *float64
		hi, seen := math.Inf(-1), false
		flush := func() {
			if len(seg) == 1 { // a lone point: a short dash, so it shows
				seg = append(seg, seg[0])
			}
			if len(seg) > 0 {
				cl.Segments = append(cl.Segments, strings.Join(seg, " "))
			}
			seg = nil
		}
		for j, v := range l.values {
			if v == nil {
				flush()
				continue
			}
			x := float64(c.Plot.X0)
			if n > 1 {
				x += float64(j) * float64(c.Plot.X1-c.Plot.X0) / float64(n-1)
			}
			y := float64(c.Plot.Y1) - min(*v/top, 1)*float64(c.Plot.Y1-c.Plot.Y0)
			seg = append(seg, fmt.Sprintf("%.1f,%.1f", x, y))
			last = v
			hi, seen = max(hi, *v), true
		}
		flush()
		if seen {
			cl.Last = num(*last) + unit
			said = append(said, fmt.Sprintf("%s latest %s, highest %s", l.name, num(*last)+unit, num(hi)+unit))
		} else {
			said = append(said, l.name+" no data")
		}
		c.Lines = append(c.Lines, cl)
	}
	c.Label = title + " of " + subject + ": " + strings.Join(said, "; ") + "."
	return c
}

// num formats a chart figure: whole numbers as such, others to three
// significant digits at most.
func num(v float64) string {
	switch {
	case v == math.Trunc(v) && math.Abs(v) < 1e9:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func failureText(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(m))
	for _, c := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", c, m[c]))
	}
	return strings.Join(parts, ", ")
}
