package cli

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// commands lists every command with the flags its help must show and flags
// of other commands it must not.
var commands = []struct {
	args    []string
	flags   []string
	without []string
}{
	{[]string{"serve"}, []string{"-config", "-listen", "-admin-listen", "-log-level"}, []string{"-admin-url"}},
	{[]string{"validate"}, []string{"-config"}, []string{"-listen"}},
	{[]string{"send"}, []string{"-d", "-X", "-H", "-url", "-timeout", "-json"}, []string{"-config", "-all"}},
	{[]string{"messages", "list"}, []string{"-admin-url", "-route", "-target", "-tenant", "-state", "-since", "-until", "-cursor", "-limit", "-json"}, []string{"-all"}},
	{[]string{"messages", "show"}, []string{"-admin-url"}, []string{"-all", "-route", "-limit"}},
	{[]string{"messages", "replay"}, []string{"-admin-url", "-all", "-route", "-target", "-tenant", "-state", "-since", "-until"}, []string{"-limit", "-cursor", "-json"}},
	{[]string{"messages", "delete"}, []string{"-admin-url"}, []string{"-all", "-route"}},
	{[]string{"messages", "backfill"}, []string{"-admin-url", "-target", "-since", "-until"}, []string{"-all", "-route", "-state"}},
	{[]string{"migrate"}, []string{"-config"}, []string{"-listen"}},
	{[]string{"keys", "new"}, []string{"-tenant", "-name", "-admin"}, []string{"-config"}},
	{[]string{"keys", "hash"}, nil, []string{"-tenant"}},
	{[]string{"keys", "create"}, []string{"-admin-url", "-name", "-expires-at", "-tenant", "-json"}, []string{"-admin"}},
	{[]string{"keys", "list"}, []string{"-admin-url", "-tenant", "-json"}, []string{"-name"}},
	{[]string{"keys", "revoke"}, []string{"-admin-url"}, []string{"-tenant"}},
	{[]string{"subscriptions", "request"}, []string{"-admin-url", "-note", "-tenant", "-json"}, []string{"-reason"}},
	{[]string{"subscriptions", "list"}, []string{"-admin-url", "-route", "-tenant", "-state", "-json"}, []string{"-reason"}},
	{[]string{"subscriptions", "approve"}, []string{"-admin-url", "-reason"}, []string{"-note"}},
	{[]string{"subscriptions", "reject"}, []string{"-admin-url", "-reason"}, []string{"-note"}},
	{[]string{"subscriptions", "revoke"}, []string{"-admin-url", "-reason"}, []string{"-note"}},
	{[]string{"audit"}, []string{"-admin-url", "-since", "-tenant", "-json"}, []string{"-reason"}},
	{[]string{"echo"}, []string{"-listen", "-name"}, []string{"-config"}},
}

func TestEveryCommandHelp(t *testing.T) {
	t.Parallel()
	for _, tc := range commands {
		name := strings.Join(tc.args, " ")
		for _, h := range []string{"-h", "--help", "-help"} {
			code, out, errOut := runCLI(t, "", append(tc.args, h)...)
			require.Zero(t, code, "%s %s exits 0", name, h)
			require.Empty(t, errOut, "%s %s: help goes to standard output", name, h)
			require.True(t, strings.HasPrefix(out, "usage: fanout "+name), "%s %s:\n%s", name, h, out)
			require.Contains(t, out, "Exit codes:", name)
			for _, f := range tc.flags {
				require.Regexp(t, flagLine(f), out, "%s lists its flag %s", name, f)
			}
			for _, f := range tc.without {
				require.NotRegexp(t, flagLine(f), out, "%s does not list %s", name, f)
			}
		}
		// "fanout help CMD" is the same help.
		code, viaHelp, _ := runCLI(t, "", append([]string{"help"}, tc.args...)...)
		require.Zero(t, code, name)
		_, direct, _ := runCLI(t, "", append(tc.args, "--help")...)
		require.Equal(t, direct, viaHelp, name)
	}
}

// flagLine matches the line of flag f in a flag set's defaults.
func flagLine(f string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(f) + `( |$)`)
}

func TestTopLevelHelpListsEveryCommand(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		code, out, errOut := runCLI(t, "", args...)
		require.Zero(t, code, args)
		require.Empty(t, errOut)
		for _, tc := range commands {
			require.Contains(t, out, "\n  fanout "+strings.Join(tc.args, " ")+" ", "%v lists %v", args, tc.args)
		}
		require.Contains(t, out, "fanout version")
		require.Contains(t, out, "Exit codes:")
	}
	code, out, errOut := runCLI(t, "")
	require.Equal(t, 2, code, "no command is bad usage")
	require.Empty(t, out)
	require.Contains(t, errOut, "fanout messages backfill")
}

func TestGroupHelp(t *testing.T) {
	t.Parallel()
	for _, group := range []string{"messages", "keys"} {
		for _, h := range []string{"-h", "--help", "help"} {
			code, out, errOut := runCLI(t, "", group, h)
			require.Zero(t, code, "%s %s", group, h)
			require.Empty(t, errOut, "%s %s: no unknown-subcommand error", group, h)
			require.NotContains(t, out, "unknown subcommand")
			require.Contains(t, out, "fanout "+group+" ")
		}
	}
	code, _, errOut := runCLI(t, "", "messages", "purge")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, `unknown subcommand "purge"`)
}

func TestUsageErrorsExit2(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"frobnicate"},
		{"serve", "--bogus"},
		{"serve", "extra.yaml"},
		{"validate", "a.yaml", "b.yaml"},
		{"send"},
		{"send", "/a", "/b"},
		{"send", "/a", "-H", "no colon"},
		{"messages"},
		{"messages", "list", "--all"}, // replay's flag, not list's
		{"messages", "show"},
		{"messages", "show", "a", "b"},
		{"messages", "replay"},
		{"messages", "replay", "msg_1", "--state", "dead"}, // filters need --all
		{"messages", "replay", "--all", "msg_1"},
		{"messages", "delete"},
		{"messages", "backfill", "r", "--target", "t"}, // no --since
		{"migrate", "extra"},
		{"keys", "hash", "--bogus"},
		{"echo", "extra"},
	} {
		code, out, errOut := runCLI(t, "", args...)
		require.Equal(t, 2, code, "%v", args)
		require.Empty(t, out, "%v: usage errors go to standard error", args)
		require.NotEmpty(t, errOut, "%v", args)
	}
}
