package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/fanouthq/fanout"
)

// outcome is what the envelope says about one target.
type outcome struct {
	ok          bool
	started     bool // false: the target was never tried (race)
	status      int
	duration    time.Duration
	attempts    int
	body        []byte
	contentType string
	truncated   bool
	class       fanout.ErrorClass
	message     string
	queued      int8 // 0: not applicable, 1: handed to the queue, -1: hand-off failed
	skipped     bool // steps: not run because a step it runs after failed
}

// envelope is the sync result body of all, settled and failed races:
//
//	{"id":"msg_…","mode":"settled","status_url":"…","results":{"crm":{…},…}}
type envelope struct {
	id        string
	mode      string
	statusURL string
	names     []string
	outcomes  []outcome
}

// appendJSON encodes e onto b. It is hand-written: the envelope is on the
// hot path of every sync request, and this costs no allocation beyond the
// buffer's growth.
func (e *envelope) appendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, e.id)
	b = append(b, `,"mode":`...)
	b = appendString(b, e.mode)
	if e.statusURL != "" {
		b = append(b, `,"status_url":`...)
		b = appendString(b, e.statusURL)
	}
	b = append(b, `,"results":{`...)
	for i := range e.outcomes {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, e.names[i])
		b = append(b, ':')
		b = e.outcomes[i].appendJSON(b)
	}
	return append(b, "}}\n"...)
}

func (o *outcome) appendJSON(b []byte) []byte {
	b = append(b, `{"ok":`...)
	b = strconv.AppendBool(b, o.ok)
	if o.skipped {
		b = append(b, `,"skipped":true`...)
	}
	if o.status != 0 {
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(o.status), 10)
	}
	if o.started {
		b = append(b, `,"duration_ms":`...)
		b = strconv.AppendFloat(b, float64(o.duration.Microseconds())/1000, 'f', -1, 64)
	}
	if !o.skipped {
		b = append(b, `,"attempts":`...)
		b = strconv.AppendInt(b, int64(o.attempts), 10)
	}
	if !o.ok {
		b = append(b, `,"error":{"class":`...)
		b = appendString(b, string(o.class))
		b = append(b, `,"message":`...)
		b = appendString(b, o.message)
		b = append(b, '}')
	}
	if len(o.body) > 0 {
		b = append(b, `,"body":`...)
		switch {
		case !o.truncated && isJSONType(o.contentType) && json.Valid(o.body):
			b = appendCompactJSON(b, o.body)
		case utf8.Valid(o.body):
			b = appendString(b, unsafe.String(unsafe.SliceData(o.body), len(o.body)))
		default:
			b = append(b, '"')
			b = base64.StdEncoding.AppendEncode(b, o.body)
			b = append(b, `","body_encoding":"base64"`...)
		}
		if o.truncated {
			b = append(b, `,"truncated":true`...)
		}
	}
	switch o.queued {
	case 1:
		b = append(b, `,"queued":true`...)
	case -1:
		b = append(b, `,"queued":false`...)
	}
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD;
// U+2028 and U+2029 are escaped, as encoding/json does.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Response header values shared by every response. The server only reads
// them, and their capacity equals their length, so an Add by anyone
// reallocates instead of writing into them.
var (
	headerJSON    = []string{"application/json"}
	headerNosniff = []string{"nosniff"}
	headerTrue    = []string{"true"}
)

// jsonBufPool holds encoding buffers of envelopes.
var jsonBufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 2048)
	return &b
}}

// jsonAppender encodes itself onto a buffer.
type jsonAppender interface{ appendJSON(b []byte) []byte }

// writeJSON writes v's JSON with status and the Fanout-Message-Id id.
func writeJSON(w http.ResponseWriter, status int, id string, v jsonAppender) {
	bp := jsonBufPool.Get().(*[]byte)
	b := v.appendJSON((*bp)[:0])
	h := w.Header()
	vals := []string{strconv.Itoa(len(b)), id} // one allocation for both
	h["Content-Type"] = headerJSON
	h["X-Content-Type-Options"] = headerNosniff
	h["Content-Length"] = vals[0:1:1]
	h["Fanout-Message-Id"] = vals[1:2:2]
	w.WriteHeader(status)
	_, _ = w.Write(b)
	if cap(b) <= 256<<10 {
		*bp = b
		jsonBufPool.Put(bp)
	}
}

// appendCompactJSON appends a valid JSON document without insignificant
// whitespace, so an embedded body never breaks the envelope's layout (most
// encoders end their output with a newline). The common case — compact
// already, maybe with surrounding whitespace — costs no extra allocation.
func appendCompactJSON(b, doc []byte) []byte {
	doc = bytes.TrimSpace(doc)
	if bytes.IndexByte(doc, '\n') < 0 && bytes.IndexByte(doc, '\t') < 0 && bytes.IndexByte(doc, '\r') < 0 {
		return append(b, doc...)
	}
	buf := bytes.NewBuffer(b)
	if err := json.Compact(buf, doc); err != nil {
		return append(b, doc...)
	}
	return buf.Bytes()
}
