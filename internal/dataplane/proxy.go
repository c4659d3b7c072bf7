package dataplane

import (
	"bufio"
	"io"
	"iter"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// The proxy of requests to cleartext HTTP/1.1 clusters. It does what
// httputil.ReverseProxy does with rewriteRequest (serve.go) for them, without
// copying the request and its header: the client's header is written
// upstream as it is, leaving out the hop-by-hop fields (RFC 9110 §7.6.1:
// the fixed list and those the Connection field names) and the client's
// forwarding fields, which are replaced by the gateway's own
// (X-Forwarded-For, -Proto, -Host; X-Request-Id when the client sent none).
// Responses are handled as the ReverseProxy does: hop-by-hop fields removed,
// informational responses forwarded, trailers passed on, a body without a
// known length (or a server-sent event stream) flushed as it arrives, and a
// body that breaks off aborts the client's response.
//
// Requests that switch protocols, that expect 100-continue or that carry
// trailers keep going through the ReverseProxy and http.Transport.

// forwarded is what the gateway adds to, and leaves out of, the client's
// header when it writes the request upstream.
type forwarded struct {
	e        *exchange
	priorXFF []string // the client's X-Forwarded-For values
	clientIP string   // "" when the remote address has none: no X-Forwarded-For
	proto    string   // X-Forwarded-Proto
	reqID    []byte   // X-Request-Id to send; nil when the client's is kept
	te       bool     // send "Te: trailers"
	conn     []string // the client's Connection values: the fields they list are hop-by-hop
	// validHost is the client's Host when the server loop parsed the
	// request, which checked it: it is not checked again.
	validHost string
	// lines, when asLines is set, are the client's field lines to send
	// as they are, in order: what skip leaves of its header.
	lines   []string
	asLines bool

	res *h1Response // where the transport reads the response: the call's
}

// skip reports whether a field of the client's request is not written
// upstream as it is.
func (fw *forwarded) skip(k string) bool {
	if isHopByHop(k) || replaced(k) {
		return true
	}
	switch k {
	case "X-Request-Id":
		return fw.reqID != nil
	}
	return headerHasToken(fw.conn, k)
}

// replaced reports whether the gateway writes a field of its own in place
// of the client's.
func replaced(k string) bool {
	switch k {
	case "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Host", "Content-Length":
		return true
	}
	return false
}

// sendOn is skip, and writeHead's leaving out of an empty User-Agent, for a
// field line of a request the server loop parsed, told from the line alone:
// whether the line is sent upstream as it is. known is false when that
// depends on the request's other lines: a Connection field naming fields
// other than close and keep-alive, or an empty X-Request-Id (the gateway
// then sends one of its own in place of every X-Request-Id line).
func sendOn(f *cachedField) (send, known bool) {
	switch {
	case f.key == "Connection":
		return false, !namesFields(f.val)
	case f.hop || replaced(f.key):
		return false, true
	case f.key == "X-Request-Id" && f.val[0] == "":
		return false, false
	case f.key == "User-Agent" && f.val[0] == "":
		return false, true
	}
	return true, true
}

// connectionNames yields the field names a Connection value lists. The
// usual options, keep-alive and close, name no field: the one is among
// hopByHop, the other only ends the connection.
func connectionNames(v string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for t := range strings.SplitSeq(v, ",") {
			if t = strings.TrimSpace(t); t != "" && !strings.EqualFold(t, "keep-alive") && !strings.EqualFold(t, "close") && !yield(t) {
				return
			}
		}
	}
}

