package dataplane

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
)

// The gateway's own HTTP/1.1 server loop for client connections, cleartext
// or TLS (once the listener has completed the handshake and ALPN chose
// HTTP/1.1 or nothing; serveTLS in listener.go). It serves the requests a
// reverse proxy sees most (HTTP/1.1, origin-form target, no body or a
// Content-Length body) with what net/http's server spends per request left
// out: no goroutine and no read syscall per request to watch the client,
// no per-request context tree (the request, its URL and its context are
// the connection's, h1request.go), header keys and values reused from the
// connection's previous request when they repeat, and the response head
// and body written in one system call.
//
// Anything else goes to net/http's server, which then owns the connection
// for the rest of its life (handoff): HTTP/1.0, the HTTP/2 preface, an
// absolute-form or asterisk target, Transfer-Encoding, Expect, Upgrade
// (WebSocket, h2c), a head larger than the read buffer, and anything the
// strict parser below does not accept, so that net/http answers malformed
// requests exactly as before. Nothing is consumed before the decision: the
// head is parsed from the read buffer and discarded only once taken.
//
// A client that leaves while its request is being proxied is noticed as
// net/http notices it, by reading from the connection, but only once the
// request has lasted watchDelay (up to twice that when its connection's
// timer was already running for an earlier request): most requests end
// sooner, and the timer, left running between requests, is reset about
// once per watchDelay on a busy connection. A request with a body is
// watched once its body was read to the end (before that, a client leaving
// shows as the body failing).

const (
	h1ReadBuffer  = 8 << 10 // the largest head served here; larger ones are handed off
	h1WriteBuffer = 4 << 10
	watchDelay    = 100 * time.Millisecond
	maxDrainBody  = 256 << 10
)

// headerReadTimeout and idleTimeout are http.Server's ReadHeaderTimeout
// and IdleTimeout (variables for tests).
var (
	headerReadTimeout = 30 * time.Second
	idleTimeout       = 5 * time.Minute
)

var errClientGone = errors.New("dataplane: client closed the connection")

// h1ConnKey is the context key of the connection a request came on.
type h1ConnKey struct{}

// h1Server tracks the connections a port serves itself, for shutdown.
type h1Server struct {
	mu      sync.Mutex
	conns   map[*h1ServerConn]struct{}
	closing atomic.Bool // set under mu, read without
}

// h1ServerConn is one client connection served by the loop.
type h1ServerConn struct {
	s    *server
	c    net.Conn
	src  stashReader
	br   *bufio.Reader
	bw   *bufio.Writer
	addr string               // the client's address, as Request.RemoteAddr
	tls  *tls.ConnectionState // nil: cleartext

	deadline time.Time // read deadline in force while waiting; zero: unknown
	idle     atomic.Bool
	w        h1Writer

	fields fieldCache  // the field lines of the connection's requests, parsed
	series lastSeries  // the metrics series of the previous request
	ended  time.Time   // when the request just served was recorded; zero: not known
	header http.Header // the request in progress's
	// The request in progress's field lines as they are sent upstream,
	// in order (see sendOn); sendLines is false when some line's fate
	// depends on more than the line.
	lines      []string
	sendLines  bool
	lastTarget string
	validHost  string // the last Host value found valid
	// facts are what parse noted of the request in progress's fields.
	// Nothing changes a request's header on its way upstream.
	facts    fieldFacts
	clientIP string // of addr, once asked for
	close    bool   // the client asked to close after the response in progress

	// The client watch (see the top of the file).
	wmu    sync.Mutex
	wcond  sync.Cond
	wstate int // watchIdle, watchArmed, watchReading
	// The timer is left running when a request ends, and a request that
	// starts while it runs waits for it: a busy connection resets it
	// about once per watchDelay rather than once per request.
	timerPending bool   // the timer will call watch
	timedReq     uint64 // the request the running timer was started for
	reqs         uint64 // requests begun on the connection
	aborted      bool
	deadlineLost bool // the watch cleared the read deadline
	gone         atomic.Bool
	timer        *time.Timer
	serving      bool // a request is in progress
	// call is the direct-path call in progress. It stays set until end,
	// which recycles it (spare): until then the watch may still cancel
	// it, so no other request may have it.
	call  atomic.Pointer[callContext]
	spare *call

	r *h1Request // the request in progress, or the one before
}

