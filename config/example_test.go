package config_test

import (
	"fmt"

	"github.com/fanouthq/fanout/config"
)

func ExampleParse() {
	env := map[string]string{"CRM_TOKEN": "s3cr3t"}
	cfg, err := config.Parse("fanout.yaml", []byte(`
targets:
  crm:
    url: https://crm.example.com/api/contacts
    auth: {bearer: "${CRM_TOKEN}"}
    timeout: 5s
  analytics:
    url: http://127.0.0.1:18082/events
routes:
  - name: signup
    match: {path: /send-info}
    mode: async
    targets: [crm, analytics]
`), func(name string) (string, bool) { v, ok := env[name]; return v, ok })
	if err != nil {
		fmt.Println(err)
		return
	}
	r := cfg.Route("signup")
	fmt.Println(r.Match.Pattern(), r.Mode, r.MaxBody)
	crm := cfg.Targets["crm"]
	fmt.Println(crm.ParsedURL.Host, crm.Timeout, crm.Retry.MaxAttempts, crm.Auth.Bearer)
	// Output:
	// POST /send-info async 1MiB
	// crm.example.com 5s 10 s3cr3t
}

func ExampleParse_errors() {
	_, err := config.Parse("fanout.yaml", []byte(`
targets:
  crm: {url: "https://crm.example.com/in", timeout: 5}
routes:
  - name: signup
    match: {path: /signup}
    mode: mirorr
    targets: [crm, analytics]
    sample_precent: 10
`), nil)
	fmt.Println(err)
	// Output:
	// fanout.yaml:3:53: targets.crm.timeout: invalid duration "5": missing unit; use a number and a unit: 250ms, 5s, 10m, 1h30m, 7d
	// fanout.yaml:7:11: routes[0].mode: must be async, all, settled, race, mirror or steps, not "mirorr"; did you mean "mirror"?
	// fanout.yaml:8:20: routes[0].targets[1]: unknown target "analytics"
	// fanout.yaml:9:5: routes[0].sample_precent: unknown key "sample_precent"; did you mean "sample_percent"?
}
