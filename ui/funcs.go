package ui

import (
	"fmt"
	"html/template"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/fanouthq/fanout/admin"
	"github.com/fanouthq/fanout/stats"
)

// funcs are the template functions of every page.
var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"pct": func(p *float64) string {
		if p == nil {
			return "–"
		}
		return fmt.Sprintf("%.1f%%", *p*100)
	},
	"ms": func(v float64) string {
		switch {
		case v >= 1000:
			return fmt.Sprintf("%.2f s", v/1000)
		case v >= 10:
			return fmt.Sprintf("%.0f ms", v)
		default:
			return fmt.Sprintf("%.1f ms", v)
		}
	},
	"lat": func(l *stats.Latency, which string) string {
		if l == nil {
			return "–"
		}
		v := map[string]float64{"p50": l.P50, "p95": l.P95, "p99": l.P99}[which]
		return fmt.Sprintf("%.1f", v)
	},
	"age": func(seconds float64) string {
		if seconds <= 0 {
			return "–"
		}
		return time.Duration(seconds * float64(time.Second)).Round(time.Second).String()
	},
	"failures": func(m map[string]int) string {
		if len(m) == 0 {
			return "none"
		}
		parts := make([]string, 0, len(m))
		for _, c := range slices.Sorted(maps.Keys(m)) {
			parts = append(parts, fmt.Sprintf("%s %d", c, m[c]))
		}
		return strings.Join(parts, ", ")
	},
	"join": strings.Join,
	"path": url.PathEscape,
	"targetNames": func(ts []admin.RouteTarget) string {
		names := make([]string, 0, len(ts))
		for _, t := range ts {
			n := t.Name
			if t.Optional {
				n += " (optional)"
			}
			names = append(names, n)
		}
		return strings.Join(names, ", ")
	},
	"headerValue": func(vs []string) string { return strings.Join(vs, ", ") },
	"eq":          func(a, b string) bool { return a == b },
}

// stepsGraph is the layout of the steps of a steps route's message: one
// column per depth (a step is one column right of the latest step it
// runs after), drawn as SVG by message.html.
type stepsGraph struct {
	Width, Height int
	Nodes         []graphNode
	Edges         []graphEdge
	Label         string
}

type graphNode struct {
	X, Y, W, H    int
	Name, State   string
	Target        string
	TextX, TextY1 int
	TextY2        int
}

type graphEdge struct{ X1, Y1, X2, Y2 int }

// newStepsGraph lays out the step deliveries of ds; nil when there are
// none.
func newStepsGraph(ds []admin.Delivery) *stepsGraph {
	const w, hgt, gapX, gapY, pad = 160, 46, 56, 14, 8
	byName := map[string]admin.Delivery{}
	var order []string
	for _, d := range ds {
		if d.Step != "" {
			byName[d.Step] = d
			order = append(order, d.Step)
		}
	}
	if len(order) == 0 {
		return nil
	}
	depth := map[string]int{}
	var depthOf func(name string, seen map[string]bool) int
	depthOf = func(name string, seen map[string]bool) int {
		if d, ok := depth[name]; ok {
			return d
		}
		if seen[name] {
			return 0 // a cycle cannot be stored; be safe anyway
		}
		seen[name] = true
		best := 0
		for _, a := range byName[name].After {
			if _, ok := byName[a]; ok {
				best = max(best, depthOf(a, seen)+1)
			}
		}
		depth[name] = best
		return best
	}
	rows := map[int]int{}
	pos := map[string][2]int{}
	g := &stepsGraph{}
	var label []string
	for _, name := range order {
		col := depthOf(name, map[string]bool{})
		row := rows[col]
		rows[col]++
		x, y := pad+col*(w+gapX), pad+row*(hgt+gapY)
		pos[name] = [2]int{x, y}
		d := byName[name]
		g.Nodes = append(g.Nodes, graphNode{X: x, Y: y, W: w, H: hgt, Name: name, State: d.State, Target: d.Target,
			TextX: x + 10, TextY1: y + 19, TextY2: y + 36})
		g.Width = max(g.Width, x+w+pad)
		g.Height = max(g.Height, y+hgt+pad)
		label = append(label, name+" "+d.State)
	}
	for _, name := range order {
		to := pos[name]
		for _, a := range byName[name].After {
			from, ok := pos[a]
			if !ok {
				continue
			}
			g.Edges = append(g.Edges, graphEdge{X1: from[0] + w, Y1: from[1] + hgt/2, X2: to[0] - 4, Y2: to[1] + hgt/2})
		}
	}
	g.Label = "Steps: " + strings.Join(label, ", ")
	return g
}
