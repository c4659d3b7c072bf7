package dataplane

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshgate/meshgate/internal/ir"
)

// defaultLogFormat is Envoy's default access log format, which App Mesh
// uses when a gateway's access log has no format.
const defaultLogFormat = `[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" ` +
	`%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% ` +
	`%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" ` +
	`"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"` + "\n"

// accessLog is a gateway's access log: a compiled format and where lines go.
type accessLog struct {
	w    *logWriter
	text []segment   // text format, ends with a newline
	json []jsonField // JSON format, when set
	// readsResponse: the format prints fields of the response, which the
	// client's response header must then hold when the line is written.
	readsResponse bool
}

type jsonField struct {
	key  string
	segs []segment
}

// segment is literal text or one command operator.
type segment struct {
	lit string
	op  *operator
}

type opKind uint8

const (
	opStartTime opKind = iota
	opReq
	opReqWithoutQuery
	opResp
	opTrailer
	opProtocol
	opResponseCode
	opResponseCodeDetails
	opResponseFlags
	opBytesReceived
	opBytesSent
	opDuration
	opResponseDuration
	opUpstreamHost
	opUpstreamCluster
	opUpstreamFailure
	opRouteName
	opRemoteAddr
	opRemoteAddrNoPort
	opLocalAddr
	opLocalAddrNoPort
	opLocalPort
	opHostname
	opUnset // a valid Envoy operator this gateway has no value for
)

// operators maps Envoy command operator names to what they log.
var operators = map[string]opKind{
	"START_TIME":                             opStartTime,
	"REQ":                                    opReq,
	"REQUEST_HEADER":                         opReq,
	"REQ_WITHOUT_QUERY":                      opReqWithoutQuery,
	"RESP":                                   opResp,
	"RESPONSE_HEADER":                        opResp,
	"TRAILER":                                opTrailer,
	"RESPONSE_TRAILER":                       opTrailer,
	"PROTOCOL":                               opProtocol,
	"RESPONSE_CODE":                          opResponseCode,
	"RESPONSE_CODE_DETAILS":                  opResponseCodeDetails,
	"RESPONSE_FLAGS":                         opResponseFlags,
	"BYTES_RECEIVED":                         opBytesReceived,
	"BYTES_SENT":                             opBytesSent,
	"DURATION":                               opDuration,
	"RESPONSE_DURATION":                      opResponseDuration,
	"UPSTREAM_HOST":                          opUpstreamHost,
	"UPSTREAM_REMOTE_ADDRESS":                opUpstreamHost,
	"UPSTREAM_CLUSTER":                       opUpstreamCluster,
	"UPSTREAM_TRANSPORT_FAILURE_REASON":      opUpstreamFailure,
	"ROUTE_NAME":                             opRouteName,
	"DOWNSTREAM_REMOTE_ADDRESS":              opRemoteAddr,
	"DOWNSTREAM_DIRECT_REMOTE_ADDRESS":       opRemoteAddr,
	"DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT": opRemoteAddrNoPort,
	"DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT": opRemoteAddrNoPort,
	"DOWNSTREAM_LOCAL_ADDRESS":                      opLocalAddr,
	"DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT":         opLocalAddrNoPort,
	"DOWNSTREAM_LOCAL_PORT":                         opLocalPort,
	"HOSTNAME":                                      opHostname,
	"REQUEST_DURATION":                              opUnset,
	"REQUEST_TX_DURATION":                           opUnset,
	"RESPONSE_TX_DURATION":                          opUnset,
	"REQUESTED_SERVER_NAME":                         opUnset,
	"UPSTREAM_LOCAL_ADDRESS":                        opUnset,
	"UPSTREAM_TRANSPORT_FAILURE":                    opUnset,
	"CONNECTION_TERMINATION_DETAILS":                opUnset,
	"DYNAMIC_METADATA":                              opUnset,
	"FILTER_STATE":                                  opUnset,
	"VIRTUAL_CLUSTER_NAME":                          opUnset,
}

type operator struct {
	kind  opKind
	names []string // header names for REQ/RESP/TRAILER, the alternative second
	keys  []string // names in canonical form, the header maps' keys
	max   int      // truncate to this many bytes; 0 keeps all
	time  []timePart
}