const (
	watchIdle = iota
	watchArmed
	watchReading
)

// stashReader reads the connection, after a byte the client watch read
// ahead (the first byte of a pipelined request).
type stashReader struct {
	c        io.Reader
	one      [1]byte
	hasStash bool
}

func (s *stashReader) Read(p []byte) (int, error) {
	if s.hasStash && len(p) > 0 {
		p[0] = s.one[0]
		s.hasStash = false
		return 1, nil
	}
	return s.c.Read(p)
}

var (
	h1Readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, h1ReadBuffer) }}
	h1Writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, h1WriteBuffer) }}
)

// serveH1 serves a cleartext connection, or a TLS one whose handshake is
// done, until it closes or is handed off.
func (s *server) serveH1(c net.Conn) {
	sc := &h1ServerConn{s: s, addr: c.RemoteAddr().String()}
	switch x := c.(type) {
	case *tls.Conn:
		st := x.ConnectionState()
		sc.tls = &st
	case *sniffedConn:
		c = x.Conn
		sc.src.one[0], sc.src.hasStash = x.first, true
	}
	sc.c = c
	sc.wcond.L = &sc.wmu
	if !s.h1.add(sc) {
		c.Close()
		return
	}
	sock := socketIO(c)
	sc.src.c = sock
	sc.br = h1Readers.Get().(*bufio.Reader)
	sc.br.Reset(&sc.src)
	sc.bw = h1Writers.Get().(*bufio.Writer)
	sc.bw.Reset(sock)
	base := context.WithValue(context.WithValue(context.Background(), http.LocalAddrContextKey, c.LocalAddr()), h1ConnKey{}, sc)
	sc.r = newH1Request(base)
	sc.w.sc = sc

	handedOff, reusable := sc.loop()
	s.h1.remove(sc)
	if sc.timer != nil {
		sc.timer.Stop()
	}
	if handedOff {
		h1Writers.Put(sc.bw)
		return
	}
	c.Close()
	if reusable {
		sc.br.Reset(nil)
		h1Readers.Put(sc.br)
		sc.bw.Reset(nil)
		h1Writers.Put(sc.bw)
	}
}

// loop serves requests in turn. reusable is false when something may still
// hold the read buffer (a request body reader that outlived its request).
func (sc *h1ServerConn) loop() (handedOff, reusable bool) {
	for {
		sc.idle.Store(true)
		if sc.s.h1.closing.Load() {
			return false, true
		}
		head, ok, err := sc.readHead()
		if err != nil {
			return false, true
		}
		sc.idle.Store(false)
		sc.r = sc.r.next()
		r := &sc.r.req
		if !ok || !sc.parse(head, r, &sc.r.url) {
			sc.handOff()
			return true, false
		}
		sc.br.Discard(len(head))
		body, _ := r.Body.(*clientBody)
		if !sc.serve(r, body) {
			return false, body == nil || body.released
		}
	}
}

// readHead waits for a request head, whole in the read buffer. ok is false
// when it does not fit there.
func (sc *h1ServerConn) readHead() (head []byte, ok bool, err error) {
	if sc.br.Buffered() == 0 {
		sc.idleDeadline()
		if _, err := sc.br.Peek(1); err != nil {
			return nil, false, err
		}
	}
	timed := false
	for {
		buf, _ := sc.br.Peek(sc.br.Buffered())
		if i := headEnd(buf); i >= 0 {
			return buf[:i+4], true, nil
		}
		if len(buf) >= sc.br.Size() {
			return nil, false, nil
		}
		if !timed {
			// The head came in pieces: it gets the header timeout.
			timed = true
			sc.c.SetReadDeadline(time.Now().Add(headerReadTimeout))
			sc.deadline = time.Time{}
		}
		if _, err := sc.br.Peek(len(buf) + 1); err != nil {
			return nil, false, err
		}
	}
}

