package template

import (
	"slices"
	"strings"
	"text/template/parse"
)

// Hazard is a printing action of a JSON template (see JSONHazards) that
// lets the value it prints change the JSON around it.
type Hazard struct {
	// Offset is the byte offset of the action's "{{" in the source.
	Offset int
	// Action is the action as written, such as "{{ .request.body.user }}".
	Action string
	// Field is the data field the value comes from, from the root:
	// ["request" "body" "user"], also when it reaches the action through
	// a variable or the dot of {{with}} or {{range}}.
	Field []string
	// InString is set when the action is between JSON quotes.
	InString bool
	// JSON is set when the value goes through json: between quotes, its
	// own quotes end the string.
	JSON bool
}

// safePrinters are the functions whose output cannot end a JSON string
// or add to the JSON around it, whatever their argument: json outside a
// string only (it adds quotes), the others anywhere.
var safePrinters = []string{"urlquery", "base64", "len", "eq", "ne", "lt", "le", "gt", "ge", "not"}

// JSONHazards returns the printing actions of a template whose output is
// JSON (its text starts with '{' or '[') that print a value from a field
// tainted reports (such as ["request" "body" "user"]) in a way that lets
// the value change the JSON: between JSON quotes without json
// ("{{ .request.body.user }}": a value with a quote adds fields), outside
// them without json ({{ .request.body.n }} with a string value), or
// through json between quotes (json adds its own quotes). Values through
// urlquery, base64, len or a comparison are safe anywhere. A template
// whose output does not look like JSON has no hazards.
func (t *Template) JSONHazards(tainted func(field []string) bool) []Hazard {
	root := t.base.Tree.Root
	if !startsJSON(root) {
		return nil
	}
	s := &hazardScan{src: t.src, tainted: tainted, vars: map[string][]string{}}
	s.list(root, nil)
	return s.found
}

// startsJSON reports whether the first thing the template prints is text
// starting with '{' or '['.
func startsJSON(root *parse.ListNode) bool {
	for _, n := range root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			txt := strings.TrimSpace(string(n.Text))
			if txt == "" {
				continue
			}
			return txt[0] == '{' || txt[0] == '['
		case *parse.CommentNode:
			continue
		}
		return false
	}
	return false
}

// hazardScan walks a template in source order, following whether the
// output is inside a JSON string.
type hazardScan struct {
	src      string
	tainted  func([]string) bool
	inString bool
	escaped  bool
	// vars maps a variable to the tainted field it holds.
	vars  map[string][]string
	found []Hazard
}

// list scans l; dot is the tainted field the dot holds, nil when the dot
// is the root or untainted.
func (s *hazardScan) list(l *parse.ListNode, dot []string) {
	if l == nil {
		return
	}
	for _, n := range l.Nodes {
		s.node(n, dot)
	}
}

func (s *hazardScan) node(n parse.Node, dot []string) {
	switch n := n.(type) {
	case *parse.TextNode:
		s.text(n.Text)
	case *parse.ActionNode:
		field := s.pipeTaint(n.Pipe, dot)
		if len(n.Pipe.Decl) > 0 {
			for _, v := range n.Pipe.Decl {
				s.setVar(v.Ident[0], field)
			}
			return
		}
		s.action(n, field)
	case *parse.IfNode:
		s.branches(n.List, n.ElseList, dot, dot)
	case *parse.WithNode:
		s.branches(n.List, n.ElseList, s.scope(n.Pipe, dot), dot)
	case *parse.RangeNode:
		s.branches(n.List, n.ElseList, s.scope(n.Pipe, dot), dot)
	case *parse.ListNode:
		s.list(n, dot)
	}
}

// scope returns the taint of the dot inside a {{with}} or {{range}} of
// pipe, declaring its variables.
func (s *hazardScan) scope(pipe *parse.PipeNode, dot []string) []string {
	field := s.pipeTaint(pipe, dot)
	for _, v := range pipe.Decl {
		s.setVar(v.Ident[0], field)
	}
	return field
}

// branches scans both branches from the same JSON state; the state after
// the first is kept (a template whose branches leave different states is
// not JSON either way).
func (s *hazardScan) branches(then, els *parse.ListNode, thenDot, elseDot []string) {
	in, esc := s.inString, s.escaped
	s.list(then, thenDot)
	afterIn, afterEsc := s.inString, s.escaped
	s.inString, s.escaped = in, esc
	s.list(els, elseDot)
	s.inString, s.escaped = afterIn, afterEsc
}

func (s *hazardScan) setVar(name string, field []string) {
	if field == nil {
		delete(s.vars, name)
		return
	}
	s.vars[name] = field
}

// text follows the JSON string state through literal text.
func (s *hazardScan) text(b []byte) {
	for _, c := range b {
		switch {
		case !s.inString:
			s.inString = c == '"'
		case s.escaped:
			s.escaped = false
		case c == '\\':
			s.escaped = true
		case c == '"':
			s.inString = false
		}
	}
}

// action records the printing action n when its value, from the tainted
// field, can change the JSON.
func (s *hazardScan) action(n *parse.ActionNode, field []string) {
	if field == nil {
		return
	}
	last := ""
	for _, c := range n.Pipe.Cmds {
		if id, ok := c.Args[0].(*parse.IdentifierNode); ok && id.Ident != fnText && id.Ident != fnURL {
			last = id.Ident
		} else if !ok {
			last = ""
		}
	}
	switch {
	case slices.Contains(safePrinters, last):
		return
	case last == "json" && !s.inString:
		return
	}
	s.found = append(s.found, Hazard{
		Offset:   s.actionStart(int(n.Pos)),
		Action:   s.actionText(int(n.Pos)),
		Field:    field,
		InString: s.inString,
		JSON:     last == "json",
	})
}

// pipeTaint returns the first tainted field the pipeline reads, nil when
// none.
func (s *hazardScan) pipeTaint(p *parse.PipeNode, dot []string) []string {
	if p == nil {
		return nil
	}
	for _, c := range p.Cmds {
		for _, a := range c.Args {
			if f := s.argTaint(a, dot); f != nil {
				return f
			}
		}
	}
	return nil
}

func (s *hazardScan) argTaint(a parse.Node, dot []string) []string {
	switch a := a.(type) {
	case *parse.FieldNode:
		if dot != nil {
			return dot
		}
		if s.tainted(a.Ident) {
			return a.Ident
		}
	case *parse.DotNode:
		return dot
	case *parse.VariableNode:
		if a.Ident[0] == "$" {
			if len(a.Ident) > 1 && s.tainted(a.Ident[1:]) {
				return a.Ident[1:]
			}
			return nil
		}
		return s.vars[a.Ident[0]]
	case *parse.ChainNode:
		return s.argTaint(a.Node, dot)
	case *parse.PipeNode:
		return s.pipeTaint(a, dot)
	}
	return nil
}

// actionStart returns the offset of the "{{" before pos, the offset of
// the action's first token.
func (s *hazardScan) actionStart(pos int) int {
	if i := strings.LastIndex(s.src[:min(pos, len(s.src))], "{{"); i >= 0 {
		return i
	}
	return pos
}

// actionText returns the action around pos as written.
func (s *hazardScan) actionText(pos int) string {
	start := s.actionStart(pos)
	if end := strings.Index(s.src[start:], "}}"); end >= 0 {
		return s.src[start : start+end+2]
	}
	return s.src[start:]
}
