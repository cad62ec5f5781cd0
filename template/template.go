package template

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	texttemplate "text/template"
	"text/template/parse"
	"time"
)

// Kind says where a template's output goes, which decides how the values
// it prints are escaped.
type Kind uint8

const (
	// Text output (a body, a header value) gets the printed values as
	// they are: write {{ json .x }} to put a value into JSON.
	Text Kind = iota
	// URL output (a path with an optional query) gets every printed value
	// percent-encoded, all but the unreserved characters of RFC 3986
	// (letters, digits, '-', '.', '_', '~'), so that a value is always one
	// path segment or one query value: "a/b?c" becomes "a%2Fb%3Fc", and a
	// value that is "." or ".." is encoded too. A value already piped
	// through urlquery is not encoded twice.
	URL
)

// Default bounds of one execution; see Options.
const (
	DefaultMaxOutput     = 1 << 20
	DefaultMaxIterations = 100_000
	DefaultTimeout       = time.Second
	// allocFactor bounds the strings that functions build in one
	// execution to this many times MaxOutput.
	allocFactor = 8
)

// Options configures Parse. Zero values mean the defaults.
type Options struct {
	// Kind is what the output is for. Default Text.
	Kind Kind
	// MaxOutput is the most bytes one execution writes. Default 1 MiB.
	MaxOutput int
	// MaxIterations is the most {{range}} iterations of one execution,
	// nested ranges counted together. Default 100 000.
	MaxIterations int
	// Timeout bounds one execution. Default 1s.
	Timeout time.Duration
}

// Error is a template that does not parse, or an execution that failed.
type Error struct {
	// Name is the template's name as given to Parse, such as
	// "headers.Authorization".
	Name string
	// Msg says what is wrong, without the name: `line 2: unexpected "}"
	// in operand` or `{{.steps.auth.body.token}}: map has no entry for
	// key "token"`.
	Msg string
}

// Error returns "template NAME: MSG".
func (e *Error) Error() string { return "template " + e.Name + ": " + e.Msg }

// Template is a parsed template. It is safe for concurrent use.
type Template struct {
	name string
	src  string
	opts Options
	base *texttemplate.Template
	refs [][]string
	// pool holds clones of base whose functions are bound to their own
	// budget: an execution takes one, so budgets are never shared.
	pool sync.Pool
}

// instance is one clone of a template with its budget.
type instance struct {
	t *texttemplate.Template
	b *budget
}

// internalName is the name of every text/template; errors are rewritten
// to use Template.name, which may contain any character.
const internalName = "t"

