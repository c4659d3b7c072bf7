package dataplane

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshgate/meshgate/internal/ir"
	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Every gateway port speaks HTTP/1.1 and HTTP/2, whatever its listener
// protocol: cleartext HTTP/2 with prior knowledge (as gRPC clients connect)
// and, under TLS, HTTP/2 or HTTP/1.1 as ALPN negotiates. Listener protocols
// differ in what an HTTP/1.1 request may upgrade to: http listeners pass
// WebSocket upgrades through to the upstream (App Mesh's `upgrade_configs:
// websocket`, reference §4.1), http2 and grpc listeners switch to cleartext
// HTTP/2 on `Upgrade: h2c`. Any other upgrade is ignored (RFC 9110 §7.8
// allows it): the request is served as plain HTTP/1.1 without its Upgrade
// header, so no upstream can switch protocols behind the gateway's back
// (an h2c upgrade passed through would let a client talk to the upstream
// directly, past routing).
//
// net/http's own HTTP/2 server serves every HTTP/2 connection, including
// upgraded ones: after the 101, the connection goes back to the port's
// listener as if the client had opened it with prior knowledge, with the
// upgrade request written in front of the client's first frames as the
// HEADERS (and DATA) of stream 1, which is where RFC 7540 §3.2 puts
// it. So one implementation handles all HTTP/2, and graceful shutdown
// (GOAWAY, then drain) covers upgraded connections like the others.

const (
	// sniffTimeout bounds how long a PERMISSIVE port waits for a client's
	// first byte to tell TLS from plaintext, and how long an upgrading
	// client has to send its connection preface.
	sniffTimeout = 10 * time.Second
	// maxUpgradeBody bounds the body of an h2c upgrade request, which is
	// read whole before the switch and replayed as one DATA frame, within
	// HTTP/2's initial flow-control window and default frame size. A larger
	// body is served over HTTP/1.1 instead.
	maxUpgradeBody = 16 << 10
)

// portConfig is what the active config says about one gateway port.
type portConfig struct {
	protocol string // http, http2 or grpc
	// tls terminates TLS; nil serves plaintext (no tls, or mode DISABLED).
	tls *serverTLS
}

// h2Upgrade reports whether the port switches to HTTP/2 on Upgrade: h2c.
func (c *portConfig) h2Upgrade() bool { return c.protocol == "http2" || c.protocol == "grpc" }

// server is one gateway port: a listener that sorts connections into TLS
// and plaintext as the port's current config says, and the HTTP server that
// reads requests from them. It outlives configs; only its port is fixed.
type server struct {
	port  int
	ln    *portListener
	srv   *http.Server
	h1    h1Server // the connections served by serveH1 (h1server.go)
	plane *Plane
	done  chan struct{} // closed when Serve returns
}

func (p *Plane) newServer(port int, ln net.Listener) *server {
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	protos.SetUnencryptedHTTP2(true)
	s := &server{port: port, plane: p, done: make(chan struct{})}
	s.ln = newPortListener(ln, s.config, p.log)
	s.ln.plain = s.serveH1
	s.srv = &http.Server{
		Handler:           s,
		Protocols:         &protos,
		ConnContext:       connContext,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       5 * time.Minute,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
	return s
}

// config is the port's entry in the active snapshot.
func (s *server) config() *portConfig { return portConfigOf(s.plane.cur.Load(), s.port) }

// portConfigOf is a port's entry in snap; a port that the config does not
// have (it is draining, or nothing is applied yet) serves plain HTTP.
func portConfigOf(snap *snapshot, port int) *portConfig {
	if snap != nil {
		if c := snap.ports[port]; c != nil {
			return c
		}
	}
	return &portConfig{protocol: "http"}
}

// ServeHTTP serves a request from net/http's server. A request on a TLS
// connection that the HTTP/1.1 loop handed off gets the connection's TLS
// state here (connContext).
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil && r.ProtoMajor == 1 {
		r.TLS, _ = r.Context().Value(tlsStateKey{}).(*tls.ConnectionState)
	}
	s.handle(w, r)
}

// handle serves a request from either server: net/http's or the loop.
func (s *server) handle(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 && strings.EqualFold(field(r.Header, "Upgrade"), "h2c") && r.TLS == nil &&
		s.config().h2Upgrade() && s.upgradeH2C(w, r) {
		return
	}
	s.plane.limitUpgrade(s.port, r)
	s.plane.serve(s.port, w, r)
}

