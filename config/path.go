package config

import (
	"strconv"
	"strings"
)

// fieldPath is the path of a value in the config, one formatted segment
// per element: "routes", "[2]", ".targets", "[1]". Keeping the segments
// apart lets a lookup fall back to the nearest ancestor present in the file.
type fieldPath []string

// String returns the path as written in error messages:
// "routes[2].targets[1]", `targets.crm.headers["X Odd"]`.
func (p fieldPath) String() string { return strings.Join(p, "") }

// key returns the path of the mapping entry k under p.
func (p fieldPath) key(k string) fieldPath {
	seg := "[" + strconv.Quote(k) + "]"
	if plainKey(k) {
		seg = k
		if len(p) > 0 {
			seg = "." + k
		}
	}
	return p.with(seg)
}

// index returns the path of the sequence entry i under p.
func (p fieldPath) index(i int) fieldPath {
	return p.with("[" + strconv.Itoa(i) + "]")
}

func (p fieldPath) with(seg string) fieldPath {
	q := make(fieldPath, len(p), len(p)+1)
	copy(q, p)
	return append(q, seg)
}

// plainKey reports whether k can be written bare in a path: letters,
// digits, '_' and '-'.
func plainKey(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range k {
		if !isAlnum(c) && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func isAlnum(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// position is where a value starts in the file, 1-based.
type position struct{ line, col int }

// positions maps fieldPath.String() to where the value is in the file.
type positions map[string]position

// find returns the position of p, or of its nearest ancestor present in the
// file (a default value has no position of its own: its error is reported
// at the enclosing mapping), or the zero position.
func (m positions) find(p fieldPath) position {
	for i := len(p); i >= 0; i-- {
		if pos, ok := m[p[:i].String()]; ok {
			return pos
		}
	}
	return position{}
}
