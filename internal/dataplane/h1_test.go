package dataplane

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/ir"
)

// rawBackend accepts connections and hands each to serve, which speaks
// HTTP by hand, so that tests can send what no Go server would.
type rawBackend struct {
	*backend
	conns atomic.Int32 // connections accepted
}

func startScriptedBackend(t testing.TB, serve func(c net.Conn, br *bufio.Reader)) *rawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().(*net.TCPAddr)
	rb := &rawBackend{backend: &backend{name: "b", addr: a.String(), port: a.Port}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			rb.conns.Add(1)
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(c, bufio.NewReader(c))
			}()
		}
	}()
	return rb
}

// rawRequest is a request head as the backend read it, and its body when
// it had a Content-Length or was chunked.
type rawRequest struct {
	line   string
	header textproto.MIMEHeader
	body   []byte
}

func readRawRequest(br *bufio.Reader) (*rawRequest, error) {
	tp := textproto.NewReader(br)
	line, err := tp.ReadLine()
	if err != nil {
		return nil, err
	}
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		return nil, err
	}
	r := &rawRequest{line: line, header: h}
	switch {
	case h.Get("Transfer-Encoding") == "chunked":
		for {
			sz, err := tp.ReadLine()
			if err != nil {
				return nil, err
			}
			n, err := strconv.ParseInt(sz, 16, 64)
			if err != nil {
				return nil, err
			}
			if n == 0 {
				if _, err := tp.ReadLine(); err != nil {
					return nil, err
				}
				break
			}
			chunk := make([]byte, n+2)
			if _, err := io.ReadFull(br, chunk); err != nil {
				return nil, err
			}
			r.body = append(r.body, chunk[:n]...)
		}
	case h.Get("Content-Length") != "":
		n, _ := strconv.Atoi(h.Get("Content-Length"))
		r.body = make([]byte, n)
		if _, err := io.ReadFull(br, r.body); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// gatewayTo is a gateway with one route, /, to b.
// startAnsweringBackend answers every request with response, on the same
// connection while keep is set.
func startAnsweringBackend(t *testing.T, response string, keep bool) *rawBackend {
	return startScriptedBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			if _, err := readRawRequest(br); err != nil {
				return
			}
			if _, err := io.WriteString(c, response); err != nil || !keep {
				return
			}
		}
	})
}

// dialGateway connects to g's port 8080, for as long as the test runs; addr
// is the Host to send.
func dialGateway(t *testing.T, g *gateway) (c net.Conn, br *bufio.Reader, addr string) {
	t.Helper()
	addr = g.p.Addrs()[8080].String()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c), addr
}

// checkFields compares the field lines of request i with want, in order
// when ordered.
func checkFields(t *testing.T, i int, got, want []string, ordered bool) {
	t.Helper()
	if ordered {
		if !slices.Equal(got, want) {
			t.Errorf("request %d: fields %q, want %q in this order", i, got, want)
		}
		return
	}
	got, want = slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Errorf("request %d: fields %q, want %q", i, got, want)
	}
}

func gatewayTo(t *testing.T, b *backend) *gateway {
	return startGateway(t, meshConfig([]*ir.Listener{listenerOf(8080, route("r", "b", ir.Match{Prefix: "/"}))}, b))
}