// limitUpgrade removes the Upgrade header of a request that may not
// upgrade: only WebSocket on http listeners passes through.
func (p *Plane) limitUpgrade(port int, r *http.Request) {
	up := field(r.Header, "Upgrade")
	if up == "" || (strings.EqualFold(up, "websocket") && portConfigOf(p.cur.Load(), port).protocol == "http") {
		return
	}
	r.Header.Del("Upgrade")
	r.Header.Del("Http2-Settings")
}

// upgradeH2C switches an HTTP/1.1 connection to HTTP/2 (RFC 7540 §3.2):
// it answers 101, reads the client's connection preface and first SETTINGS
// frame, and hands the connection back to the listener with the upgrade
// request as stream 1 (see the top of this file). It returns false, having
// changed nothing, when the request cannot be upgraded and should be
// served as HTTP/1.1.
func (s *server) upgradeH2C(w http.ResponseWriter, r *http.Request) bool {
	vals := r.Header.Values("Http2-Settings")
	conn := r.Header["Connection"]
	if len(vals) != 1 || !httpguts.HeaderValuesContainsToken(conn, "Upgrade") ||
		!httpguts.HeaderValuesContainsToken(conn, "HTTP2-Settings") || field(r.Header, "Expect") != "" {
		return false
	}
	settings, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(vals[0], "="))
	if err != nil || len(settings)%6 != 0 {
		return false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxUpgradeBody+1))
	if err != nil {
		return false
	}
	if len(body) > maxUpgradeBody {
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(body), r.Body), r.Body}
		return false
	}
	stream1 := upgradeStream(r, body)

	c, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false
	}
	c.SetDeadline(time.Now().Add(sniffTimeout))
	if _, err := brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"); err != nil || brw.Flush() != nil {
		c.Close()
		return true
	}
	ahead, _ := brw.Reader.Peek(brw.Reader.Buffered())
	rd := io.MultiReader(bytes.NewReader(bytes.Clone(ahead)), c)
	// The client's preface and SETTINGS frame come first; stream 1 goes
	// right after them. The settings the client sent in HTTP2-Settings are
	// put in front of that frame's, so that the server applies them and
	// acknowledges one frame, as the client expects.
	head := make([]byte, len(http2.ClientPreface)+9)
	if _, err := io.ReadFull(rd, head); err != nil || string(head[:len(http2.ClientPreface)]) != http2.ClientPreface {
		c.Close()
		return true
	}
	fh := head[len(http2.ClientPreface):]
	n := int(fh[0])<<16 | int(fh[1])<<8 | int(fh[2])
	if http2.FrameType(fh[3]) != http2.FrameSettings || fh[4] != 0 || n%6 != 0 || n > 1<<14 {
		c.Close()
		return true
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(rd, payload); err != nil {
		c.Close()
		return true
	}
	c.SetDeadline(time.Time{})

	var front bytes.Buffer
	front.WriteString(http2.ClientPreface)
	fr := http2.NewFramer(&front, nil)
	fr.WriteRawFrame(http2.FrameSettings, 0, 0, mergeSettings(settings, payload))
	front.Write(stream1)
	s.ln.hand(yielding(c, io.MultiReader(&front, rd)))
	return true
}

// mergeSettings is the settings of HTTP2-Settings followed by those of the
// client's first SETTINGS frame, each identifier once (the later value
// wins, as if the two had been applied in turn; a frame that repeats an
// identifier is a protocol error to net/http).
func mergeSettings(header, frame []byte) []byte {
	var out []byte
	seen := map[[2]byte]int{}
	for _, b := range [][]byte{header, frame} {
		for ; len(b) >= 6; b = b[6:] {
			id := [2]byte{b[0], b[1]}
			if i, ok := seen[id]; ok {
				copy(out[i:i+6], b[:6])
				continue
			}
			seen[id] = len(out)
			out = append(out, b[:6]...)
		}
	}
	return out
}

