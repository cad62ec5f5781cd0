package tracing_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/trace/noop"

	"github.com/fanouthq/fanout/tracing"
)

// BenchmarkNoopSpan is the cost of a span when tracing is off: the
// provider Setup returns without OTEL_EXPORTER_OTLP_ENDPOINT.
func BenchmarkNoopSpan(b *testing.B) {
	tracer := tracing.Tracer(noop.NewTracerProvider())
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, span := tracer.Start(ctx, "send crm")
		span.End()
	}
}

// BenchmarkNoopSpanWithRemoteParent starts a span under an extracted
// inbound traceparent.
func BenchmarkNoopSpanWithRemoteParent(b *testing.B) {
	tracer := tracing.Tracer(noop.NewTracerProvider())
	ctx := tracing.Extract(context.Background(), http.Header{"Traceparent": {inbound}})
	b.ReportAllocs()
	for b.Loop() {
		_, span := tracer.Start(ctx, "send crm")
		span.End()
	}
}

// BenchmarkNoopHelpers is what the data plane pays per request and
// attempt with tracing off.
func BenchmarkNoopHelpers(b *testing.B) {
	tracer := tracing.Tracer(noop.NewTracerProvider())
	r := httptest.NewRequest(http.MethodPost, "/send-info", nil)
	r.Header.Set("Traceparent", inbound)
	b.ReportAllocs()
	for b.Loop() {
		ctx, span := tracing.StartRequest(tracer, r, "signup", "all")
		actx, aspan := tracing.StartAttempt(ctx, tracer, "signup", "crm", 1)
		_ = tracing.Traceparent(actx)
		tracing.End(aspan, 200, "")
		tracing.End(span, 200, "")
	}
}

// BenchmarkExtractInject is the propagation cost with tracing on.
func BenchmarkExtractInject(b *testing.B) {
	in := http.Header{"Traceparent": {inbound}}
	b.ReportAllocs()
	for b.Loop() {
		ctx := tracing.Extract(context.Background(), in)
		_ = tracing.Traceparent(ctx)
	}
}