// TestH1ResponseFraming checks that each way an HTTP/1.1 response can end
// its body reaches the client whole, and that the upstream connection is
// reused after every response that allows it.
func TestH1ResponseFraming(t *testing.T) {
	cases := []struct {
		name     string
		method   string
		response string
		body     string
		header   map[string]string // expected on the client's response
		trailer  map[string]string
		reuse    bool
	}{
		{name: "content-length", response: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello", body: "hello", header: map[string]string{"X-A": "1"}, reuse: true},
		{name: "chunked", response: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n", body: "hello world", reuse: true},
		{name: "chunked with trailers", response: "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 42\r\n\r\n", body: "abc", trailer: map[string]string{"X-Sum": "42"}, reuse: true},
		{name: "close-delimited", response: "HTTP/1.1 200 OK\r\n\r\nuntil the end", body: "until the end"},
		{name: "connection close", response: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", body: "ok"},
		{name: "http/1.0", response: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", body: "ok"},
		{name: "no content", response: "HTTP/1.1 204 No Content\r\n\r\n", reuse: true},
		{name: "not modified", response: "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", reuse: true},
		{name: "head", method: http.MethodHead, response: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", header: map[string]string{"Content-Length": "10"}, reuse: true},
		{name: "zero length", response: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", reuse: true},
		{name: "informational first", response: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", body: "ok", reuse: true},
		{name: "no reason phrase", response: "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok", body: "ok", reuse: true},
		{name: "same length twice", response: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", body: "ok", reuse: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := startAnsweringBackend(t, tc.response, tc.reuse)
			g := gatewayTo(t, b.backend)
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			for i := range 3 {
				req, _ := http.NewRequest(method, g.url(8080, "/x"), nil)
				res, err := g.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(res.Body)
				res.Body.Close()
				if err != nil {
					t.Fatalf("request %d: reading body: %v", i, err)
				}
				if string(body) != tc.body {
					t.Fatalf("request %d: body %q, want %q", i, body, tc.body)
				}
				for k, v := range tc.header {
					if got := res.Header.Get(k); got != v {
						t.Errorf("header %s = %q, want %q", k, got, v)
					}
				}
				for k, v := range tc.trailer {
					if got := res.Trailer.Get(k); got != v {
						t.Errorf("trailer %s = %q, want %q", k, got, v)
					}
				}
			}
			want := int32(3)
			if tc.reuse {
				want = 1
			}
			if n := b.conns.Load(); n != want {
				t.Errorf("%d upstream connections for 3 requests, want %d", n, want)
			}
		})
	}
}

// TestH1InformationalForwarded checks that a 103 reaches the client before
// the final response.
func TestH1InformationalForwarded(t *testing.T) {
	b := startScriptedBackend(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := readRawRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	g := gatewayTo(t, b.backend)
	var got []string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		got = append(got, fmt.Sprint(code, " ", h.Get("Link")))
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), http.MethodGet, g.url(8080, "/"), nil)
	res, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if len(got) != 1 || got[0] != "103 </a.css>; rel=preload" {
		t.Errorf("informational responses %q", got)
	}
}

// TestH1MalformedResponses checks that responses that could be read in more
// than one way are refused with 502 instead of forwarded, and that their
// connection is not used again.
func TestH1MalformedResponses(t *testing.T) {
	cases := map[string]string{
		"conflicting content-length":   "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
		"content-length list":          "HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nab",
		"signed content-length":        "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nab",
		"transfer-encoding gzip":       "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nab",
		"transfer-encoding list":       "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
		"transfer-encoding twice":      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"chunked and content-length":   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
		"chunked in HTTP/1.0":          "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"obs-fold":                     "HTTP/1.1 200 OK\r\nX-A: 1\r\n  continued\r\nContent-Length: 2\r\n\r\nok",
		"bare LF in header":            "HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 2\r\n\r\nok",
		"bare LF status line":          "HTTP/1.1 200 OK\nContent-Length: 2\r\n\r\nok",
		"space before colon":           "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok",
		"CR in value":                  "HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\nok",
		"NUL in value":                 "HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\nok",
		"no colon":                     "HTTP/1.1 200 OK\r\nX-A\r\nContent-Length: 2\r\n\r\nok",
		"bad status line":              "HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok",
		"not HTTP":                     "SSH-2.0-OpenSSH\r\n\r\n",
		"HTTP/2 status line":           "HTTP/2 200\r\n\r\n",
		"oversized head":               "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", maxResponseHead) + "\r\nContent-Length: 2\r\n\r\nok",
		"unsolicited switch":           "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
		"endless informational":        strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", max1xx+2) + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"empty response":               "",
		"head cut short":               "HTTP/1.1 200 OK\r\nContent-Le",
		"content-length over int64":    "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\nok",
		"content-length not a number":  "HTTP/1.1 200 OK\r\nContent-Length: two\r\n\r\nok",
		"header name with a space":     "HTTP/1.1 200 OK\r\nX A: 1\r\nContent-Length: 2\r\n\r\nok",
		"header name with a delimiter": "HTTP/1.1 200 OK\r\nX(A): 1\r\nContent-Length: 2\r\n\r\nok",
		"fields before a bad framing":  "HTTP/1.1 200 OK\r\nX-Upstream: 1\r\nTransfer-Encoding: gzip\r\n\r\nab",
	}
	for name, response := range cases {
		t.Run(name, func(t *testing.T) {
			b := startScriptedBackend(t, func(c net.Conn, br *bufio.Reader) {
				if _, err := readRawRequest(br); err != nil {
					return
				}
				io.WriteString(c, response)
			})
			g := gatewayTo(t, b.backend)
			res := g.do(request{path: "/"})
			if res.status != http.StatusBadGateway {
				t.Fatalf("status %d, body %q; want 502", res.status, res.body)
			}
			if res.header.Get("X-Upstream") != "" {
				t.Errorf("the 502 carries the upstream's X-Upstream")
			}
		})
	}
}

// TestH1MalformedChunks checks that a chunked body that breaks off or is
// malformed after the head was forwarded reaches the client as an aborted
// response, never as a complete one.
func TestH1MalformedChunks(t *testing.T) {
	cases := map[string]string{
		"bad size":          "5\r\nhello\r\nzz\r\n",
		"size too large":    "fffffffffffffffff\r\n",
		"missing CRLF":      "5\r\nhelloX\r\n0\r\n\r\n",
		"bare LF size line": "5\nhello\r\n0\r\n\r\n",
		"cut short":         "5\r\nhel",
		"no last chunk":     "5\r\nhello\r\n",
		"bad trailer":       "5\r\nhello\r\n0\r\n bad\r\n\r\n",
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			b := startScriptedBackend(t, func(c net.Conn, br *bufio.Reader) {
				if _, err := readRawRequest(br); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"+body)
			})
			g := gatewayTo(t, b.backend)
			res, err := g.client.Get(g.url(8080, "/"))
			if err != nil {
				return // cut off before the head: as good
			}
			_, err = io.ReadAll(res.Body)
			res.Body.Close()
			if err == nil {
				t.Fatal("the client read a complete response")
			}
		})
	}
}

// TestH1StaleIdleConnection checks that an upstream closing a keep-alive
// connection while it sits idle in the pool (without saying so in its last
// response) costs no request: a GET is sent again on a new connection
// without counting as a retry, a POST is sent on a connection checked to be
// open. The check cannot see a close that has not happened yet (the
// backend may be descheduled between its response and its close), so a
// POST can still meet the close; the default retry policy then sends it
// again, which is counted.
func TestH1StaleIdleConnection(t *testing.T) {
	b := startScriptedBackend(t, func(c net.Conn, br *bufio.Reader) {
		r, err := readRawRequest(br)
		if err != nil {
			return
		}
		body := fmt.Sprintf("%s %d", strings.Fields(r.line)[0], len(r.body))
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		// Closes after one response, which said nothing of it.
	})
	g := gatewayTo(t, b.backend)
	for i := range 10 {
		res := g.do(request{path: "/"})
		if res.status != http.StatusOK || res.body != "GET 0" {
			t.Fatalf("GET %d: %d %q", i, res.status, res.body)
		}
	}
	if v := g.metric("meshgate_upstream_retries_total"); v != 0 {
		t.Errorf("%v retries: a GET on a closed idle connection must not count as a failed attempt", v)
	}
	for i := range 10 {
		res := g.do(request{method: http.MethodPost, path: "/", body: strings.NewReader("abc")})
		if res.status != http.StatusOK || res.body != "POST 3" {
			t.Fatalf("POST %d: %d %q", i, res.status, res.body)
		}
	}
}

// TestH1EarlyResponse checks that a response sent before the request body
// was read (a 413 to an upload) reaches the client, and that the
// connection is not reused with the body half sent.
func TestH1EarlyResponse(t *testing.T) {
	b := startScriptedBackend(t, func(c net.Conn, br *bufio.Reader) {
		tp := textproto.NewReader(br)
		if _, err := tp.ReadLine(); err != nil {
			return
		}
		if _, err := tp.ReadMIMEHeader(); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 413 Content Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big\n")
	})
	g := gatewayTo(t, b.backend)
	big := bytes.Repeat([]byte("x"), 8<<20)
	for range 3 {
		res, err := g.send(request{method: http.MethodPost, path: "/", body: bytes.NewReader(big)})
		if err != nil {
			// The gateway may close the client's connection without
			// reading the rest of an upload it will not forward.
			continue
		}
		if res.status != http.StatusRequestEntityTooLarge || res.body != "too big\n" {
			t.Fatalf("%d %q", res.status, res.body)
		}
	}
}

// TestH1RequestFraming checks what the upstream receives: bodies with a
// length keep it, bodies without one are chunked, hop-by-hop fields are
// gone, and a body-less POST says Content-Length: 0.
func TestH1RequestFraming(t *testing.T) {
	got := make(chan *rawRequest, 10)
	b := startScriptedBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			r, err := readRawRequest(br)
			if err != nil {
				return
			}
			got <- r
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		}
	})
	g := gatewayTo(t, b.backend)

	g.do(request{method: http.MethodPost, path: "/a?q=1", body: strings.NewReader("hello"), header: http.Header{"Connection": {"X-Hop"}, "X-Hop": {"1"}, "X-Keep": {"2"}}})
	r := <-got
	if r.line != "POST /a?q=1 HTTP/1.1" || string(r.body) != "hello" || r.header.Get("Content-Length") != "5" {
		t.Errorf("POST with length: %q %q %v", r.line, r.body, r.header)
	}
	if r.header.Get("X-Hop") != "" || r.header.Get("Connection") != "" || r.header.Get("X-Keep") != "2" {
		t.Errorf("hop-by-hop fields: %v", r.header)
	}
	if r.header.Get("X-Forwarded-For") == "" || r.header.Get("X-Request-Id") == "" {
		t.Errorf("forwarding fields missing: %v", r.header)
	}

	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte("streamed "))
		pw.Write([]byte("body"))
		pw.Close()
	}()
	g.do(request{method: http.MethodPut, path: "/b", body: pr})
	r = <-got
	if string(r.body) != "streamed body" || r.header.Get("Transfer-Encoding") != "chunked" {
		t.Errorf("PUT without length: %q %v", r.body, r.header)
	}

	g.do(request{method: http.MethodPost, path: "/c"})
	r = <-got
	if r.header.Get("Content-Length") != "0" || len(r.body) != 0 {
		t.Errorf("POST without body: %v", r.header)
	}
	if n := b.conns.Load(); n != 1 {
		t.Errorf("%d upstream connections, want 1", n)
	}
}

