package dataplane

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshgate/meshgate/internal/ir"
	"github.com/meshgate/meshgate/internal/router"
	"google.golang.org/grpc/codes"
)

// Response flags, as Envoy writes them in access logs.
const (
	flagNoRoute         = "NR" // no gateway route, or no route of the virtual router
	flagNoCluster       = "NC" // the target service, router or node does not exist
	flagNoHealthy       = "UH" // the node has no endpoint (DNS empty or failed)
	flagConnectFailure  = "UF" // connecting to the endpoint failed
	flagUpstreamReset   = "UC" // the upstream closed before sending a response
	flagUpstreamAbort   = "UR" // the upstream failed while sending its body
	flagDownstreamGone  = "DC" // the client went away
	flagUpstreamTimeout = "UT" // the upstream sent no response headers in time
)

// exchange is one request's state, shared by the handler, the proxy hooks,
// the dialer and the access log. It is also the ResponseWriter the proxy
// writes to, so it sees the status and counts the bytes sent.
type exchange struct {
	w     http.ResponseWriter
	r     *http.Request
	sc    *h1ServerConn // the server loop's connection when its parser read r
	snap  *snapshot
	port  int
	start time.Time

	d        router.Decision
	node     string // virtual node picked
	endpoint string // "IP:PORT" sent to
	flags    string
	failure  string    // why the upstream exchange failed, for the access log
	reqID    requestID // generated X-Request-Id when the client sent none
	// kept is set when something may reach the exchange after serve
	// returns; it is recycled otherwise.
	kept bool
	// spare is a call that nothing reaches any more, recycled with the
	// exchange once the exchange is recorded (an HTTP/2 request's: the
	// server loop recycles its own requests' calls).
	spare *call

	status       int
	wroteHeader  bool
	firstByte    time.Duration // until the response headers were written
	bytesSent    int64
	bytesRecv    atomic.Int64 // written by the transport's body reader
	upstreamTime time.Duration
	upstreamSent time.Time
	// ended is monoNow when the direct path's response body ended, as its
	// transport noted it (h1Body.ended); 0: not known.
	ended time.Duration
}

func (e *exchange) Header() http.Header { return e.w.Header() }

// logged reports whether the exchange goes to an access log, the only
// reader of its timings other than the elapsed time.
func (e *exchange) logged() bool { return e.snap != nil && e.snap.log != nil }

// logReadsResponse: the access log prints fields of the response.
func (e *exchange) logReadsResponse() bool { return e.logged() && e.snap.log.readsResponse }

func (e *exchange) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		e.w.WriteHeader(code) // informational: the real status comes later
		return
	}
	if !e.wroteHeader {
		e.wroteHeader = true
		e.status = code
		if e.logged() {
			e.firstByte = time.Since(e.start)
		}
	}
	e.w.WriteHeader(code)
}

func (e *exchange) Write(b []byte) (int, error) {
	if !e.wroteHeader {
		e.WriteHeader(http.StatusOK)
	}
	n, err := e.w.Write(b)
	e.bytesSent += int64(n)
	return n, err
}

