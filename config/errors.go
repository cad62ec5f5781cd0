package config

import (
	"cmp"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Error is one problem in a config file, at the line and column of the
// offending key or value. It prints as "file:line:col: field: message",
// the form editors and CI annotate.
type Error struct {
	// File is the config file's name as given to Load or Parse.
	File string
	// Line and Col are 1-based; 0 when the position is unknown (a Config
	// built in code and then validated).
	Line, Col int
	// Field is the path of the offending value, such as
	// "routes[2].targets[1]" or "targets.crm.timeout"; "" for syntax errors.
	Field string
	// Msg says what is wrong.
	Msg string
}

// Error returns "file:line:col: field: message"; the parts that are unknown
// (no file, no position, no field) are left out.
func (e *Error) Error() string { return formatProblem(e.File, e.Line, e.Col, e.Field, "", e.Msg) }

// Warning is something a valid config says that is probably a mistake,
// at the line and column it is written. Config.Warnings returns them.
type Warning struct {
	// File, Line, Col and Field are as in Error; Line and Col point into
	// a multi-line value where they can.
	File      string
	Line, Col int
	Field     string
	// Msg says what is wrong and how to write it instead.
	Msg string
}

// String returns "file:line:col: field: warning: message", the parts that
// are unknown left out.
func (w *Warning) String() string {
	return formatProblem(w.File, w.Line, w.Col, w.Field, "warning: ", w.Msg)
}

func formatProblem(file string, line, col int, field, kind, msg string) string {
	var b strings.Builder
	if file != "" {
		b.WriteString(file)
		b.WriteByte(':')
	}
	if line > 0 {
		b.WriteString(strconv.Itoa(line))
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(max(col, 1)))
		b.WriteByte(':')
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	if field != "" {
		b.WriteString(field)
		b.WriteString(": ")
	}
	b.WriteString(kind)
	b.WriteString(msg)
	return b.String()
}

// ErrorList is every problem found in a config, sorted by position. Load,
// Parse and Validate return one (never empty) when the config is invalid;
// errors.As finds it, and each *Error in it.
type ErrorList []*Error

// Error returns one problem per line.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, so that errors.As(err, &e) with e an *Error
// finds the first one.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// sort orders the problems by position, keeping the order in which they
// were found for equal positions.
func (l ErrorList) sort() {
	slices.SortStableFunc(l, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
}

// err returns l sorted as an error, nil when it is empty, and cut to
// maxErrors problems and a last one saying so.
func (l ErrorList) err() error {
	if len(l) == 0 {
		return nil
	}
	l.sort()
	if len(l) > maxErrors+1 {
		last := l[maxErrors]
		l = append(l[:maxErrors:maxErrors], &Error{File: last.File, Line: last.Line, Col: last.Col, Msg: tooManyErrors})
	}
	return l
}

// tooManyErrors ends a list of problems cut short.
const tooManyErrors = "too many errors; stopping here"

// yamlLine finds the line number in a yaml.v3 syntax error
// ("yaml: line 3: did not find expected key").
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlAnchor finds the anchor name in yaml.v3's unknown anchor error.
var yamlAnchor = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)

// yamlParserProblems are the messages of yaml.v3's parser (as opposed to
// its scanner), whose line numbers it reports 0-based.
var yamlParserProblems = []string{
	"did not find expected <stream-start>",
	"did not find expected <document start>",
	"did not find expected node content",
	"did not find expected '-' indicator",
	"did not find expected key",
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"found undefined tag handle",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found duplicate %TAG directive",
}

// syntaxError turns an error of the YAML parser into an *Error. yaml.v3
// gives a line but no column; its line is 0-based for parser errors
// (1-based for scanner errors), it leaves the line out when it would be 0,
// and it names no line for an unknown anchor, which is found in the text
// instead.
func syntaxError(file string, data []byte, err error) *Error {
	msg := err.Error()
	e := &Error{File: file, Line: 1, Col: 1}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		msg = m[2]
		if n, convErr := strconv.Atoi(m[1]); convErr == nil && n > 0 {
			e.Line = n
			if slices.Contains(yamlParserProblems, msg) {
				e.Line++
			}
		}
	} else if m := yamlAnchor.FindStringSubmatch(msg); m != nil {
		if i := strings.Index(string(data), "*"+m[1]); i >= 0 {
			e.Line, e.Col = lineCol(data, i)
		}
	}
	e.Msg = "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")
	return e
}

// lineCol returns the 1-based line and column (in bytes) of offset i.
func lineCol(data []byte, i int) (line, col int) {
	before := data[:i]
	line = 1 + strings.Count(string(before), "\n")
	col = i + 1
	if j := strings.LastIndexByte(string(before), '\n'); j >= 0 {
		col = i - j
	}
	return line, col
}
