package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Errors of ParseDuration and ParseSize, wrapped with the offending value.
var (
	// ErrInvalidDuration is wrapped by ParseDuration's errors.
	ErrInvalidDuration = errors.New("invalid duration")
	// ErrInvalidSize is wrapped by ParseSize's errors.
	ErrInvalidSize = errors.New("invalid size")
)

// ParseDuration parses a duration as written in the config: a Go duration
// ("250ms", "5s", "1h30m") optionally preceded by a number of days ("7d",
// "1d12h", "1.5d"). Negative durations are refused; "0" is zero.
func ParseDuration(s string) (Duration, error) {
	in := strings.TrimSpace(s)
	fail := func(why string) (Duration, error) {
		return 0, fmt.Errorf("%w %q: %s", ErrInvalidDuration, s, why)
	}
	const hint = `use a number and a unit: 250ms, 5s, 10m, 1h30m, 7d`
	if in == "" {
		return fail("empty; " + hint)
	}
	if in[0] == '-' {
		return fail("must not be negative")
	}
	in = strings.TrimPrefix(in, "+")
	var total time.Duration
	if i := strings.IndexByte(in, 'd'); i >= 0 {
		days, ok := parseDecimal(in[:i])
		if !ok {
			return fail(hint)
		}
		const maxDays = float64(math.MaxInt64 / int64(24*time.Hour))
		if days > maxDays {
			return fail("too large")
		}
		total = time.Duration(days * float64(24*time.Hour))
		in = in[i+1:]
		if in == "" {
			return Duration(total), nil
		}
		if in[0] == '-' || in[0] == '+' {
			return fail(hint)
		}
	}
	d, err := time.ParseDuration(in)
	if err != nil {
		if strings.Contains(err.Error(), "missing unit") {
			return fail("missing unit; " + hint)
		}
		return fail(hint)
	}
	if d < 0 {
		return fail("must not be negative")
	}
	if total > math.MaxInt64-d {
		return fail("too large")
	}
	return Duration(total + d), nil
}

// parseDecimal parses digits with an optional fraction ("7", "1.5"), the
// only number syntax allowed before a unit.
func parseDecimal(s string) (float64, bool) {
	if s == "" || s == "." {
		return 0, false
	}
	dot := false
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
		case c == '.' && !dot:
			dot = true
		default:
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil
}

// String formats d like time.Duration without its trailing zero units
// ("1h30m", "24h", "250ms"), or in days when it is a whole number of two
// days or more ("7d"). ParseDuration reads it back. It is the one form in
// which Fanout shows a duration to people: logs, the admin API, the CLI
// and the docs.
func (d Duration) String() string {
	const day = 24 * time.Hour
	if td := time.Duration(d); td >= 2*day && td%day == 0 {
		return strconv.FormatInt(int64(td/day), 10) + "d"
	}
	s := time.Duration(d).String()
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return s
}

// MarshalText writes d as String does, so that JSON shows "5s", not a
// number of nanoseconds.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses d with ParseDuration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// UnmarshalYAML parses a scalar with ParseDuration. Parse does not need it
// (it decodes with positions and ${ENV} expansion); it is there for code
// that decodes config types with yaml.v3 directly.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("%w: must be a string such as \"5s\"", ErrInvalidDuration)
	}
	return d.UnmarshalText([]byte(n.Value))
}

// The size units: decimal (KB = 1000) and binary (KiB = 1024).
var sizeUnits = []struct {
	name string
	mult int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

// ParseSize parses a byte count as written in the config: an integer
// number of bytes ("1024"), or a number and a unit: B, KB, MB, GB, TB
// (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), such as
// "512KiB", "1.5MiB" or "10MB". Units are case-insensitive; a fraction
// of a byte is dropped. Negative sizes are refused.
func ParseSize(s string) (Size, error) {
	in := strings.TrimSpace(s)
	fail := func(why string) (Size, error) {
		return 0, fmt.Errorf("%w %q: %s", ErrInvalidSize, s, why)
	}
	const hint = `use bytes or a number and a unit: 1024, 512KiB, 1MiB, 10MB`
	if strings.HasPrefix(in, "-") {
		return fail("must not be negative")
	}
	in = strings.TrimPrefix(in, "+")
	mult := int64(1)
	for _, u := range sizeUnits {
		if len(in) > len(u.name) && strings.EqualFold(in[len(in)-len(u.name):], u.name) {
			mult = u.mult
			in = strings.TrimSpace(in[:len(in)-len(u.name)])
			break
		}
	}
	if n, err := strconv.ParseInt(in, 10, 64); err == nil && !strings.HasPrefix(in, "+") {
		if n > math.MaxInt64/mult {
			return fail("too large")
		}
		return Size(n * mult), nil
	}
	f, ok := parseDecimal(in)
	if !ok {
		return fail(hint)
	}
	v := f * float64(mult)
	if v >= math.MaxInt64 {
		return fail("too large")
	}
	return Size(v), nil
}

// String formats s with the largest binary unit that divides it ("64KiB",
// "1MiB"), or as a number of bytes ("1000").
func (s Size) String() string {
	for _, u := range []struct {
		name string
		mult Size
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if s != 0 && s%u.mult == 0 {
			return strconv.FormatInt(int64(s/u.mult), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// MarshalText writes s as String does.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses s with ParseSize.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// UnmarshalYAML parses a scalar with ParseSize, for code that decodes
// config types with yaml.v3 directly.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("%w: must be a number of bytes or a string such as \"1MiB\"", ErrInvalidSize)
	}
	return s.UnmarshalText([]byte(n.Value))
}

// UnmarshalYAML decodes a route target from a plain string (the target's
// name) or a mapping {name, optional}, for code that decodes config types
// with yaml.v3 directly.
func (rt *RouteTarget) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*rt = RouteTarget{Name: n.Value}
		return nil
	case yaml.MappingNode:
		type plain RouteTarget
		var p plain
		if err := n.Decode(&p); err != nil {
			return fmt.Errorf("route target: %w", err)
		}
		*rt = RouteTarget(p)
		return nil
	default:
		return errors.New("route target: must be a target name or a mapping {name, optional}")
	}
}

// UnmarshalYAML decodes a secret list from a string (one secret) or a list
// of strings, for code that decodes config types with yaml.v3 directly.
func (l *SecretList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*l = SecretList{n.Value}
		return nil
	case yaml.SequenceNode:
		var s []string
		if err := n.Decode(&s); err != nil {
			return fmt.Errorf("secret list: %w", err)
		}
		*l = s
		return nil
	default:
		return errors.New("secret list: must be a string or a list of strings")
	}
}
