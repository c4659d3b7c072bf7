package dataplane

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
)

// h1Transport calls the endpoints of a cleartext HTTP/1.1 cluster. It does
// what http.Transport does for such a call, minus its cost: http.Transport
// hands each request from the caller to a writer goroutine and the response
// from a reader goroutine back, with a select and a cancellable context per
// request. Here the request is written and the response head read on the
// caller's goroutine, over a keep-alive connection taken from a per-endpoint
// pool, and the response body gives the connection back when it reaches its
// end. Only a request body is written from a goroutine of its own, so that a
// response that comes before the whole body was sent is read at once.
//
// Requests this transport does not take (protocol upgrades, Expect, request
// trailers) go through the fallback http.Transport of the same cluster.
type h1Transport struct {
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	idle     time.Duration // idle connections older than this are closed; 0: never
	fallback *http.Transport

	mu     sync.Mutex
	pools  map[string]*h1Pool // by "IP:PORT"
	closed bool               // retired: connections are closed when their exchange ends
}

// maxIdlePerEndpoint is as many idle connections as a pool keeps per
// endpoint (http.Transport's MaxIdleConnsPerHost here).
const maxIdlePerEndpoint = 1024

// maxWriteWait is how long a finished response waits for its request body
// to be sent before its connection is given up rather than reused.
const maxWriteWait = 50 * time.Millisecond

type h1Pool struct {
	idle  []*h1Conn // most recently used last
	sweep *time.Timer
}

type h1Conn struct {
	t    *h1Transport
	addr string
	c    net.Conn
	rc   syscall.RawConn // c's, for open; nil when c has none
	// peekFn is peek as a func value made once: open passes it to rc
	// without allocating, and peek leaves its answer in peeked.
	peekFn func(fd uintptr) bool
	peeked bool
	br     *bufio.Reader
	bw     *bufio.Writer
	// rw is c's socket when it can write a request and wait for the
	// reply in one wait (sockIO); nil otherwise.
	rw    replyWaiter
	pace  replyPacing
	probe bool // the request in progress is read at once: pace learns from it

	reused    bool          // has carried a request before
	idleSince time.Duration // when it was last put back, by monoNow

	// Set per request.
	closeAfter bool          // the request or response says Connection: close
	wrote      chan struct{} // closed when the request body is sent; nil without a body
	writeErr   error         // of sending the body, valid once wrote is closed
	srcErr     bool          // writeErr came from reading the body, not from the connection
	head       []byte        // scratch for reading heads
	fields     fieldCache
}

func newH1Transport(dial func(context.Context, string, string) (net.Conn, error), idle time.Duration, fallback *http.Transport) *h1Transport {
	return &h1Transport{dial: dial, idle: idle, fallback: fallback, pools: map[string]*h1Pool{}}
}

// takes reports whether the transport handles req itself.
func (t *h1Transport) takes(req *http.Request) bool {
	if req.URL.Scheme != "http" || len(req.Trailer) > 0 {
		return false
	}
	h := req.Header
	if _, ok := h["Upgrade"]; ok {
		return false
	}
	if _, ok := h["Expect"]; ok {
		return false
	}
	return true
}

// RoundTrip sends req to req.URL.Host. A connection from the pool that the
// endpoint closed while it was idle fails the request before any response
// byte arrives; a request without a body whose method is idempotent is then
// sent again on another connection (as http.Transport does). Other requests
// get a connection checked to be open.
func (t *h1Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.takes(req) {
		return t.fallback.RoundTrip(req)
	}
	return t.roundTrip(req, nil)
}

// roundTrip is RoundTrip for a request that the transport takes. With fw,
// req.Header is the client's, written as fw says (proxy.go), and
// informational responses go straight to fw's client.
func (t *h1Transport) roundTrip(req *http.Request, fw *forwarded) (*http.Response, error) {
	ctx := req.Context()
	hasBody := req.Body != nil && req.Body != http.NoBody
	replay := !hasBody && idempotent(req)
	now := time.Duration(-1)
	if fw != nil {
		// The exchange began microseconds ago: its start stands for now
		// in the pool's idle check, and saves a clock read.
		now = fw.e.start.Sub(monoEpoch)
	}
	for {
		pc, err := t.get(ctx, req.URL.Host, !replay, now)
		if err != nil {
			if hasBody {
				req.Body.Close()
			}
			return nil, err
		}
		res, err := pc.roundTrip(ctx, req, hasBody, fw)
		if err == errStaleConn {
			if replay && ctx.Err() == nil {
				continue
			}
			err = io.EOF
		}
		return res, err
	}
}