// Flush lets streamed responses through as the upstream sends them.
func (e *exchange) Flush() {
	if !e.wroteHeader {
		e.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(e.w).Flush()
}

// Unwrap gives http.ResponseController (hijacking for upgrades) the real writer.
func (e *exchange) Unwrap() http.ResponseWriter { return e.w }

// exchanges recycles the exchanges nothing can reach once served.
var exchanges = sync.Pool{New: func() any { return new(exchange) }}

// serve routes and proxies one request that arrived on gateway port port.
func (p *Plane) serve(port int, w http.ResponseWriter, r *http.Request) {
	e := exchanges.Get().(*exchange)
	e.w, e.r, e.port, e.snap = w, r, port, p.cur.Load()
	if e.logged() {
		e.start = time.Now() // the access log prints it
	} else {
		e.start = monoTime()
	}
	if hw, ok := w.(*h1Writer); ok && r == &hw.sc.r.req {
		e.sc = hw.sc
	}
	defer func() {
		v := recover()
		if v != nil && e.flags == "" {
			// The proxy aborts the response when copying the body fails.
			e.flags = flagUpstreamAbort
			if r.Context().Err() != nil {
				e.flags = flagDownstreamGone
			}
		}
		p.record(e)
		if v != nil {
			panic(v)
		}
		if !e.kept {
			if c := e.spare; c != nil {
				c.recycle()
			}
			*e = exchange{}
			exchanges.Put(e)
		}
	}()
	if e.snap == nil {
		p.localReply(e, http.StatusServiceUnavailable, flagNoCluster, "gateway not configured")
		return
	}
	release, ok := p.admit(e)
	if !ok {
		return
	}
	defer release()
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	e.d = e.snap.table.Decide(&router.Request{
		Port:     port,
		Method:   r.Method,
		Host:     r.Host,
		Path:     r.URL.EscapedPath(),
		RawQuery: r.URL.RawQuery,
		Scheme:   scheme,
		Header:   r.Header,
	})
	d := &e.d
	switch {
	case d.GatewayRoute == nil:
		p.localReply(e, http.StatusNotFound, flagNoRoute, "no route matched")
		return
	case d.Status != 0:
		flag := flagNoCluster
		if d.Router != nil && d.Route == nil {
			flag = flagNoRoute
		}
		p.localReply(e, d.Status, flag, d.Reason)
		return
	}
	t := pickTarget(d.Targets)
	e.node = t.Node
	n := e.snap.nodes[t.Node]
	if n == nil {
		// A weighted target whose node is missing fails its share of traffic.
		p.localReply(e, http.StatusServiceUnavailable, flagNoCluster, "virtual node "+t.Node+" not found")
		return
	}
	p.forward(e, n, t.Port)
}

// pickTarget chooses a weighted target at random in proportion to its weight.
func pickTarget(ts []ir.WeightedTarget) ir.WeightedTarget {
	if len(ts) == 1 {
		return ts[0]
	}
	total := 0
	for _, t := range ts {
		total += t.Weight
	}
	if total <= 0 {
		return ts[0]
	}
	n := rand.IntN(total)
	for _, t := range ts {
		if n -= t.Weight; n < 0 {
			return t
		}
	}
	return ts[len(ts)-1]
}

// localReply answers on the gateway's own behalf. A gRPC client gets a
// trailers-only response whose grpc-status maps the HTTP status (grpc.go).
func (p *Plane) localReply(e *exchange, code int, flag, msg string) {
	e.flags = flag
	if isGRPC(e.r) {
		writeGRPCError(e, grpcCodeFor(code), msg)
		return
	}
	h := e.Header()
	body := msg + "\n"
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	e.WriteHeader(code)
	io.WriteString(e, body)
}

// exchangeOf is the exchange of a request's context, which its call carries.
func exchangeOf(ctx context.Context) *exchange {
	if c := callOf(ctx); c != nil {
		return c.e
	}
	return nil
}

// rewriteRequest turns the received request into the one sent upstream.
func rewriteRequest(pr *httputil.ProxyRequest) {
	e := exchangeOf(pr.In.Context())
	out := pr.Out
	out.URL.Scheme = "http"
	out.URL.Host = e.endpoint
	setPath(out.URL, e.d.Path)
	out.URL.RawQuery = pr.In.URL.RawQuery // the query string is forwarded as received
	out.Host = e.d.Host
	out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"]
	pr.SetXForwarded()
	if field(out.Header, "X-Request-Id") == "" {
		e.reqID.generate()
		out.Header.Set("X-Request-Id", e.reqID.String())
	}
	if out.Body != nil {
		out.Body = &countingBody{ReadCloser: out.Body, in: pr.In.Body, n: &e.bytesRecv}
	}
	if e.logged() {
		e.upstreamSent = time.Now()
	}
}

// setPath sets an escaped path on u so that it is sent exactly as given.
func setPath(u *url.URL, escaped string) {
	if strings.IndexByte(escaped, '%') < 0 {
		u.Path, u.RawPath = escaped, "" // nothing to unescape
		return
	}
	p, err := url.PathUnescape(escaped)
	if err != nil {
		u.Path, u.RawPath = escaped, ""
		return
	}
	u.Path, u.RawPath = p, ""
	if p != escaped {
		u.RawPath = escaped
	}
}

func noteResponse(res *http.Response) error {
	if e := exchangeOf(res.Request.Context()); e != nil && e.logged() {
		e.upstreamTime = time.Since(e.upstreamSent)
	}
	return nil
}

// proxyError answers for an upstream exchange that produced no response.
func (p *Plane) proxyError(w http.ResponseWriter, out *http.Request, err error) {
	e := exchangeOf(out.Context())
	if e == nil { // not ours; cannot happen
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	e.failure = err.Error()
	var op *net.OpError
	var le *localError
	switch {
	case e.r.Context().Err() != nil:
		e.flags = flagDownstreamGone // nobody to answer
	case errors.As(err, &le):
		p.localErrorReply(e, le)
	case errors.As(err, &op) && op.Op == "dial":
		p.localReply(e, http.StatusBadGateway, flagConnectFailure, "upstream connect error")
	case isTimeout(err):
		p.localReply(e, http.StatusGatewayTimeout, flagUpstreamTimeout, "upstream request timeout")
	case pastGRPCDeadline(e):
		p.localGRPCReply(e, codes.DeadlineExceeded, flagUpstreamReset, "upstream reset after the call's deadline (grpc-timeout) passed")
	default:
		p.localReply(e, http.StatusBadGateway, flagUpstreamReset, "upstream reset before response headers")
	}
	p.log.Debug("upstream failed", "node", e.node, "endpoint", e.endpoint, "error", err)
}

// isTimeout reports a response-header timeout of the transport (the
// client's own cancellation is told apart before this is asked).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// requestID is a generated X-Request-Id: a random UUID (version 4), as
// Envoy generates. It identifies a request in logs and traces and guards
// nothing, so the runtime's fast generator will do. It is kept as bytes:
// the direct path writes it upstream as they are, and only an access log
// makes a string of it.
type requestID struct {
	b   [36]byte
	set bool
}

func (id *requestID) generate() {
	// A version 4 UUID: 122 random bits, the version in the high nibble of
	// byte 6 and the variant in the top two bits of byte 8.
	hi := rand.Uint64()&^(0xf<<12) | 0x4<<12
	lo := rand.Uint64()&^(0x3<<62) | 0x2<<62
	putHex(id.b[0:8], hi>>32)
	id.b[8] = '-'
	putHex(id.b[9:13], hi>>16)
	id.b[13] = '-'
	putHex(id.b[14:18], hi)
	id.b[18] = '-'
	putHex(id.b[19:23], lo>>48)
	id.b[23] = '-'
	putHex(id.b[24:36], lo)
	id.set = true
}

// putHex fills b with the len(b) low hexadecimal digits of v.
func putHex(b []byte, v uint64) {
	const hexDigits = "0123456789abcdef"
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = hexDigits[v&0xf]
		v >>= 4
	}
}

// String is the ID, "" when none was generated.
func (id *requestID) String() string {
	if !id.set {
		return ""
	}
	return string(id.b[:])
}

// countingBody is the body sent upstream: the proxy's copy of the client's
// body, counted for the access log.
type countingBody struct {
	io.ReadCloser
	in   io.Closer // the client's body itself
	n    *atomic.Int64
	read atomic.Bool
}

func (c *countingBody) Read(b []byte) (int, error) {
	c.read.Store(true)
	n, err := c.ReadCloser.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// Close closes the client's body too once sending it has begun. The proxy
// shields the client's body from the transport's Close (so that a failed
// connect leaves it whole), but when an HTTP/2 upstream ends a stream
// while the client's is still open (a gRPC server answering before the
// client half-closes), the transport waits for its body writer, parked in a
// Read of the client's body, and only closing that body frees it
// (golang/go#80085, #48908). A body not yet read is left open.
func (c *countingBody) Close() error {
	if c.read.Load() && c.in != nil {
		c.in.Close()
	}
	return c.ReadCloser.Close()
}

// record writes the access log line and the metrics of a finished exchange.
func (p *Plane) record(e *exchange) {
	var elapsed time.Duration
	if e.ended != 0 {
		elapsed = e.ended - e.start.Sub(monoEpoch) // a clock read saved
	} else {
		elapsed = time.Since(e.start)
	}
	gateway, route, service := "", "", ""
	if e.snap != nil {
		gateway = e.snap.gateway
	}
	if e.d.GatewayRoute != nil {
		route = e.d.GatewayRoute.Name
	}
	if e.d.Service != nil {
		service = e.d.Service.Name
	}
	var last *lastSeries
	if w, ok := e.w.(*h1Writer); ok {
		last = &w.sc.series
		w.sc.ended = e.start.Add(elapsed) // the clock is not read again for it
	}
	p.metrics.observe(last, gateway, route, service, e.node, e.status, elapsed)
	if e.snap != nil && e.snap.log != nil {
		e.snap.log.write(e, elapsed)
	}
}
