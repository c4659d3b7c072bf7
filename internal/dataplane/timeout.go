package dataplane

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
)

// Timeouts (reference §3, §4.7), as Envoy applies them at a route:
//
//   - The request timeout is the router route's timeout.perRequest, else the
//     target VirtualNode listener's, else App Mesh's 15 s; 0 disables it. It
//     runs from the end of the client's request body (at once for a request
//     without one) until the response is complete, across all retries: a
//     response that has not started by then gets 504 (gRPC:
//     DEADLINE_EXCEEDED), one that is streaming is cut off. Long downloads
//     and streams need a larger value or 0, as they did in App Mesh.
//   - A retry policy's perRetryTimeout bounds each attempt the same way; an
//     attempt that runs out is retried when the policy retries resets.
//   - The stream idle timeout is the router route's timeout.idle, else
//     Envoy's 5 minutes; 0 disables it. A request whose body and response
//     both stay silent that long gets 408 "stream timeout" (gRPC:
//     DEADLINE_EXCEEDED), or is cut off when its response has started.
//   - A VirtualNode listener's timeout.idle is how long an idle upstream
//     connection to its endpoints is kept (default 300 s; cluster.go).
//
// Connections switched to another protocol (WebSocket) keep only the stream
// idle timeout once the upstream has agreed to switch, as Envoy does: they
// last until either side closes or neither sends anything for that long.

// streamIdleDefault is Envoy's default stream idle timeout. A variable so
// tests can shorten it.
var streamIdleDefault = 5 * time.Minute

var (
	errRequestTimeout = errors.New("upstream request timeout")
	errPerTryTimeout  = errors.New("upstream per-try timeout")
	errStreamIdle     = errors.New("stream idle timeout")
)

// localError is a failure the gateway answers on its own behalf with code,
// flag and msg (and, for a gRPC client, grpc when it is not codes.OK, else
// the status code's usual mapping).
type localError struct {
	code int
	flag string
	msg  string
	grpc codes.Code
}

func (e *localError) Error() string { return e.msg }

// watchdog enforces a request's timeout and stream idle timeout with one
// timer, and cancels the request's upstream context with the cause.
//
// Watchdogs are pooled, and a stopped one leaves its timer running: the
// next call that gets it resets the timer only when it would fire too late
// for it. A request lasts microseconds and a timeout seconds, so a busy
// watchdog resets its timer about once per timeout, not once per request;
// a timer that fires for a call that is not due yet (or for none) sets
// itself for the call in progress, or stops.
type watchdog struct {
	cancel  canceler
	timeout time.Duration // 0: none
	idle    time.Duration // 0: none
	base    time.Time
	last    atomic.Int64 // last activity, nanoseconds since base

	armedAtStart bool // newWatchdog armed it: arm has nothing to do

	mu       sync.Mutex
	timer    *time.Timer
	deadline time.Duration // since base; 0 until armed
	stopped  bool
	pending  bool      // the timer will fire, at fireAt at the latest
	fireAt   time.Time // when pending
	fired    bool      // the timer cancelled the call: w is not reused
}

// watchdogs recycles the watchdogs, and their timers, of calls whose
// watchdog nothing can reach once they are over.
var watchdogs sync.Pool

// newWatchdog starts the watch of a request received at start. armed
// starts its timeout too, from start, for a request without a body.
func newWatchdog(cancel canceler, timeout, idle time.Duration, start time.Time, armed bool) *watchdog {
	w, _ := watchdogs.Get().(*watchdog)
	if w == nil {
		w = &watchdog{}
	}
	w.start(cancel, timeout, idle, start, armed)
	return w
}

// start readies w, new or released, for a call.
func (w *watchdog) start(cancel canceler, timeout, idle time.Duration, start time.Time, armed bool) {
	w.last.Store(0)
	// Under the lock: the timer of w's previous call may be firing.
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cancel, w.timeout, w.idle, w.base = cancel, timeout, idle, start
	w.deadline, w.stopped, w.fired = 0, false, false
	w.armedAtStart = armed && timeout > 0
	if w.armedAtStart {
		w.deadline = timeout
	}
	if idle > 0 || w.deadline != 0 {
		// start was just taken: the time since is the routing's few
		// microseconds, by which the timer may fire late.
		w.scheduleAt(0)
	}
}

