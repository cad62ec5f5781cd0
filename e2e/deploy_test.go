package e2e

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout/config"
)

// The files of deploy/ (docs/operations.md#deploying).
const (
	deployConfig     = "../deploy/fanout.yaml"
	deployDockerfile = "../deploy/Dockerfile"
	deployUnit       = "../deploy/fanout.service"
	deployEnv        = "../deploy/fanout.env.example"
)

// deployEnvVars reads deploy/fanout.env.example: the variables the example
// config needs.
func deployEnvVars(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(deployEnv)
	require.NoError(t, err)
	vars := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			vars[k] = v
		}
	}
	return vars
}

// TestDeployConfigRunsInItsStateDirectory runs the binary on
// deploy/fanout.yaml as the unit and the image do: in an empty state
// directory, with the variables of fanout.env.example. The SQLite file
// lands there, a message is delivered to both targets, the admin listener
// of the file is on loopback, and SIGTERM exits 0.
func TestDeployConfigRunsInItsStateDirectory(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	vars := deployEnvVars(t)
	cfg, err := config.Parse(deployConfig, mustRead(t, deployConfig), func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	})
	require.NoError(t, err, "the example config is valid with the example environment")
	host, _, err := net.SplitHostPort(cfg.Admin.Listen)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1", host, "the admin listener is not exposed by default")
	require.NotEmpty(t, cfg.Admin.Token)
	require.Equal(t, "fanout.db", cfg.Store.DSN, "relative: the working directory is the state directory")

	crm, analytics := newRecorder(), newRecorder()
	crmAddr, anAddr := freeAddr(t), freeAddr(t)
	serveOn(t, crmAddr, crm)
	serveOn(t, anAddr, analytics)
	state := t.TempDir()
	listen, admin := freeAddr(t), freeAddr(t)
	abs, err := filepath.Abs(deployConfig)
	require.NoError(t, err)
	cmd := exec.Command(binary, "serve", "--config", abs, "--listen", listen, "--admin-listen", admin)
	cmd.Dir = state
	cmd.Env = append(os.Environ(), "FANOUT_ADMIN_TOKEN="+vars["FANOUT_ADMIN_TOKEN"],
		"CRM_URL=http://"+crmAddr+"/crm", "ANALYTICS_URL=http://"+anAddr+"/events")
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	waitFor(t, 20*time.Second, "ready", func() bool {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	require.FileExists(t, filepath.Join(state, "fanout.db"))

	status, _, body, err := post(context.Background(), "http://"+listen+"/send-info", `{"email":"ada@example.com"}`, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusAccepted, status, string(body))
	var got struct{ ID string }
	require.NoError(t, json.Unmarshal(body, &got))
	ids := map[string]bool{got.ID: true}
	waitFor(t, 20*time.Second, "delivered to both targets", func() bool { return crm.missing(ids)+analytics.missing(ids) == 0 })

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-done:
		require.NoError(t, err, "exit status after SIGTERM; logs:\n%s", logs.String())
	case <-time.After(time.Duration(cfg.ShutdownTimeout) + 10*time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	done <- nil // for the cleanup
}

// TestDeployFilesAgree checks what the Dockerfile and the systemd unit
// promise (docs/operations.md#deploying) and that they agree with the
// example config: a static build, a scratch image running as a numeric
// non-root user with /data, only the data port exposed, and a unit whose
// stop timeout outlasts the config's shutdown_timeout.
func TestDeployFilesAgree(t *testing.T) {
	t.Parallel()
	vars := deployEnvVars(t)
	cfg, err := config.Parse(deployConfig, mustRead(t, deployConfig), func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	})
	require.NoError(t, err)
	_, dataPort, err := net.SplitHostPort(cfg.Listen)
	require.NoError(t, err)

	// The Dockerfile, its continuation lines joined, by stage.
	text := strings.ReplaceAll(string(mustRead(t, deployDockerfile)), "\\\n", " ")
	var stages [][]string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "FROM ") {
			stages = append(stages, nil)
		}
		require.NotEmpty(t, stages, "an instruction before FROM: %s", line)
		stages[len(stages)-1] = append(stages[len(stages)-1], line)
	}
	require.Len(t, stages, 2, "a builder and the final image")
	build, final := strings.Join(stages[0], "\n"), stages[1]
	require.Regexp(t, `(?m)^FROM golang:\d+\.\d+\S* AS build$`, build)
	goMod := string(mustRead(t, "../go.mod"))
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(goMod)[1]
	require.Contains(t, build, "FROM golang:"+goVersion, "the builder's Go is the one go.mod asks for")
	require.Regexp(t, `(?m)^RUN CGO_ENABLED=0 go build .*-o /out/fanout \./cmd/fanout`, build)

	want := map[string]bool{}
	for _, line := range final {
		switch {
		case line == "FROM scratch":
			want["scratch"] = true
		case strings.HasPrefix(line, "USER "):
			uid, gid, _ := strings.Cut(strings.TrimPrefix(line, "USER "), ":")
			u, err := strconv.Atoi(uid)
			require.NoError(t, err, "a numeric user: %s", line)
			_, err = strconv.Atoi(gid)
			require.NoError(t, err, "a numeric group: %s", line)
			require.NotZero(t, u, "not root")
			want["user"] = true
		case strings.HasPrefix(line, "EXPOSE "):
			require.Equal(t, "EXPOSE "+dataPort, line, "the data port only, not the admin one")
			want["expose"] = true
		case line == `VOLUME ["/data"]`:
			want["volume"] = true
		case line == "WORKDIR /data":
			want["workdir"] = true
		case strings.Contains(line, "ca-certificates.crt /etc/ssl/certs/ca-certificates.crt"):
			want["ca"] = true
		case line == "COPY deploy/fanout.yaml /etc/fanout/fanout.yaml":
			want["config"] = true
		case line == "ENV FANOUT_CONFIG=/etc/fanout/fanout.yaml":
			want["env"] = true
		}
	}
	for _, k := range []string{"scratch", "user", "expose", "volume", "workdir", "ca", "config", "env"} {
		require.True(t, want[k], "the final image has its %s line:\n%s", k, strings.Join(final, "\n"))
	}

	// The unit.
	unit := map[string][]string{}
	for _, line := range strings.Split(string(mustRead(t, deployUnit)), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			unit[k] = append(unit[k], v)
		}
	}
	one := func(k string) string {
		require.Len(t, unit[k], 1, k)
		return unit[k][0]
	}
	require.Equal(t, "/usr/local/bin/fanout serve --config /etc/fanout/fanout.yaml", one("ExecStart"))
	require.Equal(t, "fanout", one("StateDirectory"))
	require.Equal(t, "%S/fanout", one("WorkingDirectory"), "the SQLite file goes to the state directory")
	require.Equal(t, "/etc/fanout/fanout.env", one("EnvironmentFile"))
	for k, v := range map[string]string{
		"DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
		"PrivateTmp": "yes", "CapabilityBoundingSet": "", "KillMode": "mixed",
	} {
		require.Equal(t, v, one(k), k)
	}
	stop, err := time.ParseDuration(one("TimeoutStopSec"))
	require.NoError(t, err)
	require.Greater(t, stop, cfg.ShutdownTimeout.D(), "systemd waits longer than the graceful shutdown before SIGKILL")
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}
