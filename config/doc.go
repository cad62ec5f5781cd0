// Package config reads, checks and holds Fanout's YAML configuration: the
// listeners, the store, the targets (downstream APIs) and the routes
// (inbound method, host and path, with a mode and the targets they go to).
//
// The config file is the source of truth for routes and targets, and it is
// written by people, so this package is strict and precise about it:
//
//   - Parse starts from Default, decodes the file over it, expands ${VAR}
//     references in every scalar value from the environment, fills the
//     per-target and per-route defaults, and validates the result.
//   - Every problem is reported, not just the first, each as an *Error that
//     names the file, the line and column of the offending value, and the
//     field ("routes[2].targets[1]"), so that `fanout validate` prints lines
//     that editors and CI annotate: "fanout.yaml:12:5: routes[0].mode: ...".
//   - Unknown keys are errors (with a "did you mean" hint), so a typo is
//     never silently ignored; duplicate keys are errors too.
//
// A *Config returned by Load or Parse is complete and valid, and is shared
// read-only once in use: a hot reload parses the file again into a new
// *Config rather than changing the one in force.
//
// The user-facing reference of every key is docs/configuration.md.
package config
