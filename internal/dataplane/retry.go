package dataplane

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshgate/meshgate/internal/ir"
	"google.golang.org/grpc/codes"
)

// Retries (reference §3). Every request to a VirtualNode goes through a
// call: the proxy's RoundTripper makes one attempt per endpoint it tries,
// each holding a slot of the node listener's connection pool, and retries
// while the route's policy (App Mesh's default when there is no route, as
// for a service whose provider is a node) says the attempt's outcome is
// worth another one, the request can be replayed and the request timeout
// has not passed. A retry goes to an endpoint the request has not tried
// when there is one, after a jittered back-off (Envoy's: up to 25 ms, then
// 50, 100, at most 250). The client sees only the final attempt; retries
// show in meshgate_upstream_retries_total.
//
// What is retried:
//
//	server-error      HTTP 500-508, 510, 511; no response (reset, connect failure, refused stream, per-try timeout)
//	gateway-error     HTTP 502, 503, 504; no response
//	client-error      HTTP 409
//	stream-error      an HTTP/2 stream the upstream refused
//	connection-error  a failed connect
//	gRPC events       grpc-status in a trailers-only response: cancelled 1, deadline-exceeded 4,
//	                  resource-exhausted 8, internal 13, unavailable 14
//	default           HTTP 503, gRPC unavailable, connect failure, refused stream, reset
//
// Only what can be replayed is retried: a request body is kept, as it
// streams to the first attempt, up to maxReplayBody bytes. A body known to
// be larger, one that turns out larger, or one the upstream is still
// reading when its attempt fails, is not retried.

// maxReplayBody is the largest request body kept for replay.
const maxReplayBody = 64 << 10

type retryOn uint32

const (
	retry5xx retryOn = 1 << iota
	retryGatewayError
	retry409
	retryRefusedStream
	retryConnectFailure
	retryReset
	retry503
	retryGRPCCancelled
	retryGRPCDeadline
	retryGRPCResource
	retryGRPCInternal
	retryGRPCUnavailable
)

var retryEvents = map[string]retryOn{
	"server-error":       retry5xx,
	"gateway-error":      retryGatewayError,
	"client-error":       retry409,
	"stream-error":       retryRefusedStream,
	"connection-error":   retryConnectFailure,
	"cancelled":          retryGRPCCancelled,
	"deadline-exceeded":  retryGRPCDeadline,
	"resource-exhausted": retryGRPCResource,
	"internal":           retryGRPCInternal,
	"unavailable":        retryGRPCUnavailable,
}

type retryPolicy struct {
	on     retryOn
	max    int
	perTry time.Duration
}

var defaultRetry = compileRetry(ir.DefaultRetryPolicy())

func compileRetry(p *ir.RetryPolicy) retryPolicy {
	out := retryPolicy{max: p.MaxRetries, perTry: time.Duration(p.PerRetryTimeoutMillis) * time.Millisecond}
	if p.Default {
		out.on = retry503 | retryGRPCUnavailable | retryConnectFailure | retryRefusedStream | retryReset
	}
	for _, list := range [][]string{p.HTTPEvents, p.TCPEvents, p.GRPCEvents} {
		for _, ev := range list {
			out.on |= retryEvents[ev]
		}
	}
	return out
}

// outcome is what one attempt got.
type outcome struct {
	kind   outcomeKind
	status int // HTTP status of a response
	grpc   int // grpc-status of a trailers-only response; -1 without one
}

type outcomeKind int

const (
	outResponse outcomeKind = iota
	outConnectFailure
	outReset
	outRefusedStream
	outPerTryTimeout
	// outAborted: the client went away, or the request timed out or idled;
	// nothing more is tried and the endpoint is not blamed.
	outAborted
)

