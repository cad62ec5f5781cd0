// Package server wires the parts of Fanout into one running process: it
// opens the store, starts the data plane (gateway), the durable queue
// (committer, dispatcher, purger) and the admin API, reloads the config on
// SIGHUP or file change, and shuts everything down in order.
//
// cmd/fanout only parses flags and calls Start and Shutdown; end-to-end
// tests start a whole Server on loopback ports the same way.
package server
