package config

import (
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// The decoder walks the yaml.Node tree of the file against the config
// structs (by their yaml tags) instead of letting yaml.v3 decode it, so
// that it can:
//   - report every problem with the line, column and path of the value;
//   - refuse unknown and duplicate keys (yaml.v3 does neither when decoding
//     into a Node, and stops at the first unknown field otherwise);
//   - expand ${VAR} in each scalar before parsing it, so a duration or a
//     number may come from the environment and errors keep positions;
//   - decode over pre-set defaults, so that a key left out keeps its default
//     while an explicit value, even 0, is kept (and validated).

// maxVisits bounds the values the decoder visits, so that a small file
// whose aliases expand to millions of values fails fast instead of
// using up memory.
const maxVisits = 200_000

// maxErrors bounds how many problems are reported; past it the decoder adds
// one last error and stops reporting.
const maxErrors = 200

// The types decoded specially.
var (
	durationType    = reflect.TypeFor[Duration]()
	sizeType        = reflect.TypeFor[Size]()
	routeTargetType = reflect.TypeFor[RouteTarget]()
	secretListType  = reflect.TypeFor[SecretList]()
	storeType       = reflect.TypeFor[Store]()
)

// decoder holds the state of one Parse.
type decoder struct {
	file   string
	lookup func(string) (string, bool)
	errs   ErrorList
	// pos is where each decoded value is, by path.
	pos positions
	// failed holds the paths of values that could not be decoded, so that
	// validation does not report them a second time.
	failed map[string]bool
	// dupKeys holds key nodes already reported as duplicates (a mapping
	// reached through several aliases is walked several times).
	dupKeys map[*yaml.Node]bool
	visits  int
}

func newDecoder(file string, lookup func(string) (string, bool)) *decoder {
	return &decoder{
		file:    file,
		lookup:  lookup,
		pos:     positions{"": {1, 1}},
		failed:  map[string]bool{},
		dupKeys: map[*yaml.Node]bool{},
	}
}

// fail records a problem with the value at n, whose path is p.
func (d *decoder) fail(n *yaml.Node, p fieldPath, format string, args ...any) {
	d.failed[p.String()] = true
	switch {
	case len(d.errs) < maxErrors:
		d.errs = append(d.errs, &Error{File: d.file, Line: n.Line, Col: n.Column, Field: p.String(), Msg: fmt.Sprintf(format, args...)})
	case len(d.errs) == maxErrors:
		d.errs = append(d.errs, &Error{File: d.file, Line: n.Line, Col: n.Column, Msg: tooManyErrors})
	}
}

// visit counts one visited value and reports whether the budget allows it.
func (d *decoder) visit(n *yaml.Node, p fieldPath) bool {
	d.visits++
	if d.visits == maxVisits+1 {
		d.fail(n, p, "the file is too large or its aliases expand to too many values (more than %d)", maxVisits)
	}
	return d.visits <= maxVisits
}

// value decodes n, whose path is p, into v (settable).
func (d *decoder) value(n *yaml.Node, p fieldPath, v reflect.Value) {
	if !d.visit(n, p) {
		return
	}
	d.pos[p.String()] = position{n.Line, n.Column}
	n = resolve(n)
	if isNull(n) {
		// An empty value ("key:", "~", "null") keeps the default.
		return
	}
	switch v.Type() {
	case durationType:
		if s, ok := d.scalar(n, p, "a duration such as 5s"); ok {
			dur, err := ParseDuration(s)
			if err != nil {
				d.fail(n, p, "%v", err)
				return
			}
			v.SetInt(int64(dur))
		}
		return
	case sizeType:
		if s, ok := d.scalar(n, p, "a size such as 1MiB"); ok {
			size, err := ParseSize(s)
			if err != nil {
				d.fail(n, p, "%v", err)
				return
			}
			v.SetInt(int64(size))
		}
		return
	case secretListType:
		switch n.Kind {
		case yaml.ScalarNode:
			if s, ok := d.scalar(n, p, "a secret or a list of secrets"); ok {
				v.Set(reflect.ValueOf(SecretList{s}))
			}
			return
		case yaml.SequenceNode:
			// Decoded as a list of strings below.
		default:
			d.fail(n, p, "must be a secret or a list of secrets, not %s", describe(n))
			return
		}
	case routeTargetType:
		switch n.Kind {
		case yaml.ScalarNode:
			d.pos[p.key("name").String()] = position{n.Line, n.Column}
			if s, ok := d.scalar(n, p, "a target name"); ok {
				v.Set(reflect.ValueOf(RouteTarget{Name: s}))
			}
			return
		case yaml.MappingNode:
			// Decoded as a struct below.
		default:
			d.fail(n, p, "must be a target name or a mapping {name: ..., optional: true}, not %s", describe(n))
			return
		}
	}

	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(newValue(v.Type().Elem()))
		}
		d.value(n, p, v.Elem())
	case reflect.Struct:
		d.structValue(n, p, v)
	case reflect.Map:
		d.mapValue(n, p, v)
	case reflect.Slice:
		d.sliceValue(n, p, v)
	case reflect.String:
		if s, ok := d.scalar(n, p, "a string"); ok {
			v.SetString(s)
		}
	case reflect.Bool:
		if s, ok := d.scalar(n, p, "true or false"); ok {
			switch s {
			case "true", "True", "TRUE":
				v.SetBool(true)
			case "false", "False", "FALSE":
				v.SetBool(false)
			default:
				d.fail(n, p, "must be true or false, not %q", s)
			}
		}
	case reflect.Int:
		if s, ok := d.scalar(n, p, "an integer"); ok {
			i, err := strconv.ParseInt(s, 10, 0)
			if err != nil {
				d.fail(n, p, "must be an integer, not %q", s)
				return
			}
			v.SetInt(i)
		}
	case reflect.Float64:
		if s, ok := d.scalar(n, p, "a number"); ok {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				d.fail(n, p, "must be a number, not %q", s)
				return
			}
			v.SetFloat(f)
		}
	default:
		// Only reachable if a field of an unsupported type is added to
		// the config structs; the tests decode every field.
		d.fail(n, p, "cannot decode a value of type %s", v.Type())
	}
}

