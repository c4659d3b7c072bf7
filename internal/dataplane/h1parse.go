package dataplane

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
)

// The HTTP/1.1 response parser of the upstream transport (h1.go). It is
// strict where leniency lets one response be read as two, or a body be cut
// somewhere else than where the upstream meant it to end (response
// splitting, desynchronised keep-alive connections): every line must end in
// CRLF, obsolete line folding is refused, Content-Length must be one
// decimal number (repeated only with the same value), the only
// Transfer-Encoding accepted is chunked and never together with
// Content-Length, and a head larger than maxResponseHead is refused. A
// response that breaks any of these fails the attempt (502, flag UC) and its
// connection is closed.

// maxResponseHead bounds the status line and header fields of a response,
// and the trailer section of a chunked one.
const maxResponseHead = 64 << 10

// max1xx bounds the informational responses that may precede the final one.
const max1xx = 8

var (
	errMalformedResponse = errors.New("malformed HTTP response")
	errHeadTooLarge      = errors.New("HTTP response head too large")
	errBareLF            = errors.New("malformed HTTP response: line not ending in CRLF")
	errObsFold           = errors.New("malformed HTTP response: obsolete line folding")
	errBadFieldName      = errors.New("malformed HTTP response: invalid header field name")
	errBadFieldValue     = errors.New("malformed HTTP response: invalid header field value")
	errBadLength         = errors.New("malformed HTTP response: invalid Content-Length")
	errBadEncoding       = errors.New("malformed HTTP response: unsupported Transfer-Encoding")
	errBadChunk          = errors.New("malformed HTTP response: invalid chunked encoding")
)

// readHead reads lines up to and including the empty line that ends a head
// (or a trailer section), appended to buf, and returns them without that
// empty line. Every line ends in CRLF.
func readHead(br *bufio.Reader, buf []byte) ([]byte, error) {
	start := len(buf)
	lineStart := start
	for {
		frag, err := br.ReadSlice('\n')
		if len(buf)-start+len(frag) > maxResponseHead {
			return buf, errHeadTooLarge
		}
		buf = append(buf, frag...)
		switch {
		case err == bufio.ErrBufferFull:
			continue // a long line: keep reading it
		case err == io.EOF && len(buf) > start:
			return buf, io.ErrUnexpectedEOF
		case err != nil:
			return buf, err
		}
		line := buf[lineStart:]
		if len(line) < 2 || line[len(line)-2] != '\r' {
			return buf, errBareLF
		}
		if len(line) == 2 {
			return buf[:lineStart], nil
		}
		lineStart = len(buf)
	}
}

// peekHead returns a head that br already holds whole, every line ending
// in CRLF, without its empty last line, and consumes it; ok is false when
// br holds less or a line ends otherwise, and readHead must read it. The
// head is br's own buffer: it is good until br is read again.
func peekHead(br *bufio.Reader) (head []byte, ok bool) {
	b, _ := br.Peek(br.Buffered())
	for p := 0; ; p++ {
		j := bytes.IndexByte(b[p:], '\n')
		if j < 0 {
			return nil, false
		}
		p += j
		if p == 0 || b[p-1] != '\r' {
			return nil, false
		}
		if p == 1 || b[p-2] == '\n' { // an empty line
			if p == 1 {
				return nil, false // no status line: readHead says what is wrong
			}
			br.Discard(p + 1)
			return b[:p-1], true
		}
	}
}