// upgradeStream is the upgrade request as HTTP/2 frames of stream 1: HEADERS
// (and CONTINUATION) and, when it has a body, one DATA frame. The header
// block uses no HPACK indexing, so it leaves the decoder's table as the
// client's own encoder expects to find it.
func upgradeStream(r *http.Request, body []byte) []byte {
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	field := func(name, value string) {
		enc.WriteField(hpack.HeaderField{Name: name, Value: value, Sensitive: true})
	}
	field(":method", r.Method)
	field(":scheme", "http")
	field(":authority", r.Host)
	field(":path", r.RequestURI)
	for k, vv := range r.Header {
		name := strings.ToLower(k)
		switch name {
		case "connection", "upgrade", "http2-settings", "keep-alive", "proxy-connection", "transfer-encoding", "host", "content-length":
			continue
		case "te":
			vv = []string{"trailers"}
			if !httpguts.HeaderValuesContainsToken(r.Header[k], "trailers") {
				continue
			}
		}
		for _, v := range vv {
			field(name, v)
		}
	}
	if len(body) > 0 {
		field("content-length", strconv.Itoa(len(body)))
	}
	var out bytes.Buffer
	fr := http2.NewFramer(&out, nil)
	frag := block.Bytes()
	const max = 1 << 14
	first := true
	for first || len(frag) > 0 {
		chunk := frag[:min(len(frag), max)]
		frag = frag[len(chunk):]
		end := len(frag) == 0
		if first {
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: chunk, EndStream: len(body) == 0, EndHeaders: end})
			first = false
		} else {
			fr.WriteContinuation(1, end, chunk)
		}
	}
	if len(body) > 0 {
		fr.WriteData(1, true, body)
	}
	return out.Bytes()
}

func (s *server) serve() {
	defer close(s.done)
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.plane.log.Error("listener stopped", "port", s.port, "error", err)
	}
}

// shutdown stops accepting, lets requests in flight finish (HTTP/2
// connections get GOAWAY) and returns when every connection is closed; when
// ctx ends first, it closes what is left and returns ctx's error.
func (s *server) shutdown(ctx context.Context) error {
	h1 := make(chan error, 1)
	go func() { h1 <- s.h1.shutdown(ctx) }()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	<-s.done
	return errors.Join(err, <-h1)
}

// bufferedConn reads through r, which holds what was read ahead of the conn.
type bufferedConn struct {
	net.Conn
	r io.Reader
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// handedTLSConn is a TLS connection the HTTP/1.1 loop handed to net/http's
// server, read through what the loop buffered of it.
type handedTLSConn struct {
	bufferedConn
	state *tls.ConnectionState
}

type tlsStateKey struct{}

// connContext gives the requests of a handedTLSConn its TLS state.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if h, ok := c.(*handedTLSConn); ok {
		return context.WithValue(ctx, tlsStateKey{}, h.state)
	}
	return ctx
}

// yieldingConn is a connection as net/http's servers get it: read through
// r, its socket written through w (socketIO), and each write preceded by
// a yield to the other runnable goroutines. It carries cleartext HTTP/2 and
// every TLS connection. net/http's HTTP/2 server writes the frames of one
// response and flushes them on a goroutine of its own, queueing meanwhile
// what other handlers finish; with the yield, those handlers finish first
// and their responses leave in the next write. Without it, a response took
// two writes of its own (its head, then its body) and the client was woken
// for each. Its HTTP/1.1 server writes a response once, at its end, and
// the yield lets the other connections' responses leave at about the same
// time, as the HTTP/1.1 loop does before its last write (BENCHMARKS.md,
// "What was changed after the 20:14 run"); under the loop, which serves
// HTTP/1.1 over TLS itself, the connection writes directly.
type yieldingConn struct {
	bufferedConn
	w      io.Writer
	direct atomic.Bool // write without the yield: the HTTP/1.1 loop yields itself
}

// yielding is c, read through r, as a yieldingConn.
func yielding(c net.Conn, r io.Reader) *yieldingConn {
	return &yieldingConn{bufferedConn: bufferedConn{Conn: c, r: r}, w: socketIO(c)}
}

// yieldingSocket is c as a yieldingConn whose reads and writes share one
// socketIO, read after first when the listener has read c's first bytes.
func yieldingSocket(c net.Conn, first []byte) *yieldingConn {
	s := socketIO(c)
	var r io.Reader = s
	if len(first) > 0 {
		r = io.MultiReader(bytes.NewReader(first), s)
	}
	return &yieldingConn{bufferedConn: bufferedConn{Conn: c, r: r}, w: s}
}

func (c *yieldingConn) Write(p []byte) (int, error) {
	if !c.direct.Load() {
		runtime.Gosched()
	}
	return c.w.Write(p)
}

// portListener accepts a port's connections and hands http.Server a
// *tls.Conn, or gives plain a plaintext conn, as the port's current TLS
// mode says. A PERMISSIVE port reads each client's first byte to tell them
// apart (a TLS connection starts with a handshake record, 0x16; HTTP with a
// method name or the HTTP/2 preface), so it sorts connections off the
// accept loop: a slow client delays only itself.
type portListener struct {
	net.Listener
	config func() *portConfig
	plain  func(net.Conn) // serves a plaintext conn on its own goroutine; nil: hand it to http.Server
	log    *slog.Logger

	ready     chan net.Conn
	closed    chan struct{}
	ctx       context.Context // cancelled when closed: ends handshakes in progress
	cancel    context.CancelFunc
	startOnce sync.Once
	closeOnce sync.Once
	closeErr  error
}

