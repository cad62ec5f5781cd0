package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"

	"gopkg.in/yaml.v3"
)

// Load reads the config file at path and parses it with Parse, taking
// ${VAR} values from the process environment. An invalid config yields an
// ErrorList; a file that cannot be read, an error wrapping the cause.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data, os.LookupEnv)
}

// Parse parses the YAML config in data, read from filename (used in error
// messages only), in four steps: it starts from Default, decodes the file
// over it (targets and routes start from their own defaults), expanding
// ${VAR} in every scalar value with lookupEnv (nil: no variable is set),
// then fills the defaults that depend on other values and validates the
// result.
//
// On failure it returns a nil config and an ErrorList of every problem
// found, each naming the file, line, column and field.
func Parse(filename string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	root, synErr := parseYAML(filename, data)
	if synErr != nil {
		return nil, ErrorList{synErr}
	}

	cfg := Default()
	cfg.File = filename
	d := newDecoder(filename, lookupEnv)
	if root != nil && !isNull(root) {
		if root.Kind != yaml.MappingNode {
			d.fail(root, nil, "a config must be a mapping of keys such as listen, targets and routes, not %s", describe(root))
		} else {
			d.value(root, nil, reflect.ValueOf(cfg).Elem())
		}
	}
	if d.visits > maxVisits {
		return nil, d.errs.err() // validating a partial decode would be noise
	}
	cfg.pos = d.pos // normalize leaves values written in the file alone
	cfg.src = data
	cfg.normalize()

	errs := append(d.errs, cfg.validate(d.failed)...)
	// Route schemas are compiled now, so that a bad one is a config error
	// at its schema key rather than a failure of the first request.
	errs = append(errs, cfg.compileSchemas(d.failed)...)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// parseYAML parses data into a node tree and returns its root, or nil for
// an empty file. It refuses a file of several documents.
func parseYAML(file string, data []byte) (root *yaml.Node, synErr *Error) {
	defer func() {
		// yaml.v3 panics on a few malformed inputs instead of returning an
		// error; no input may crash the process (or a hot reload).
		if v := recover(); v != nil {
			root, synErr = nil, &Error{File: file, Line: 1, Col: 1, Msg: fmt.Sprintf("invalid YAML: %v", v)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, syntaxError(file, data, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return nil, &Error{File: file, Line: max(next.Line, 1), Col: max(next.Column, 1),
			Msg: "the file holds several YAML documents (---); a config is one document"}
	case !errors.Is(err, io.EOF):
		return nil, syntaxError(file, data, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}
