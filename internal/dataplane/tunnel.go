package dataplane

import (
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// idleTunnel is the upstream side of a connection switched to another
// protocol (WebSocket). Envoy keeps applying the stream idle timeout to an
// upgraded stream, so App Mesh closed a WebSocket on which neither side
// sent anything for the route's timeout.idle (5 minutes by default);
// clients written against it reconnect rather than hold dead connections.
// Closing the upstream side ends the tunnel: the proxy then closes the
// client's connection too.
type idleTunnel struct {
	io.ReadWriteCloser
	idle time.Duration
	last atomic.Int64 // unix nanoseconds of the latest byte either way

	mu     sync.Mutex
	timer  *time.Timer
	closed bool
}

// newIdleTunnel wraps rwc; idle 0 means no idle limit.
func newIdleTunnel(rwc io.ReadWriteCloser, idle time.Duration) io.ReadWriteCloser {
	if idle <= 0 {
		return rwc
	}
	t := &idleTunnel{ReadWriteCloser: rwc, idle: idle}
	t.last.Store(time.Now().UnixNano())
	t.mu.Lock()
	t.timer = time.AfterFunc(idle, t.check)
	t.mu.Unlock()
	return t
}

// check closes the tunnel if it has been idle long enough, else looks again
// when it would be.
func (t *idleTunnel) check() {
	quiet := time.Since(time.Unix(0, t.last.Load()))
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	if quiet < t.idle {
		t.timer.Reset(t.idle - quiet)
		return
	}
	t.closed = true
	t.ReadWriteCloser.Close()
}

func (t *idleTunnel) Read(p []byte) (int, error) {
	n, err := t.ReadWriteCloser.Read(p)
	if n > 0 {
		t.last.Store(time.Now().UnixNano())
	}
	return n, err
}

func (t *idleTunnel) Write(p []byte) (int, error) {
	n, err := t.ReadWriteCloser.Write(p)
	if n > 0 {
		t.last.Store(time.Now().UnixNano())
	}
	return n, err
}

func (t *idleTunnel) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.timer.Stop()
	if t.closed {
		return nil
	}
	t.closed = true
	return t.ReadWriteCloser.Close()
}
