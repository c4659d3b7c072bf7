package dataplane

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// h1Request is what the server loop gives the handler for a request: the
// request, its URL and its context, allocated together and kept by the
// connection for its next request, unless something may still hold them.
// The one thing that can is a goroutine waiting for the request to end:
// the ReverseProxy path, a pool at its limit or a DNS lookup wait on the
// context (Done, or context.AfterFunc and the contexts derived from it,
// which call Done). Whoever merely calls Err or Value does so while the
// request is being served. The direct path to an HTTP/1.1 cluster waits on
// nothing, so a keep-alive connection serves its requests with none of
// the three allocated again.
type h1Request struct {
	ctx  requestContext
	tmpl http.Request // no fields but the context: what req starts from
	req  http.Request
	url  url.URL
}

func newH1Request(base context.Context) *h1Request {
	x := &h1Request{ctx: requestContext{base: base}}
	x.tmpl = *(&http.Request{}).WithContext(&x.ctx)
	return x
}

// next readies x for another request and returns it, or a new one when
// something waited on x's context.
func (x *h1Request) next() *h1Request {
	if x.ctx.waited {
		return newH1Request(x.ctx.base)
	}
	x.ctx.err = nil
	x.req = x.tmpl
	x.url = url.URL{}
	return x
}

// requestContext is a request's context: the connection's values, cancelled
// when the client leaves or the response is complete. Its Done channel is
// made only when asked for, and context.AfterFunc and the contexts derived
// from it register with it rather than starting a goroutine.
type requestContext struct {
	base context.Context

	cancelState
	afters []*func()
	waited bool // Done or AfterFunc was called
}

func (x *requestContext) Deadline() (time.Time, bool) { return x.base.Deadline() }
func (x *requestContext) Value(key any) any           { return x.base.Value(key) }

func (x *requestContext) Done() <-chan struct{} {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.wait()
	return x.doneLocked()
}

// wait notes that something waits on x. A context derived from x asks for
// Done once while it is made, during the request, and again from its
// goroutine, possibly after the request's end, when the connection's loop
// reads waited without the lock (next): only the first call writes.
func (x *requestContext) wait() {
	if !x.waited {
		x.waited = true
	}
}

// AfterFunc is what context.AfterFunc, and a context derived from x, use
// to hear of x's end: f runs in its own goroutine once x is cancelled.
func (x *requestContext) AfterFunc(f func()) (stop func() bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.wait()
	if x.err != nil {
		go f()
		return func() bool { return false }
	}
	p := &f
	x.afters = append(x.afters, p)
	return func() bool {
		x.mu.Lock()
		defer x.mu.Unlock()
		for i, q := range x.afters {
			if q == p {
				x.afters = append(x.afters[:i], x.afters[i+1:]...)
				return true
			}
		}
		return false
	}
}

// cancel ends x: the client left, or the request is over.
func (x *requestContext) cancel() {
	x.mu.Lock()
	if !x.cancelLocked() {
		x.mu.Unlock()
		return
	}
	afters := x.afters
	x.afters = nil
	x.mu.Unlock()
	for _, f := range afters {
		go (*f)()
	}
}