// parseStatusLine parses "HTTP/1.x SSS reason".
func parseStatusLine(line string) (code, minor int, status string, err error) {
	if len(line) < 12 || !strings.HasPrefix(line, "HTTP/1.") || line[8] != ' ' {
		return 0, 0, "", errMalformedResponse
	}
	switch line[7] {
	case '0':
		minor = 0
	case '1':
		minor = 1
	default:
		return 0, 0, "", errMalformedResponse
	}
	for i := 9; i < 12; i++ {
		c := line[i]
		if c < '0' || c > '9' {
			return 0, 0, "", errMalformedResponse
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 {
		return 0, 0, "", errMalformedResponse
	}
	if len(line) > 12 {
		if line[12] != ' ' {
			return 0, 0, "", errMalformedResponse
		}
		for i := 13; i < len(line); i++ {
			if c := line[i]; c < ' ' && c != '\t' || c == 0x7f {
				return 0, 0, "", errMalformedResponse
			}
		}
	}
	return code, minor, line[9:], nil
}

// field is h.Get(key) for a key in canonical form: a map lookup that
// does not canonicalise the key again.
func field(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// hopByHop lists the fields that concern one connection and are never
// forwarded (RFC 9110 §7.6.1), besides those Connection names.
var hopByHop = [...]string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func isHopByHop(key string) bool { return slices.Contains(hopByHop[:], key) }

// fact is one of the fields the direct path asks about: of a response, to
// frame it, write it and judge it; of a request, to forward it. The parsers
// note their values as they parse them (fieldFacts), so that nobody looks
// them up in the header after them.
type fact uint8

const (
	factConnection fact = iota + 1
	factContentLength
	factContentType
	factDate
	factGrpcStatus
	factTe
	factTransferEncoding
	factXForwardedFor
	factXRequestID
	nFacts
)

var factKeys = [nFacts]string{"", "Connection", "Content-Length", "Content-Type", "Date", "Grpc-Status", "Te", "Transfer-Encoding", "X-Forwarded-For", "X-Request-Id"}

// factHop tells the facts whose fields are hop-by-hop.
var factHop = func() (hop [nFacts]bool) {
	for k, key := range factKeys {
		hop[k] = key != "" && isHopByHop(key)
	}
	return hop
}()

func factOf(key string) fact {
	for i := factConnection; i < nFacts; i++ {
		if key == factKeys[i] {
			return i
		}
	}
	return 0
}

// fieldFacts holds, for each fact, the values its field has in the header
// parsed with it: the header's own slice, nil when the field is absent.
// A hop-by-hop field left out of the header is noted all the same.
type fieldFacts [nFacts][]string

// values are the values of k's field. With no facts (f nil) they are
// read from h.
func (f *fieldFacts) values(h http.Header, k fact) []string {
	if f != nil {
		return f[k]
	}
	return h[factKeys[k]]
}

// first is the first value of k's field, "" when there is none.
func (f *fieldFacts) first(h http.Header, k fact) string {
	if v := f.values(h, k); len(v) > 0 {
		return v[0]
	}
	return ""
}

// fieldCache remembers the field lines of a connection's earlier messages,
// parsed: a client's requests repeat most of theirs (Host, User-Agent,
// Accept), an upstream's responses too (Server, Content-Type,
// Content-Length, Connection, Date within a second), and those are neither
// checked nor copied again. The value slices it hands out are shared by
// every header they go into: nothing changes a header's values in place,
// and a repeated field's append copies out of them.
//
// Lines are kept by their place in the message, because a connection's
// messages repeat theirs in the same order: the line at the same place is
// compared first, then the others, which is cheaper than hashing each
// line to look it up.
type fieldCache struct {
	lines  []cachedField
	status string // the last status line
}

type cachedField struct {
	line string // as it came, with its CRLF
	key  string
	val  []string // one value, capacity one
	hop  bool     // one of hopByHop
	fact fact
	out  string // "Key: value\r\n", as the field is sent on
	// Of a request's field: whether it is sent upstream as it is, and
	// whether the line alone says so (sendOn).
	send, sendKnown bool
}

// maxCachedFields bounds the lines a connection remembers: the first ones
// of a message, where the fields that repeat usually are.
const maxCachedFields = 32

// field parses line, the i-th field line of its message, which ends in
// CRLF; fc may be nil. The field is the cache's own: it is good until the
// next call, and is not to be changed.
func (fc *fieldCache) field(line []byte, i int) (*cachedField, error) {
	if fc != nil {
		if i < len(fc.lines) && fc.lines[i].line == string(line) {
			return &fc.lines[i], nil
		}
		for j := range fc.lines {
			if fc.lines[j].line == string(line) {
				return &fc.lines[j], nil
			}
		}
	}
	s := string(line)
	text := s[:len(s)-2]
	key, v, err := parseFieldLine(text)
	if err != nil {
		return nil, err
	}
	f := cachedField{line: s, key: key, val: []string{v}, hop: isHopByHop(key), fact: factOf(key), out: s}
	if len(text) != len(key)+2+len(v) || text[:len(key)] != key || text[len(key):len(key)+2] != ": " {
		// Most lines are sent on as they came; others (a name not
		// canonical, spaces other than one after the colon) are
		// rewritten. parseFieldLine let no line break into v.
		f.out = key + ": " + v + "\r\n"
	}
	f.send, f.sendKnown = sendOn(&f)
	if fc != nil {
		switch {
		case i < len(fc.lines):
			fc.lines[i] = f
			return &fc.lines[i], nil
		case len(fc.lines) < maxCachedFields:
			fc.lines = append(fc.lines, f)
			return &fc.lines[len(fc.lines)-1], nil
		}
	}
	return &f, nil
}

// statusLine is line as a string, the previous one's when it repeats.
func (fc *fieldCache) statusLine(line []byte) string {
	if fc == nil {
		return string(line)
	}
	return reuseString(&fc.status, line)
}

// reuseString returns b as a string: *prev when b repeats it, else a new
// one, kept in *prev for the next time.
func reuseString(prev *string, b []byte) string {
	if *prev != string(b) {
		*prev = string(b)
	}
	return *prev
}

// newKeys tells, for the first keys of a message, whether each is new in
// it, by comparing it with the ones before instead of hashing it.
type newKeys struct {
	keys [16]string
	n    int
}

// add reports whether key is new, and remembers it; false means it came
// before, or that there were too many keys to tell.
func (s *newKeys) add(key string) bool {
	if s.n == len(s.keys) || slices.Contains(s.keys[:s.n], key) {
		return false
	}
	s.keys[s.n] = key
	s.n++
	return true
}

// parseFields parses header (or trailer) field lines, each ending in CRLF,
// into h, which is created when nil. fc, when not nil, is the
// connection's cache; facts, when not nil, gets the values of the fields
// it notes.
func parseFields(block []byte, h http.Header, fc *fieldCache, facts *fieldFacts) (http.Header, error) {
	if h == nil {
		h = make(http.Header, bytes.Count(block, []byte("\n")))
	}
	// Into an empty h, a key not seen earlier in block goes in without
	// first being looked up: one hash of it instead of two.
	fresh := len(h) == 0
	var seen newKeys
	for n := 0; len(block) > 0; n++ {
		var line []byte
		line, block = cutLine(block)
		f, err := fc.field(line, n)
		if err != nil {
			return h, err
		}
		v := f.val
		if !(fresh && seen.add(f.key)) {
			if cur, ok := h[f.key]; ok {
				v = append(cur, f.val[0])
			}
		}
		h[f.key] = v
		if facts != nil && f.fact != 0 {
			facts[f.fact] = v
		}
	}
	return h, nil
}

// cutLine splits off the first line of block, where every line ends in
// CRLF.
func cutLine(block []byte) (line, rest []byte) {
	i := bytes.IndexByte(block, '\n') + 1
	return block[:i], block[i:]
}

// headerLine is a field line as a client is sent it, with what it puts
// in a header.
type headerLine struct {
	out string   // "Key: value\r\n"
	key string   // canonical
	val []string // the one value, shared: appended to, never changed
}

// parseLines parses header field lines, each ending in CRLF, into lines,
// the ones that are not hop-by-hop, in order, without filling a header:
// the direct path sends them as they are, and fills a header from them
// (fillHeader) only when something asks for one. facts gets the values of
// the fields it notes, the hop-by-hop ones included. fc is the
// connection's cache.
func parseLines(block []byte, fc *fieldCache, lines []headerLine, facts *fieldFacts) ([]headerLine, error) {
	for n := 0; len(block) > 0; n++ {
		var line []byte
		line, block = cutLine(block)
		f, err := fc.field(line, n)
		if err != nil {
			return lines, err
		}
		if !f.hop {
			lines = append(lines, headerLine{out: f.out, key: f.key, val: f.val})
		}
		if f.fact != 0 {
			if cur := facts[f.fact]; cur != nil {
				facts[f.fact] = append(cur, f.val[0])
			} else {
				facts[f.fact] = f.val
			}
		}
	}
	return lines, nil
}

// fillHeader adds the fields of lines to h.
func fillHeader(h http.Header, lines []headerLine) {
	for _, l := range lines {
		if cur, ok := h[l.key]; ok {
			h[l.key] = append(cur, l.val[0])
		} else {
			h[l.key] = l.val
		}
	}
}

// parseFieldLine parses one field line, without its CRLF, into its
// canonical key and its value without surrounding whitespace. Requests
// (h1server.go) and responses are held to the same rules.
func parseFieldLine(line string) (key, value string, err error) {
	if line != "" && (line[0] == ' ' || line[0] == '\t') {
		return "", "", errObsFold
	}
	colon := strings.IndexByte(line, ':')
	if colon <= 0 {
		return "", "", errBadFieldName
	}
	name := line[:colon]
	// Names mostly come canonical: seeing that while checking them
	// spares canonicalising them.
	canonical, upper := true, true
	for j := 0; j < len(name); j++ {
		c := name[j]
		if !isTokenByte(c) {
			return "", "", errBadFieldName
		}
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			canonical = false
		}
		upper = c == '-'
	}
	if !canonical {
		name = http.CanonicalHeaderKey(name)
	}
	v := trimOWS(line[colon+1:])
	for j := 0; j < len(v); j++ {
		if c := v[j]; c < ' ' && c != '\t' || c == 0x7f {
			return "", "", errBadFieldValue
		}
	}
	return name, v, nil
}

func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// isTokenByte reports whether c may appear in a field name (RFC 9110 §5.6.2).
func isTokenByte(c byte) bool {
	return tokenTable[c]
}

var tokenTable = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// bodyFraming is how a response's body is delimited.
type bodyFraming uint8

const (
	framingNone    bodyFraming = iota // no body
	framingLength                     // Content-Length bytes
	framingChunked                    // chunked transfer coding
	framingClose                      // until the upstream closes
)

// responseFraming decides how the body of a final HTTP/1.minor response to
// a request of method is delimited (RFC 9112 §6.3), and checks its framing
// fields: te and cl are the values of its Transfer-Encoding and
// Content-Length.
func responseFraming(method string, minor, code int, te, cl []string) (f bodyFraming, length int64, err error) {
	hasTE, hasCL := len(te) > 0, len(cl) > 0
	if hasCL {
		length = -1
		for _, v := range cl {
			n, ok := parseContentLength(v)
			if !ok || (length >= 0 && n != length) {
				return 0, 0, errBadLength
			}
			length = n
		}
	}
	// An HTTP/1.0 message has no transfer codings (RFC 9112 §6.1): its
	// framing is faulty, and another parser would read it differently.
	if hasTE && (len(te) != 1 || !strings.EqualFold(te[0], "chunked") || hasCL || minor == 0) {
		return 0, 0, errBadEncoding
	}
	switch {
	case method == http.MethodHead, code == http.StatusNoContent, code == http.StatusNotModified:
		return framingNone, 0, nil
	case hasTE:
		return framingChunked, -1, nil
	case hasCL && length == 0:
		return framingNone, 0, nil
	case hasCL:
		return framingLength, length, nil
	}
	return framingClose, -1, nil
}

func parseContentLength(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// parseChunkSize parses a chunk-size line without its CRLF, ignoring
// chunk extensions.
func parseChunkSize(line []byte) (int64, error) {
	var n int64
	i := 0
	for ; i < len(line); i++ {
		c := line[i]
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			goto rest
		}
		if i >= 15 {
			return 0, errBadChunk
		}
		n = n<<4 | int64(d)
	}
rest:
	if i == 0 {
		return 0, errBadChunk
	}
	rest := line[i:]
	for len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
		rest = rest[1:]
	}
	if len(rest) > 0 && rest[0] != ';' {
		return 0, errBadChunk
	}
	for _, c := range rest {
		if c < ' ' && c != '\t' || c == 0x7f {
			return 0, errBadChunk
		}
	}
	return n, nil
}