func classify(res *http.Response, facts *fieldFacts, err error, ctx, actx context.Context) outcome {
	if err == nil {
		o := outcome{kind: outResponse, status: res.StatusCode, grpc: -1}
		if g := facts.first(res.Header, factGrpcStatus); g != "" {
			if n, err := strconv.Atoi(g); err == nil {
				o.grpc = n
			}
		}
		return o
	}
	var op *net.OpError
	switch {
	case ctx.Err() != nil:
		return outcome{kind: outAborted}
	case errors.Is(context.Cause(actx), errPerTryTimeout):
		return outcome{kind: outPerTryTimeout}
	case errors.As(err, &op) && op.Op == "dial":
		return outcome{kind: outConnectFailure}
	case strings.Contains(err.Error(), "REFUSED_STREAM"):
		// The HTTP/2 stream errors of net/http are not exported.
		return outcome{kind: outRefusedStream}
	}
	return outcome{kind: outReset}
}

func (p retryPolicy) retries(o outcome) bool {
	noResponse := retry5xx | retryGatewayError | retryReset
	switch o.kind {
	case outResponse:
		s := o.status
		switch {
		case p.on&retry5xx != 0 && s >= 500 && s <= 511 && s != 509,
			p.on&retryGatewayError != 0 && s >= 502 && s <= 504,
			p.on&retry409 != 0 && s == http.StatusConflict,
			p.on&retry503 != 0 && s == http.StatusServiceUnavailable:
			return true
		}
		switch codes.Code(o.grpc) {
		case codes.Canceled:
			return p.on&retryGRPCCancelled != 0
		case codes.DeadlineExceeded:
			return p.on&retryGRPCDeadline != 0
		case codes.ResourceExhausted:
			return p.on&retryGRPCResource != 0
		case codes.Internal:
			return p.on&retryGRPCInternal != 0
		case codes.Unavailable:
			return p.on&retryGRPCUnavailable != 0
		}
	case outConnectFailure:
		return p.on&(noResponse|retryConnectFailure) != 0
	case outRefusedStream:
		return p.on&(noResponse|retryRefusedStream) != 0
	case outReset, outPerTryTimeout:
		return p.on&noResponse != 0
	}
	return false
}

// reason is the metric label of a retried outcome.
func (o outcome) reason() string {
	switch o.kind {
	case outConnectFailure:
		return "connect-failure"
	case outRefusedStream:
		return "refused-stream"
	case outPerTryTimeout:
		return "per-try-timeout"
	case outReset:
		return "reset"
	}
	if o.grpc > 0 {
		return "grpc-" + strings.ToLower(codes.Code(o.grpc).String())
	}
	return codeLabel(o.status)
}

// failed reports whether the outcome counts against the endpoint for
// outlier detection; known is false when a gRPC response's status is still
// to come in its trailers.
func (o outcome) failed(res *http.Response, facts *fieldFacts) (failed, known bool) {
	switch o.kind {
	case outAborted:
		return false, false
	case outResponse:
		if o.status >= 500 {
			return true, true
		}
		if o.grpc >= 0 {
			return grpcServerError(o.grpc), true
		}
		if strings.HasPrefix(facts.first(res.Header, factContentType), "application/grpc") {
			return false, false
		}
		return false, true
	}
	return true, true
}

type callKey struct{}

// call is one request's way to a cluster: its policy and the attempts made.
type call struct {
	callState
	// Kept from one call to the next, and overwritten before they are
	// read: with many requests in flight, each call's memory is cold,
	// and what recycle need not clear it does not touch.
	res h1Response // the response on the direct path (forwarded.res)
	// outReq is the request sent on the direct path; it starts as outTmpl,
	// which has no field but its context, ctx.
	outReq, outTmpl http.Request
}

// callState is what a call starts without.
type callState struct {
	up     *upstreams
	e      *exchange
	cl     *cluster
	eps    []*endpoint
	first  *endpoint
	policy retryPolicy
	wd     *watchdog

	// held is what the response that went to the client holds until
	// forward returns (an upgraded connection's pool slot and timers).
	held func()

	// h1 is set when the call takes the direct path to a cleartext
	// HTTP/1.1 cluster (proxy.go), with what it forwards.
	h1   *h1Transport
	fw   forwarded
	out  url.URL
	ctx  callContext  // the call's context on the direct path
	body responseBody // the response's, on the direct path
	// cancel cancels the call's context off the direct path.
	cancel context.CancelCauseFunc
}

