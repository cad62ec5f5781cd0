package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/gateway"
	"github.com/fanouthq/fanout/tracing"
	"github.com/fanouthq/fanout/upstream"
)

func TestTracingSpans(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	a := newTarget(t, "a", nil)
	bb := newTarget(t, "b", nil)
	cfg := newConfig([]*target{a, bb}, route("r", config.ModeAll, "/r", "a", "b"))
	client := upstream.New(upstream.Options{})
	t.Cleanup(client.CloseIdleConnections)
	gw, err := gateway.New(cfg, gateway.Options{Client: client, Tracer: tracing.Tracer(tp)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = gw.Close(context.Background()) })

	const inbound = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	req, err := http.NewRequest(http.MethodPost, "/r", strings.NewReader(`{}`))
	require.NoError(t, err)
	req.Header.Set("Traceparent", inbound)
	w := httptest.NewRecorder()
	gw.ServeHTTP(w, req)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())

	spans := rec.Ended()
	require.Len(t, spans, 3, "one server span and one span per attempt")
	var server sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.SpanKind() == trace.SpanKindServer {
			server = s
		}
	}
	require.NotNil(t, server)
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", server.SpanContext().TraceID().String(), "the inbound trace continues")
	require.Equal(t, "00f067aa0ba902b7", server.Parent().SpanID().String())

	attempts := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		if s.SpanKind() == trace.SpanKindClient {
			require.Equal(t, server.SpanContext().SpanID(), s.Parent().SpanID())
			attempts[s.Name()] = s
		}
	}
	for _, tg := range []*target{a, bb} {
		s := tg.next(t)
		span := attempts["send "+tg.name]
		require.NotNil(t, span, tg.name)
		require.Equal(t, "00-4bf92f3577b34da6a3ce929d0e0e4736-"+span.SpanContext().SpanID().String()+"-01",
			s.Header.Get("Traceparent"), "%s sees its attempt span as parent", tg.name)
	}
}
