//go:build !unix

package upstream

import "syscall"

// h1Supported: the fast path cannot peek at an idle connection here, so
// it cannot tell whether bytes arrived while the connection was idle;
// every request goes through the http.Transport.
const h1Supported = false

// probe cannot peek here: no connection counts as reusable.
type probe struct{}

func newProbe(syscall.RawConn) probe { return probe{} }

func (probe) alive() bool { return false }