// parseFormat compiles an Envoy format string. A "%" that does not start an
// operator is literal text; an operator Envoy would not know is an error,
// as Envoy refuses such a config.
func parseFormat(s string) ([]segment, error) {
	var segs []segment
	lit := func(t string) {
		if t == "" {
			return
		}
		if n := len(segs); n > 0 && segs[n-1].op == nil {
			segs[n-1].lit += t
			return
		}
		segs = append(segs, segment{lit: t})
	}
	for s != "" {
		i := strings.IndexByte(s, '%')
		if i < 0 {
			lit(s)
			break
		}
		lit(s[:i])
		s = s[i:]
		op, n, err := parseOperator(s)
		if err != nil {
			return nil, err
		}
		if op == nil {
			lit("%")
			s = s[1:]
			continue
		}
		segs = append(segs, segment{op: op})
		s = s[n:]
	}
	return segs, nil
}

// parseOperator reads "%NAME%", "%NAME(ARGS)%" or "%NAME(ARGS):MAX%" at the
// start of s; it returns a nil operator when s does not start with one.
func parseOperator(s string) (*operator, int, error) {
	i := 1
	for i < len(s) && (s[i] >= 'A' && s[i] <= 'Z' || s[i] >= '0' && s[i] <= '9' || s[i] == '_') {
		i++
	}
	name := s[1:i]
	if name == "" {
		return nil, 0, nil
	}
	args, hasArgs := "", false
	if i < len(s) && s[i] == '(' {
		j := strings.IndexByte(s[i:], ')')
		if j < 0 {
			return nil, 0, nil
		}
		args, hasArgs = s[i+1:i+j], true
		i += j + 1
	}
	max := 0
	if i < len(s) && s[i] == ':' {
		j := i + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == i+1 {
			return nil, 0, nil
		}
		max, _ = strconv.Atoi(s[i+1 : j])
		i = j
	}
	if i >= len(s) || s[i] != '%' {
		return nil, 0, nil
	}
	kind, ok := operators[name]
	if !ok {
		if strings.HasPrefix(name, "DOWNSTREAM_TLS_") || strings.HasPrefix(name, "DOWNSTREAM_PEER_") || strings.HasPrefix(name, "UPSTREAM_PEER_") || strings.HasPrefix(name, "UPSTREAM_TLS_") {
			kind = opUnset // no TLS here: these are always empty
		} else {
			return nil, 0, fmt.Errorf("access log format: unknown operator %%%s%%", name)
		}
	}
	op := &operator{kind: kind, max: max}
	switch kind {
	case opReq, opReqWithoutQuery, opResp, opTrailer:
		if args == "" {
			return nil, 0, fmt.Errorf("access log format: %%%s%% needs a header name", name)
		}
		for _, n := range strings.SplitN(args, "?", 2) {
			op.names = append(op.names, strings.ToLower(n))
			op.keys = append(op.keys, textproto.CanonicalMIMEHeaderKey(n))
		}
	case opStartTime:
		if hasArgs && args != "" {
			op.time = parseTimeFormat(args)
		}
	}
	return op, i + 1, nil
}

// logFiles are the access log destinations, opened once and kept for the
// Plane's life so reloads neither reopen nor lose them.
type logFiles struct {
	log   *slog.Logger
	mu    sync.Mutex
	files map[string]*logWriter
}

// logWriter is one access log destination. Lines collect in a buffer that
// goes out in one write once it holds logFlushSize bytes, logFlushDelay
// after the first line it took, and at shutdown, so that a busy gateway
// does not make a system call for every request. Envoy, which App Mesh
// ran, batches its file access logs the same way (every 10 s by default);
// a second keeps the lines near live for whoever watches them.
type logWriter struct {
	path   string
	owned  bool // opened here, closed at Shutdown
	warned atomic.Bool
	log    *slog.Logger

	mu  sync.Mutex // guards what follows, up to wmu
	buf []byte     // lines not yet written; while it holds any, timer will flush them
	// timer is set by each line that finds buf empty; a flush leaves it
	// pending, and it then finds nothing, or the lines that came since.
	timer  *time.Timer
	closed bool // lines after close are written at once

	// wmu orders the writes: a flush takes it before it lets go of mu,
	// so lines reach f in the order they came.
	wmu sync.Mutex
	f   *os.File
	out []byte // the lines being written, under wmu
}