// idleDeadline makes sure a read deadline idleTimeout away (less at most
// a second) is in force. Setting a deadline costs, so a busy connection
// moves it at most once a second. The time is the previous request's end
// when it was recorded (a clock read saved; only the last flush of its
// response comes after), and the clock's otherwise.
func (sc *h1ServerConn) idleDeadline() {
	now := sc.ended
	if now.IsZero() {
		now = time.Now()
	}
	sc.ended = time.Time{}
	if !sc.deadline.IsZero() && now.Before(sc.deadline.Add(-idleTimeout+time.Second)) {
		return
	}
	sc.deadline = now.Add(idleTimeout)
	sc.c.SetReadDeadline(sc.deadline)
}

// headEnd is the index of the first CRLFCRLF in b, -1 if there is none.
// It looks at each line feed, rather than at every byte for four.
func headEnd(b []byte) int {
	for p := 0; ; p++ {
		j := bytes.IndexByte(b[p:], '\n')
		if j < 0 {
			return -1
		}
		p += j
		if p >= 1 && p+2 < len(b) && b[p-1] == '\r' && b[p+1] == '\r' && b[p+2] == '\n' {
			return p - 1
		}
	}
}

// handOff gives the connection, with what was read of it, to net/http.
func (sc *h1ServerConn) handOff() {
	if sc.tls != nil {
		// net/http's server knows a TLS connection only as a *tls.Conn;
		// this one carries its state to the handler (connContext).
		if y, ok := sc.c.(*tls.Conn).NetConn().(*yieldingConn); ok {
			y.direct.Store(false)
		}
		sc.s.ln.hand(&handedTLSConn{bufferedConn: bufferedConn{Conn: sc.c, r: sc.br}, state: sc.tls})
		return
	}
	if !sc.src.hasStash && sc.br.Buffered() >= len(http2.ClientPreface) {
		if p, _ := sc.br.Peek(len(http2.ClientPreface)); string(p) == http2.ClientPreface {
			sc.s.ln.hand(yielding(sc.c, sc.br))
			return
		}
	}
	if sc.src.hasStash || sc.br.Buffered() > 0 {
		sc.s.ln.hand(&bufferedConn{Conn: sc.c, r: sc.br})
	} else {
		sc.s.ln.hand(sc.c)
	}
}

var methods = [...]string{"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"}

