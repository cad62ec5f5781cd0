package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fanouthq/fanout/auth"
	"github.com/fanouthq/fanout/config"
)

func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Main(context.Background(), args, Env{
		Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut,
		Getenv: func(string) string { return "" },
	})
	return code, out.String(), errOut.String()
}

func TestKeysNewPastesIntoAConfig(t *testing.T) {
	t.Parallel()
	code, out, _ := runCLI(t, "", "keys", "new", "--tenant", "acme", "--name", "ci")
	require.Zero(t, code)
	first, snippet, ok := strings.Cut(out, "\n")
	require.True(t, ok)
	key := strings.TrimPrefix(first, "key: ")
	require.True(t, strings.HasPrefix(key, auth.KeyPrefix), out)
	require.NotContains(t, snippet, key, "the config entry holds the hash only")

	yaml := "targets: {crm: {url: \"https://crm.example.com/in\"}}\n" +
		"routes: [{name: r, match: {path: /r}, mode: async, targets: [crm], auth: api_key, tenants: [acme]}]\n" + snippet
	cfg, err := config.Parse("fanout.yaml", []byte(yaml), nil)
	require.NoError(t, err, "the printed entry is valid config:\n%s", yaml)
	keys, err := auth.NewKeys(cfg.Tenants)
	require.NoError(t, err)
	id, ok := keys.Lookup(key)
	require.True(t, ok)
	require.Equal(t, auth.Identity{Tenant: "acme", Key: "ci"}, id)

	// keys hash prints the same hash from the key on standard input.
	code, hashOut, _ := runCLI(t, key+"\n", "keys", "hash")
	require.Zero(t, code)
	require.Equal(t, auth.HashKey(key)+"\n", hashOut)
	require.Contains(t, snippet, strings.TrimSpace(hashOut))
}

func TestKeysNewAdminToken(t *testing.T) {
	t.Parallel()
	code, out, _ := runCLI(t, "", "keys", "new", "--tenant", "acme", "--admin")
	require.Zero(t, code)
	first, snippet, _ := strings.Cut(out, "\n")
	token := strings.TrimPrefix(first, "admin token: ")
	cfg, err := config.Parse("fanout.yaml", []byte(snippet), nil)
	require.NoError(t, err, snippet)
	admins, err := auth.NewAdminTokens(cfg.Tenants)
	require.NoError(t, err)
	tenant, ok := admins.Tenant(token)
	require.True(t, ok)
	require.Equal(t, "acme", tenant)

	// Defaults: tenant "default", a name from the hash.
	code, out, _ = runCLI(t, "", "keys", "new")
	require.Zero(t, code)
	require.Contains(t, out, "tenants:\n  default:\n    keys:\n      - {name: key-")
}

func TestKeysBadInput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		stdin string
		args  []string
		code  int
	}{
		{"", []string{"keys"}, 2},
		{"", []string{"keys", "rotate"}, 2},
		{"", []string{"keys", "new", "extra"}, 2},
		{"", []string{"keys", "new", "--bogus"}, 2},
		{"", []string{"keys", "new", "--tenant", "a b"}, 1},
		{"", []string{"keys", "new", "--tenant", ""}, 1},
		{"", []string{"keys", "new", "--name", "x/y"}, 1},
		{"", []string{"keys", "new", "--tenant", strings.Repeat("t", 65)}, 1},
		{"fo_key", []string{"keys", "hash", "fo_key"}, 2},
		{"", []string{"keys", "hash"}, 1},
		{"\n", []string{"keys", "hash"}, 1},
		{"a b\n", []string{"keys", "hash"}, 1},
	} {
		code, out, _ := runCLI(t, tc.stdin, tc.args...)
		require.Equal(t, tc.code, code, "%v", tc.args)
		require.NotContains(t, out, auth.KeyPrefix, "%v: no key printed on failure", tc.args)
	}
}