// Parse parses src. name identifies the template in errors (for example
// "headers.Authorization"). It fails with an *Error when src does not
// parse, defines or calls templates, or uses call.
func Parse(name, src string, opts Options) (*Template, error) {
	if opts.MaxOutput <= 0 {
		opts.MaxOutput = DefaultMaxOutput
	}
	if opts.MaxIterations <= 0 {
		opts.MaxIterations = DefaultMaxIterations
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	base := texttemplate.New(internalName).Option("missingkey=error").Funcs((&budget{}).funcs())
	if _, err := base.Parse(src); err != nil {
		return nil, &Error{Name: name, Msg: parseMessage(err)}
	}
	if len(base.Templates()) > 1 {
		return nil, &Error{Name: name, Msg: "{{define}} and {{block}} are not supported"}
	}
	t := &Template{name: name, src: src, opts: opts, base: base}
	w := &rewriter{kind: opts.Kind}
	w.list(base.Root, true)
	if w.err != "" {
		return nil, &Error{Name: name, Msg: w.err}
	}
	t.refs = w.refs
	t.pool.New = func() any {
		b := &budget{}
		// Clone copies the function maps, so binding the clone's
		// functions to b leaves base and the other clones alone. It
		// cannot fail: base was never executed.
		c, _ := t.base.Clone()
		return &instance{t: c.Funcs(b.funcs()), b: b}
	}
	return t, nil
}

// MustParse is Parse that panics on error, for templates written in Go.
func MustParse(name, src string, opts Options) *Template {
	t, err := Parse(name, src, opts)
	if err != nil {
		panic(err)
	}
	return t
}

// Name returns the name given to Parse.
func (t *Template) Name() string { return t.name }

// Refs returns the data fields the template names from the root, each as
// its path: {{ .steps.auth.body.token }} gives ["steps" "auth" "body"
// "token"], $.request.body gives ["request" "body"]. Fields relative to a
// {{with}} or {{range}} dot are not included, nor are keys given to index.
// Config validation uses them to name unknown steps and fields before any
// request arrives.
func (t *Template) Refs() [][]string { return t.refs }

// Execute renders the template with data, normally the value of Data. It
// fails with an *Error when the data lacks a key the template names, a
// function fails, or a bound (output size, iterations, time) is reached.
func (t *Template) Execute(data any) (out []byte, err error) {
	in := t.pool.Get().(*instance)
	in.b.reset(t.opts)
	w := &limitWriter{max: t.opts.MaxOutput, b: in.b}
	defer func() {
		// text/template re-panics runtime errors; no template may crash
		// the process. A recovered instance is not reused.
		if v := recover(); v != nil {
			out, err = nil, &Error{Name: t.name, Msg: fmt.Sprintf("internal error: %v", v)}
			return
		}
		t.pool.Put(in)
	}()
	if xerr := in.t.Execute(w, data); xerr != nil {
		if in.b.err != nil {
			return nil, &Error{Name: t.name, Msg: in.b.err.Error()}
		}
		return nil, &Error{Name: t.name, Msg: execMessage(xerr)}
	}
	return w.buf.Bytes(), nil
}

// limitWriter collects the output up to max bytes.
type limitWriter struct {
	buf bytes.Buffer
	max int
	b   *budget
}

func (w *limitWriter) Write(p []byte) (int, error) {
	if w.buf.Len()+len(p) > w.max {
		return 0, w.b.fail(fmt.Errorf("the output is larger than %d bytes", w.max))
	}
	if err := w.b.clock(); err != nil {
		return 0, err
	}
	return w.buf.Write(p)
}

// parseLine matches text/template's parse errors: "template: t:LINE: MSG".
var parseLine = regexp.MustCompile(`^template: ` + internalName + `:(\d+): `)

// parseMessage rewrites a parse error without the internal name.
func parseMessage(err error) string {
	msg := err.Error()
	if m := parseLine.FindStringSubmatchIndex(msg); m != nil {
		return "line " + msg[m[2]:m[3]] + ": " + msg[m[1]:]
	}
	return strings.TrimPrefix(msg, "template: ")
}

// execLine matches text/template's execution errors:
// `template: t:LINE:COL: executing "t" at <CONTEXT>: MSG`.
var execLine = regexp.MustCompile(`^template: ` + internalName + `:(\d+):(\d+): executing "` + internalName + `" at <(.*?)>: `)

// execMessage rewrites an execution error as "{{CONTEXT}}: MSG", with the
// line when it is not the first, and without the functions Parse added.
func execMessage(err error) string {
	msg := err.Error()
	m := execLine.FindStringSubmatchIndex(msg)
	if m == nil {
		return strings.TrimPrefix(msg, "template: ")
	}
	ctx := msg[m[6]:m[7]]
	for _, f := range []string{" | " + fnText, " | " + fnURL} {
		ctx = strings.TrimSuffix(ctx, f)
	}
	out := "{{" + ctx + "}}: " + msg[m[1]:]
	if line := msg[m[2]:m[3]]; line != "1" {
		out = "line " + line + ": " + out
	}
	return out
}

// rewriter walks a parsed tree: it adds the formatter (and escaper) to
// every action that prints, a budget check at the start of every range
// body, collects the fields named from the root, and refuses what is not
// allowed.
type rewriter struct {
	kind Kind
	refs [][]string
	err  string
}

// Names of the functions Parse adds to the tree.
const (
	fnText = "_text"
	fnURL  = "_url"
	fnTick = "_tick"
)

func (w *rewriter) list(l *parse.ListNode, rooted bool) {
	if l == nil {
		return
	}
	for _, n := range l.Nodes {
		w.node(n, rooted)
	}
}

func (w *rewriter) node(n parse.Node, rooted bool) {
	switch n := n.(type) {
	case *parse.ActionNode:
		w.pipe(n.Pipe, rooted)
		if len(n.Pipe.Decl) == 0 {
			w.addPrinter(n.Pipe)
		}
	case *parse.IfNode:
		w.pipe(n.Pipe, rooted)
		w.list(n.List, rooted)
		w.list(n.ElseList, rooted)
	case *parse.RangeNode:
		w.pipe(n.Pipe, rooted)
		w.list(n.List, false)
		w.list(n.ElseList, rooted)
		tick := &parse.ActionNode{NodeType: parse.NodeAction, Pos: n.Pos, Line: n.Line,
			Pipe: &parse.PipeNode{NodeType: parse.NodePipe, Pos: n.Pos, Line: n.Line, Cmds: []*parse.CommandNode{identCmd(fnTick, n.Pos)}}}
		if n.List == nil {
			n.List = &parse.ListNode{NodeType: parse.NodeList, Pos: n.Pos}
		}
		n.List.Nodes = slices.Insert(n.List.Nodes, 0, parse.Node(tick))
	case *parse.WithNode:
		w.pipe(n.Pipe, rooted)
		w.list(n.List, false)
		w.list(n.ElseList, rooted)
	case *parse.TemplateNode:
		w.fail("{{template}} is not supported")
	case *parse.ListNode:
		w.list(n, rooted)
	}
}

func (w *rewriter) pipe(p *parse.PipeNode, rooted bool) {
	if p == nil {
		return
	}
	for _, c := range p.Cmds {
		for _, a := range c.Args {
			w.arg(a, rooted)
		}
	}
}

func (w *rewriter) arg(a parse.Node, rooted bool) {
	switch a := a.(type) {
	case *parse.FieldNode:
		if rooted {
			w.ref(a.Ident)
		}
	case *parse.VariableNode:
		if len(a.Ident) > 1 && a.Ident[0] == "$" {
			w.ref(a.Ident[1:])
		}
	case *parse.ChainNode:
		w.arg(a.Node, rooted)
	case *parse.PipeNode:
		w.pipe(a, rooted)
	case *parse.IdentifierNode:
		if a.Ident == "call" {
			w.fail("call is not available")
		}
	}
}

func (w *rewriter) ref(path []string) {
	if !slices.ContainsFunc(w.refs, func(r []string) bool { return slices.Equal(r, path) }) {
		w.refs = append(w.refs, slices.Clone(path))
	}
}

func (w *rewriter) fail(msg string) {
	if w.err == "" {
		w.err = msg
	}
}

// addPrinter ends the pipeline of a printing action with the formatter,
// or with the URL escaper.
func (w *rewriter) addPrinter(p *parse.PipeNode) {
	fn := fnText
	if w.kind == URL {
		fn = fnURL
		if last := p.Cmds[len(p.Cmds)-1]; len(last.Args) > 0 {
			if id, ok := last.Args[0].(*parse.IdentifierNode); ok && id.Ident == "urlquery" {
				return // already escaped
			}
		}
	}
	p.Cmds = append(p.Cmds, identCmd(fn, p.Pos))
}

// identCmd is a command calling the function name, as html/template
// builds its escapers.
func identCmd(name string, pos parse.Pos) *parse.CommandNode {
	return &parse.CommandNode{
		NodeType: parse.NodeCommand,
		Pos:      pos,
		Args:     []parse.Node{parse.NewIdentifier(name).SetTree(nil).SetPos(pos)},
	}
}

// budget bounds one execution. Its methods are the template functions
// that need it; one budget serves one execution at a time.
type budget struct {
	opts     Options
	alloc    int
	iter     int
	calls    int
	deadline time.Time
	err      error
}

func (b *budget) reset(opts Options) {
	*b = budget{opts: opts, deadline: time.Now().Add(opts.Timeout)}
}

// fail records err as the reason the execution stops and returns it.
func (b *budget) fail(err error) error {
	if b.err == nil {
		b.err = err
	}
	return b.err
}

// clock fails once the execution's time is up; it reads the clock every
// 64 calls.
func (b *budget) clock() error {
	if b.err != nil {
		return b.err
	}
	b.calls++
	if b.calls%64 == 0 && time.Now().After(b.deadline) {
		return b.fail(fmt.Errorf("the template ran longer than %s", b.opts.Timeout))
	}
	return nil
}

// charge accounts for a string of n bytes built by a function.
func (b *budget) charge(n int) error {
	b.alloc += n
	if max := b.opts.MaxOutput * allocFactor; b.alloc > max {
		return b.fail(fmt.Errorf("the template builds more than %d bytes of strings", max))
	}
	return b.clock()
}

// tick runs at the start of every range iteration.
func (b *budget) tick() (string, error) {
	b.iter++
	if b.iter > b.opts.MaxIterations {
		return "", b.fail(fmt.Errorf("the template runs more than %d loop iterations", b.opts.MaxIterations))
	}
	return "", b.clock()
}

// errTooWide refuses a printf width or precision that would build a huge
// string out of nothing.
var errTooWide = errors.New("a width or precision above 999 is not allowed")

// checkFormat refuses printf formats with a '*' width or precision, or one
// of more than three digits.
func checkFormat(format string) error {
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		i++
		digits := 0
		for ; i < len(format); i++ {
			c := format[i]
			switch {
			case c == '*':
				return errTooWide
			case c >= '0' && c <= '9':
				digits++
				if digits > 3 {
					return errTooWide
				}
				continue
			case c == '.' || c == '[' || c == ']' || c == '+' || c == '-' || c == '#' || c == ' ':
				digits = 0
				continue
			}
			break // the verb
		}
	}
	return nil
}

// formatInt is strconv.FormatInt for the formatter.
func formatInt(i int64) string { return strconv.FormatInt(i, 10) }