// parse parses a request head into r, whose URL is u, or returns false
// when net/http should serve it. r holds nothing but a context.
func (sc *h1ServerConn) parse(head []byte, r *http.Request, u *url.URL) bool {
	// head ends in an empty line: it has a line feed.
	eol := bytes.IndexByte(head, '\n')
	if eol < 1 || head[eol-1] != '\r' {
		return false
	}
	line, rest := head[:eol-1], head[eol+1:]
	sp := bytes.IndexByte(line, ' ')
	if sp < 1 || len(line) < sp+1+len(" HTTP/1.1") || string(line[len(line)-len(" HTTP/1.1"):]) != " HTTP/1.1" {
		return false
	}
	m, target := line[:sp], line[sp+1:len(line)-len(" HTTP/1.1")]
	if len(target) == 0 || target[0] != '/' {
		return false
	}
	method := ""
	for _, k := range methods {
		if string(m) == k {
			method = k
			break
		}
	}
	if method == "" {
		for _, b := range m {
			if !httpguts.IsTokenRune(rune(b)) {
				return false
			}
		}
		method = string(m)
	}
	for _, b := range target {
		if b <= ' ' || b == 0x7f || b == '#' {
			return false
		}
	}

	// The header map is the connection's: nothing uses a request's header
	// once its response is complete (the upstream transports write it
	// before they return, or copy it).
	h := sc.header
	if h == nil {
		h = make(http.Header, max(bytes.Count(rest, []byte{'\n'}), 8))
		sc.header = h
	} else {
		clear(h)
	}
	host, hasHost := "", false
	contentLength := int64(0)
	sc.close = false
	sc.lines, sc.sendLines = sc.lines[:0], true
	sc.facts = fieldFacts{}
	var seen newKeys // h is empty: a new key goes in without a lookup
	// rest ends in the empty line's CRLF, and a bare line feed fails its
	// line.
	for i := 0; len(rest) > 2; i++ {
		j := bytes.IndexByte(rest, '\n')
		if j < 1 || rest[j-1] != '\r' {
			return false
		}
		fl := rest[:j+1]
		rest = rest[j+1:]
		f, err := sc.fields.field(fl, i)
		if err != nil {
			return false
		}
		value := f.val[0]
		switch {
		case !f.sendKnown:
			sc.sendLines = false
		case f.send:
			sc.lines = append(sc.lines, f.out)
		}
		switch f.key {
		case "Host":
			if hasHost {
				return false
			}
			if value != sc.validHost { // a keep-alive client repeats its Host
				if !httpguts.ValidHostHeader(value) {
					return false
				}
				sc.validHost = value
			}
			host, hasHost = value, true
			continue
		case "Content-Length":
			cl, err := strconv.ParseInt(value, 10, 64)
			if err != nil || cl < 0 || value[0] == '+' || (h[f.key] != nil && cl != contentLength) {
				return false
			}
			contentLength = cl
		case "Transfer-Encoding", "Expect", "Upgrade":
			return false
		case "Connection":
			if headerHasToken([]string{value}, "close") {
				sc.close = true
			}
		}
		v := f.val // shared with the cache: see fieldCache
		if !seen.add(f.key) {
			if vv := h[f.key]; vv != nil {
				v = append(vv, value)
			}
		}
		h[f.key] = v
		if f.fact != 0 {
			sc.facts[f.fact] = v
		}
	}
	if !hasHost {
		return false
	}

	t := reuseString(&sc.lastTarget, target)
	path, query, hasQuery := t, "", false
	if q := strings.IndexByte(t, '?'); q >= 0 {
		path, query, hasQuery = t[:q], t[q+1:], true
	}
	if plainPath(path) {
		u.Path = path
	} else {
		// Escapes, or characters url.URL would escape: its own parser
		// decides Path and RawPath, as net/http's server does.
		pu, err := url.ParseRequestURI(t)
		if err != nil {
			return false
		}
		u.Path, u.RawPath = pu.Path, pu.RawPath
	}
	u.RawQuery, u.ForceQuery = query, hasQuery && query == ""

	// Field by field: r's context is set already.
	r.Method, r.URL, r.Proto, r.ProtoMajor, r.ProtoMinor = method, u, "HTTP/1.1", 1, 1
	r.Header, r.Body, r.ContentLength, r.Close = h, http.NoBody, contentLength, sc.close
	r.Host, r.RemoteAddr, r.RequestURI, r.TLS = host, sc.addr, t, sc.tls
	if contentLength > 0 {
		r.Body = &clientBody{sc: sc, remain: contentLength}
	}
	return true
}

// plainPath reports whether path is the same escaped and unescaped: no
// escapes, and nothing url.URL.EscapedPath would escape.
func plainPath(path string) bool {
	for i := 0; i < len(path); i++ {
		if !plainPathByte[path[i]] {
			return false
		}
	}
	return true
}

var plainPathByte = func() (t [256]bool) {
	for c := range t {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.~$&+,/:;=@", byte(c)) >= 0
	}
	return t
}()

// serve runs the handler for req and finishes its response. It reports
// whether the connection can carry another request.
func (sc *h1ServerConn) serve(r *http.Request, body *clientBody) (keep bool) {
	if body != nil {
		// A body may take long to arrive; the watchdog bounds it, not the
		// idle deadline.
		sc.c.SetReadDeadline(time.Time{})
		sc.deadline = time.Time{}
	}
	w := &sc.w
	w.reset(r.Method == http.MethodHead)
	sc.ended = time.Time{}
	sc.wmu.Lock()
	sc.serving = true
	sc.reqs++
	if body == nil && sc.br.Buffered() == 0 && !sc.src.hasStash {
		sc.armLocked()
	}
	sc.wmu.Unlock()
	ok := sc.run(w, r)
	sc.end()
	sc.r.ctx.cancel()
	if !ok {
		return false
	}
	if err := w.finish(); err != nil {
		return false
	}
	if body != nil && !body.release() {
		return false
	}
	return !w.close && !sc.gone.Load()
}

