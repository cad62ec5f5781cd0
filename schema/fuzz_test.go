package schema_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/fanouthq/fanout/schema"
)

// FuzzSchemaValidateBody checks Validate over any body: no panic; a body
// it calls JSON is JSON; every violation names a JSON pointer and says
// something; at most MaxViolations are listed.
//
//	go test ./schema -run '^$' -fuzz FuzzSchemaValidateBody -fuzztime 60s
func FuzzSchemaValidateBody(f *testing.F) {
	dir := f.TempDir()
	write(f, dir, "tag.json", `{"type":"string","maxLength":8,"pattern":"^[a-z]+$"}`)
	s, err := schema.Compile(write(f, dir, "s.json", `{
	  "type":"object","required":["email"],"additionalProperties":false,
	  "properties":{
	    "email":{"type":"string","format":"email"},
	    "age":{"type":"integer","minimum":0,"maximum":150},
	    "tags":{"type":"array","items":{"$ref":"tag.json"},"uniqueItems":true},
	    "when":{"type":"string","format":"date-time"},
	    "n":{"oneOf":[{"type":"number","multipleOf":0.5},{"type":"null"}]}
	  }}`))
	if err != nil {
		f.Fatal(err)
	}
	for _, b := range []string{`{"email":"a@b.c"}`, `{}`, `[]`, `{"email":1,"age":-1,"tags":["A","a","a"],"x/y~":1}`, `{"n":1e400}`, `"`, `{"when":"2024-02-30T00:00:00Z"}`, strings.Repeat("[", 100)} {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := s.Validate(body)
		if err != nil {
			if !errors.Is(err, schema.ErrNotJSON) || res != nil {
				t.Fatalf("unexpected %v %v", res, err)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted as JSON: %q", body)
		}
		if res == nil {
			return
		}
		if len(res.Violations) == 0 || len(res.Violations) > schema.MaxViolations || res.More < 0 {
			t.Fatalf("bad result %+v", res)
		}
		for _, v := range res.Violations {
			if v.Message == "" || v.InstanceLocation != "" && v.InstanceLocation[0] != '/' {
				t.Fatalf("bad violation %+v", v)
			}
		}
	})
}