const (
	logFlushSize  = 64 << 10
	logFlushDelay = time.Second
)

// writeLine takes one whole line.
func (w *logWriter) writeLine(line []byte) {
	w.mu.Lock()
	first := len(w.buf) == 0
	w.buf = append(w.buf, line...)
	if len(w.buf) < logFlushSize && !w.closed {
		if first {
			if w.timer == nil {
				w.timer = time.AfterFunc(logFlushDelay, w.flush)
			} else {
				w.timer.Reset(logFlushDelay)
			}
		}
		w.mu.Unlock()
		return
	}
	w.flushLocked()
}

// flush writes the lines the buffer holds.
func (w *logWriter) flush() {
	w.mu.Lock()
	w.flushLocked()
}

// flushLocked is flush with w.mu held, which it releases.
func (w *logWriter) flushLocked() {
	if len(w.buf) == 0 {
		w.mu.Unlock()
		return
	}
	w.wmu.Lock()
	w.buf, w.out = w.out[:0], w.buf
	w.mu.Unlock()
	_, err := w.f.Write(w.out)
	w.wmu.Unlock()
	if err != nil && !w.warned.Swap(true) {
		w.log.Warn("access log write failed", "path", w.path, "error", err)
	}
}

// close writes what is left and closes the file if it was opened here.
func (w *logWriter) close() {
	w.mu.Lock()
	w.closed = true
	if w.timer != nil {
		w.timer.Stop()
	}
	w.flushLocked()
	if w.owned {
		w.wmu.Lock()
		w.f.Close()
		w.wmu.Unlock()
	}
}

func newLogFiles(log *slog.Logger) *logFiles {
	return &logFiles{log: log, files: map[string]*logWriter{}}
}

// accessLog compiles cfg and opens its file; nil cfg means no access log.
func (l *logFiles) accessLog(cfg *ir.AccessLog) (*accessLog, error) {
	if cfg == nil || cfg.Path == "" {
		return nil, nil
	}
	a := &accessLog{}
	if len(cfg.JSON) > 0 {
		for _, kv := range cfg.JSON {
			segs, err := parseFormat(kv.Value)
			if err != nil {
				return nil, fmt.Errorf("%w (key %q)", err, kv.Key)
			}
			a.json = append(a.json, jsonField{key: kv.Key, segs: segs})
		}
	} else {
		format := cfg.Text
		if format == "" {
			format = defaultLogFormat
		}
		if !strings.HasSuffix(format, "\n") {
			format += "\n" // one line per request
		}
		segs, err := parseFormat(format)
		if err != nil {
			return nil, err
		}
		a.text = segs
	}
	a.readsResponse = readsResponse(a.text)
	for _, f := range a.json {
		a.readsResponse = a.readsResponse || readsResponse(f.segs)
	}
	w, err := l.writer(cfg.Path)
	if err != nil {
		return nil, err
	}
	a.w = w
	return a, nil
}

// readsResponse reports whether segs print a field of the response other
// than x-envoy-upstream-service-time, which the gateway times itself.
func readsResponse(segs []segment) bool {
	for _, s := range segs {
		if s.op == nil {
			continue
		}
		switch s.op.kind {
		case opTrailer:
			return true
		case opResp:
			for _, n := range s.op.names {
				if n != "x-envoy-upstream-service-time" {
					return true
				}
			}
		}
	}
	return false
}

func (l *logFiles) writer(path string) (*logWriter, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w := l.files[path]; w != nil {
		return w, nil
	}
	w := &logWriter{path: path, log: l.log}
	switch path {
	case "/dev/stdout":
		w.f = os.Stdout
	case "/dev/stderr":
		w.f = os.Stderr
	default:
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("access log: %w", err)
		}
		w.f, w.owned = f, true
	}
	l.files[path] = w
	return w, nil
}

func (l *logFiles) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for path, w := range l.files {
		w.close()
		delete(l.files, path)
	}
}

// flush writes out every destination's buffered lines.
func (l *logFiles) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, w := range l.files {
		w.flush()
	}
}

