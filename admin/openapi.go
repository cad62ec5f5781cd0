package admin

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"

	"gopkg.in/yaml.v3"
)

// openAPIYAML is the OpenAPI 3.1 document of the admin API. It is written
// in YAML for people and served as JSON.
//
//go:embed openapi.yaml
var openAPIYAML []byte

// openAPIJSON is openAPIYAML as JSON. The document is part of the binary,
// so a broken one is a programming error caught by the tests.
var openAPIJSON = mustYAMLToJSON(openAPIYAML)

// OpenAPI returns the OpenAPI 3.1 document of the admin API, as JSON.
func OpenAPI() []byte { return append([]byte(nil), openAPIJSON...) }

func (s *Server) openAPI(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(openAPIJSON)
	return nil
}

func mustYAMLToJSON(y []byte) []byte {
	var doc any
	if err := yaml.Unmarshal(y, &doc); err != nil {
		panic(fmt.Sprintf("admin: openapi.yaml: %v", err))
	}
	doc, err := jsonable(doc)
	if err != nil {
		panic(fmt.Sprintf("admin: openapi.yaml: %v", err))
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(fmt.Sprintf("admin: openapi.yaml: %v", err))
	}
	return b
}

// jsonable turns what yaml.v3 decodes into values encoding/json takes:
// maps with non-string keys are refused rather than guessed at.
func jsonable(v any) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			j, err := jsonable(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			v[k] = j
		}
		return v, nil
	case map[any]any:
		return nil, fmt.Errorf("a mapping has a non-string key (quote it)")
	case []any:
		for i, e := range v {
			j, err := jsonable(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			v[i] = j
		}
		return v, nil
	default:
		return v, nil
	}
}