// run calls the handler. ok is false when it aborted the response.
func (sc *h1ServerConn) run(w *h1Writer, r *http.Request) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			ok = false
			if v != http.ErrAbortHandler {
				sc.s.plane.log.Error("panic serving request", "remote", sc.addr, "panic", v)
			}
		}
	}()
	sc.s.handle(w, r)
	return true
}

// armLocked starts the client watch's clock for the request in progress,
// or leaves it to the timer already running. wmu is held.
func (sc *h1ServerConn) armLocked() {
	sc.wstate = watchArmed
	if sc.timerPending {
		return
	}
	sc.timerPending, sc.timedReq = true, sc.reqs
	if sc.timer == nil {
		sc.timer = time.AfterFunc(watchDelay, sc.watch)
	} else {
		sc.timer.Reset(watchDelay)
	}
}

// bodyRead starts the watch of a request whose body was read to its end,
// as net/http starts its background read then; br is the caller's.
func (sc *h1ServerConn) bodyRead() {
	sc.wmu.Lock()
	defer sc.wmu.Unlock()
	if sc.serving && sc.wstate == watchIdle && sc.br.Buffered() == 0 && !sc.src.hasStash {
		sc.armLocked()
	}
}

// end ends the request in progress, and the watch with it, when its
// response is complete.
func (sc *h1ServerConn) end() {
	sc.wmu.Lock()
	defer sc.wmu.Unlock()
	sc.serving = false // nothing arms the watch now
	sc.call.Store(nil)
	switch sc.wstate {
	case watchArmed:
		sc.wstate = watchIdle // the timer, left running, will find it so
	case watchReading:
		sc.aborted = true
		sc.c.SetReadDeadline(aLongTimeAgo)
		for sc.wstate == watchReading {
			sc.wcond.Wait()
		}
		sc.aborted = false
	}
	if sc.deadlineLost {
		sc.deadlineLost = false
		sc.deadline = time.Time{}
	}
	if c := sc.spare; c != nil {
		sc.spare = nil
		c.recycle()
	}
}

// watch reads from a client whose request has lasted watchDelay: an error
// means it left, and the request is cancelled; a byte is the start of its
// next request, kept for the parser. A request that began after the timer
// was started gets its own watchDelay first.
func (sc *h1ServerConn) watch() {
	sc.wmu.Lock()
	sc.timerPending = false
	if sc.wstate != watchArmed {
		sc.wmu.Unlock()
		return
	}
	if sc.timedReq != sc.reqs {
		sc.timerPending, sc.timedReq = true, sc.reqs
		sc.timer.Reset(watchDelay)
		sc.wmu.Unlock()
		return
	}
	sc.wstate = watchReading
	sc.deadlineLost = true
	// Under the lock, so that end's deadline in the past comes after
	// this one.
	sc.c.SetReadDeadline(time.Time{})
	sc.wmu.Unlock()

	n, err := sc.c.Read(sc.src.one[:])

	sc.wmu.Lock()
	defer sc.wmu.Unlock()
	if n == 1 {
		sc.src.hasStash = true
	} else if err != nil && !sc.aborted {
		sc.gone.Store(true)
		if sc.serving {
			sc.r.ctx.cancel()
		}
		if x := sc.call.Load(); x != nil {
			x.cancelWith(errClientGone)
		}
	}
	sc.wstate = watchIdle
	sc.wcond.Broadcast()
}