// touch records activity on the stream. Not once a deadline no later
// than the idle limit is armed: the idle limit, counted from any activity
// after that, can only come after the deadline, and the touch would read
// the clock for nothing. The defaults, 15 s and 5 minutes, are so.
func (w *watchdog) touch() {
	if w.idle > 0 && !(w.armedAtStart && w.timeout <= w.idle) {
		w.last.Store(int64(time.Since(w.base)))
	}
}

// arm starts the request timeout; later calls do nothing.
func (w *watchdog) arm() {
	if w.timeout <= 0 || w.armedAtStart {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped || w.deadline != 0 {
		return
	}
	w.deadline = time.Since(w.base) + w.timeout
	w.schedule()
}

// schedule makes the timer fire by the earlier of the deadline and the
// idle limit; w.mu is held.
func (w *watchdog) schedule() { w.scheduleAt(time.Since(w.base)) }

// scheduleAt is schedule at now, the time since base.
func (w *watchdog) scheduleAt(now time.Duration) {
	next := time.Duration(-1)
	if w.deadline != 0 {
		next = w.deadline - now
	}
	if w.idle > 0 {
		if d := time.Duration(w.last.Load()) + w.idle - now; next < 0 || d < next {
			next = d
		}
	}
	if next < 0 {
		next = 0
	}
	at := w.base.Add(now + next)
	if w.pending && !w.fireAt.After(at) {
		return // it fires in time, and then looks again
	}
	if w.timer == nil {
		w.timer = time.AfterFunc(next, w.fire)
	} else {
		w.timer.Reset(next)
	}
	w.pending, w.fireAt = true, at
}

func (w *watchdog) fire() {
	w.mu.Lock()
	w.pending = false
	if w.stopped {
		w.mu.Unlock()
		return
	}
	now := time.Since(w.base)
	var cause error
	switch {
	case w.deadline != 0 && now >= w.deadline:
		cause = errRequestTimeout
	case w.idle > 0 && now-time.Duration(w.last.Load()) >= w.idle:
		cause = errStreamIdle
	default:
		w.scheduleAt(now)
		w.mu.Unlock()
		return
	}
	w.stopped, w.fired = true, true
	cancel := w.cancel
	w.mu.Unlock()
	cancel.cancelWith(cause)
}

// stop ends the watch without cancelling anything, and stops the timer.
func (w *watchdog) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	if w.timer != nil && w.timer.Stop() {
		w.pending = false
	}
}

// recycle ends the watch without cancelling anything and makes w
// available to another call, its timer still running (see watchdog),
// unless it cancelled its own; nothing may use w afterwards. It reports
// whether w was recycled: if not, its timer fired, and may yet be about
// to cancel what it was given.
func (w *watchdog) recycle() bool {
	if !w.release() {
		return false
	}
	watchdogs.Put(w)
	return true
}

// release is recycle without the pool.
func (w *watchdog) release() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.cancel = nil
	return !w.fired
}

// tryTimer bounds one attempt; it starts when the attempt's request has
// been sent.
type tryTimer struct {
	d      time.Duration
	cancel context.CancelCauseFunc

	mu      sync.Mutex
	t       *time.Timer
	stopped bool
}

func (t *tryTimer) arm() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped || t.t != nil {
		return
	}
	t.t = time.AfterFunc(t.d, func() { t.cancel(errPerTryTimeout) })
}

func (t *tryTimer) stop() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	if t.t != nil {
		t.t.Stop()
	}
}

// timeoutError is what an upstream exchange cut short by cause becomes.
func timeoutError(cause error) *localError {
	switch {
	case errors.Is(cause, errStreamIdle):
		return &localError{code: 408, flag: flagStreamIdle, msg: "stream timeout", grpc: codes.DeadlineExceeded}
	case errors.Is(cause, errRequestTimeout), errors.Is(cause, errPerTryTimeout):
		return &localError{code: 504, flag: flagUpstreamTimeout, msg: "upstream request timeout", grpc: codes.DeadlineExceeded}
	}
	return nil
}

// localErrorReply answers a localError, with its own gRPC status when it has one.
func (p *Plane) localErrorReply(e *exchange, le *localError) {
	if le.grpc != codes.OK && isGRPC(e.r) {
		p.localGRPCReply(e, le.grpc, le.flag, le.msg)
		return
	}
	p.localReply(e, le.code, le.flag, le.msg)
}
