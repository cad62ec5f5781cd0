package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/balance"
	"github.com/fanouthq/fanout/gateway"
	"github.com/fanouthq/fanout/metrics"
	"github.com/fanouthq/fanout/queue"
	"github.com/fanouthq/fanout/stats"
	"github.com/fanouthq/fanout/tracing"
	"github.com/fanouthq/fanout/upstream"
)

// observability bundles the process's metrics registry, the in-memory
// stats behind /v1/stats and the tracer.
type observability struct {
	registry *prometheus.Registry
	metrics  *metrics.Metrics
	stats    *stats.Stats
	tracer   trace.Tracer
	shutdown func(context.Context) error
}

func newObservability(ctx context.Context, store fanout.Store, version string, logger *slog.Logger) (*observability, error) {
	reg := metrics.NewRegistry()
	o := &observability{
		registry: reg,
		metrics:  metrics.New(reg),
		stats:    stats.New(stats.Options{}),
	}
	if err := reg.Register(metrics.NewBacklogCollector(store, metrics.BacklogOptions{Logger: logger})); err != nil {
		return nil, fmt.Errorf("register backlog collector: %w", err)
	}
	shutdown, tp, err := tracing.Setup(ctx, "fanout", version)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	o.shutdown = shutdown
	// Without an exporter the gateway gets no tracer at all: no spans, and
	// the inbound traceparent is passed on as is.
	if _, isNoop := tp.(noop.TracerProvider); !isNoop {
		o.tracer = tracing.Tracer(tp)
	}
	return o, nil
}

// gatewayHooks feed metrics and stats from the data plane.
func (o *observability) gatewayHooks() gateway.Hooks {
	return gateway.Hooks{
		OnRequest: func(route, mode string, status int, d time.Duration) {
			o.metrics.ObserveRequest(route, mode, status, d)
			if route == "" {
				return
			}
			// A request fails as a whole with a status; which target failed
			// and why is in the attempts.
			ok := status < 400
			class := ""
			if !ok {
				class = string(fanout.ClassStatus)
			}
			o.stats.RecordRequest(route, mode, ok, class, d)
		},
		OnAttempt: func(route, target string, class fanout.ErrorClass, _ int, d time.Duration) {
			o.metrics.ObserveAttempt(route, target, metrics.Outcome(class), d)
			o.stats.RecordAttempt(route, target, string(class), d)
		},
		OnBodyTimeout: o.metrics.IncBodyTimeout,
		OnDeprecated:  o.metrics.IncDeprecated,
	}
}

// balanceHooks feed metrics from the targets' live state; resumed is
// called with a target whose circuit lets attempts through again.
func (o *observability) balanceHooks(resumed func(target string)) balance.Options {
	return balance.Options{
		OnServer: o.metrics.IncServerState,
		OnCircuit: func(target string, _, to balance.State) {
			o.metrics.IncCircuitState(target, to.String())
			if to != balance.Open {
				resumed(target)
			}
		},
	}
}

// registerTargets exposes the targets' live state at each scrape.
func (o *observability) registerTargets(src metrics.TargetSource) error {
	if err := o.registry.Register(metrics.NewTargetsCollector(src)); err != nil {
		return fmt.Errorf("register targets collector: %w", err)
	}
	return nil
}

// queueHooks feed metrics and stats from the delivery workers.
func (o *observability) queueHooks() queue.Hooks {
	return queue.Hooks{
		OnAttempt: func(route, target string, res upstream.Result, state fanout.DeliveryState) {
			if state == fanout.StatePending { // cut short by shutdown, not a real outcome
				return
			}
			o.metrics.ObserveAttempt(route, target, metrics.Outcome(res.Class), res.Duration)
			o.stats.RecordAttempt(route, target, string(res.Class), res.Duration)
			if state == fanout.StateDead {
				o.metrics.IncDead(target)
			}
		},
	}
}

func (o *observability) statsHandler(backlog stats.BacklogSource) http.Handler {
	return stats.Handler(o.stats, backlog)
}

func (o *observability) metricsHandler() http.Handler { return metrics.Handler(o.registry) }