var linePool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (a *accessLog) write(e *exchange, elapsed time.Duration) {
	b := linePool.Get().(*bytes.Buffer)
	b.Reset()
	defer linePool.Put(b)
	if a.json != nil {
		a.formatJSON(b, e, elapsed)
	} else {
		for _, s := range a.text {
			if s.op == nil {
				b.WriteString(s.lit)
			} else if !s.op.appendTo(b, e, elapsed) {
				b.WriteByte('-')
			}
		}
	}
	a.w.writeLine(b.Bytes())
}

// formatJSON writes one object. A value that is exactly one operator keeps
// its type, as Envoy's JSON format does: numbers stay numbers and a missing
// value is null.
func (a *accessLog) formatJSON(b *bytes.Buffer, e *exchange, elapsed time.Duration) {
	b.WriteByte('{')
	for i, f := range a.json {
		if i > 0 {
			b.WriteByte(',')
		}
		appendJSONString(b, f.key)
		b.WriteByte(':')
		if len(f.segs) == 1 && f.segs[0].op != nil {
			op := f.segs[0].op
			if op.numeric() {
				if !op.appendTo(b, e, elapsed) {
					b.WriteString("null")
				}
				continue
			}
			if v, ok := op.value(e, elapsed); ok {
				appendJSONString(b, v)
			} else {
				b.WriteString("null")
			}
			continue
		}
		var s strings.Builder
		for _, seg := range f.segs {
			if seg.op == nil {
				s.WriteString(seg.lit)
				continue
			}
			v, ok := seg.op.value(e, elapsed)
			if !ok {
				v = "-"
			}
			s.WriteString(v)
		}
		appendJSONString(b, s.String())
	}
	b.WriteString("}\n")
}

func (op *operator) numeric() bool {
	switch op.kind {
	case opResponseCode, opBytesReceived, opBytesSent, opDuration, opResponseDuration, opLocalPort:
		return true
	}
	return false
}

// appendTo writes the operator's text for one exchange to b, as value
// gives it, without making a string of it where it can; false means unset,
// and then it wrote nothing.
func (op *operator) appendTo(b *bytes.Buffer, e *exchange, elapsed time.Duration) bool {
	if op.kind == opReq && op.names[0] == "x-request-id" && op.max == 0 && e.reqID.set {
		if vals := e.r.Header[op.keys[0]]; len(vals) == 0 || vals[0] == "" {
			b.Write(e.reqID.b[:]) // the id the gateway made, as requestHeader has it
			return true
		}
	}
	var n int64
	switch op.kind {
	case opResponseCode:
		n = int64(e.status)
	case opBytesReceived:
		n = e.bytesRecv.Load()
	case opBytesSent:
		n = e.bytesSent
	case opDuration:
		n = elapsed.Milliseconds()
	case opResponseDuration:
		if !e.wroteHeader {
			return false
		}
		n = e.firstByte.Milliseconds()
	default:
		v, ok := op.value(e, elapsed)
		if ok {
			b.WriteString(v)
		}
		return ok
	}
	b.Write(strconv.AppendInt(b.AvailableBuffer(), n, 10))
	return true
}

// startTimeText is a START_TIME in the default format, kept for the
// millisecond it names: a busy gateway logs many requests in each.
type startTimeText struct {
	ms   int64
	text string
}

var lastStartTime atomic.Pointer[startTimeText]

func defaultStartTime(t time.Time) string {
	ms := t.UnixMilli()
	if c := lastStartTime.Load(); c != nil && c.ms == ms {
		return c.text
	}
	c := &startTimeText{ms: ms, text: t.UTC().Format("2006-01-02T15:04:05.000Z")}
	lastStartTime.Store(c)
	return c.text
}