func newPortListener(ln net.Listener, config func() *portConfig, log *slog.Logger) *portListener {
	ctx, cancel := context.WithCancel(context.Background())
	return &portListener{Listener: ln, config: config, log: log, ready: make(chan net.Conn), closed: make(chan struct{}), ctx: ctx, cancel: cancel}
}

// Accept starts sorting connections on its first call, which comes after
// Apply has published the config that says how, so that no early
// connection is taken for plaintext on a TLS port.
func (l *portListener) Accept() (net.Conn, error) {
	l.startOnce.Do(func() { go l.acceptLoop() })
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *portListener) Close() error {
	l.closeOnce.Do(func() {
		close(l.closed)
		l.cancel()
		l.closeErr = l.Listener.Close()
	})
	return l.closeErr
}

func (l *portListener) acceptLoop() {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			select {
			case <-l.closed:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				l.Close()
				return
			}
			// Out of file descriptors and the like: back off as http.Server does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			l.log.Error("accept failed; retrying", "addr", l.Addr().String(), "error", err, "delay", delay)
			select {
			case <-time.After(delay):
			case <-l.closed:
				return
			}
			continue
		}
		delay = 0
		t := l.config().tls
		switch {
		case t == nil && l.plain != nil:
			go l.plain(c)
		case t == nil:
			l.hand(c)
		case t.mode == ir.TLSPermissive:
			go l.sniff(c, t)
		case l.plain != nil:
			go l.serveTLS(yieldingSocket(c, nil), t)
		default:
			l.hand(tls.Server(yielding(c, c), t.config))
		}
	}
}

// sniff reads the first byte of a connection on a PERMISSIVE port.
func (l *portListener) sniff(c net.Conn, t *serverTLS) {
	c.SetReadDeadline(time.Now().Add(sniffTimeout))
	var first [1]byte
	if _, err := io.ReadFull(c, first[:]); err != nil {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	switch {
	case first[0] == 0x16 && l.plain != nil:
		l.serveTLS(yieldingSocket(c, first[:]), t)
	case first[0] == 0x16:
		l.hand(tls.Server(yielding(c, io.MultiReader(bytes.NewReader(first[:]), c)), t.config))
	case l.plain != nil:
		l.plain(&sniffedConn{Conn: c, first: first[0]})
	default:
		l.hand(&bufferedConn{Conn: c, r: io.MultiReader(bytes.NewReader(first[:]), c)})
	}
}

// sniffedConn is a plaintext connection of a PERMISSIVE port whose first
// byte the listener has read. The loop takes the byte as one read ahead
// (stashReader) and reads the rest from the socket itself.
type sniffedConn struct {
	net.Conn
	first byte
}

// serveTLS completes the handshake on c and serves the connection as its
// ALPN says: HTTP/2 by net/http's server, HTTP/1.1 by the loop (serveH1),
// whose own yield before a response's last write replaces c's. The
// handshake has the time net/http's server gives it (ReadHeaderTimeout)
// and ends when the listener closes; a client that speaks plaintext HTTP
// to the port gets the 400 that net/http's server sends it.
func (l *portListener) serveTLS(c *yieldingConn, t *serverTLS) {
	tc := tls.Server(c, t.config)
	c.SetDeadline(time.Now().Add(headerReadTimeout))
	if err := tc.HandshakeContext(l.ctx); err != nil {
		var re tls.RecordHeaderError
		if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader[:]) {
			io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		}
		l.log.Debug("TLS handshake failed", "remote", c.RemoteAddr().String(), "error", err)
		c.Close()
		return
	}
	c.SetDeadline(time.Time{})
	if tc.ConnectionState().NegotiatedProtocol == http2.NextProtoTLS {
		l.hand(tc)
		return
	}
	c.direct.Store(true)
	l.plain(tc)
}

// looksLikeHTTP reports whether a TLS record header is the start of a
// plaintext HTTP request.
func looksLikeHTTP(h []byte) bool {
	switch string(h) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// hand gives a connection to Accept, or closes it when the listener is closed.
func (l *portListener) hand(c net.Conn) {
	select {
	case l.ready <- c:
	case <-l.closed:
		c.Close()
	}
}