// calls recycles the calls that nothing can reach once they are over
// (reusable), so that a keep-alive request on the direct path allocates
// neither the call nor its request, response and context.
var calls = sync.Pool{New: func() any {
	c := new(call)
	c.outTmpl = *(&http.Request{}).WithContext(&c.ctx)
	return c
}}

func newCall() *call { return calls.Get().(*call) }

// recycle returns a call that reusable approved to the pool.
func (c *call) recycle() {
	c.callState = callState{}
	calls.Put(c)
}

// reusable reports whether nothing can reach c once it has ended: it took
// the direct path without a request body (whose reader outlives the call)
// or a protocol switch, heard of its client through the server loop or
// stopped listening to the request's context before it was cancelled, and
// nobody waited on its context. Off the server loop, net/http's server
// writes a response's trailers after the handler returns, from values
// that may be the call's: a response with trailers keeps its call.
func (c *call) reusable(r *http.Request) bool {
	if c.h1 == nil || c.held != nil || r.ContentLength != 0 || !c.ctx.untouched {
		return false
	}
	return c.ctx.client != nil || (c.ctx.parentStopped && len(c.res.res.Trailer) == 0)
}

// noCancel is the cancel func of an attempt that shares its call's context.
func noCancel(error) {}

func callOf(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	return c
}

// forward proxies a routed request to node n, listener port (0: the node's
// first), with the timeouts and retries that apply to it.
func (p *Plane) forward(e *exchange, n *upstreamNode, port int) {
	r := e.r
	cl, eps, reason := p.up.target(r.Context(), n, port, e.start)
	if reason != "" {
		p.localReply(e, http.StatusServiceUnavailable, flagNoHealthy, reason)
		return
	}
	cfg := cl.config()
	c := newCall()
	c.up, c.e, c.cl, c.eps, c.policy = p.up, e, cl, eps, defaultRetry
	timeout, idle := responseTimeout, streamIdleDefault
	if t := cfg.policy.Timeout; t != nil && t.PerRequestMillis != nil {
		timeout = time.Duration(*t.PerRequestMillis) * time.Millisecond
	}
	if rt := e.d.Route; rt != nil {
		if rt.Retry != nil {
			c.policy = compileRetry(rt.Retry)
		}
		if t := rt.Timeout; t != nil {
			if t.PerRequestMillis != nil {
				timeout = time.Duration(*t.PerRequestMillis) * time.Millisecond
			}
			if t.IdleMillis != nil {
				idle = time.Duration(*t.IdleMillis) * time.Millisecond
			}
		}
	}
	c.first = cl.pick(eps, nil)
	e.endpoint = c.first.addr

	// The server loop hands a request with a protocol switch, 100-continue
	// or trailers to net/http: one it parsed is direct.
	if ct := cl.tr.Load(); ct.h1 != nil && (e.sc != nil || direct(r)) {
		c.h1 = ct.h1
		c.ctx.init(r.Context(), c)
		c.wd = newWatchdog(&c.ctx, timeout, idle, e.start, r.ContentLength == 0)
		returned := false
		defer func() {
			// A watchdog that fired may still be about to cancel
			// c.ctx: then c is not reused.
			quiet := c.end(r)
			switch {
			case !returned || !quiet || !c.reusable(r):
				e.kept = true
			case c.ctx.client != nil:
				// Its client's watch may cancel it until the
				// request ends: the loop recycles it then.
				c.ctx.client.spare = c
			default:
				// The access log may read it: serve recycles it
				// with the exchange.
				e.spare = c
			}
		}()
		p.proxyH1(e, c)
		returned = true
		return
	}
	e.kept = true // the ReverseProxy's goroutines may outlive the call
	ctx, cancel := context.WithCancelCause(context.WithValue(r.Context(), callKey{}, c))
	c.cancel = cancel
	c.wd = newWatchdog(cancelFunc(cancel), timeout, idle, e.start, r.ContentLength == 0)
	defer c.end(r)
	p.up.proxy.ServeHTTP(e, r.WithContext(ctx))
}

