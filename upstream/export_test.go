package upstream

import "time"

// AgeIdle makes every idle connection of c's fast path look idle for d
// longer than it has been, so that a test reaches the checks of long-idle
// connections without waiting for the wall clock.
func AgeIdle(c *Client, d time.Duration) {
	p := c.h1
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, h := range p.hosts {
		for _, pc := range h.idle {
			pc.idleAt = pc.idleAt.Add(-d)
		}
	}
}
