// Package tracing is Fanout's OpenTelemetry tracing (docs/observability.md): a tracer
// provider that exports over OTLP/HTTP when the standard
// OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
// variable is set and costs nothing otherwise, W3C Trace Context
// propagation, and the few span helpers the data plane and the queue use
// so that every span has the same names and attributes.
//
// Setup never touches OpenTelemetry's global provider or propagator: the
// caller passes the provider it gets to the components that trace.
//
//	shutdown, tp, err := tracing.Setup(ctx, "fanout", version)
//	defer shutdown(context.Background())
//	tracer := tracing.Tracer(tp)
//
//	// data plane, per inbound request
//	ctx, span := tracing.StartRequest(tracer, r, route.Name, route.Mode)
//	defer tracing.End(span, status, class)
//
//	// per attempt; the target receives the attempt span as its parent
//	actx, aspan := tracing.StartAttempt(ctx, tracer, route.Name, target.Name, n)
//	req.Inbound.Traceparent = tracing.Traceparent(actx)
//	tracing.End(aspan, res.Status, string(res.Class))
//
// With tracing off the helpers do not allocate, and an inbound traceparent
// still reaches the targets (package upstream forwards it as is).
package tracing
