package tracing

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ScopeName is the instrumentation scope of Fanout's spans.
const ScopeName = "github.com/fanouthq/fanout"

// The environment variables Setup reads itself; the OTLP exporter and the
// SDK read the other OTEL_* variables (headers, timeout, compression,
// sampler, batch sizes, resource attributes).
const (
	EnvEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	EnvSDKDisabled    = "OTEL_SDK_DISABLED"
	EnvTracesExporter = "OTEL_TRACES_EXPORTER"
)

// Span attribute keys. The http.* keys follow the OpenTelemetry semantic
// conventions; the fanout.* keys are Fanout's own.
const (
	AttrHTTPMethod = attribute.Key("http.request.method")
	AttrHTTPStatus = attribute.Key("http.response.status_code")
	AttrRoute      = attribute.Key("fanout.route")
	AttrMode       = attribute.Key("fanout.mode")
	AttrTarget     = attribute.Key("fanout.target")
	AttrAttempt    = attribute.Key("fanout.attempt")
	AttrErrorClass = attribute.Key("fanout.error_class")
	AttrMessageID  = attribute.Key("fanout.message_id")
)

// Setup returns the tracer provider of the process and the function that
// flushes and stops it. When OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (and neither
// OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none), spans are
// batched and exported over OTLP/HTTP (http/protobuf, or http/json by
// OTEL_EXPORTER_OTLP_PROTOCOL; grpc is refused with an error); the
// resource has service.name serviceName and service.version version,
// which OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override. Otherwise
// it returns the no-op provider and a shutdown that does nothing.
//
// Call shutdown once, at exit, with a context bounding the final flush.
func Setup(ctx context.Context, serviceName, version string) (shutdown func(context.Context) error, tp trace.TracerProvider, err error) {
	if !exportConfigured(os.Getenv) {
		return func(context.Context) error { return nil }, noop.NewTracerProvider(), nil
	}
	proto := os.Getenv(EnvTracesProtocol)
	if proto == "" {
		proto = os.Getenv(EnvProtocol)
	}
	if proto != "" && proto != "http/protobuf" && proto != "http/json" {
		return nil, nil, fmt.Errorf("tracing: OTLP protocol %q is not supported: use http/protobuf (the default) or http/json", proto)
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithAttributes(
			attribute.String("service.name", serviceName),
			attribute.String("service.version", version),
		),
		resource.WithFromEnv(), // last: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		_ = exp.Shutdown(ctx)
		return nil, nil, fmt.Errorf("tracing: resource: %w", err)
	}
	// The sampler is left to the SDK, which honours OTEL_TRACES_SAMPLER
	// (default parentbased_always_on).
	sdk := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
	)
	return sdk.Shutdown, sdk, nil
}

// exportConfigured reports whether the environment asks for OTLP export.
func exportConfigured(getenv func(string) string) bool {
	if strings.EqualFold(strings.TrimSpace(getenv(EnvSDKDisabled)), "true") {
		return false
	}
	if strings.EqualFold(strings.TrimSpace(getenv(EnvTracesExporter)), "none") {
		return false
	}
	return strings.TrimSpace(getenv(EnvEndpoint)) != "" || strings.TrimSpace(getenv(EnvTracesEndpoint)) != ""
}

// Tracer returns Fanout's tracer of tp.
func Tracer(tp trace.TracerProvider) trace.Tracer {
	return tp.Tracer(ScopeName)
}

// Extract returns ctx with the remote span context of the W3C traceparent
// (and tracestate) in h; ctx itself when h has none or a malformed one.
func Extract(ctx context.Context, h http.Header) context.Context {
	return propagation.TraceContext{}.Extract(ctx, propagation.HeaderCarrier(h))
}

// Inject sets the W3C traceparent (and tracestate) of the span in ctx on
// h; it sets nothing when ctx has no valid span context.
func Inject(ctx context.Context, h http.Header) {
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(h))
}

// Traceparent returns the W3C traceparent of the span in ctx, "" when
// ctx has none: the value to put in upstream.Request's
// Inbound.Traceparent so that a target sees the attempt span as its
// parent.
func Traceparent(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	var b [55]byte
	tid, sid := sc.TraceID(), sc.SpanID()
	copy(b[:3], "00-")
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	hex.Encode(b[36:52], sid[:])
	b[52] = '-'
	flags := [1]byte{byte(sc.TraceFlags() & trace.FlagsSampled)}
	hex.Encode(b[53:55], flags[:])
	return string(b[:])
}

// isNoop reports whether t is the no-op tracer, for which the helpers
// skip even the extraction of the inbound trace context.
func isNoop(t trace.Tracer) bool {
	_, ok := t.(noop.Tracer)
	return ok
}

// noopSpan returns a span that records nothing, without allocating.
func noopSpan() trace.Span {
	return trace.SpanFromContext(context.Background())
}

// StartRequest starts the server span of an inbound request matched to
// route (in mode), child of the request's traceparent if it has one. End
// it with End. With the no-op tracer it returns r.Context() and a no-op
// span, without allocating.
func StartRequest(t trace.Tracer, r *http.Request, route, mode string) (context.Context, trace.Span) {
	ctx := r.Context()
	if isNoop(t) {
		return ctx, noopSpan()
	}
	ctx, span := t.Start(Extract(ctx, r.Header), route, trace.WithSpanKind(trace.SpanKindServer))
	if span.IsRecording() {
		span.SetName(r.Method + " " + route)
		span.SetAttributes(
			AttrHTTPMethod.String(r.Method),
			AttrRoute.String(route),
			AttrMode.String(mode),
		)
	}
	return ctx, span
}

// StartAttempt starts the client span of attempt number n (1-based) of
// route's exchange with target. Pass Traceparent of the returned context
// to the target and End the span with the outcome. For an async
// delivery, derive ctx with Extract from the message's kept headers, so
// that its attempts join the trace of the request that was accepted.
func StartAttempt(ctx context.Context, t trace.Tracer, route, target string, n int) (context.Context, trace.Span) {
	if isNoop(t) {
		return ctx, noopSpan()
	}
	ctx, span := t.Start(ctx, target, trace.WithSpanKind(trace.SpanKindClient))
	if span.IsRecording() {
		span.SetName("send " + target)
		span.SetAttributes(
			AttrRoute.String(route),
			AttrTarget.String(target),
			AttrAttempt.Int(n),
		)
	}
	return ctx, span
}

// End records the HTTP status (when not 0) and the error class (when not
// "": the span's status becomes Error) on span, then ends it.
func End(span trace.Span, status int, class string) {
	if span.IsRecording() {
		if status != 0 {
			span.SetAttributes(AttrHTTPStatus.Int(status))
		}
		if class != "" {
			span.SetAttributes(AttrErrorClass.String(class))
			span.SetStatus(codes.Error, class)
		}
	}
	span.End()
}
