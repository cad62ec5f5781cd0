package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// headerFlags collects repeated -H flags.
type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

func runSend(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("send", env)
	data := fs.String("d", "", "body: DATA, @file, or - for standard input")
	method := fs.String("X", "POST", "HTTP method")
	base := fs.String("url", env.Getenv("FANOUT_URL"), "fanout data-plane URL (default $FANOUT_URL, else http://127.0.0.1:8080)")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after this long")
	var headers headerFlags
	fs.Var(&headers, "H", "header 'Name: value' (repeatable)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fmt.Fprintln(env.Stderr, "usage: fanout send PATH [-d @file|-|DATA] [-X METHOD] [-H 'Name: value']")
		return exitError{2}
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
	ctx, cancel := context.WithTimeout(ctx, *timeout)
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
			return fmt.Errorf("header %q: want 'Name: value'", h)
		}
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(env.Stdout, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		fmt.Fprintf(env.Stderr, "fanout send: HTTP %s\n", resp.Status)
		return exitError{1}
	}
	return nil
}
