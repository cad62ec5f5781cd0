package tracing_test

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/fanouthq/fanout/tracing"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	inboundTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	inboundSpanID  = "00f067aa0ba902b7"
	inbound        = "00-" + inboundTraceID + "-" + inboundSpanID + "-01"
)

// setupSDK returns a tracer recording into an in-memory exporter.
func setupSDK(t *testing.T) (trace.Tracer, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { require.NoError(t, tp.Shutdown(context.Background())) })
	return tracing.Tracer(tp), exp
}

func TestExtractKeepsTraceIDAndInjectPassesItOn(t *testing.T) {
	t.Parallel()
	tracer, exp := setupSDK(t)

	in := http.Header{}
	in.Set("Traceparent", inbound)
	in.Set("Tracestate", "vendor=abc")
	ctx := tracing.Extract(context.Background(), in)
	ctx, span := tracer.Start(ctx, "request")
	span.End()

	spans := exp.GetSpans()
	require.Len(t, spans, 1)
	require.Equal(t, inboundTraceID, spans[0].SpanContext.TraceID().String())
	require.Equal(t, inboundSpanID, spans[0].Parent.SpanID().String())
	require.True(t, spans[0].Parent.IsRemote())

	out := http.Header{}
	tracing.Inject(ctx, out)
	tp := out.Get("Traceparent")
	require.Equal(t, "00-"+inboundTraceID+"-"+span.SpanContext().SpanID().String()+"-01", tp)
	require.Equal(t, "vendor=abc", out.Get("Tracestate"))
	require.Equal(t, tp, tracing.Traceparent(ctx), "Traceparent formats what Inject writes")
}

func TestExtractWithoutOrWithBadTraceparent(t *testing.T) {
	t.Parallel()
	for _, h := range []http.Header{
		{},
		{"Traceparent": {"00-00000000000000000000000000000000-00f067aa0ba902b7-01"}},
		{"Traceparent": {"garbage"}},
	} {
		ctx := tracing.Extract(context.Background(), h)
		require.False(t, trace.SpanContextFromContext(ctx).IsValid())
		require.Empty(t, tracing.Traceparent(ctx))
		out := http.Header{}
		tracing.Inject(ctx, out)
		require.Empty(t, out.Get("Traceparent"))
	}
}

func TestTraceparentUnsampled(t *testing.T) {
	t.Parallel()
	h := http.Header{"Traceparent": {"00-" + inboundTraceID + "-" + inboundSpanID + "-00"}}
	ctx := tracing.Extract(context.Background(), h)
	require.Equal(t, h.Get("Traceparent"), tracing.Traceparent(ctx))
}

func TestRequestAndAttemptSpans(t *testing.T) {
	t.Parallel()
	tracer, exp := setupSDK(t)

	r := httptest.NewRequest(http.MethodPost, "/send-info", nil)
	r.Header.Set("Traceparent", inbound)
	ctx, span := tracing.StartRequest(tracer, r, "signup", "all")
	actx, aspan := tracing.StartAttempt(ctx, tracer, "signup", "crm", 2)
	tp := tracing.Traceparent(actx)
	tracing.End(aspan, 503, "status")
	tracing.End(span, 502, "")

	spans := exp.GetSpans()
	require.Len(t, spans, 2)
	attempt, request := spans[0], spans[1]

	require.Equal(t, "POST signup", request.Name)
	require.Equal(t, trace.SpanKindServer, request.SpanKind)
	require.Equal(t, inboundTraceID, request.SpanContext.TraceID().String())
	require.Contains(t, request.Attributes, attribute.String("fanout.route", "signup"))
	require.Contains(t, request.Attributes, attribute.String("fanout.mode", "all"))
	require.Contains(t, request.Attributes, attribute.Int("http.response.status_code", 502))
	require.Equal(t, codes.Unset, request.Status.Code)

	require.Equal(t, "send crm", attempt.Name)
	require.Equal(t, trace.SpanKindClient, attempt.SpanKind)
	require.Equal(t, request.SpanContext.SpanID(), attempt.Parent.SpanID())
	require.Contains(t, attempt.Attributes, attribute.String("fanout.target", "crm"))
	require.Contains(t, attempt.Attributes, attribute.Int("fanout.attempt", 2))
	require.Contains(t, attempt.Attributes, attribute.String("fanout.error_class", "status"))
	require.Equal(t, codes.Error, attempt.Status.Code)
	require.Equal(t, "00-"+inboundTraceID+"-"+attempt.SpanContext.SpanID().String()+"-01", tp,
		"the target sees the attempt span as its parent")
}