// errInvalidRequest is a request that cannot be written as it is.
type errInvalidRequest struct{ msg string }

func (e errInvalidRequest) Error() string { return e.msg }

// errStaleConn is a reused connection that failed before any byte of a response.
var errStaleConn = errors.New("dataplane: idle upstream connection closed")

func idempotent(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, ok := req.Header["Idempotency-Key"]
	if !ok {
		_, ok = req.Header["X-Idempotency-Key"]
	}
	return ok
}

// get returns an idle connection to addr, or a new one. check asks for an
// idle connection to be checked to be open before it is returned; now is
// monoNow, or negative to have it read.
func (t *h1Transport) get(ctx context.Context, addr string, check bool, now time.Duration) (*h1Conn, error) {
	for {
		pc := t.takeIdle(addr, now)
		if pc == nil {
			break
		}
		if !check || pc.open() {
			return pc, nil
		}
		pc.c.Close()
	}
	c, err := t.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	sock := socketIO(c)
	pc := &h1Conn{t: t, addr: addr, c: c, br: bufio.NewReaderSize(sock, 4096), bw: bufio.NewWriterSize(sock, 4096)}
	pc.rw, _ = sock.(replyWaiter)
	if sc, ok := untracked(c).(syscall.Conn); ok {
		pc.rc, _ = sc.SyscallConn()
		pc.peekFn = pc.peek
	}
	return pc, nil
}

func (t *h1Transport) takeIdle(addr string, now time.Duration) *h1Conn {
	t.mu.Lock()
	p := t.pools[addr]
	if p == nil || len(p.idle) == 0 {
		t.mu.Unlock()
		return nil
	}
	n := len(p.idle) - 1
	pc := p.idle[n]
	p.idle[n] = nil
	p.idle = p.idle[:n]
	var stale []*h1Conn
	if t.idle > 0 {
		if now < 0 {
			now = monoNow()
		}
		if now-pc.idleSince > t.idle {
			// It and every older one have been idle too long.
			stale = append(p.idle, pc)
			p.idle = nil
			pc = nil
		}
	}
	t.mu.Unlock()
	for _, s := range stale {
		s.c.Close()
	}
	return pc
}

// monoEpoch is where monoNow counts from.
var monoEpoch = time.Now()

// monoNow reads the monotonic clock alone: time.Now reads the wall clock
// too, and the pool's bookkeeping, at every request, needs only the one.
func monoNow() time.Duration { return time.Since(monoEpoch) }

// monoTime is time.Now read from the monotonic clock alone, one clock read
// instead of two. Durations and deadlines taken from it are exact; its wall
// time is monoEpoch's plus the time since, so it misses any step of the
// wall clock since the process started and is not for printing.
func monoTime() time.Time { return monoEpoch.Add(monoNow()) }

// put returns a connection whose exchange completed at now (monoNow) to
// its pool.
func (t *h1Transport) put(pc *h1Conn, now time.Duration) {
	if pc.closeAfter || pc.br.Buffered() > 0 {
		// Bytes beyond the response: the endpoint is out of step.
		pc.c.Close()
		return
	}
	pc.reused = true
	pc.wrote = nil
	pc.idleSince = now
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		pc.c.Close()
		return
	}
	p := t.pools[pc.addr]
	if p == nil {
		p = &h1Pool{}
		t.pools[pc.addr] = p
	}
	if len(p.idle) >= maxIdlePerEndpoint {
		t.mu.Unlock()
		pc.c.Close()
		return
	}
	p.idle = append(p.idle, pc)
	if t.idle > 0 && p.sweep == nil {
		addr := pc.addr
		p.sweep = time.AfterFunc(t.idle, func() { t.sweepIdle(addr) })
	}
	t.mu.Unlock()
}

