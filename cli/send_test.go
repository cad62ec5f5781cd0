package cli

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout/demo"
	"github.com/fanouthq/fanout/server"
)

// startDemo runs the demo's config (echo targets, one route per mode) on
// loopback and returns the data-plane URL.
func startDemo(t *testing.T) string {
	t.Helper()
	targets, err := demo.StartTargets(slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = targets.Close(context.Background()) })
	cfg, err := demo.Config(targets, filepath.Join(t.TempDir(), "fanout.db"), "tok")
	require.NoError(t, err)
	cfg.Listen, cfg.Admin.Listen = "127.0.0.1:0", "127.0.0.1:0"
	srv, err := server.Start(context.Background(), cfg, server.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return "http://" + srv.DataAddr()
}

func TestSendSaysNewOrReplayed(t *testing.T) {
	t.Parallel()
	url := startDemo(t)
	send := func(args ...string) (int, string, string) {
		return runCLI(t, "", append([]string{"send", "--url", url}, args...)...)
	}
	accepted := regexp.MustCompile(`^accepted (msg_\w+) \((.+)\)\nstatus_url: http://\S+/v1/messages/(msg_\w+)\n$`)

	code, out, errOut := send("/async", "-d", `{"user":"ada"}`, "-H", "Idempotency-Key: k-1")
	require.Zero(t, code, errOut)
	m := accepted.FindStringSubmatch(out)
	require.NotNil(t, m, out)
	id := m[1]
	require.Equal(t, "new", m[2])
	require.Equal(t, id, m[3])

	code, out, errOut = send("/async", "-d", `{"user":"ada"}`, "-H", "Idempotency-Key: k-1")
	require.Zero(t, code, errOut)
	m = accepted.FindStringSubmatch(out)
	require.NotNil(t, m, out)
	require.Equal(t, id, m[1], "the replay names the first message")
	require.Equal(t, "replayed: same Idempotency-Key, not stored again", m[2])

	// Another key is another message.
	code, out, _ = send("/async", "-d", `{"user":"ada"}`, "-H", "Idempotency-Key: k-2")
	require.Zero(t, code)
	m = accepted.FindStringSubmatch(out)
	require.NotNil(t, m, out)
	require.NotEqual(t, id, m[1])
	require.Equal(t, "new", m[2])

	// --json prints the answer as is.
	code, out, _ = send("/async", "--json", "-d", `{"user":"ada"}`, "-H", "Idempotency-Key: k-1")
	require.Zero(t, code)
	var body struct {
		ID        string `json:"id"`
		StatusURL string `json:"status_url"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &body), out)
	require.Equal(t, id, body.ID)

	// A sync route's answer is printed as is.
	code, out, _ = send("/all", "-d", `{"user":"ada"}`)
	require.Zero(t, code)
	require.Regexp(t, `^\{"id":"msg_\w+","mode":"all"`, out)
}

func TestSendExitCodes(t *testing.T) {
	t.Parallel()
	url := startDemo(t)

	// An error answer: its body on stdout, the status on stderr, exit 1.
	code, out, errOut := runCLI(t, "", "send", "--url", url, "/no-such-route")
	require.Equal(t, 1, code)
	require.Contains(t, out, `"code"`)
	require.Contains(t, errOut, "HTTP 404")

	// A sync route whose rule failed (settled's flaky answers 503 but
	// settled answers 200; all with a failing leg is not in the demo):
	// a 2xx is exit 0.
	code, _, _ = runCLI(t, "", "send", "--url", url, "/settled", "-d", `{}`)
	require.Zero(t, code)

	// No answer at all: exit 3.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())
	code, out, errOut = runCLI(t, "", "send", "--url", closed, "/async", "-d", `{}`)
	require.Equal(t, 3, code)
	require.Empty(t, out)
	require.Contains(t, errOut, "no answer")
}