// newValue returns a pointer to a new T with its defaults set.
func newValue(t reflect.Type) reflect.Value {
	pv := reflect.New(t)
	if df, ok := pv.Interface().(defaulter); ok {
		df.setDefaults()
	}
	return pv
}

// scalar returns the value of a scalar node with ${VAR} expanded, or
// reports why it cannot.
func (d *decoder) scalar(n *yaml.Node, p fieldPath, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, p, "must be %s, not %s", want, describe(n))
		return "", false
	}
	s, problems := expandEnv(n.Value, d.lookup)
	for _, msg := range problems {
		d.fail(n, p, "%s", msg)
	}
	return s, len(problems) == 0
}

// structValue decodes a mapping into the struct v by its fields' yaml tags.
func (d *decoder) structValue(n *yaml.Node, p fieldPath, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, p, "must be a mapping (key: value), not %s", describe(n))
		return
	}
	if v.Type() == storeType {
		// The default DSN belongs to the default driver: decode the store
		// over zero values and let normalize fill in what is left out;
		// the timeout is the driver's either way.
		timeout := v.Interface().(Store).Timeout
		v.SetZero()
		v.Addr().Interface().(*Store).Timeout = timeout
	}
	fields := yamlFields(v.Type())
	for _, kv := range d.pairs(n, p) {
		name := kv.key.Value
		i, ok := fields[name]
		if !ok {
			if !d.ignoreKey(p, name) {
				d.fail(kv.key, p.key(name), "%s", unknownKey(name, slices.Sorted(maps.Keys(fields))))
			}
			continue
		}
		d.value(kv.val, p.key(name), v.Field(i))
		d.keyPosition(kv, p.key(name))
	}
}

// ignoreKey reports whether an unknown key is deliberately accepted:
// top-level keys starting with "x-" (a place for YAML anchors, as in
// Compose files).
func (d *decoder) ignoreKey(p fieldPath, name string) bool {
	return len(p) == 0 && strings.HasPrefix(name, "x-")
}

// mapValue decodes a mapping into the map v (string keys).
func (d *decoder) mapValue(n *yaml.Node, p fieldPath, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, p, "must be a mapping (key: value), not %s", describe(n))
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	for _, kv := range d.pairs(n, p) {
		elem := reflect.New(v.Type().Elem()).Elem()
		if elem.Kind() == reflect.Pointer {
			// Allocated even for an empty value, so that "crm:" is a
			// target with defaults (and a missing url), never nil.
			elem.Set(newValue(elem.Type().Elem()))
		}
		kp := p.key(kv.key.Value)
		d.value(kv.val, kp, elem)
		d.keyPosition(kv, kp)
		v.SetMapIndex(reflect.ValueOf(kv.key.Value).Convert(v.Type().Key()), elem)
	}
}

// sliceValue decodes a sequence into the slice v.
func (d *decoder) sliceValue(n *yaml.Node, p fieldPath, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, p, "must be a list, not %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		elem := s.Index(i)
		if elem.Kind() == reflect.Pointer {
			elem.Set(newValue(elem.Type().Elem()))
		}
		d.value(item, p.index(i), elem)
	}
	v.Set(s)
}