// sweepIdle closes the connections of addr idle longer than the idle
// timeout, and comes back while any are left.
func (t *h1Transport) sweepIdle(addr string) {
	t.mu.Lock()
	p := t.pools[addr]
	if p == nil {
		t.mu.Unlock()
		return
	}
	p.sweep = nil
	now := monoNow()
	n := 0
	for n < len(p.idle) && now-p.idle[n].idleSince >= t.idle {
		n++
	}
	stale := append([]*h1Conn(nil), p.idle[:n]...)
	p.idle = append(p.idle[:0], p.idle[n:]...)
	if len(p.idle) > 0 {
		next := t.idle - (now - p.idle[0].idleSince)
		p.sweep = time.AfterFunc(next, func() { t.sweepIdle(addr) })
	} else {
		delete(t.pools, addr)
	}
	t.mu.Unlock()
	for _, pc := range stale {
		pc.c.Close()
	}
}

// CloseIdleConnections closes every idle connection, and those of
// exchanges still in flight when they end: the transport is being retired
// (its cluster is gone, or a reload replaced it).
func (t *h1Transport) CloseIdleConnections() {
	t.mu.Lock()
	t.closed = true
	var all []*h1Conn
	for addr, p := range t.pools {
		all = append(all, p.idle...)
		if p.sweep != nil {
			p.sweep.Stop()
		}
		delete(t.pools, addr)
	}
	t.mu.Unlock()
	for _, pc := range all {
		pc.c.Close()
	}
	t.fallback.CloseIdleConnections()
}

// open reports whether a pooled connection looks usable: the endpoint has
// neither closed it nor sent anything on it while it was idle. A
// connection without a RawConn is taken as open.
func (pc *h1Conn) open() bool {
	if pc.rc == nil {
		return true
	}
	pc.peeked = true
	err := pc.rc.Read(pc.peekFn)
	return err == nil && pc.peeked
}

func (pc *h1Conn) peek(fd uintptr) bool {
	pc.peeked = peekOpen(fd)
	return true
}

// interrupt makes the connection's blocked reads and writes return; the
// connection is not reused after it.
func (pc *h1Conn) interrupt() { pc.c.SetDeadline(aLongTimeAgo) }

var aLongTimeAgo = time.Unix(1, 0)

