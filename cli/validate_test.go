package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidateWarnsAboutQuotedTemplateValues(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "fanout.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`targets: {crm: {url: "https://crm.example.com/in"}}
routes:
  - name: signup
    match: {path: /signup}
    mode: async
    targets:
      - {name: crm, body: '{"user": "{{ .request.body.user }}"}'}
`), 0o600))
	code, out, errOut := runCLI(t, "", "validate", path)
	require.Zero(t, code, "a warning does not fail validation: %s", errOut)
	require.Equal(t, path+": ok (1 routes, 1 targets, 1 warnings)\n", out)
	require.Equal(t, path+`:7:38: routes[0].targets[0].body: warning: {{ .request.body.user }} puts .request.body.user between JSON quotes without json: a value with a quote adds fields (such as "admin": true); write {{ json .request.body.user }} in place of the quoted action`+"\n", errOut)
}