func TestNoopHelpers(t *testing.T) {
	t.Parallel()
	tracer := tracing.Tracer(noop.NewTracerProvider())
	r := httptest.NewRequest(http.MethodPost, "/send-info", nil)
	r.Header.Set("Traceparent", inbound)
	ctx, span := tracing.StartRequest(tracer, r, "signup", "all")
	require.False(t, span.IsRecording())
	actx, aspan := tracing.StartAttempt(ctx, tracer, "signup", "crm", 1)
	require.False(t, aspan.IsRecording())
	// Off: no span context of Fanout's own; upstream forwards the inbound
	// traceparent header unchanged.
	require.Empty(t, tracing.Traceparent(actx))
	tracing.End(aspan, 200, "")
	tracing.End(span, 200, "")
}

func clearOTelEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{
		tracing.EnvEndpoint, tracing.EnvTracesEndpoint, tracing.EnvProtocol, tracing.EnvTracesProtocol,
		tracing.EnvSDKDisabled, tracing.EnvTracesExporter, "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
		"OTEL_TRACES_SAMPLER", "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
	} {
		t.Setenv(k, "")
	}
}

// The Setup tests change the environment, so they cannot run in parallel.

func TestSetupWithoutEndpointIsNoop(t *testing.T) {
	clearOTelEnv(t)
	shutdown, tp, err := tracing.Setup(context.Background(), "fanout", "test")
	require.NoError(t, err)
	require.IsType(t, noop.TracerProvider{}, tp)
	require.NoError(t, shutdown(context.Background()))

	t.Setenv(tracing.EnvEndpoint, "http://127.0.0.1:1")
	t.Setenv(tracing.EnvSDKDisabled, "true")
	_, tp, err = tracing.Setup(context.Background(), "fanout", "test")
	require.NoError(t, err)
	require.IsType(t, noop.TracerProvider{}, tp)
}

func TestSetupRefusesGRPC(t *testing.T) {
	clearOTelEnv(t)
	t.Setenv(tracing.EnvEndpoint, "http://127.0.0.1:4317")
	t.Setenv(tracing.EnvProtocol, "grpc")
	_, _, err := tracing.Setup(context.Background(), "fanout", "test")
	require.ErrorContains(t, err, "grpc")
}

// TestSetupExportsOverOTLP runs a loopback OTLP/HTTP receiver and checks
// that Setup exports spans to it when OTEL_EXPORTER_OTLP_ENDPOINT points
// there.
func TestSetupExportsOverOTLP(t *testing.T) {
	got := make(chan *coltracepb.ExportTraceServiceRequest, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
			http.NotFound(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got <- &req
		resp, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(resp)
	}))
	defer srv.Close()

	clearOTelEnv(t)
	t.Setenv(tracing.EnvEndpoint, srv.URL) // http://127.0.0.1:port: loopback, plain HTTP

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	shutdown, tp, err := tracing.Setup(ctx, "fanout-test", "v1.2.3")
	require.NoError(t, err)
	_, isSDK := tp.(*sdktrace.TracerProvider)
	require.True(t, isSDK)

	r := httptest.NewRequest(http.MethodPost, "/send-info", nil)
	r.Header.Set("Traceparent", inbound)
	_, span := tracing.StartRequest(tracing.Tracer(tp), r, "signup", "async")
	tracing.End(span, 202, "")
	require.NoError(t, shutdown(ctx), "shutdown flushes the batch")

	var req *coltracepb.ExportTraceServiceRequest
	select {
	case req = <-got:
	case <-ctx.Done():
		t.Fatal("no export received")
	}
	require.Len(t, req.GetResourceSpans(), 1)
	rs := req.GetResourceSpans()[0]
	attrs := map[string]string{}
	for _, kv := range rs.GetResource().GetAttributes() {
		attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
	}
	require.Equal(t, "fanout-test", attrs["service.name"])
	require.Equal(t, "v1.2.3", attrs["service.version"])

	require.Len(t, rs.GetScopeSpans(), 1)
	require.Equal(t, tracing.ScopeName, rs.GetScopeSpans()[0].GetScope().GetName())
	spans := rs.GetScopeSpans()[0].GetSpans()
	require.Len(t, spans, 1)
	require.Equal(t, "POST signup", spans[0].GetName())
	require.Equal(t, inboundTraceID, hex.EncodeToString(spans[0].GetTraceId()))
	require.Equal(t, inboundSpanID, hex.EncodeToString(spans[0].GetParentSpanId()))
}