// roundTrip makes one exchange on pc. Unless it returns a response with a
// body, pc is back in its pool or closed when it returns.
func (pc *h1Conn) roundTrip(ctx context.Context, req *http.Request, hasBody bool, fw *forwarded) (*http.Response, error) {
	watch := watchConn(ctx, pc)
	pc.closeAfter = req.Close
	if err := pc.writeHead(req, hasBody, fw); err != nil {
		watch.end()
		pc.c.Close()
		if hasBody {
			req.Body.Close()
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if _, invalid := err.(errInvalidRequest); pc.reused && !invalid {
			return nil, errStaleConn
		}
		return nil, err
	}
	if hasBody {
		pc.wrote = make(chan struct{})
		go pc.writeBody(req)
	} else if err := pc.send(); err != nil {
		watch.end()
		pc.c.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if pc.reused {
			return nil, errStaleConn
		}
		return nil, err
	}
	res, err := pc.readResponse(ctx, req, fw)
	if pc.probe {
		pc.probe = false
		pc.pace.readAtOnce(pc.rw.readWaited())
	}
	if err != nil {
		watch.end()
		pc.c.Close()
		if pc.wrote != nil && waitWrote(pc.wrote) && pc.srcErr {
			// Reading the client's body failed, and the connection
			// was closed for it.
			return nil, pc.writeErr
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	return pc.body(req, res, watch)
}

// send sends the rest of a request without a body: written and waited on
// as one, or written and then read at once, as pc.pace decides.
func (pc *h1Conn) send() error {
	if pc.rw == nil {
		return pc.bw.Flush()
	}
	// A head longer than the buffer may have gone out whole already, and
	// then Flush writes nothing that could carry the wait.
	if pc.bw.Buffered() > 0 && pc.pace.await() {
		pc.rw.awaitReply()
	} else {
		pc.rw.readWaited()
		pc.probe = true
	}
	return pc.bw.Flush()
}

// A replyWaiter is a socket that can write a request and then wait until
// its reply arrives, in one wait.
type replyWaiter interface {
	// awaitReply makes the next Write, once all written, return only
	// when the socket has something to read, or the wait was cut short
	// (a deadline, a close), which the next Read reports.
	awaitReply()
	// readWaited reports whether a Read found nothing and had to wait
	// since it was last called.
	readWaited() bool
}

// replyPacing decides how a connection waits for the replies to requests
// without a body. A read right after the write finds the reply when the
// upstream answered within the write (on a core shared with it, the
// upstream, woken by the write, runs before the writer resumes), and
// otherwise finds nothing: a system call wasted, on every request when the
// upstream is on another core or machine. Writing and then waiting for
// the reply, in one wait, saves that call, but costs a wait when the
// reply is already there. So a connection reads at once, counting the
// replies that were late, and after a window of readAtOnceWindow requests
// of which at least lateForAwait were, writes and waits for the next
// awaitRun requests before it counts again.
type replyPacing struct {
	awaitLeft  int
	seen, late int
}

const (
	readAtOnceWindow = 16
	lateForAwait     = 12
	awaitRun         = 256
)

// await reports whether the next request writes and waits.
func (p *replyPacing) await() bool {
	if p.awaitLeft == 0 {
		return false
	}
	p.awaitLeft--
	return true
}

// readAtOnce counts a request read at once, whose reply was late or not.
func (p *replyPacing) readAtOnce(late bool) {
	p.seen++
	if late {
		p.late++
	}
	if p.seen < readAtOnceWindow {
		return
	}
	if p.late >= lateForAwait {
		p.awaitLeft = awaitRun
	}
	p.seen, p.late = 0, 0
}

// h1Response is a response with its body, allocated together.
type h1Response struct {
	res  http.Response
	body h1Body
	// facts are the values of the fields the transport asks about, as
	// res.Header had them when it was parsed.
	facts fieldFacts
	// lines are the response's field lines but the hop-by-hop ones, in
	// order, as a client is sent them. On the direct path they are all
	// there is of a final response's fields: res.Header is the client's
	// response header, which the proxy fills from them only when
	// something asks for it (proxy.go).
	lines []headerLine
}

// body sets up the body of hr, the response head just read from pc.
func (pc *h1Conn) body(req *http.Request, hr *h1Response, watch connWatch) (*http.Response, error) {
	res := &hr.res
	b := &hr.body
	*b = h1Body{pc: pc, req: req, res: res, watch: watch}
	f, length, err := responseFraming(req.Method, res.ProtoMinor, res.StatusCode, hr.facts[factTransferEncoding], hr.facts[factContentLength])
	if err != nil {
		b.finish(false)
		return nil, err
	}
	res.ContentLength = length
	if hr.facts[factTransferEncoding] != nil {
		// Framing, not a field: it goes whether or not a body follows,
		// as net/http reads it.
		delete(res.Header, "Transfer-Encoding")
	}
	switch f {
	case framingNone:
		res.Body = http.NoBody
		b.finish(true)
		return res, nil
	case framingChunked:
		res.TransferEncoding = []string{"chunked"}
	case framingLength:
		b.remain = length
	case framingClose:
		b.remain = -1
		pc.closeAfter = true
	}
	if pc.closeAfter {
		res.Close = true
	}
	b.framing = f
	res.Body = b
	return res, nil
}

// writeHead writes the request line and header fields, checking that
// nothing in them can end a line or the head early (the lines of fw, when
// it has them, were checked as the server loop parsed them).
func (pc *h1Conn) writeHead(req *http.Request, hasBody bool, fw *forwarded) error {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	path, query := req.URL.EscapedPath(), req.URL.RawQuery
	if path == "" {
		path = "/"
	}
	if (fw == nil || host != fw.validHost) && !httpguts.ValidHostHeader(host) || !validTarget(path) || !validTarget(query) {
		return errInvalidRequest{"dataplane: invalid Host or request target for the upstream"}
	}
	w := pc.bw
	b := w.AvailableBuffer() // appended to and written at once
	b = append(b, req.Method...)
	b = append(b, ' ')
	b = append(b, path...)
	if query != "" || req.URL.ForceQuery {
		b = append(b, '?')
		b = append(b, query...)
	}
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\n"...)
	w.Write(b)
	if fw != nil && fw.asLines {
		writeLines(w, fw.lines)
	} else if err := writeHeader(w, req.Header, fw); err != nil {
		return err
	}
	if fw != nil {
		if err := fw.writeFields(w, fw.e.r.Host); err != nil {
			return err
		}
	}
	switch {
	case hasBody && req.ContentLength > 0:
		w.WriteString("Content-Length: ")
		var num [20]byte
		w.Write(strconv.AppendInt(num[:0], req.ContentLength, 10))
		w.WriteString("\r\n")
	case hasBody:
		w.WriteString("Transfer-Encoding: chunked\r\n")
	case req.Method == http.MethodPost || req.Method == http.MethodPut || req.Method == http.MethodPatch:
		w.WriteString("Content-Length: 0\r\n")
	}
	if req.Close {
		w.WriteString("Connection: close\r\n")
	}
	_, err := w.WriteString("\r\n")
	return err
}

// writeHeader writes the fields of h that go upstream, checking each; fw
// says which those are, when set.
func writeHeader(w *bufio.Writer, h http.Header, fw *forwarded) error {
	for k, vv := range h {
		if fw != nil {
			if fw.skip(k) {
				continue
			}
		} else {
			switch k {
			case "Host", "Content-Length", "Transfer-Encoding", "Trailer", "Connection":
				continue
			}
		}
		if !httpguts.ValidHeaderFieldName(k) {
			return errInvalidRequest{"dataplane: invalid header field name " + strconv.Quote(k)}
		}
		for _, v := range vv {
			if k == "User-Agent" && v == "" {
				continue // set empty to send none
			}
			v = trimOWS(v)
			if !httpguts.ValidHeaderFieldValue(v) {
				return errInvalidRequest{"dataplane: invalid header field value for " + strconv.Quote(k)}
			}
			w.WriteString(k)
			w.WriteString(": ")
			w.WriteString(v)
			w.WriteString("\r\n")
		}
	}
	return nil
}

// validTarget reports whether s has nothing that would end the request
// target early.
func validTarget(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// writeBody sends the request body (with its known length, else chunked)
// and closes it.
func (pc *h1Conn) writeBody(req *http.Request) {
	defer req.Body.Close()
	defer close(pc.wrote)
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	w := pc.bw
	chunked := req.ContentLength <= 0
	var sent int64
	for {
		n, rerr := req.Body.Read(*buf)
		if n > 0 {
			if !chunked && sent+int64(n) > req.ContentLength {
				pc.fail(errors.New("dataplane: request body longer than its Content-Length"), true)
				return
			}
			if chunked {
				var num [20]byte
				w.Write(strconv.AppendInt(num[:0], int64(n), 16))
				w.WriteString("\r\n")
			}
			if _, err := w.Write((*buf)[:n]); err != nil {
				pc.fail(err, false)
				return
			}
			if chunked {
				w.WriteString("\r\n")
			}
			sent += int64(n)
			// Stream what came from the client now: it may be waiting
			// for an answer before it sends more.
			if err := w.Flush(); err != nil {
				pc.fail(err, false)
				return
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			pc.fail(rerr, true)
			return
		}
	}
	if !chunked && sent != req.ContentLength {
		pc.fail(io.ErrUnexpectedEOF, true)
		return
	}
	if chunked {
		w.WriteString("0\r\n\r\n")
	}
	if err := w.Flush(); err != nil {
		pc.fail(err, false)
	}
}

// fail ends the exchange after the request body could not be sent. When
// the client's body failed, the connection is closed too: the upstream
// would wait for the rest, and no response to a request cut short is
// wanted.
func (pc *h1Conn) fail(err error, src bool) {
	pc.writeErr, pc.srcErr = err, src
	if src {
		pc.c.Close()
	}
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// readResponse reads the final response head, passing informational ones
// to the request's trace.
func (pc *h1Conn) readResponse(ctx context.Context, req *http.Request, fw *forwarded) (*h1Response, error) {
	if _, err := pc.br.Peek(1); err != nil {
		if pc.reused && ctx.Err() == nil && pc.wrote == nil {
			return nil, errStaleConn
		}
		return nil, err
	}
	// On the direct path an informational response's fields go straight
	// into the client's response header, which holds nothing else
	// (proxy.go), and a final response's are kept as lines.
	var into http.Header
	if fw != nil {
		into = fw.e.Header()
	}
	for n1xx := 0; ; n1xx++ {
		head, ok := peekHead(pc.br)
		if !ok {
			var err error
			head, err = readHead(pc.br, pc.head[:0])
			pc.head = head[:0]
			if err != nil {
				return nil, err
			}
		}
		if into != nil {
			clear(into) // what an earlier attempt's response left
		}
		var hr *h1Response
		if fw != nil {
			hr = fw.res
		} else {
			hr = new(h1Response)
		}
		if err := parseResponseHead(head, hr, into, &pc.fields); err != nil {
			return nil, err
		}
		res := &hr.res
		code := res.StatusCode
		if code >= 200 {
			res.Request = req
			if res.ProtoMinor == 0 || headerHasToken(hr.facts[factConnection], "close") {
				pc.closeAfter = true
			}
			if cap(pc.head) > 4<<10 {
				pc.head = nil // a rare large head: do not keep its buffer
			}
			return hr, nil
		}
		if code == http.StatusSwitchingProtocols || n1xx >= max1xx {
			return nil, errMalformedResponse
		}
		if fw != nil {
			fw.e.WriteHeader(code)
			clear(into) // WriteHeader of a 1xx leaves the fields in place
			continue
		}
		if trace := httptrace.ContextClientTrace(ctx); trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(code, textproto.MIMEHeader(res.Header)); err != nil {
				return nil, err
			}
		}
	}
}

// parseResponseHead parses a head read by peekHead or readHead into hr; fc
// is the connection's field cache. On the direct path into is the client's
// response header: an informational response's fields go into it, while a
// final response's are only kept in hr.lines and noted, for the proxy to
// send or fill into it. Otherwise res.Header is a new header.
func parseResponseHead(head []byte, hr *h1Response, into http.Header, fc *fieldCache) error {
	i := bytes.Index(head, []byte("\r\n"))
	if i < 0 {
		i = len(head)
	}
	code, minor, status, err := parseStatusLine(fc.statusLine(head[:i]))
	if err != nil {
		return err
	}
	// hr is written in place rather than built and copied: with many
	// requests in flight, each one's memory is cold.
	fields := head[min(i+2, len(head)):]
	hr.facts = fieldFacts{}
	h := into
	if into != nil && code >= 200 {
		hr.lines, err = parseLines(fields, fc, hr.lines[:0], &hr.facts)
	} else {
		hr.lines = hr.lines[:0]
		h, err = parseFields(fields, into, fc, &hr.facts)
	}
	if err != nil {
		return err
	}
	proto := "HTTP/1.1"
	if minor == 0 {
		proto = "HTTP/1.0"
	}
	hr.res = http.Response{Status: status, StatusCode: code, Proto: proto, ProtoMajor: 1, ProtoMinor: minor, Header: h}
	return nil
}

// headerHasToken reports whether a comma-separated list header has token.
func headerHasToken(vals []string, token string) bool {
	if len(vals) == 0 {
		return false
	}
	return httpguts.HeaderValuesContainsToken(vals, token)
}

// h1Body is a response body read from its connection, which goes back to
// the pool at the body's end. Read and Close are called from one goroutine
// at a time, as the proxy does.
type h1Body struct {
	pc      *h1Conn // nil once finished
	req     *http.Request
	res     *http.Response
	watch   connWatch
	framing bodyFraming
	remain  int64 // bytes left of the body (length) or of the chunk; -1: unknown
	inChunk bool  // between a chunk's size line and its data's CRLF
	err     error // sticky
	// ended is monoNow when the body ended and its connection went back
	// to the pool: the end of the exchange too, but for the write of the
	// last bytes read, which the proxy records without reading the clock
	// again. 0: not (yet) so.
	ended time.Duration
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var err error
	switch b.framing {
	case framingLength:
		n, err = b.pc.br.Read(p[:min(int64(len(p)), b.remain)])
		b.remain -= int64(n)
		if b.remain == 0 {
			b.end(nil)
			return n, io.EOF
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
	case framingChunked:
		n, err = b.readChunked(p)
		if err == io.EOF {
			return n, b.err
		}
	case framingClose:
		n, err = b.pc.br.Read(p)
		if err == io.EOF {
			b.end(io.EOF)
			return n, io.EOF
		}
	}
	if err != nil {
		b.fail(err)
		return n, b.err
	}
	return n, nil
}

func (b *h1Body) readChunked(p []byte) (int, error) {
	br := b.pc.br
	if !b.inChunk {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if err == io.EOF || err == bufio.ErrBufferFull {
				err = errBadChunk
			}
			return 0, err
		}
		if len(line) < 2 || line[len(line)-2] != '\r' {
			return 0, errBadChunk
		}
		size, err := parseChunkSize(line[:len(line)-2])
		if err != nil {
			return 0, err
		}
		if size == 0 {
			if err := b.readTrailer(); err != nil {
				return 0, err
			}
			b.end(nil)
			return 0, io.EOF
		}
		b.remain, b.inChunk = size, true
	}
	n, err := br.Read(p[:min(int64(len(p)), b.remain)])
	b.remain -= int64(n)
	if err == io.EOF {
		return n, io.ErrUnexpectedEOF
	}
	if err != nil {
		return n, err
	}
	if b.remain == 0 {
		crlf, err := br.Peek(2)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
		if crlf[0] != '\r' || crlf[1] != '\n' {
			return n, errBadChunk
		}
		br.Discard(2)
		b.inChunk = false
	}
	return n, nil
}

func (b *h1Body) readTrailer() error {
	pc := b.pc
	block, err := readHead(pc.br, pc.head[:0])
	pc.head = block[:0]
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	if len(block) == 0 {
		return nil
	}
	t, err := parseFields(block, b.res.Trailer, &pc.fields, nil)
	if err != nil {
		return err
	}
	b.res.Trailer = t
	return nil
}

// end finishes a body that reached its end; err is what Read returns from now on.
func (b *h1Body) end(err error) {
	if err == nil {
		err = io.EOF
	}
	b.err = err
	b.finish(b.framing != framingClose)
}

// fail finishes a body cut short.
func (b *h1Body) fail(err error) {
	if ctx := b.req.Context(); ctx.Err() != nil {
		err = ctx.Err()
	}
	b.err = err
	b.finish(false)
}

// finish gives the connection back to the pool when the exchange is
// complete and nothing interrupted it, else closes it.
func (b *h1Body) finish(reuse bool) {
	pc := b.pc
	if pc == nil {
		return
	}
	b.pc = nil
	if !b.watch.end() {
		reuse = false // interrupted: its deadline is in the past
	}
	if pc.wrote != nil {
		if !waitWrote(pc.wrote) {
			// The body is still on its way: the upstream answered
			// early. The writer ends when the connection is closed or
			// when the client's body ends.
			pc.c.Close()
			return
		}
		if pc.writeErr != nil {
			reuse = false
		}
	}
	if !reuse {
		pc.c.Close()
		return
	}
	b.ended = monoNow()
	pc.t.put(pc, b.ended)
}

func waitWrote(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
	}
	t := time.NewTimer(maxWriteWait)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}

// restBuffered reports whether the connection's read buffer holds all
// that is left of a body of known length.
func (b *h1Body) restBuffered() bool {
	return b.pc != nil && b.err == nil && b.framing == framingLength && b.remain <= int64(b.pc.br.Buffered())
}

// rest is the rest of a body of known length when the connection's read
// buffer holds all of it, nil otherwise. It stays there until Close, which
// then finishes the body as if it had been read.
func (b *h1Body) rest() []byte {
	if !b.restBuffered() {
		return nil
	}
	p, _ := b.pc.br.Peek(int(b.remain))
	return p
}

// Close ends the body. The connection is kept when the rest of the body
// is already buffered, else closed.
func (b *h1Body) Close() error {
	if b.pc == nil {
		return nil
	}
	if b.restBuffered() {
		b.pc.br.Discard(int(b.remain))
		b.remain = 0
		b.end(nil)
		return nil
	}
	b.err = errors.New("dataplane: read on closed response body")
	b.finish(false)
	return nil
}