// end releases what the call holds once its response is over. It reports
// whether the watchdog was recycled, which means it will not cancel the
// call's context late.
func (c *call) end(r *http.Request) (quiet bool) {
	if c.held == nil && r.ContentLength == 0 {
		// Without a request body (whose reader touches the watchdog)
		// or an upgraded connection, nothing outlives the call that
		// could reach its watchdog.
		quiet = c.wd.recycle()
	} else {
		c.wd.stop()
		if c.held != nil {
			c.held()
		}
	}
	if c.cancel != nil {
		c.cancel(nil)
	} else {
		c.ctx.end()
	}
	return quiet
}

// cause is why the call, else its attempt actx, was cancelled.
func (c *call) cause(actx context.Context) error {
	if err := c.ctx.causeErr(); err != nil {
		return err
	}
	return context.Cause(actx)
}

// retryTransport is the proxy's RoundTripper: it sends each attempt of a
// call through the transport of the call's cluster.
type retryTransport struct{}

func (retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c := callOf(req.Context())
	if c == nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errors.New("dataplane: request without a call")
	}
	return c.roundTrip(req)
}

// facts is what the parser noted of res when res came on the direct
// path, nil when it did not.
func (c *call) facts(res *http.Response) *fieldFacts {
	if res != nil && res == &c.res.res {
		return &c.res.facts
	}
	return nil
}

func (c *call) roundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	var body *replayBody
	if req.Body != nil && req.Body != http.NoBody {
		body = newReplayBody(req.Body, req.ContentLength, c.policy.max > 0, c.wd)
	} else {
		c.wd.arm()
	}
	ep := c.first
	var tried []*endpoint
	for attempt := 0; ; attempt++ {
		final := attempt >= c.policy.max
		release, ok := c.cl.pool.acquire(ctx)
		if !ok {
			if body != nil {
				body.closeAttempts()
			}
			if ctx.Err() != nil {
				return nil, c.aborted(ctx, ctx.Err())
			}
			c.up.metrics.res.upstreamOverflows.WithLabelValues(c.cl.node).Inc()
			return nil, &localError{code: http.StatusServiceUnavailable, flag: flagOverflow, msg: "upstream overflow: virtual node " + c.cl.node + " port " + strconv.Itoa(c.cl.port) + " is at its connectionPool limit"}
		}
		var tt *tryTimer
		var tr http.RoundTripper
		areq, actx, acancel := req, ctx, noCancel
		if c.h1 != nil && c.policy.perTry == 0 {
			// An attempt on the direct path needs no context of its
			// own: nothing but the call's ends it early, and it is
			// abandoned by closing its connection.
			c.out.Host = ep.addr
		} else {
			actx, acancel = context.WithCancelCause(ctx)
			if c.policy.perTry > 0 {
				tt = &tryTimer{d: c.policy.perTry, cancel: acancel}
			}
			scheme := "http"
			if c.h1 == nil {
				tr, scheme = c.cl.transport()
			}
			areq = req.WithContext(actx)
			u := *req.URL
			u.Scheme, u.Host = scheme, ep.addr
			areq.URL = &u
		}
		if body != nil {
			areq.Body = body.attempt(final, func() { c.wd.arm(); tt.arm() })
		} else {
			tt.arm()
		}
		c.e.endpoint = ep.addr
		var res *http.Response
		var err error
		if c.h1 != nil {
			res, err = c.h1.roundTrip(areq, &c.fw)
		} else {
			res, err = tr.RoundTrip(areq)
		}
		facts := c.facts(res)
		o := classify(res, facts, err, ctx, actx)
		failed, known := o.failed(res, facts)
		if known {
			c.cl.report(ep, c.eps, failed)
		}
		if !final && c.policy.retries(o) && body.rewind() {
			if res != nil {
				io.CopyN(io.Discard, res.Body, 4<<10)
				res.Body.Close()
			}
			tt.stop()
			acancel(nil)
			release()
			c.up.metrics.res.retries.WithLabelValues(c.cl.node, o.reason()).Inc()
			tried = append(tried, ep)
			if !sleep(ctx, retryBackoff(attempt)) {
				if body != nil {
					body.closeAttempts()
				}
				return nil, c.aborted(ctx, ctx.Err())
			}
			ep = c.cl.pick(c.eps, tried)
			continue
		}
		if err != nil {
			tt.stop()
			acancel(nil)
			release()
			switch o.kind {
			case outAborted:
				return nil, c.aborted(ctx, err)
			case outPerTryTimeout:
				return nil, timeoutError(errPerTryTimeout)
			}
			return nil, err
		}
		body.settle()
		if res.StatusCode == http.StatusSwitchingProtocols {
			// The connection now belongs to the tunnel: the request timeout
			// no longer applies, the stream idle timeout does (tunnel.go).
			idle := c.wd.idle
			c.wd.stop()
			tt.stop()
			if rwc, ok := res.Body.(io.ReadWriteCloser); ok {
				res.Body = newIdleTunnel(rwc, idle)
			}
			c.held = func() { release(); acancel(nil) }
			return res, nil
		}
		c.wd.touch()
		rb := &c.body
		if c.h1 == nil {
			rb = new(responseBody)
		}
		*rb = responseBody{ReadCloser: res.Body, c: c, res: res, ep: ep, actx: actx, acancel: acancel, tt: tt, release: release, grpcTrailers: !known}
		res.Body = rb
		return res, nil
	}
}

