// Package template renders the small templates of a Fanout config: the
// path, headers and body of a steps route's steps, and the body a route
// target is sent instead of the inbound one (docs/modes.md "steps", docs/configuration.md).
//
// A template is Go text/template with a fixed, safe set of functions and
// bounds on what one execution may cost, because its author writes config,
// not code, and its data comes from callers and downstream APIs:
//
//   - The data is plain JSON-like values (maps, lists, strings, numbers,
//     booleans, nil) built by RequestValue, ResponseValue and Data. A
//     missing map key is an error (text/template's missingkey=error), so a
//     typo fails the call loudly instead of sending "<no value>".
//   - Functions: json, urlquery, base64, default and the text/template
//     built-ins (index, len, eq, printf, …) except call and template
//     calls ({{define}}, {{template}}, {{block}} do not parse).
//   - Every value an action prints goes through one formatter: strings as
//     they are, nil as nothing, numbers and booleans as in JSON, maps and
//     lists as compact JSON. In a URL template (Kind URL) the printed value
//     is then percent-encoded so that it stays one path segment or one
//     query value, whatever it holds.
//   - One execution writes at most Limits.MaxOutput bytes, builds at most
//     8 times that in intermediate strings, runs at most
//     Limits.MaxIterations range iterations, and stops after
//     Limits.Timeout; past a bound it fails with an *Error.
//
// Parse checks a template once (config validation reports its errors with
// the file position); Template.Execute is safe for concurrent use.
package template