// keyPosition makes the position of a mapping, a list or an empty value
// that of its key: "targets.crm: ..." points at "crm:", not at the first
// key below it.
func (d *decoder) keyPosition(kv keyValue, p fieldPath) {
	if v := resolve(kv.val); v.Kind == yaml.MappingNode || v.Kind == yaml.SequenceNode || isNull(v) {
		d.pos[p.String()] = position{kv.key.Line, kv.key.Column}
	}
}

// keyValue is one entry of a mapping.
type keyValue struct{ key, val *yaml.Node }

// pairs returns the entries of the mapping n with merge keys ("<<: *base")
// applied: the mapping's own keys first, then those of the merged mappings
// that it does not set, earlier merged mappings first. Duplicate keys and
// keys that are not strings are reported and left out.
func (d *decoder) pairs(n *yaml.Node, p fieldPath) []keyValue {
	return d.collect(n, p, make(map[string]*yaml.Node, len(n.Content)/2), nil, nil)
}

// collect appends the entries of n whose keys are not in seen to out, and
// then those of the mappings n merges. visited holds the merged mappings
// already collected (nil: none yet).
func (d *decoder) collect(n *yaml.Node, p fieldPath, seen map[string]*yaml.Node, visited map[*yaml.Node]bool, out []keyValue) []keyValue {
	local := seen // the keys of n itself, for duplicates
	if visited != nil {
		local = make(map[string]*yaml.Node, len(n.Content)/2)
	}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolve(n.Content[i]), n.Content[i+1]
		if !d.visit(k, p) {
			return out
		}
		if k.Kind != yaml.ScalarNode {
			d.fail(k, p, "a key must be a string, not %s", describe(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			merges = append(merges, val)
			continue
		}
		if first, dup := local[k.Value]; dup {
			if !d.dupKeys[k] {
				d.dupKeys[k] = true
				d.fail(k, p.key(k.Value), "duplicate key %q (first at line %d)", k.Value, first.Line)
			}
			continue
		}
		if visited != nil {
			local[k.Value] = k
			if seen[k.Value] != nil {
				continue // set by a mapping that merges this one
			}
		}
		seen[k.Value] = k
		out = append(out, keyValue{k, val})
	}
	if len(merges) > 0 && visited == nil {
		visited = map[*yaml.Node]bool{n: true}
	}
	for _, m := range merges {
		r := resolve(m)
		sources := []*yaml.Node{r}
		if r.Kind == yaml.SequenceNode {
			sources = r.Content
		}
		for _, src := range sources {
			src = resolve(src)
			if src.Kind != yaml.MappingNode {
				d.fail(m, p, "a merge key (<<) must be followed by a mapping or a list of mappings")
				break
			}
			if !visited[src] {
				visited[src] = true
				out = d.collect(src, p, seen, visited, out)
			}
		}
	}
	return out
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

// isNull reports whether n is an empty value: "key:", "~" or "null".
func isNull(n *yaml.Node) bool {
	return n.Kind == 0 || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names the kind of a node for error messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	case yaml.AliasNode:
		return "an unknown alias"
	default:
		return "an empty document"
	}
}

// yamlFields maps the yaml names of t's fields to their indexes.
func yamlFields(t reflect.Type) map[string]int {
	fields := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		fields[name] = i
	}
	return fields
}

// unknownKey is the message for a key that is not a field, with a
// suggestion when a field is close.
func unknownKey(name string, known []string) string {
	msg := fmt.Sprintf("unknown key %q", name)
	if s := closest(name, known); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	return msg
}

// expandEnv replaces ${VAR} in s with the value of the environment
// variable VAR and $$ with $; a $ followed by anything else is kept as is.
// It returns one message per problem: an unset variable, an invalid name,
// an unterminated "${".
func expandEnv(s string, lookup func(string) (string, bool)) (string, []string) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var (
		b        strings.Builder
		problems []string
	)
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				problems = append(problems, `unterminated "${" (write "$$" for a literal "$")`)
				return s, problems
			}
			name := s[i+2 : i+2+end]
			i += 2 + end
			if !envName(name) {
				problems = appendNew(problems, fmt.Sprintf("invalid environment variable name %q in \"${%s}\" (write \"$$\" for a literal \"$\")", name, name))
				continue
			}
			val, ok := lookup(name)
			if !ok {
				problems = appendNew(problems, fmt.Sprintf("environment variable %s is not set", name))
				continue
			}
			b.WriteString(val)
		default:
			b.WriteByte('$')
		}
	}
	return b.String(), problems
}

// envName reports whether s is a valid environment variable name:
// [A-Za-z_][A-Za-z0-9_]*.
func envName(s string) bool {
	for i, c := range s {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}
