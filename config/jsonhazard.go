package config

import (
	"fmt"
	"strings"

	"github.com/fanouthq/fanout/template"
)

// jsonHazards warns about the actions of the body template t (source src,
// at p; nil when it does not parse) that print a caller's or a target's
// value into JSON in a way that lets the value add fields. It is a
// warning, not an error: the field may be constrained by the route's
// schema, and a config that loaded before must still load.
func (v *validator) jsonHazards(p fieldPath, src string, t *template.Template) {
	if t == nil {
		return
	}
	for _, h := range t.JSONHazards(outsideValue) {
		field := "." + strings.Join(h.Field, ".")
		var msg string
		switch {
		case h.InString && h.JSON:
			msg = fmt.Sprintf("%s is between JSON quotes, but json adds its own: the output is not JSON; drop the quotes around it", h.Action)
		case h.InString:
			msg = fmt.Sprintf("%s puts %s between JSON quotes without json: a value with a quote adds fields (such as \"admin\": true); write {{ json %s }} in place of the quoted action", h.Action, field, field)
		default:
			msg = fmt.Sprintf("%s prints %s into JSON without json: a string value can add fields (such as \"admin\": true); write {{ json %s }}", h.Action, field, field)
		}
		line, col := v.inValue(p, src, h.Offset)
		v.warns = append(v.warns, &Warning{File: v.c.File, Line: line, Col: col, Field: p.String(), Msg: msg})
	}
}

// outsideValue reports whether a template field holds a value Fanout does
// not choose: anything of the request but its id and method, and every
// step response.
func outsideValue(field []string) bool {
	switch field[0] {
	case template.KeyRequest:
		return len(field) < 2 || field[1] != "id" && field[1] != "method"
	case template.KeySteps:
		return true
	}
	return false
}

// inValue returns the line and column in the file of byte off of the
// string value at p, whose text is val. It is exact for a value on one
// line (plain, or quoted without escapes other than ” and \" \\) and for
// a literal block (|); otherwise it is the value's own position.
func (v *validator) inValue(p fieldPath, val string, off int) (line, col int) {
	pos := v.c.pos.find(p)
	line, col = pos.line, pos.col
	if line < 1 || col < 1 || v.c.src == nil {
		return line, col
	}
	lines := strings.Split(string(v.c.src), "\n")
	if line > len(lines) || col > len(lines[line-1])+1 {
		return line, col
	}
	rest := lines[line-1][col-1:]
	if rest == "" {
		return line, col
	}
	switch rest[0] {
	case '|':
		// A literal block: the value's lines are the next lines of the
		// file, each after the block's indentation.
		k := strings.Count(val[:off], "\n")
		first := line // the first content line, 0-based: line
		if first+k >= len(lines) {
			return line, col
		}
		content := lines[first]
		indent := len(content) - len(strings.TrimLeft(content, " "))
		lineOff := off - (strings.LastIndexByte(val[:off], '\n') + 1)
		return first + k + 1, indent + lineOff + 1
	case '>':
		return line, col
	case '\'', '"':
		q := rest[0]
		i := 1 // in rest
		for j := 0; j < off; j++ {
			if i >= len(rest) {
				return line, col // the value goes on over lines
			}
			switch {
			case q == '\'' && rest[i] == '\'' && i+1 < len(rest) && rest[i+1] == '\'':
				i += 2
			case q == '"' && rest[i] == '\\' && i+1 < len(rest) && (rest[i+1] == '"' || rest[i+1] == '\\'):
				i += 2
			case q == '"' && rest[i] == '\\':
				return line, col
			default:
				i++
			}
		}
		return line, col + i
	}
	if strings.Contains(val[:off], "\n") || off > len(rest) {
		return line, col
	}
	return line, col + off
}
