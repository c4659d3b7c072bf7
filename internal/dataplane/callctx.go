package dataplane

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// callContext is the context of a call on the direct path (proxy.go). It costs
// less than the context.WithValue and WithCancelCause it stands for, and
// than watching each attempt's connection with context.AfterFunc: it is
// part of the call, carries the call as its value, registers with the
// client's request context once, and when it is cancelled (the client went
// away, the watchdog fired, the call ended) it interrupts the connection of
// the attempt in progress itself.
type callContext struct {
	parent     context.Context
	c          *call
	stopParent func() bool
	client     *h1ServerConn // whose watch tells of the client leaving (watchCall); nil: stopParent

	cancelState
	cause error
	// conn is the connection of the attempt in progress, and cancelled is
	// set with err: an attempt's watch and unwatch use the two without the
	// lock. Each stores one and then loads the other, as cancelling does,
	// so a cancel either sees the connection or is seen by unwatch.
	conn      atomic.Pointer[h1Conn]
	cancelled atomic.Bool
	// untouched is set by end when nothing had asked for Done and no
	// attempt's connection was still watched.
	untouched bool
	// parentStopped is set by end when it stopped listening to the parent
	// before the parent was cancelled: parentDone will not run.
	parentStopped bool
}

// cancelState is what the contexts written here (callContext,
// requestContext) keep of their cancellation: the error once cancelled,
// and a Done channel made only when asked for.
type cancelState struct {
	mu   sync.Mutex
	done chan struct{}
	err  error
}

// doneLocked is Done; mu is held.
func (s *cancelState) doneLocked() <-chan struct{} {
	if s.done == nil {
		s.done = make(chan struct{})
		if s.err != nil {
			close(s.done)
		}
	}
	return s.done
}

func (s *cancelState) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// cancelLocked sets Err to context.Canceled and closes Done, and reports
// false when that was done before; mu is held.
func (s *cancelState) cancelLocked() bool {
	if s.err != nil {
		return false
	}
	s.err = context.Canceled
	if s.done != nil {
		close(s.done)
	}
	return true
}

func (x *callContext) init(parent context.Context, c *call) {
	x.parent, x.c = parent, c
	if x.client = watchCall(parent, x); x.client == nil {
		x.stopParent = context.AfterFunc(parent, x.parentDone)
	}
}

func (x *callContext) parentDone() { x.cancelWith(context.Cause(x.parent)) }

func (x *callContext) Deadline() (time.Time, bool) { return x.parent.Deadline() }

func (x *callContext) Done() <-chan struct{} {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.doneLocked()
}

func (x *callContext) Value(key any) any {
	if key == (callKey{}) {
		return x.c
	}
	return x.parent.Value(key)
}

// causeErr is why the context was cancelled; nil while it is not.
func (x *callContext) causeErr() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.cause
}

// cancelWith cancels the context with cause (nil: context.Canceled).
func (x *callContext) cancelWith(cause error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.cancelWithLocked(cause)
}

func (x *callContext) cancelWithLocked(cause error) {
	if !x.cancelLocked() {
		return
	}
	if cause == nil {
		cause = context.Canceled
	}
	x.cause = cause
	x.cancelled.Store(true)
	if pc := x.conn.Load(); pc != nil {
		pc.interrupt()
	}
}

// end releases the context when its call is over, and sets untouched.
func (x *callContext) end() {
	// A call the client's watch knows of stays known to it until its
	// request ends (h1ServerConn.end), and is recycled only then.
	if x.client == nil && x.stopParent != nil {
		x.parentStopped = x.stopParent()
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.untouched = x.done == nil && x.conn.Load() == nil
	x.cancelWithLocked(nil)
}

// watch makes pc the connection a cancellation interrupts.
func (x *callContext) watch(pc *h1Conn) {
	x.conn.Store(pc)
	if x.cancelled.Load() {
		pc.interrupt()
	}
}

// unwatch ends watching pc and reports whether it was left alone: when it
// was not, a cancel may interrupt it yet.
func (x *callContext) unwatch(pc *h1Conn) bool {
	x.conn.CompareAndSwap(pc, nil)
	return !x.cancelled.Load()
}

// canceler is what a watchdog cancels: a call's context, or the cancel
// func of a context.WithCancelCause.
type canceler interface{ cancelWith(error) }

type cancelFunc context.CancelCauseFunc

func (f cancelFunc) cancelWith(err error) { f(err) }

// connWatch ends the watch over an attempt's connection, whichever way it
// is watched.
type connWatch struct {
	x    *callContext
	stop func() bool // of context.AfterFunc
	pc   *h1Conn
}

// watchConn interrupts pc's reads and writes when ctx is cancelled.
func watchConn(ctx context.Context, pc *h1Conn) connWatch {
	if x, ok := ctx.(*callContext); ok {
		x.watch(pc)
		return connWatch{x: x, pc: pc}
	}
	return connWatch{stop: context.AfterFunc(ctx, pc.interrupt)}
}

// end reports whether the connection was left alone, so that it can be reused.
func (w connWatch) end() bool {
	if w.x != nil {
		return w.x.unwatch(w.pc)
	}
	return w.stop()
}
