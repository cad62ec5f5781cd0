// Package cli implements the fanout command line: serve, validate, send,
// messages, migrate, echo and version. Each command parses its own flags
// and writes to the io.Writers it is given, so tests run commands in
// process; cmd/fanout only calls Main and sets the exit code.
package cli
