package metrics_test

import (
	"encoding/json"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout/metrics"
)

// dashboardPath is the Grafana dashboard that ships with Fanout.
const dashboardPath = "../dashboards/grafana-fanout.json"

type dashboard struct {
	SchemaVersion int     `json:"schemaVersion"`
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
			Datasource *datasource     `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	GridPos    *struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // collapsed rows
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// walk calls f on every panel, including those inside rows.
func walk(ps []panel, f func(panel)) {
	for _, p := range ps {
		f(p)
		walk(p.Panels, f)
	}
}

// registeredNames returns every series name the metrics package exposes:
// metric family names, with _bucket, _sum and _count for histograms.
func registeredNames(t *testing.T) map[string]bool {
	t.Helper()
	b := setup(t)
	b.observeSome()
	mfs, err := b.reg.Gather()
	require.NoError(t, err)
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
		if mf.GetType() == dto.MetricType_HISTOGRAM {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				names[mf.GetName()+suffix] = true
			}
		}
	}
	return names
}

var metricName = regexp.MustCompile(`\bfanout_[a-z0-9_]+`)

func TestDashboardUsesOnlyRegisteredMetrics(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(dashboardPath)
	require.NoError(t, err)
	var d dashboard
	require.NoError(t, json.Unmarshal(raw, &d))

	require.GreaterOrEqual(t, d.SchemaVersion, 39)
	require.NotEmpty(t, d.UID)
	require.NotEmpty(t, d.Title)

	// Template variables: a Prometheus data source, route and target.
	vars := map[string]string{}
	var exprs []string
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		if v.Type == "datasource" {
			var q string
			require.NoError(t, json.Unmarshal(v.Query, &q))
			require.Equal(t, "prometheus", q)
			continue
		}
		require.NotNil(t, v.Datasource, "variable %s", v.Name)
		require.Equal(t, "${datasource}", v.Datasource.UID, "variable %s", v.Name)
		exprs = append(exprs, v.Definition, string(v.Query))
	}
	require.Equal(t, map[string]string{"datasource": "datasource", "route": "query", "target": "query"}, vars)

	ids := map[int]bool{}
	walk(d.Panels, func(p panel) {
		require.False(t, ids[p.ID], "panel id %d is used twice", p.ID)
		ids[p.ID] = true
		require.NotNil(t, p.GridPos, "panel %q", p.Title)
		if p.Type == "row" {
			return
		}
		require.NotNil(t, p.Datasource, "panel %q", p.Title)
		require.Equal(t, "${datasource}", p.Datasource.UID, "panel %q", p.Title)
		require.NotEmpty(t, p.Targets, "panel %q", p.Title)
		for _, tg := range p.Targets {
			require.NotEmpty(t, tg.Expr, "panel %q", p.Title)
			exprs = append(exprs, tg.Expr)
		}
	})

	registered := registeredNames(t)
	used := map[string]bool{}
	for _, e := range exprs {
		for _, name := range metricName.FindAllString(e, -1) {
			require.True(t, registered[name], "the dashboard uses %s, which package metrics does not register (in %q)", name, e)
			used[strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count")] = true
		}
	}

	// And it shows every metric docs/observability.md lists.
	for _, name := range []string{
		metrics.NameRequestsTotal, metrics.NameRequestDuration, metrics.NameAttemptsTotal,
		metrics.NameAttemptDuration, metrics.NameDeadTotal, metrics.NameDeliveries, metrics.NameBacklogOldest,
		metrics.NameBodyTimeoutsTotal, metrics.NameTargetServerUp, metrics.NameTargetInFlight,
		metrics.NameCircuitState, metrics.NameServerStateChanges, metrics.NameCircuitStateChanges,
	} {
		require.True(t, used[name], "the dashboard has no panel for %s (uses %v)", name, slices.Sorted(maps.Keys(used)))
	}
}