// value is the operator's text for one exchange; false means unset ("-").
func (op *operator) value(e *exchange, elapsed time.Duration) (string, bool) {
	r := e.r
	switch op.kind {
	case opStartTime:
		if op.time != nil {
			return formatTime(e.start.UTC(), op.time), true
		}
		return defaultStartTime(e.start), true
	case opReq, opReqWithoutQuery:
		for i, n := range op.names {
			if v, ok := e.requestHeader(n, op.keys[i]); ok {
				if op.kind == opReqWithoutQuery {
					v, _, _ = strings.Cut(v, "?")
				}
				return op.truncate(v), true
			}
		}
		return "", false
	case opResp, opTrailer:
		for i, n := range op.names {
			if v, ok := e.responseHeader(n, op.keys[i], op.kind == opTrailer); ok {
				return op.truncate(v), true
			}
		}
		return "", false
	case opProtocol:
		if r.ProtoMajor == 2 {
			return "HTTP/2", true
		}
		return r.Proto, true
	case opResponseCode:
		return strconv.Itoa(e.status), true
	case opResponseCodeDetails:
		return e.codeDetails(), true
	case opResponseFlags:
		return e.flags, e.flags != ""
	case opBytesReceived:
		return strconv.FormatInt(e.bytesRecv.Load(), 10), true
	case opBytesSent:
		return strconv.FormatInt(e.bytesSent, 10), true
	case opDuration:
		return strconv.FormatInt(elapsed.Milliseconds(), 10), true
	case opResponseDuration:
		if !e.wroteHeader {
			return "", false
		}
		return strconv.FormatInt(e.firstByte.Milliseconds(), 10), true
	case opUpstreamHost:
		return e.endpoint, e.endpoint != ""
	case opUpstreamCluster:
		return e.node, e.node != ""
	case opUpstreamFailure:
		return e.failure, e.failure != ""
	case opRouteName:
		if e.d.GatewayRoute == nil {
			return "", false
		}
		return e.d.GatewayRoute.Name, true
	case opRemoteAddr:
		return r.RemoteAddr, r.RemoteAddr != ""
	case opRemoteAddrNoPort:
		return hostOnly(r.RemoteAddr)
	case opLocalAddr, opLocalAddrNoPort, opLocalPort:
		a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		if !ok {
			return "", false
		}
		switch op.kind {
		case opLocalAddrNoPort:
			return hostOnly(a.String())
		case opLocalPort:
			_, port, err := net.SplitHostPort(a.String())
			return port, err == nil
		}
		return a.String(), true
	case opHostname:
		h, err := os.Hostname()
		return h, err == nil
	}
	return "", false
}

func (op *operator) truncate(v string) string {
	if op.max > 0 && len(v) > op.max {
		return v[:op.max]
	}
	return v
}

func hostOnly(addr string) (string, bool) {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, addr != ""
	}
	return h, true
}

// requestHeader is REQ(name): the request as forwarded upstream, with the
// pseudo-headers Envoy knows. key is name in canonical form.
func (e *exchange) requestHeader(name, key string) (string, bool) {
	r := e.r
	routed := e.d.GatewayRoute != nil
	switch name {
	case ":method":
		return r.Method, true
	case ":scheme":
		if r.TLS != nil {
			return "https", true
		}
		return "http", true
	case ":authority", "host":
		if routed {
			return e.d.Host, e.d.Host != ""
		}
		return r.Host, r.Host != ""
	case ":path":
		if !routed {
			return r.RequestURI, r.RequestURI != ""
		}
		if r.URL.RawQuery == "" {
			return e.d.Path, true
		}
		return e.d.Path + "?" + r.URL.RawQuery, true
	case "x-envoy-original-path":
		// Set, as Envoy does, only when the path was rewritten.
		if routed && e.d.Path != r.URL.EscapedPath() {
			return r.RequestURI, true
		}
		return "", false
	case "x-request-id":
		if vals := r.Header[key]; len(vals) > 0 && vals[0] != "" {
			return vals[0], true
		}
		return e.reqID.String(), e.reqID.set
	}
	vals := r.Header[key]
	if len(vals) == 0 {
		return "", false
	}
	return vals[0], true
}

func (e *exchange) responseHeader(name, key string, trailer bool) (string, bool) {
	h := e.Header()
	if trailer {
		if v := h.Get(http.TrailerPrefix + name); v != "" {
			return v, true
		}
	} else if name == "x-envoy-upstream-service-time" {
		if e.upstreamTime > 0 {
			return strconv.FormatInt(e.upstreamTime.Milliseconds(), 10), true
		}
		return "", false
	}
	vals := h[key]
	if len(vals) == 0 {
		return "", false
	}
	return vals[0], true
}

