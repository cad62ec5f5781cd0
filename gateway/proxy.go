package gateway

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"

	"github.com/fanouthq/fanout/upstream"
)

// copyBufPool holds the buffers that stream proxied bodies.
var copyBufPool = sync.Pool{New: func() any {
	b := make([]byte, 32<<10)
	return &b
}}

// errAbort marks a proxied body that failed after the status was sent.
var errAbort = errors.New("the target's response body failed after the status was sent")

// proxy answers with resp as is: status, headers without the hop-by-hop
// ones (plus Fanout-Message-Id and Fanout-Target), body streamed, trailers.
// It closes resp.Body. When the target's body fails midway, the status is
// already sent, so the response is aborted (http.ErrAbortHandler): the
// client sees a broken response, never a truncated one that looks whole.
func (c *call) proxy(resp *http.Response, target string) {
	defer resp.Body.Close()
	upstream.RemoveHopByHop(resp.Header)
	h := c.w.Header()
	for k, vs := range resp.Header {
		h[k] = vs
	}
	h[upstream.HeaderMessageID] = []string{c.id}
	h[upstream.HeaderTarget] = []string{target}
	announced := len(resp.Trailer)
	for k := range resp.Trailer {
		h.Add("Trailer", k)
	}
	c.w.WriteHeader(resp.StatusCode)
	c.status = resp.StatusCode

	// A body of unknown length may be a stream (server-sent events, a long
	// poll): send each piece as it comes.
	var rc *http.ResponseController
	if resp.ContentLength < 0 {
		rc = http.NewResponseController(c.w)
		_ = rc.Flush()
	}
	readErr, writeErr := copyBody(c.w, resp.Body, rc)
	if writeErr != nil {
		return // the client left; nothing more to say to it
	}
	if readErr != nil {
		c.g.log.LogAttrs(c.r.Context(), slog.LevelWarn, "proxied response aborted",
			slog.String(keyRoute, c.rt.name), slog.String(keyTarget, target),
			slog.String(keyMessageID, c.id), slog.String(keyError, readErr.Error()))
		c.aborted = true
		panic(http.ErrAbortHandler)
	}
	for k, vs := range resp.Trailer {
		if announced > 0 {
			h[k] = vs
		} else {
			h[http.TrailerPrefix+k] = vs
		}
	}
}

// copyBody streams src to dst, flushing after each write when rc is set.
func copyBody(dst io.Writer, src io.Reader, rc *http.ResponseController) (readErr, writeErr error) {
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	buf := *bp
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return nil, werr
			}
			if rc != nil {
				if ferr := rc.Flush(); ferr != nil {
					return nil, ferr
				}
			}
		}
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return errors.Join(errAbort, err), nil
		}
	}
}