// aborted is the error of a call whose context ended: the request timed
// out or idled (answered with 504 or 408), or the client went away (err
// as is; the error handler sees the client's context).
func (c *call) aborted(ctx context.Context, err error) error {
	if le := timeoutError(c.cause(ctx)); le != nil {
		return le
	}
	return err
}

// retryBackoff is Envoy's fully jittered exponential back-off: up to 25 ms
// before the first retry, doubling, at most 250 ms.
func retryBackoff(attempt int) time.Duration {
	limit := min(25*time.Millisecond<<attempt, 250*time.Millisecond)
	return rand.N(limit) + time.Millisecond
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// responseBody is the body of the response that goes to the client: it
// keeps the stream's idle timer fed, reports a gRPC status that comes in
// trailers to outlier detection, names a timeout that cuts it off in the
// access log, and gives back the attempt's pool slot when closed.
type responseBody struct {
	io.ReadCloser
	c            *call
	res          *http.Response
	ep           *endpoint
	actx         context.Context
	acancel      context.CancelCauseFunc
	tt           *tryTimer
	release      func()
	grpcTrailers bool
	closed       atomic.Bool
}

func (b *responseBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 && err == nil {
		// A read that ends the body ends the call: the stream's idle
		// clock no longer matters, and the clock read is saved.
		b.c.wd.touch()
	}
	switch {
	case err == io.EOF:
		if b.grpcTrailers {
			b.grpcTrailers = false
			if s, convErr := strconv.Atoi(field(b.res.Trailer, "Grpc-Status")); convErr == nil {
				b.c.cl.report(b.ep, b.c.eps, grpcServerError(s))
			}
		}
	case err != nil:
		if le := timeoutError(b.c.cause(b.actx)); le != nil && b.c.e.flags == "" {
			b.c.e.flags = le.flag
		}
	}
	return n, err
}

// rest is the rest of a body that is already in memory (bufferedRest).
func (b *responseBody) rest() []byte {
	r, ok := b.ReadCloser.(bufferedRest)
	if !ok || b.grpcTrailers {
		return nil // a gRPC status in trailers is reported when the body is read
	}
	return r.rest()
}

func (b *responseBody) Close() error {
	err := b.ReadCloser.Close()
	if b.closed.CompareAndSwap(false, true) {
		b.tt.stop()
		b.acancel(nil)
		b.release()
	}
	return err
}

// replayBody is a request body shared by the attempts of a call: it
// streams from the client and keeps what it read, up to maxReplayBody, so
// that a retry can send it again.
type replayBody struct {
	src    io.ReadCloser
	length int64 // Content-Length; -1 when unknown
	wd     *watchdog

	mu       sync.Mutex
	buf      []byte // bytes read from src while recording
	read     int64  // bytes read from src
	record   bool   // keeping what is read
	noReplay bool   // something read was not kept: no more attempts
	final    bool   // the current attempt is the last: stop keeping
	eof      bool
	err      error // src's error other than EOF
	reading  bool  // an attempt is inside src.Read
	cur      *attemptBody
}

var errAttemptOver = errors.New("dataplane: request body of an abandoned attempt")

func newReplayBody(src io.ReadCloser, contentLength int64, retries bool, wd *watchdog) *replayBody {
	rb := &replayBody{src: src, length: contentLength, wd: wd}
	rb.record = retries && contentLength <= maxReplayBody
	rb.noReplay = !rb.record
	return rb
}

// attempt is the body of a new attempt, read from the start; sent is
// called when the attempt has read all of it.
func (rb *replayBody) attempt(final bool, sent func()) *attemptBody {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	rb.final = final
	a := &attemptBody{rb: rb, sent: sent}
	rb.cur = a
	return a
}

// rewind reports whether the body can be sent again and, if so, detaches
// the current attempt from it. A nil body can always be sent again.
func (rb *replayBody) rewind() bool {
	if rb == nil {
		return true
	}
	rb.mu.Lock()
	defer rb.mu.Unlock()
	if rb.noReplay || rb.reading || rb.err != nil {
		return false
	}
	rb.cur = nil
	return true
}

// settle marks the current attempt as the last: its response goes to the
// client, so what the client still sends need not be kept.
func (rb *replayBody) settle() {
	if rb == nil {
		return
	}
	rb.mu.Lock()
	rb.final = true
	rb.mu.Unlock()
}

// closeAttempts detaches every attempt (no more will be made).
func (rb *replayBody) closeAttempts() {
	rb.mu.Lock()
	rb.cur = nil
	rb.mu.Unlock()
}

type attemptBody struct {
	rb   *replayBody
	off  int64
	sent func()
	once sync.Once
}

func (a *attemptBody) Read(p []byte) (int, error) {
	rb := a.rb
	rb.mu.Lock()
	if rb.cur != a {
		rb.mu.Unlock()
		return 0, errAttemptOver
	}
	if a.off < rb.read {
		n := copy(p, rb.buf[a.off:rb.read])
		a.off += int64(n)
		done := a.off == rb.length
		rb.mu.Unlock()
		if done {
			a.once.Do(a.sent)
		}
		return n, nil
	}
	switch {
	case rb.eof:
		rb.mu.Unlock()
		a.once.Do(a.sent)
		return 0, io.EOF
	case rb.err != nil:
		err := rb.err
		rb.mu.Unlock()
		return 0, err
	}
	rb.reading = true
	rb.mu.Unlock()

	n, err := rb.src.Read(p)

	rb.mu.Lock()
	rb.reading = false
	if n > 0 {
		rb.read += int64(n)
		switch {
		case rb.record && !rb.final && len(rb.buf)+n <= maxReplayBody:
			rb.buf = append(rb.buf, p[:n]...)
		default:
			rb.record, rb.noReplay, rb.buf = false, true, nil
		}
		if rb.cur == a {
			a.off += int64(n)
		}
	}
	switch {
	case err == io.EOF:
		rb.eof = true
	case err != nil:
		rb.err = err
	}
	current := rb.cur == a
	done := a.off == rb.length
	rb.mu.Unlock()
	if n > 0 {
		rb.wd.touch()
	}
	if !current {
		return 0, errAttemptOver
	}
	if err == io.EOF || done {
		// A transport need not read past a known length to see EOF.
		a.once.Do(a.sent)
	}
	return n, err
}

// Close leaves the client's body open for a next attempt, unless this is
// the last attempt or the upstream is still waiting for the client's next
// bytes: then nothing will replay the body, and closing it is what ends a
// transport's read of a client that sends no more (a bidi stream that the
// upstream finished).
func (a *attemptBody) Close() error {
	rb := a.rb
	rb.mu.Lock()
	end := rb.cur == a && (rb.final || rb.reading)
	rb.mu.Unlock()
	if end {
		return rb.src.Close()
	}
	return nil
}
