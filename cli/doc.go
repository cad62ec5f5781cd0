// Package cli implements the fanout command line: serve, validate, send,
// messages, migrate, keys, echo and version. Each command parses its own
// flag set, prints its help (flags and exit codes) to standard output on
// -h or --help, and writes to the io.Writers it is given, so tests run
// commands in process; cmd/fanout only calls Main and sets the exit code.
package cli