// watchCall makes x, a direct-path call on a request of ctx, hear of its
// client leaving without a context.AfterFunc, and returns the connection
// that tells it. It returns nil when ctx is not the context of a request
// the loop serves. x stays watched until the request ends (end).
func watchCall(ctx context.Context, x *callContext) *h1ServerConn {
	sc, ok := ctx.Value(h1ConnKey{}).(*h1ServerConn)
	if !ok {
		return nil
	}
	// No lock: the watch sets gone before it looks for a call, and x is
	// stored here before gone is looked at, so one of the two sees the
	// other. The loop's own request context, while it is served, is
	// cancelled only when its client is found gone: gone tells without
	// taking the context's lock.
	sc.call.Store(x)
	own := ctx == context.Context(&sc.r.ctx)
	if own && sc.gone.Load() || !own && ctx.Err() != nil {
		return nil // AfterFunc runs it at once
	}
	return sc
}

// clientBody is a request body of known length, read from the connection's
// buffer. Once the request is over, reads fail (as net/http's do), so that
// a transport still sending it cannot read the next request.
type clientBody struct {
	sc       *h1ServerConn
	mu       sync.Mutex
	remain   int64
	closed   bool
	released bool // the request is over and nothing holds the buffer
}

func (b *clientBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.remain == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.remain {
		p = p[:b.remain]
	}
	n, err := b.sc.br.Read(p)
	b.remain -= int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if b.remain == 0 && err == nil {
		err = io.EOF
		b.sc.bodyRead()
	}
	return n, err
}

func (b *clientBody) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}

// release ends the body when its request is over, discarding what is left
// of it when that is small. It reports whether the connection can carry
// another request.
func (b *clientBody) release() bool {
	if !b.mu.TryLock() {
		return false // a reader is blocked on the client: close to free it
	}
	defer b.mu.Unlock()
	b.closed = true
	if b.remain > maxDrainBody {
		return false
	}
	b.sc.c.SetReadDeadline(time.Now().Add(headerReadTimeout))
	_, err := b.sc.br.Discard(int(b.remain))
	b.remain = 0
	b.released = true
	return err == nil
}

// h1Writer is the ResponseWriter of a request served by the loop. The
// head is written when the first body byte (or Flush, or the end of the
// handler) comes, into the same buffer as the body.
type h1Writer struct {
	sc *h1ServerConn
	h  http.Header
	// lines, when set, are the response's fields, not yet in h: h holds
	// only what the writer added. They are written before what h holds,
	// and filled into h when someone asks for it (proxy.go).
	lines       []headerLine
	noted       *fieldFacts // with lines, the values of the fields noted of them
	status      int
	wroteHeader bool
	wroteHead   bool
	head        bool  // a HEAD request: no body
	cl          int64 // the Content-Length sent, -1 when none
	written     int64
	chunked     bool
	close       bool
	err         error
}

// reset readies the connection's writer for its next response.
func (w *h1Writer) reset(head bool) {
	h := w.h
	if h == nil {
		h = make(http.Header, 8)
	} else {
		clear(h)
	}
	*w = h1Writer{sc: w.sc, h: h, head: head, cl: -1}
}

func (w *h1Writer) Header() http.Header {
	if w.lines != nil {
		w.fill()
	}
	return w.h
}

// fill puts the fields of the lines into h, which is written from then on.
func (w *h1Writer) fill() {
	fillHeader(w.h, w.lines)
	w.lines, w.noted = nil, nil
}

// field is what the response has of k's field. While lines are set, they
// hold no hop-by-hop field, and noted says what they hold without a
// lookup; the writer adds a field only when they lack it.
func (w *h1Writer) field(k fact) []string {
	if w.lines == nil || w.noted == nil {
		return w.h[factKeys[k]]
	}
	if factHop[k] {
		return nil
	}
	return w.noted[k]
}

func (w *h1Writer) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.writeStatus(code)
		w.writeFields()
		w.sc.bw.WriteString("\r\n")
		w.flushErr()
		return
	}
	if code < 100 || code > 999 {
		panic("dataplane: invalid WriteHeader code " + strconv.Itoa(code))
	}
	w.wroteHeader = true
	w.status = code
}

