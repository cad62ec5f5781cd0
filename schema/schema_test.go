package schema_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout/schema"
)

func write(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

const signup = `{
  "type": "object",
  "required": ["email", "name"],
  "properties": {
    "email": {"type": "string", "format": "email"},
    "name": {"type": "string", "minLength": 1},
    "age": {"type": "integer", "minimum": 0},
    "tags": {"type": "array", "items": {"$ref": "tag.json"}},
    "a/b": {"type": "string"},
    "c~d": {"type": "string"}
  },
  "additionalProperties": false
}`

func TestValidate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, dir, "tag.json", `{"type": "string", "maxLength": 3}`)
	s, err := schema.Compile(write(t, dir, "signup.json", signup))
	require.NoError(t, err)

	res, err := s.Validate([]byte(`{"email":"a@example.com","name":"A","age":3,"tags":["x"]}`))
	require.NoError(t, err)
	require.Nil(t, res)

	res, err = s.Validate([]byte(`{"email":"not an email","age":-1,"tags":["ok","toolong"],"a/b":1,"c~d":2,"extra":true}`))
	require.NoError(t, err)
	require.NotNil(t, res)
	byLoc := map[string]schema.Violation{}
	for _, v := range res.Violations {
		byLoc[v.InstanceLocation+" "+v.Keyword] = v
		require.NotContains(t, v.Message, dir, "no server paths in answers")
		require.NotContains(t, v.Message, "file:")
	}
	for _, want := range []string{" required", " additionalProperties", "/email format", "/age minimum", "/tags/1 maxLength", "/a~1b type", "/c~0d type"} {
		require.Contains(t, byLoc, want, "violations: %+v", res.Violations)
	}
	require.Contains(t, byLoc[" required"].Message, "name")
	require.Zero(t, res.More)
	for i := 1; i < len(res.Violations); i++ {
		require.LessOrEqual(t, res.Violations[i-1].InstanceLocation, res.Violations[i].InstanceLocation, "in the order of the body")
	}
}

func TestValidateNotJSON(t *testing.T) {
	t.Parallel()
	s, err := schema.Compile(write(t, t.TempDir(), "s.json", `{"type":"object"}`))
	require.NoError(t, err)
	for _, body := range []string{"", "{", `{"a":1} {"b":2}`, "nul", "\xff"} {
		_, err := s.Validate([]byte(body))
		require.ErrorIs(t, err, schema.ErrNotJSON, "%q", body)
	}
	res, err := s.Validate([]byte(`[1]`))
	require.NoError(t, err)
	require.Equal(t, []schema.Violation{{InstanceLocation: "", Keyword: "type", Message: res.Violations[0].Message}}, res.Violations)
}

func TestValidateManyViolations(t *testing.T) {
	t.Parallel()
	s, err := schema.Compile(write(t, t.TempDir(), "s.json", `{"type":"array","items":{"type":"string"}}`))
	require.NoError(t, err)
	body := "[" + strings.TrimSuffix(strings.Repeat("1,", 100), ",") + "]"
	res, err := s.Validate([]byte(body))
	require.NoError(t, err)
	require.Len(t, res.Violations, schema.MaxViolations)
	require.Equal(t, 100-schema.MaxViolations, res.More)
}

func TestValidateFalseSchemaAndDrafts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := schema.Compile(write(t, dir, "false.json", `false`))
	require.NoError(t, err)
	res, err := s.Validate([]byte(`{}`))
	require.NoError(t, err)
	require.Len(t, res.Violations, 1)
	require.NotContains(t, res.Violations[0].Message, dir)

	// A schema that names draft-07 is compiled as draft-07: there,
	// "$ref" beside other keywords makes them ignored.
	d7, err := schema.Compile(write(t, dir, "d7.json", `{"$schema":"http://json-schema.org/draft-07/schema#","definitions":{"s":{"type":"string"}},"$ref":"#/definitions/s","minLength":5}`))
	require.NoError(t, err)
	res, err = d7.Validate([]byte(`"ab"`))
	require.NoError(t, err)
	require.Nil(t, res)
	// 2020-12 (the default) applies both.
	d2020, err := schema.Compile(write(t, dir, "d2020.json", `{"$defs":{"s":{"type":"string"}},"$ref":"#/$defs/s","minLength":5}`))
	require.NoError(t, err)
	res, err = d2020.Validate([]byte(`"ab"`))
	require.NoError(t, err)
	require.NotNil(t, res)
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	big := write(t, dir, "big.json", `{"description":"`+strings.Repeat("x", schema.MaxFileSize)+`"}`)
	for name, path := range map[string]string{
		"missing file":          filepath.Join(dir, "nope.json"),
		"a directory":           dir,
		"a device":              "/dev/zero",
		"too large":             big,
		"not JSON":              write(t, dir, "bad.json", `{"type": `),
		"two documents":         write(t, dir, "two.json", `{} {}`),
		"invalid keyword value": write(t, dir, "kw.json", `{"type": 5}`),
		"invalid regex":         write(t, dir, "re.json", `{"pattern": "("}`),
		"remote $ref":           write(t, dir, "remote.json", `{"$ref": "https://example.com/s.json"}`),
		"missing $ref file":     write(t, dir, "ref.json", `{"$ref": "other.json"}`),
		"$ref to a device":      write(t, dir, "dev.json", `{"$ref": "file:///dev/zero"}`),
		"unknown $schema":       write(t, dir, "meta.json", `{"$schema": "https://example.com/meta"}`),
	} {
		_, err := schema.Compile(path)
		require.Error(t, err, name)
		require.NotContains(t, err.Error(), "file://", name)
	}
}
