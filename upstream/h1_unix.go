//go:build unix

package upstream

import (
	"errors"
	"syscall"
)

// h1Supported: the fast path can check an idle connection before reuse
// here (probe.alive), so it is used.
const h1Supported = true

// probe peeks at an idle connection without blocking. Its callback is
// made once per connection so that a check allocates nothing.
type probe struct {
	rc    syscall.RawConn // nil: cannot check
	peek  func(fd uintptr)
	state *probeState
}

type probeState struct {
	alive bool
	buf   [1]byte
}

func newProbe(rc syscall.RawConn) probe {
	st := &probeState{}
	return probe{rc: rc, state: st, peek: func(fd uintptr) {
		_, _, err := syscall.Recvfrom(int(fd), st.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		st.alive = errors.Is(err, syscall.EAGAIN)
	}}
}

// alive peeks at the connection (one recvfrom with MSG_PEEK|MSG_DONTWAIT):
// only "nothing to read yet" (EAGAIN) means alive. EOF, an error or any
// byte waiting (an unsolicited response, a stray empty line) means the
// connection must not carry another request. A probe without a raw
// connection cannot check and reports false.
func (p probe) alive() bool {
	if p.rc == nil {
		return false
	}
	p.state.alive = false
	if err := p.rc.Control(p.peek); err != nil {
		return false
	}
	return p.state.alive
}
