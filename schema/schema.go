package schema

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// MaxFileSize bounds how much of a schema file (or of a file it
// references) is read.
const MaxFileSize = 4 << 20

// MaxViolations bounds how many problems Validate reports; the rest are
// counted in Result.More.
const MaxViolations = 20

// maxMessage bounds the length of one violation's message (a message may
// quote a long value of the body).
const maxMessage = 300

// ErrNotJSON is returned by Validate for a body that is not one JSON
// document.
var ErrNotJSON = errors.New("the body is not valid JSON")

// Schema is a compiled JSON Schema. It is safe for concurrent use.
type Schema struct {
	path   string
	schema *jsonschema.Schema
}

// Compile reads and compiles the JSON Schema in the file at path. Files it
// references with $ref are read too (local files only). The error says
// what is wrong with the schema; it does not repeat path when the caller
// already names it.
func Compile(path string) (*Schema, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	// Read the root document first so that a missing or odd file gets a
	// plain error instead of the compiler's URL-laden one.
	doc, err := loadFile(abs)
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(jsonschema.SchemeURLLoader{"file": fileLoader{}})
	loc := fileURL(abs)
	if err := c.AddResource(loc, doc); err != nil {
		return nil, cleanError(err)
	}
	s, err := c.Compile(loc)
	if err != nil {
		return nil, cleanError(err)
	}
	return &Schema{path: path, schema: s}, nil
}

// Path returns the path the schema was compiled from.
func (s *Schema) Path() string { return s.path }

// Violation is one place where a body does not match its schema.
type Violation struct {
	// InstanceLocation is the JSON pointer (RFC 6901) of the failing
	// value in the body: "" for the whole body, "/user/email", "/items/3".
	InstanceLocation string `json:"instance_location"`
	// Keyword is the schema keyword that failed, such as "required",
	// "type" or "format".
	Keyword string `json:"keyword,omitempty"`
	// Message says what is wrong, in English.
	Message string `json:"message"`
}

// Result is the outcome of a validation that failed.
type Result struct {
	// Violations are the problems found, at most MaxViolations, in the
	// order of the body.
	Violations []Violation
	// More is how many further problems were left out.
	More int
}

// Validate checks body, which must be one JSON document, against the
// schema. It returns nil when the body matches, a Result listing the
// problems when it does not, and ErrNotJSON when it is not JSON.
func (s *Schema) Validate(body []byte) (*Result, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return nil, ErrNotJSON
	}
	err = s.schema.Validate(doc)
	if err == nil {
		return nil, nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		// Validate returns only *ValidationError; keep a generic
		// answer (without internals) should that change.
		return &Result{Violations: []Violation{{Message: "the body does not match the route's schema"}}}, nil
	}
	res := &Result{}
	collect(ve, res)
	if len(res.Violations) == 0 {
		res.Violations = append(res.Violations, Violation{Message: "the body does not match the route's schema"})
	}
	slices.SortStableFunc(res.Violations, func(a, b Violation) int { return strings.Compare(a.InstanceLocation, b.InstanceLocation) })
	return res, nil
}

// printer renders the library's messages in English.
var printer = message.NewPrinter(language.English)

// collect adds the leaves of the error tree to res: they say what failed;
// the inner nodes only say where the schema branched ($ref, allOf, …).
func collect(e *jsonschema.ValidationError, res *Result) {
	if len(e.Causes) > 0 {
		for _, c := range e.Causes {
			collect(c, res)
		}
		return
	}
	if len(res.Violations) >= MaxViolations {
		res.More++
		return
	}
	v := Violation{InstanceLocation: pointer(e.InstanceLocation)}
	switch e.ErrorKind.(type) {
	case *kind.Schema, *kind.Reference:
		// Their messages name the schema's file URL: say nothing of it.
		v.Message = "the value does not match the schema"
	default:
		v.Message = truncate(e.ErrorKind.LocalizedString(printer))
		if kp := e.ErrorKind.KeywordPath(); len(kp) > 0 {
			v.Keyword = kp[len(kp)-1]
		}
	}
	if _, ok := e.ErrorKind.(*kind.FalseSchema); ok {
		v.Keyword = "false"
	}
	res.Violations = append(res.Violations, v)
}

// pointer formats tokens as a JSON pointer (RFC 6901).
func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		t = strings.ReplaceAll(t, "~", "~0")
		b.WriteString(strings.ReplaceAll(t, "/", "~1"))
	}
	return b.String()
}

func truncate(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	cut := maxMessage
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// fileLoader loads the files a schema references: regular files only,
// at most MaxFileSize bytes each.
type fileLoader struct{}

// Load implements jsonschema.URLLoader.
func (fileLoader) Load(loc string) (any, error) {
	path, err := jsonschema.FileLoader{}.ToFile(loc)
	if err != nil {
		return nil, err
	}
	return loadFile(path)
}

// loadFile reads and parses one JSON file, refusing anything that is not
// a regular file (a device or a FIFO would block or never end) and files
// larger than MaxFileSize.
func loadFile(path string) (any, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, plainPathError(err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Size() > MaxFileSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, MaxFileSize)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, plainPathError(err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, MaxFileSize)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s is not valid JSON: %w", path, err)
	}
	return doc, nil
}

// plainPathError turns "stat /x: no such file or directory" into a
// shorter message that keeps the path.
func plainPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		switch {
		case errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("%s does not exist", pe.Path)
		case errors.Is(err, os.ErrPermission):
			return fmt.Errorf("%s cannot be read (permission denied)", pe.Path)
		}
	}
	return err
}

// fileURL returns the file:// URL of an absolute path.
func fileURL(abs string) string {
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String()
}

// cleanError makes the compiler's errors shorter: file URLs become paths.
func cleanError(err error) error {
	msg := err.Error()
	msg = strings.ReplaceAll(msg, "file://", "")
	msg = strings.TrimPrefix(msg, "jsonschema: ")
	return errors.New(msg)
}
