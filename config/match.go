package config

import (
	"fmt"
	"net"
	"strings"
)

// Pattern returns the match as a net/http.ServeMux pattern:
// "POST /users/{id}/profile", "GET api.example.com/orders". A path that
// ends in "/" gets "{$}" so that it matches that path only, as every
// config path does (ServeMux would match the whole subtree).
func (m Match) Pattern() string {
	path := m.Path
	if strings.HasSuffix(path, "/") {
		path += "{$}"
	}
	return m.Method + " " + m.Host + path
}

// Wildcards returns the names of the path's wildcards in order:
// "/users/{id}/files/{path...}" → ["id", "path"]. It returns nil for an
// invalid path.
func (m Match) Wildcards() []string {
	segs, err := parsePath(m.Path)
	if err != nil {
		return nil
	}
	var names []string
	for _, s := range segs {
		if s.wildcard != "" {
			names = append(names, s.wildcard)
		}
	}
	return names
}

// segment is one segment of a path pattern: a literal, "{name}" or
// "{name...}". A trailing "/" is an empty literal last segment.
type segment struct {
	literal  string
	wildcard string
	rest     bool
}

// parsePath checks a path pattern and splits it into segments.
func parsePath(path string) ([]segment, error) {
	if path == "" {
		return nil, fmt.Errorf("is required")
	}
	if path[0] != '/' {
		return nil, fmt.Errorf("must start with \"/\", not %q", path)
	}
	parts := strings.Split(path[1:], "/")
	segs := make([]segment, 0, len(parts))
	names := map[string]bool{}
	for i, part := range parts {
		last := i == len(parts)-1
		if part == "" {
			if last {
				segs = append(segs, segment{}) // trailing slash (or "/")
				continue
			}
			return nil, fmt.Errorf("must not contain an empty segment (\"//\") in %q", path)
		}
		if !strings.ContainsAny(part, "{}") {
			if part == "." || part == ".." {
				return nil, fmt.Errorf("must not contain a %q segment", part)
			}
			for _, c := range part {
				if c <= ' ' || c == 0x7f || c == '?' || c == '#' {
					return nil, fmt.Errorf("must not contain %q (spaces, control characters, '?' and '#' are not allowed)", c)
				}
			}
			segs = append(segs, segment{literal: part})
			continue
		}
		name, ok := strings.CutPrefix(part, "{")
		name, ok2 := strings.CutSuffix(name, "}")
		if !ok || !ok2 || strings.ContainsAny(name, "{}") {
			return nil, fmt.Errorf("segment %q: a wildcard must be a whole segment, {name} or {name...}", part)
		}
		name, rest := strings.CutSuffix(name, "...")
		if !identifier(name) {
			return nil, fmt.Errorf("segment %q: wildcard name %q must be letters, digits and '_', not starting with a digit", part, name)
		}
		if rest && !last {
			return nil, fmt.Errorf("segment %q: a {name...} wildcard must be the last segment", part)
		}
		if names[name] {
			return nil, fmt.Errorf("wildcard name %q is used twice", name)
		}
		names[name] = true
		segs = append(segs, segment{wildcard: name, rest: rest})
	}
	return segs, nil
}

// shape is the path with wildcard names left out: two paths of the same
// shape match the same requests.
func shape(segs []segment) string {
	var b strings.Builder
	for _, s := range segs {
		b.WriteByte('/')
		switch {
		case s.rest:
			b.WriteString("{...}")
		case s.wildcard != "":
			b.WriteString("{}")
		default:
			b.WriteString(s.literal)
		}
	}
	return b.String()
}

// identifier reports whether s matches [A-Za-z_][A-Za-z0-9_]*.
func identifier(s string) bool {
	return envName(s)
}

// checkHost checks match.host: a host name or IP address, without scheme,
// port or path.
func checkHost(h string) error {
	switch {
	case strings.Contains(h, "://"):
		return fmt.Errorf("must be a host name without a scheme, not %q", h)
	case strings.ContainsAny(h, "/?#"):
		return fmt.Errorf("must be a host name without a path, not %q", h)
	case strings.Contains(h, "*"):
		return fmt.Errorf("wildcard hosts are not supported (%q)", h)
	case strings.HasPrefix(h, "["):
		if !strings.HasSuffix(h, "]") || net.ParseIP(h[1:len(h)-1]) == nil {
			return fmt.Errorf("%q is not a valid IPv6 address in brackets", h)
		}
		return nil
	case strings.Contains(h, ":"):
		return fmt.Errorf("must be a host name without a port, not %q", h)
	}
	if len(h) > 253 {
		return fmt.Errorf("is too long (%d characters, at most 253)", len(h))
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("%q is not a valid host name", h)
		}
		for _, c := range label {
			if !isAlnum(c) && c != '-' && c != '_' {
				return fmt.Errorf("%q is not a valid host name", h)
			}
		}
	}
	return nil
}