func (e *exchange) codeDetails() string {
	switch e.flags {
	case flagNoRoute:
		return "route_not_found"
	case flagNoCluster:
		return "cluster_not_found"
	case flagNoHealthy:
		return "no_healthy_upstream"
	case flagConnectFailure:
		return "upstream_reset_before_response_started{connection_failure}"
	case flagUpstreamReset:
		return "upstream_reset_before_response_started{connection_termination}"
	case flagUpstreamAbort:
		return "upstream_reset_after_response_started"
	case flagDownstreamGone:
		return "downstream_remote_disconnect"
	}
	return "via_upstream"
}

// appendJSONString writes s as a JSON string.
func appendJSONString(b *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case c < 0x20 || c == 0x7f:
			b.WriteString(`\u00`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}

// timePart is a piece of a START_TIME(...) strftime format: literal text or
// one conversion.
type timePart struct {
	lit  string
	conv byte // 0 for literal
	prec int  // digits for %f / %E<n>S
}

func parseTimeFormat(f string) []timePart {
	var parts []timePart
	for f != "" {
		i := strings.IndexByte(f, '%')
		if i < 0 || i == len(f)-1 {
			parts = append(parts, timePart{lit: f})
			break
		}
		if i > 0 {
			parts = append(parts, timePart{lit: f[:i]})
		}
		f = f[i+1:]
		switch {
		case f[0] >= '1' && f[0] <= '9' && len(f) > 1 && f[1] == 'f': // %3f
			parts = append(parts, timePart{conv: 'f', prec: int(f[0] - '0')})
			f = f[2:]
		case strings.HasPrefix(f, "E*S"):
			parts = append(parts, timePart{conv: 'S', prec: 9})
			f = f[3:]
		case len(f) > 2 && f[0] == 'E' && f[1] >= '1' && f[1] <= '9' && f[2] == 'S': // %E3S
			parts = append(parts, timePart{conv: 'S', prec: int(f[1] - '0')})
			f = f[3:]
		case f[0] == 'f':
			parts = append(parts, timePart{conv: 'f', prec: 9})
			f = f[1:]
		default:
			parts = append(parts, timePart{conv: f[0]})
			f = f[1:]
		}
	}
	return parts
}

func formatTime(t time.Time, parts []timePart) string {
	var b []byte
	two := func(n int) { b = append(b, byte('0'+n/10%10), byte('0'+n%10)) }
	frac := func(prec int) {
		ns := strconv.Itoa(t.Nanosecond() + 1e9)[1:] // nine digits
		b = append(b, ns[:prec]...)
	}
	for _, p := range parts {
		switch p.conv {
		case 0:
			b = append(b, p.lit...)
		case 'Y':
			b = strconv.AppendInt(b, int64(t.Year()), 10)
		case 'y':
			two(t.Year() % 100)
		case 'm':
			two(int(t.Month()))
		case 'd':
			two(t.Day())
		case 'e':
			b = append(b, fmt.Sprintf("%2d", t.Day())...)
		case 'H':
			two(t.Hour())
		case 'M':
			two(t.Minute())
		case 'S':
			two(t.Second())
			if p.prec > 0 {
				b = append(b, '.')
				frac(p.prec)
			}
		case 'f':
			frac(p.prec)
		case 's':
			b = strconv.AppendInt(b, t.Unix(), 10)
		case 'j':
			b = append(b, fmt.Sprintf("%03d", t.YearDay())...)
		case 'b':
			b = append(b, t.Format("Jan")...)
		case 'B':
			b = append(b, t.Format("January")...)
		case 'a':
			b = append(b, t.Format("Mon")...)
		case 'A':
			b = append(b, t.Format("Monday")...)
		case 'F':
			b = append(b, t.Format("2006-01-02")...)
		case 'T':
			b = append(b, t.Format("15:04:05")...)
		case 'z':
			b = append(b, t.Format("-0700")...)
		case 'Z':
			b = append(b, t.Format("MST")...)
		case '%':
			b = append(b, '%')
		default:
			b = append(b, '%', p.conv)
		}
	}
	return string(b)
}
