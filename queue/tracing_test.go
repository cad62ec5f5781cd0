package queue

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/tracing"
)

// Every durable attempt gets a client span, as the gateway's do: the child
// of the traceparent kept with the message, the parent of the one the
// target gets, with the attempt's number and error class. A retried
// delivery has one span per attempt.
func TestDurableAttemptsGetClientSpans(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	st := openStore(t)
	crm := newTarget(t, func(w http.ResponseWriter, _ *http.Request, _ string, n int) {
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{}`))
	})
	crmCfg := newTargetConfig(t, "crm", crm.srv.URL+"/contacts")
	cfg := newConfig(crmCfg)
	d := startDispatcher(t, st, cfg, DispatcherOptions{Tracer: tracing.Tracer(tp)})
	b := startCommitterFor(t, st, d.Dispatcher)

	const kept = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	p := newMessage("signup", "crm")
	p.Message.Header.Set("Traceparent", kept)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	res, err := b.Accept(ctx, p)
	require.NoError(t, err)
	waitState(t, st, []string{res.MessageID}, "crm", fanout.StateSucceeded)

	spans := rec.Ended()
	require.Len(t, spans, 2, "one span per attempt")
	reqs := crm.requests()
	require.Len(t, reqs, 2)
	for i, s := range spans {
		require.Equal(t, "send crm", s.Name())
		require.Equal(t, trace.SpanKindClient, s.SpanKind())
		require.Equal(t, "0af7651916cd43dd8448eb211c80319c", s.SpanContext().TraceID().String(), "the accepted request's trace goes on")
		require.Equal(t, "b7ad6b7169203331", s.Parent().SpanID().String(), "the kept traceparent is the parent")
		attrs := map[string]string{}
		for _, a := range s.Attributes() {
			attrs[string(a.Key)] = a.Value.String()
		}
		require.Equal(t, res.MessageID, attrs["fanout.message_id"])
		require.Equal(t, "signup", attrs["fanout.route"])
		require.Equal(t, map[int]string{0: "1", 1: "2"}[i], attrs["fanout.attempt"])
		// The target sees this attempt's span as its parent.
		require.Equal(t, tracing.Traceparent(trace.ContextWithSpanContext(context.Background(), s.SpanContext())), reqs[i].Header.Get("Traceparent"))
	}
	attrs := map[string]string{}
	for _, a := range spans[0].Attributes() {
		attrs[string(a.Key)] = a.Value.String()
	}
	require.Equal(t, string(fanout.ClassStatus), attrs["fanout.error_class"], "the failed attempt says why")
}
