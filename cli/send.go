package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/fanouthq/fanout/config"
	"github.com/fanouthq/fanout/gateway"
)

// headerFlags collects repeated -H flags.
type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

// sendHelp is the help of fanout send; docs/operations.md repeats its exit
// codes.
const sendHelp = `usage: fanout send PATH [-d @file|-|DATA] [-X METHOD] [-H 'Name: value']... [--json]

Sends one request to a running fanout's data plane and prints the answer.
An async route's answer is printed as one line saying whether the message
is new or an idempotent replay (a known Idempotency-Key: not stored again),
then its status_url; --json prints the answer's body as is. Any other
answer's body is printed as is.

Exit codes:
  0  fanout answered 1xx, 2xx or 3xx (async: the message is stored)
  1  fanout answered 4xx or 5xx; the body (the error) is printed, the
     status line goes to standard error
  2  bad usage (unknown flag, no PATH, a malformed -H)
  3  no answer (connection refused, timeout): the message may or may not
     have been stored; send it again with the same Idempotency-Key
`

func runSend(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("send", sendHelp, env)
	data := fs.String("d", "", "body: DATA, @file, or - for standard input")
	method := fs.String("X", "POST", "HTTP method")
	base := fs.String("url", env.Getenv("FANOUT_URL"), "fanout data-plane URL (default $FANOUT_URL, else http://127.0.0.1:8080)")
	timeout := config.Duration(time.Minute)
	fs.TextVar(&timeout, "timeout", timeout, "give up after this `duration` (30s, 2m; exit 3)")
	asJSON := fs.Bool("json", false, "print an async answer's JSON body instead of the summary line")
	var headers headerFlags
	fs.Var(&headers, "H", "header 'Name: value' (repeatable)")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fs.usageError()
	}
	if *base == "" {
		*base = "http://127.0.0.1:8080"
	}
	var body []byte
	switch {
	case *data == "-":
		body, err = io.ReadAll(env.Stdin)
	case strings.HasPrefix(*data, "@"):
		body, err = os.ReadFile((*data)[1:])
	default:
		body = []byte(*data)
	}
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	path := pos[0]
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	ctx, cancel := context.WithTimeout(ctx, timeout.D())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, *method, strings.TrimRight(*base, "/")+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			fmt.Fprintf(env.Stderr, "fanout send: header %q: want 'Name: value'\n", h)
			return exitError{2}
		}
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(env.Stderr, "fanout send: no answer: %v\n", err)
		return exitError{3}
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		fmt.Fprintf(env.Stderr, "fanout send: reading the answer: %v\n", err)
		return exitError{3}
	}
	if a, ok := asyncAnswer(resp, answer); ok && !*asJSON {
		how := "new"
		if a.replayed {
			how = "replayed: same Idempotency-Key, not stored again"
		}
		fmt.Fprintf(env.Stdout, "accepted %s (%s)\n", a.ID, how)
		if a.StatusURL != "" {
			fmt.Fprintf(env.Stdout, "status_url: %s\n", a.StatusURL)
		}
	} else if _, err := env.Stdout.Write(answer); err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		fmt.Fprintf(env.Stderr, "fanout send: HTTP %s\n", resp.Status)
		return exitError{1}
	}
	return nil
}

// accepted is an async route's answer.
type accepted struct {
	ID        string `json:"id"`
	StatusURL string `json:"status_url"`
	replayed  bool
}

// asyncAnswer reports whether resp is an async route's answer (docs/modes.md):
// 202 {"id","status_url"} for a new message, 200 with Idempotent-Replayed:
// true for a known Idempotency-Key. A target's answer proxied as is (race,
// mirror) is not one, even if it is a 202.
func asyncAnswer(resp *http.Response, body []byte) (accepted, bool) {
	replayed := resp.StatusCode == http.StatusOK && resp.Header.Get(gateway.HeaderReplayed) == "true"
	if resp.StatusCode != http.StatusAccepted && !replayed {
		return accepted{}, false
	}
	var a accepted
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil || a.ID == "" || a.ID != resp.Header.Get("Fanout-Message-Id") {
		return accepted{}, false
	}
	a.replayed = replayed
	return a, true
}