// writeFields writes the gateway's forwarding fields; host is the one the
// client asked for.
func (fw *forwarded) writeFields(w *bufio.Writer, host string) error {
	if host != fw.validHost && !httpguts.ValidHostHeader(host) {
		return errInvalidRequest{"dataplane: invalid Host"}
	}
	for _, p := range fw.priorXFF {
		if !httpguts.ValidHeaderFieldValue(p) {
			return errInvalidRequest{"dataplane: invalid X-Forwarded-For"}
		}
	}
	// Appended in w's free space and written at once: one call instead
	// of one for each piece.
	b := w.AvailableBuffer()
	if fw.clientIP != "" {
		b = append(b, "X-Forwarded-For: "...)
		for _, p := range fw.priorXFF {
			b = append(b, p...)
			b = append(b, ", "...)
		}
		b = append(b, fw.clientIP...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "X-Forwarded-Host: "...)
	b = append(b, host...)
	b = append(b, "\r\nX-Forwarded-Proto: "...)
	b = append(b, fw.proto...)
	b = append(b, "\r\n"...)
	if fw.reqID != nil {
		b = append(b, "X-Request-Id: "...)
		b = append(b, fw.reqID...)
		b = append(b, "\r\n"...)
	}
	if fw.te {
		b = append(b, "Te: trailers\r\n"...)
	}
	_, err := w.Write(b)
	return err
}

// clientIP is the IP address of e's client, "" when its remote address
// has none. The server loop's connection works it out once.
func clientIP(e *exchange) string {
	if e.sc != nil {
		if e.sc.clientIP == "" {
			e.sc.clientIP, _, _ = net.SplitHostPort(e.sc.addr)
		}
		return e.sc.clientIP
	}
	ip, _, _ := net.SplitHostPort(e.r.RemoteAddr)
	return ip
}

// direct reports whether r can take the direct path: no protocol switch,
// no 100-continue, no request trailers.
func direct(r *http.Request) bool {
	if len(r.Trailer) > 0 {
		return false
	}
	if _, ok := r.Header["Upgrade"]; ok {
		return false
	}
	_, ok := r.Header["Expect"]
	return !ok
}

// proxyH1 sends the request of e through call c to its HTTP/1.1 cluster and
// copies the response to the client.
func (p *Plane) proxyH1(e *exchange, c *call) {
	r := e.r
	fw := &c.fw
	fw.e, fw.res = e, &c.res
	fw.proto = "http"
	if r.TLS != nil {
		fw.proto = "https"
	}
	var rf *fieldFacts // what the server loop's parser noted of r
	if e.sc != nil {
		rf = &e.sc.facts
	}
	fw.clientIP, fw.priorXFF = clientIP(e), nil
	if fw.clientIP != "" {
		fw.priorXFF = rf.values(r.Header, factXForwardedFor)
	}
	if rf.first(r.Header, factXRequestID) == "" {
		e.reqID.generate()
		fw.reqID = e.reqID.b[:]
	}
	fw.te = httpguts.HeaderValuesContainsToken(rf.values(r.Header, factTe), "trailers")
	fw.conn = rf.values(r.Header, factConnection)
	hw, _ := e.w.(*h1Writer)
	fw.lines, fw.asLines, fw.validHost = nil, false, ""
	if e.sc != nil {
		fw.validHost = r.Host
		if e.sc.sendLines {
			// The server loop parsed r and kept its lines: they are
			// written as they came instead of the header map, key by key.
			fw.lines, fw.asLines = e.sc.lines, true
		}
	}

	out := &c.out
	out.Scheme = "http"
	out.Host = e.endpoint
	setPath(out, e.d.Path)
	out.RawQuery, out.ForceQuery = r.URL.RawQuery, r.URL.ForceQuery
	// Field by field: the call's request has its context set already.
	outreq := &c.outReq
	*outreq = c.outTmpl
	outreq.Method, outreq.URL, outreq.Host = r.Method, out, e.d.Host
	outreq.Proto, outreq.ProtoMajor, outreq.ProtoMinor = "HTTP/1.1", 1, 1
	outreq.Header = r.Header // written with fw applied; never changed
	if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		outreq.Body = &countingBody{ReadCloser: noopCloser{r.Body}, in: r.Body, n: &e.bytesRecv}
		outreq.ContentLength = r.ContentLength
	}
	if e.logged() {
		e.upstreamSent = time.Now()
	}
	res, err := c.roundTrip(outreq)
	if err != nil {
		clear(e.Header()) // the fields of a response given up
		p.proxyError(e, outreq, err)
		return
	}
	if e.logged() {
		e.upstreamTime = time.Since(e.upstreamSent)
	}

	// The transport kept the response's fields as lines (h1.go,
	// readResponse), leaving out the hop-by-hop ones: res.Header is dst,
	// the client's response header, and holds none of them yet.
	dst := e.Header()
	lines, conn := c.res.lines, c.res.facts[factConnection]
	announced := len(res.Trailer)
	if hw != nil && announced == 0 && !namesFields(conn) {
		// The writer sends the lines as they came, in their order, and
		// fills its header from them only if something asks for it.
		hw.lines, hw.noted = lines, &c.res.facts
	} else {
		fillHeader(dst, lines)
		dropNamed(dst, conn)
	}
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		dst.Add("Trailer", strings.Join(keys, ", "))
	}
	e.WriteHeader(res.StatusCode)

	stream := res.ContentLength == -1 || isEventStream(c.facts(res).first(res.Header, factContentType))
	if stream {
		e.Flush()
	}
	if err := copyBody(e, res.Body, stream); err != nil {
		res.Body.Close()
		p.log.Debug("response body copy failed", "node", e.node, "endpoint", e.endpoint, "error", err)
		panic(http.ErrAbortHandler)
	}
	res.Body.Close() // now, so that the trailers are in
	e.ended = c.res.body.ended
	if hw != nil && hw.lines != nil {
		// The lines belong to the call, which may serve another request
		// once this returns: a head written after that (no body came)
		// and an access log that prints response fields read the header
		// instead.
		if !hw.wroteHead || e.logReadsResponse() {
			hw.fill()
		} else {
			hw.lines, hw.noted = nil, nil
		}
	}

	if len(res.Trailer) == 0 {
		return
	}
	e.Flush() // chunked, so that the trailers can follow
	if len(res.Trailer) == announced {
		for k, vv := range res.Trailer {
			dst[k] = vv
		}
		return
	}
	for k, vv := range res.Trailer {
		k = http.TrailerPrefix + k
		for _, v := range vv {
			dst.Add(k, v)
		}
	}
}

