package admin

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/fanouthq/fanout"
	"github.com/fanouthq/fanout/config"
)

// TestOpenAPIValid validates the served document against the OpenAPI 3.1
// schema with a maintained validator.
func TestOpenAPIValid(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(New(Options{}))
	t.Cleanup(srv.Close)

	res, err := http.Get(srv.URL + "/openapi.json")
	require.NoError(t, err)
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.NoError(t, res.Body.Close())
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "application/json", res.Header.Get("Content-Type"))
	require.True(t, json.Valid(body))

	doc, err := libopenapi.NewDocument(body)
	require.NoError(t, err)
	require.Equal(t, "3.1.0", doc.GetVersion())
	_, errs := doc.BuildV3Model()
	require.NoError(t, errs)

	v, verrs := validator.NewValidator(doc)
	require.Empty(t, verrs)
	ok, vErrs := v.ValidateDocument()
	for _, e := range vErrs {
		t.Errorf("openapi.yaml: %s: %s", e.Message, e.Reason)
		for _, se := range e.SchemaValidationErrors {
			t.Errorf("  %s at %s (%s)", se.Reason, se.FieldPath, se.KeywordLocation)
		}
	}
	require.True(t, ok)
}

// TestOpenAPIValidStrict validates the document a second time with
// kin-openapi, which is stricter than libopenapi about what may sit beside
// a schema's keywords: a flow mapping with an unquoted comma in a
// description, for instance, makes a bogus sibling key that libopenapi
// lets through.
func TestOpenAPIValidStrict(t *testing.T) {
	t.Parallel()
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = false
	doc, err := loader.LoadFromData(OpenAPI())
	require.NoError(t, err)
	require.NoError(t, doc.Validate(t.Context()))
}

// TestOpenAPIRouteLifecycle checks a route with every lifecycle field
// against the Route schema (additionalProperties: false, the state enum).
func TestOpenAPIRouteLifecycle(t *testing.T) {
	t.Parallel()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(OpenAPI())
	require.NoError(t, err)
	schema := doc.Components.Schemas["Route"].Value
	for _, l := range []config.Lifecycle{
		{State: config.StateDraft},
		{State: config.StateDeprecated, DeprecatedAt: "2026-06-01T00:00:00Z", Sunset: "2027-01-31T00:00:00Z", Link: "https://example.com/v2"},
		{State: config.StateRetired, Link: "https://example.com/v2"},
	} {
		v := routeView(&config.Route{Name: "r", Mode: config.ModeAsync,
			Match: config.Match{Method: http.MethodPost, Path: "/r"}, Lifecycle: l})
		b, err := json.Marshal(v)
		require.NoError(t, err)
		var data any
		require.NoError(t, json.Unmarshal(b, &data))
		require.NoError(t, schema.VisitJSON(data), "%s", b)
	}
}

// TestOpenAPINoNullKeys catches what neither validator reports everywhere:
// an unquoted comma inside a flow mapping ends the scalar, and the rest
// becomes keys without values ("{description: a, b}" has a key "b"). The
// document never has a key whose value is null.
func TestOpenAPINoNullKeys(t *testing.T) {
	t.Parallel()
	var root yaml.Node
	require.NoError(t, yaml.Unmarshal(openAPIYAML, &root))
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if v.Tag == "!!null" {
					t.Errorf("openapi.yaml:%d:%d: key %q has no value (an unquoted comma in a flow mapping?)", k.Line, k.Column, k.Value)
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&root)
}

// openAPIOperations lists "METHOD /path" of every operation in the
// document.
func openAPIOperations(t *testing.T) []string {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(openAPIJSON, &doc))
	var ops []string
	for path, item := range doc.Paths {
		for method := range item {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options", "trace":
				ops = append(ops, strings.ToUpper(method)+" "+path)
			}
		}
	}
	slices.Sort(ops)
	return ops
}

// TestOpenAPICoversEveryEndpoint fails when an endpoint registered on the
// mux is not in the document, or the document describes one that is not
// registered. It also sends a request to every documented operation and
// checks that the mux routes it (no 404 not_found, no 405).
func TestOpenAPICoversEveryEndpoint(t *testing.T) {
	t.Parallel()
	opts := Options{Pprof: true, Metrics: http.NotFoundHandler(), Stats: http.NotFoundHandler(), Access: noAccess{},
		StatsSeries: http.NotFoundHandler(), Token: "t"}

	var registered []string
	for _, e := range endpoints {
		require.Truef(t, e.enabled == nil || e.enabled(&opts), "%s is not enabled by the test options", e.pattern())
		registered = append(registered, e.method+" "+e.path)
	}
	slices.Sort(registered)
	require.Equal(t, registered, openAPIOperations(t), "the endpoints table and openapi.yaml differ")

	// Every documented path is served by the mux as registered.
	s := New(opts)
	param := regexp.MustCompile(`\{[^}]+\}`)
	for _, op := range openAPIOperations(t) {
		method, path, _ := strings.Cut(op, " ")
		path = param.ReplaceAllString(path, "heap")
		req := httptest.NewRequest(method, path, nil)
		_, pattern := s.mux.Handler(req)
		require.NotEmptyf(t, pattern, "%s is documented but the mux does not route %s %s", op, method, path)
	}
}

// noAccess is an AccessStore that only mounts the access endpoints.
type noAccess struct{ fanout.AccessStore }