func (w *h1Writer) writeStatus(code int) {
	bw := w.sc.bw
	if code == http.StatusOK {
		bw.WriteString("HTTP/1.1 200 OK\r\n")
		return
	}
	bw.WriteString("HTTP/1.1 ")
	var b [3]byte
	bw.Write(strconv.AppendInt(b[:0], int64(code), 10))
	bw.WriteByte(' ')
	bw.WriteString(http.StatusText(code))
	bw.WriteString("\r\n")
}

var headerNewlines = strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ")

// writeFields writes the header fields, but for trailers.
func (w *h1Writer) writeFields() {
	for k, vv := range w.h {
		if !strings.HasPrefix(k, http.TrailerPrefix) {
			writeField(w.sc.bw, k, vv)
		}
	}
}

// hasLineBreak is strings.ContainsAny(v, "\r\n"), at less cost for the
// short values of header fields.
func hasLineBreak(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '\r' || c == '\n' {
			return true
		}
	}
	return false
}

// writeLines writes field lines that are ready to send ("Key: value\r\n").
func writeLines(bw *bufio.Writer, lines []string) {
	for _, l := range lines {
		bw.WriteString(l)
	}
}

// writeField writes a field line for each of vv, a line break in a value
// becoming a space, as net/http writes them.
func writeField(bw *bufio.Writer, k string, vv []string) {
	for _, v := range vv {
		if hasLineBreak(v) {
			v = headerNewlines.Replace(v)
		}
		bw.WriteString(k)
		bw.WriteString(": ")
		bw.WriteString(v)
		bw.WriteString("\r\n")
	}
}

// writeHead writes the status line and header, choosing the framing: the
// handler's Content-Length when it gave one, chunked otherwise; ended
// says the handler returned having written no body.
func (w *h1Writer) writeHead(ended bool) {
	if w.wroteHead {
		return
	}
	w.wroteHead = true
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if v := w.field(factContentLength); len(v) > 0 {
		if cl, err := strconv.ParseInt(v[0], 10, 64); err == nil && cl >= 0 {
			w.cl = cl
		} else {
			w.fill() // the lines hold it
			delete(w.h, "Content-Length")
		}
	}
	if w.field(factTransferEncoding) != nil {
		delete(w.h, "Transfer-Encoding") // never among the lines
	}
	// What is added to h below is written after the lines.
	var added [3]string
	n := 0
	switch {
	case !w.bodyAllowed() || w.cl >= 0:
	case ended && !w.head && len(w.h["Trailer"]) == 0:
		w.cl = 0
		w.h["Content-Length"] = zeroLength
		added[n], n = "Content-Length", n+1
	case w.head:
	default:
		w.chunked = true
	}
	if headerHasToken(w.field(factConnection), "close") {
		w.close = true
	} else if w.sc.close || w.sc.s.h1.closing.Load() || w.sc.gone.Load() {
		w.close = true
		w.h["Connection"] = connectionClose
		added[n], n = "Connection", n+1
	}
	if w.field(factDate) == nil {
		w.h["Date"] = httpDate()
		added[n], n = "Date", n+1
	}
	w.writeStatus(w.status)
	if w.lines != nil {
		bw := w.sc.bw
		for _, l := range w.lines {
			bw.WriteString(l.out)
		}
		for _, k := range added[:n] {
			writeField(bw, k, w.h[k])
		}
	} else {
		w.writeFields()
	}
	if w.chunked {
		w.sc.bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	w.sc.bw.WriteString("\r\n")
}

var (
	zeroLength      = []string{"0"}
	connectionClose = []string{"close"}
)

func (w *h1Writer) Write(b []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	w.writeHead(false)
	if w.head {
		return len(b), nil
	}
	if !w.bodyAllowed() {
		return 0, http.ErrBodyNotAllowed
	}
	if len(b) == 0 {
		return 0, nil
	}
	short := false
	if w.cl >= 0 && w.written+int64(len(b)) > w.cl {
		b, short = b[:w.cl-w.written], true
	}
	bw := w.sc.bw
	if w.chunked {
		var n [16]byte
		bw.Write(strconv.AppendInt(n[:0], int64(len(b)), 16))
		bw.WriteString("\r\n")
	}
	n, err := bw.Write(b)
	if w.chunked && err == nil {
		_, err = bw.WriteString("\r\n")
	}
	w.written += int64(n)
	if err != nil {
		w.err = err
		return n, err
	}
	if short {
		return n, http.ErrContentLength
	}
	return n, nil
}

// bodyAllowed reports whether the response's status allows a body.
func (w *h1Writer) bodyAllowed() bool {
	return w.status >= 200 && w.status != http.StatusNoContent && w.status != http.StatusNotModified
}

func (w *h1Writer) flushErr() error {
	if w.err == nil {
		w.err = w.sc.bw.Flush()
	}
	return w.err
}

// Flush sends the head and what is buffered of the body.
func (w *h1Writer) Flush() {
	w.writeHead(false)
	w.flushErr()
}

func (w *h1Writer) FlushError() error {
	w.writeHead(false)
	return w.flushErr()
}

// finish completes the response after the handler returned.
func (w *h1Writer) finish() error {
	w.writeHead(true)
	bw := w.sc.bw
	if w.chunked {
		bw.WriteString("0\r\n")
		w.writeTrailers()
		bw.WriteString("\r\n")
	}
	// The other connections whose upstreams have answered go first, up to
	// their own responses' last write: the responses then leave together,
	// and a client's reader, woken by the first, is mostly still awake for
	// the next. Written one at a time, each would wake it from its sleep,
	// which costs this process more than anything it does for a response
	// (BENCHMARKS.md, Finding 25).
	runtime.Gosched()
	if err := w.flushErr(); err != nil {
		return err
	}
	if w.cl >= 0 && w.written < w.cl && !w.head && w.bodyAllowed() {
		return io.ErrShortWrite // the client is owed bytes it will not get
	}
	return nil
}

// writeTrailers writes the trailer fields the handler announced in the
// Trailer header, and those set with http.TrailerPrefix.
func (w *h1Writer) writeTrailers() {
	write := func(k string, vv []string) {
		if httpguts.ValidHeaderFieldName(k) {
			writeField(w.sc.bw, k, vv)
		}
	}
	for _, list := range w.h["Trailer"] {
		for k := range strings.SplitSeq(list, ",") {
			k = http.CanonicalHeaderKey(strings.TrimSpace(k))
			if k != "" {
				write(k, w.h[k])
			}
		}
	}
	for k, vv := range w.h {
		if t, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			write(http.CanonicalHeaderKey(t), vv)
		}
	}
}

