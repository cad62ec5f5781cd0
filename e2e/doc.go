// Package e2e holds end-to-end tests that build the real fanout binary, run
// it as a subprocess on loopback ports, and kill, restart and signal it
// while traffic flows. It has no non-test code.
package e2e