// TestH1ConcurrentStreams sends many concurrent requests, over HTTP/1.1
// connections and over multiplexed HTTP/2 ones, to an HTTP/1.1 upstream:
// every one gets its own answer, and the pool ends with no more
// connections than requests were in flight.
func TestH1ConcurrentStreams(t *testing.T) {
	b := startEcho(t, "b")
	g := gatewayTo(t, b)
	for name, client := range map[string]*http.Client{"h1": g.client, "h2c": h2cClient(t)} {
		t.Run(name, func(t *testing.T) {
			var wg sync.WaitGroup
			errs := make(chan error, 64)
			for i := range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := range 20 {
						path := fmt.Sprintf("/c%d/r%d", i, j)
						res, err := client.Get(g.url(8080, path))
						if err != nil {
							errs <- err
							return
						}
						body, err := io.ReadAll(res.Body)
						res.Body.Close()
						if err != nil || res.StatusCode != http.StatusOK || !strings.Contains(string(body), `"path":"`+path+`"`) {
							errs <- fmt.Errorf("%s: %d %q %v", path, res.StatusCode, body, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// TestH1RetiredTransportClosesConnections checks that a transport a reload
// replaced keeps no connection open: idle ones are closed at once, and one
// in flight when its exchange ends.
func TestH1RetiredTransportClosesConnections(t *testing.T) {
	release := make(chan struct{})
	b := startBackend(t, "b", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		io.WriteString(w, "ok")
	}))
	cfg := meshConfig([]*ir.Listener{listenerOf(8080, route("r", "b", ir.Match{Prefix: "/"}))}, b)
	g := startGateway(t, cfg)
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	conns := func() float64 { return g.metric("meshgate_upstream_connections") }
	done := make(chan response)
	go func() { done <- g.do(request{path: "/slow"}) }()
	eventually(t, "one upstream connection", func() bool { return conns() == 1 })
	g.do(request{path: "/"})
	if n := conns(); n != 2 {
		t.Fatalf("%v upstream connections, want 2", n)
	}

	// A new idle timeout makes a new transport.
	next := meshConfig([]*ir.Listener{listenerOf(8080, route("r", "b", ir.Match{Prefix: "/"}))}, b)
	next.Nodes["demo/b-vn"].Policies = map[int]*ir.NodeListenerPolicy{b.port: {Timeout: &ir.Timeout{IdleMillis: ms(60000)}}}
	if err := g.p.Apply(next, testGateway); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the idle connection closed", func() bool { return conns() == 1 })
	once.Do(func() { close(release) })
	if res := <-done; res.status != http.StatusOK {
		t.Fatalf("request in flight during the reload: %d %q", res.status, res.body)
	}
	eventually(t, "the in-flight connection closed", func() bool { return conns() == 0 })
}

// TestFieldCache parses a connection's messages in turn through one cache
// and checks each against a parse without it: lines that repeat at their
// place, that move, that change (a new Date), and more lines than the
// cache keeps.
func TestFieldCache(t *testing.T) {
	many := ""
	for i := range maxCachedFields + 5 {
		many += fmt.Sprintf("X-F%d: %d\r\n", i, i)
	}
	messages := []string{
		"Server: nginx\r\nDate: Fri, 27 Nov 2026 08:00:00 GMT\r\nContent-Length: 64\r\nConnection: keep-alive\r\n",
		"Server: nginx\r\nDate: Fri, 27 Nov 2026 08:00:00 GMT\r\nContent-Length: 64\r\nConnection: keep-alive\r\n",
		"Server: nginx\r\nDate: Fri, 27 Nov 2026 08:00:01 GMT\r\nContent-Length: 64\r\nConnection: keep-alive\r\n",
		"Date: Fri, 27 Nov 2026 08:00:01 GMT\r\nX-Extra: 1\r\nServer: nginx\r\nContent-Length: 64\r\n",
		"Server: nginx\r\nServer:  nginx \r\nContent-Length: 65\r\n",
		many,
		many,
		"Server: nginx\r\nContent-Length: 64\r\nX-F3: 3\r\n",
		"Connection: keep-alive\r\nContent-Length: 2\r\nConnection: close\r\nContent-Length: 2\r\nGrpc-Status: 0\r\n",
		"Transfer-Encoding: chunked\r\nContent-Type: application/grpc\r\n",
	}
	var fc fieldCache
	for i, m := range messages {
		want, err := parseFields([]byte(m), nil, nil, nil)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		var facts fieldFacts
		got, err := parseFields([]byte(m), nil, &fc, &facts)
		if err != nil {
			t.Fatalf("message %d, cached: %v", i, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("message %d: cached parse %v, want %v", i, got, want)
		}
		// As lines, the fields are the same but the hop-by-hop ones,
		// and the facts are noted the same.
		var lineFacts fieldFacts
		lines, err := parseLines([]byte(m), &fc, nil, &lineFacts)
		if err != nil {
			t.Fatalf("message %d, as lines: %v", i, err)
		}
		filled := http.Header{}
		fillHeader(filled, lines)
		for k, v := range want {
			if _, ok := filled[k]; ok == isHopByHop(k) || ok && !reflect.DeepEqual(filled[k], v) {
				t.Errorf("message %d, as lines: %s is %q, in full %q", i, k, filled[k], v)
			}
		}
		for k := range filled {
			if _, ok := want[k]; !ok {
				t.Errorf("message %d, as lines: %s is %q, not in full", i, k, filled[k])
			}
		}
		for k := factConnection; k < nFacts; k++ {
			if !reflect.DeepEqual(facts[k], got[factKeys[k]]) || !reflect.DeepEqual(lineFacts[k], got[factKeys[k]]) {
				t.Errorf("message %d: %s noted as %q (%q as lines), the header has %q", i, factKeys[k], facts[k], lineFacts[k], got[factKeys[k]])
			}
		}
		if len(fc.lines) > maxCachedFields {
			t.Errorf("message %d: the cache holds %d lines, more than %d", i, len(fc.lines), maxCachedFields)
		}
	}
}

// TestH1ResponseHeadLines reads the response head the client gets, line by
// line. Where the gateway leaves nothing but the hop-by-hop fields out, it
// sends the upstream's fields in their order with canonical names; where a
// Connection field names others, or it adds fields itself, they go out as
// well, and Date exactly once.
func TestH1ResponseHeadLines(t *testing.T) {
	cases := []struct {
		name     string
		response string
		want     []string // field lines but Date, in order when ordered
		ordered  bool
	}{
		{name: "upstream order",
			response: "HTTP/1.1 200 OK\r\nserver: raw\r\nSet-Cookie: a=1\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nset-cookie:  b=2 \r\nContent-Length: 2\r\nDate: Fri, 27 Nov 2026 08:00:00 GMT\r\n\r\nok",
			want:     []string{"Server: raw", "Set-Cookie: a=1", "Set-Cookie: b=2", "Content-Length: 2"}, ordered: true},
		{name: "date added",
			response: "HTTP/1.1 200 OK\r\nX-B: 2\r\nX-A: 1\r\nContent-Length: 2\r\n\r\nok",
			want:     []string{"X-B: 2", "X-A: 1", "Content-Length: 2"}, ordered: true},
		{name: "connection names a field",
			response: "HTTP/1.1 200 OK\r\nConnection: X-Hop\r\nX-Hop: 1\r\nX-Keep: 2\r\nContent-Length: 2\r\n\r\nok",
			want:     []string{"X-Keep: 2", "Content-Length: 2"}},
		{name: "empty body",
			response: "HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 0\r\n\r\n",
			want:     []string{"X-A: 1", "Content-Length: 0"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := startAnsweringBackend(t, tc.response, true)
			c, br, addr := dialGateway(t, gatewayTo(t, b.backend))
			for i := range 3 { // the later ones from the connections' caches
				fmt.Fprintf(c, "GET /x HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
				var got []string
				dates, length := 0, 0
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						t.Fatalf("request %d: %v", i, err)
					}
					line = strings.TrimSuffix(line, "\r\n")
					if line == "" {
						break
					}
					switch k, v, _ := strings.Cut(line, ": "); k {
					case "HTTP/1.1 200 OK":
					case "Date":
						dates++
					case "X-Request-Id":
					default:
						if k == "Content-Length" {
							length, _ = strconv.Atoi(v)
						}
						got = append(got, line)
					}
				}
				if _, err := io.CopyN(io.Discard, br, int64(length)); err != nil {
					t.Fatal(err)
				}
				if dates != 1 {
					t.Errorf("request %d: %d Date lines, want 1", i, dates)
				}
				checkFields(t, i, got, tc.want, tc.ordered)
			}
		})
	}
}

// TestH1RequestHeadLines reads, line by line, the request head an upstream
// gets for a client's head sent over three requests on one connection: the
// client's fields in its order, canonical and with one space after the
// colon; hop-by-hop fields, an empty User-Agent and the forwarding fields
// the gateway replaces left out; X-Request-Id kept or generated. Where
// Connection names a field or X-Request-Id is empty, the fields go from
// the header map, in its order.
func TestH1RequestHeadLines(t *testing.T) {
	cases := []struct {
		name    string
		fields  string
		want    []string // upstream field lines but Host, X-Forwarded-* and X-Request-Id
		ordered bool
		reqID   string // "": a generated one
	}{
		{name: "client order",
			// More fields than a map keeps in insertion order.
			fields: "x-b: 2\r\nX-A:1\r\nAccept:  */*  \r\nUser-Agent: \r\nCookie: a=1\r\nX-Z: 3\r\ncookie: b=2\r\n" +
				"X-Y: 4\r\nX-X: 5\r\nX-W: 6\r\nX-V: 7\r\nX-U: 8\r\nX-T: 9\r\n",
			want: []string{"X-B: 2", "X-A: 1", "Accept: */*", "Cookie: a=1", "X-Z: 3", "Cookie: b=2",
				"X-Y: 4", "X-X: 5", "X-W: 6", "X-V: 7", "X-U: 8", "X-T: 9"}, ordered: true},
		{name: "hop-by-hop and replaced fields",
			fields: "Connection: keep-alive\r\nKeep-Alive: 300\r\nTe: trailers\r\nProxy-Connection: keep-alive\r\nForwarded: for=192.0.2.1\r\nX-Forwarded-Host: elsewhere\r\nX-Forwarded-Proto: https\r\nX-Keep: 1\r\n",
			want:   []string{"X-Keep: 1", "Te: trailers"}, ordered: true},
		{name: "client's request id",
			fields: "X-Request-Id: abc\r\nX-Keep: 1\r\n",
			want:   []string{"X-Keep: 1"}, ordered: true, reqID: "abc"},
		{name: "connection names a field",
			fields: "Connection: X-Hop\r\nX-Hop: 1\r\nX-Keep: 2\r\nX-Other: 3\r\n",
			want:   []string{"X-Keep: 2", "X-Other: 3"}},
		{name: "empty request id",
			fields: "X-Request-Id: \r\nX-Keep: 2\r\n",
			want:   []string{"X-Keep: 2"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			heads := make(chan []string, 3)
			b := startScriptedBackend(t, func(c net.Conn, br *bufio.Reader) {
				for {
					var lines []string
					for {
						line, err := br.ReadString('\n')
						if err != nil {
							return
						}
						if line = strings.TrimSuffix(line, "\r\n"); line == "" {
							break
						}
						lines = append(lines, line)
					}
					heads <- lines
					if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"); err != nil {
						return
					}
				}
			})
			c, br, addr := dialGateway(t, gatewayTo(t, b.backend))
			for i := range 3 { // the later ones from the connection's cache
				fmt.Fprintf(c, "GET /x HTTP/1.1\r\nHost: %s\r\n%s\r\n", addr, tc.fields)
				res, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				res.Body.Close()
				var head []string
				select {
				case head = <-heads:
				case <-time.After(10 * time.Second):
					t.Fatalf("request %d: the upstream got no request", i)
				}
				var got, ids []string
				for _, line := range head[1:] {
					switch k, v, _ := strings.Cut(line, ": "); k {
					case "Host", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto":
					case "X-Request-Id":
						ids = append(ids, v)
					default:
						got = append(got, line)
					}
				}
				if len(ids) != 1 || ids[0] == "" || tc.reqID != "" && ids[0] != tc.reqID {
					t.Errorf("request %d: X-Request-Id values %q, want one, %q or generated", i, ids, tc.reqID)
				}
				checkFields(t, i, got, tc.want, tc.ordered)
			}
		})
	}
}

func TestReplyPacing(t *testing.T) {
	late := func(n int) []bool { return slices.Repeat([]bool{true}, n) }
	prompt := func(n int) []bool { return slices.Repeat([]bool{false}, n) }
	tests := []struct {
		name      string
		readFirst []bool // what the requests read at once found: late (true) or not
		awaits    int    // requests that then write and wait before reading at once again
	}{
		{"prompt replies are read at once", prompt(64), 0},
		{"a window of late replies turns to waiting", late(readAtOnceWindow), awaitRun},
		{"lateForAwait late ones in a window are enough", append(prompt(readAtOnceWindow-lateForAwait), late(lateForAwait)...), awaitRun},
		{"one fewer is not", append(prompt(readAtOnceWindow-lateForAwait+1), late(lateForAwait-1)...), 0},
		{"windows count apart", append(late(lateForAwait-1), append(prompt(readAtOnceWindow), late(lateForAwait-1)...)...), 0},
		{"an unfinished window decides nothing", late(readAtOnceWindow - 1), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p replyPacing
			for i, l := range tt.readFirst {
				if p.await() {
					t.Fatalf("request %d waits while the window is being counted", i)
				}
				p.readAtOnce(l)
			}
			n := 0
			for p.await() {
				n++
			}
			if n != tt.awaits {
				t.Fatalf("%d requests write and wait; want %d", n, tt.awaits)
			}
		})
	}
}
