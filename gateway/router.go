package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// router maps method, host and path to a route. Patterns are split into
// segments: a literal, "{name}" (one non-empty segment) or, last,
// "{name...}" (the rest of the path, possibly empty). At each segment a
// literal beats "{name}", which beats "{name...}"; routes with a host match
// beat routes without one. Matching allocates nothing.
type router struct {
	hosts map[string]*node // by lowercase host, without port
	any   *node
}

// node is one segment position of the tree.
type node struct {
	lit   map[string]*node
	param *node
	rest  *node // "{name...}": always a leaf
	// routes ending at this node, one per method, in config order.
	routes []methodRoute
}

type methodRoute struct {
	method string
	route  *route
}

func newRouter() *router {
	return &router{hosts: map[string]*node{}, any: &node{}}
}

// add registers rt for method, host ("" for any) and pattern.
func (rr *router) add(method, host, pattern string, rt *route) error {
	if !strings.HasPrefix(pattern, "/") {
		return fmt.Errorf("path %q must start with /", pattern)
	}
	root := rr.any
	if host != "" {
		host = strings.ToLower(host)
		if root = rr.hosts[host]; root == nil {
			root = &node{}
			rr.hosts[host] = root
		}
	}
	n := root
	segs := strings.Split(pattern[1:], "/")
	for i, seg := range segs {
		name, wildcard, rest, err := parseSegment(seg)
		if err != nil {
			return fmt.Errorf("path %q: %w", pattern, err)
		}
		switch {
		case rest && i != len(segs)-1:
			return fmt.Errorf("path %q: {%s...} must be the last segment", pattern, name)
		case rest:
			if n.rest == nil {
				n.rest = &node{}
			}
			n = n.rest
		case wildcard:
			if n.param == nil {
				n.param = &node{}
			}
			n = n.param
		default:
			if n.lit == nil {
				n.lit = map[string]*node{}
			}
			c := n.lit[seg]
			if c == nil {
				c = &node{}
				n.lit[seg] = c
			}
			n = c
		}
	}
	for _, mr := range n.routes {
		if mr.method == method {
			return fmt.Errorf("same method, host and path as route %q", mr.route.name)
		}
	}
	n.routes = append(n.routes, methodRoute{method: method, route: rt})
	return nil
}

var errBadSegment = errors.New("a segment is a literal, {name} or {name...}")

// parseSegment parses one pattern segment.
func parseSegment(seg string) (name string, wildcard, rest bool, err error) {
	if !strings.HasPrefix(seg, "{") {
		if strings.ContainsAny(seg, "{}") {
			return "", false, false, errBadSegment
		}
		return "", false, false, nil
	}
	if !strings.HasSuffix(seg, "}") {
		return "", false, false, errBadSegment
	}
	name = seg[1 : len(seg)-1]
	name, rest = strings.CutSuffix(name, "...")
	if name == "" || strings.ContainsAny(name, "{}/.") {
		return "", false, false, fmt.Errorf("bad wildcard %q", seg)
	}
	return name, true, rest, nil
}

// match is the state of one lookup.
type match struct {
	method string
	// pathFound is set when some route has the path but not the method.
	pathFound bool
	// allow collects the methods of such routes (second pass only).
	allow   []string
	collect bool
}

// lookup returns the route for method, host and path, or nil. With nil,
// pathFound tells 405 from 404. HEAD is served by the route of GET when no
// route has HEAD itself (RFC 9110 §9.3.2).
func (rr *router) lookup(method, host, path string) (rt *route, pathFound bool) {
	m := match{method: method}
	if rt = rr.find(&m, host, path); rt != nil {
		return rt, true
	}
	return nil, m.pathFound
}

// allowed returns the methods that the path accepts, sorted; HEAD is one
// of them when GET is.
func (rr *router) allowed(host, path string) []string {
	m := match{collect: true}
	rr.find(&m, host, path)
	if slices.Contains(m.allow, http.MethodGet) {
		m.allow = append(m.allow, http.MethodHead)
	}
	slices.Sort(m.allow)
	return slices.Compact(m.allow)
}

func (rr *router) find(m *match, host, path string) *route {
	if !strings.HasPrefix(path, "/") {
		return nil
	}
	path = path[1:]
	if len(rr.hosts) > 0 {
		if n := rr.hosts[hostname(host)]; n != nil {
			if rt := n.find(m, path); rt != nil {
				return rt
			}
		}
	}
	return rr.any.find(m, path)
}

// find matches path (without its leading slash) below n.
func (n *node) find(m *match, path string) *route {
	seg, rest, more := strings.Cut(path, "/")
	if c := n.lit[seg]; c != nil {
		if rt := c.next(m, rest, more); rt != nil {
			return rt
		}
	}
	if n.param != nil && seg != "" {
		if rt := n.param.next(m, rest, more); rt != nil {
			return rt
		}
	}
	if n.rest != nil {
		return n.rest.leaf(m)
	}
	return nil
}

func (n *node) next(m *match, rest string, more bool) *route {
	if more {
		return n.find(m, rest)
	}
	return n.leaf(m)
}

func (n *node) leaf(m *match) *route {
	if len(n.routes) == 0 {
		return nil
	}
	if m.collect {
		for _, mr := range n.routes {
			m.allow = append(m.allow, mr.method)
		}
		return nil
	}
	var get *route
	for _, mr := range n.routes {
		if mr.method == m.method {
			return mr.route
		}
		if mr.method == http.MethodGet {
			get = mr.route
		}
	}
	if get != nil && m.method == http.MethodHead {
		return get
	}
	m.pathFound = true
	return nil
}

// hostname returns host without its port, lowercased (without allocating
// when it already is).
func hostname(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		host = host[:i]
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return strings.ToLower(host)
}

// normalizeMethod upper-cases a configured method; empty means POST.
func normalizeMethod(m string) string {
	if m == "" {
		return http.MethodPost
	}
	return strings.ToUpper(m)
}