// httpDate is the Date header's value, formatted at most once a second.
// Responses share it: nothing changes a header's values in place.
func httpDate() []string {
	now := time.Now().Unix()
	if d := cachedDate.Load(); d != nil && d.unix == now {
		return d.v
	}
	d := &dateValue{unix: now, v: []string{time.Unix(now, 0).UTC().Format(http.TimeFormat)}}
	cachedDate.Store(d)
	return d.v
}

type dateValue struct {
	unix int64
	v    []string
}

var cachedDate atomic.Pointer[dateValue]

// add registers a connection; it is false once the server is closing.
func (t *h1Server) add(sc *h1ServerConn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closing.Load() {
		return false
	}
	if t.conns == nil {
		t.conns = make(map[*h1ServerConn]struct{})
	}
	t.conns[sc] = struct{}{}
	return true
}

func (t *h1Server) remove(sc *h1ServerConn) {
	t.mu.Lock()
	delete(t.conns, sc)
	t.mu.Unlock()
}

// shutdown closes idle connections and lets the others end after their
// response, until none is left or ctx ends, when it closes the rest.
func (t *h1Server) shutdown(ctx context.Context) error {
	t.mu.Lock()
	t.closing.Store(true)
	t.mu.Unlock()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		t.mu.Lock()
		for sc := range t.conns {
			if sc.idle.Load() {
				sc.c.Close()
			}
		}
		left := len(t.conns)
		t.mu.Unlock()
		if left == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			t.mu.Lock()
			for sc := range t.conns {
				sc.c.Close()
			}
			t.mu.Unlock()
			return ctx.Err()
		case <-tick.C:
		}
	}
}
