//go:build !unix

package main

import (
	"os"
	"os/exec"
	"syscall"
)

// inOwnGroup does nothing where there are no process groups: the harness
// measures processes through /proc and runs on Linux; this file only keeps
// `go build ./...` working on every GOOS.
func inOwnGroup(*exec.Cmd) {}

// signalGroup kills the process pid itself.
func signalGroup(pid int, _ syscall.Signal) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}