// bufferedRest is a response body whose rest may already be in memory,
// where it can be written from, with no copy buffer and no read. The
// body's Close then takes it as read.
type bufferedRest interface {
	rest() []byte
}

// copyBody copies a response body to the client, flushing after every
// write when stream is set.
func copyBody(e *exchange, body io.Reader, stream bool) error {
	if r, ok := body.(bufferedRest); ok && !stream {
		if p := r.rest(); p != nil {
			_, err := e.Write(p)
			return err
		}
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, err := e.Write(buf[:n]); err != nil {
				return err
			}
			if stream {
				e.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

func isEventStream(ct string) bool {
	base, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(base), "text/event-stream")
}

// namesFields reports whether Connection values, conn, name any field as
// hop-by-hop.
func namesFields(conn []string) bool {
	if len(conn) == 1 && (conn[0] == "keep-alive" || conn[0] == "close") {
		return false // the usual value names no field
	}
	for _, f := range conn {
		for range connectionNames(f) {
			return true
		}
	}
	return false
}

// dropNamed removes from a response's header h the fields that its
// Connection values, conn, name as hop-by-hop.
func dropNamed(h http.Header, conn []string) {
	for _, f := range conn {
		for name := range connectionNames(f) {
			delete(h, http.CanonicalHeaderKey(name))
		}
	}
}

// noopCloser keeps the transport's Close off the client's body, as the
// ReverseProxy does: countingBody decides when it is closed.
type noopCloser struct{ io.Reader }

func (noopCloser) Close() error { return nil }
