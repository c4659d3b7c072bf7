package dataplane

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/ir"
)

// rawExchange writes raw to a new connection to the gateway's port 8080
// and reads one response per method in methods (HEAD responses have no
// body). It reports whether the gateway closed the connection after them.
func rawExchange(t *testing.T, g *gateway, raw string, methods ...string) (res []*http.Response, bodies []string, closed bool) {
	t.Helper()
	return rawExchangeOn(t, func() (net.Conn, error) { return net.Dial("tcp", g.p.Addrs()[8080].String()) }, raw, methods...)
}

// rawExchangeOn is rawExchange on a connection that dial opens.
func rawExchangeOn(t *testing.T, dial func() (net.Conn, error), raw string, methods ...string) (res []*http.Response, bodies []string, closed bool) {
	t.Helper()
	c, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for i, m := range methods {
		r, err := http.ReadResponse(br, &http.Request{Method: m})
		if err != nil {
			t.Fatalf("response %d: %v", i+1, err)
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Fatalf("response %d body: %v", i+1, err)
		}
		res, bodies = append(res, r), append(bodies, string(b))
	}
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	_, err = br.ReadByte()
	return res, bodies, errors.Is(err, io.EOF)
}

// TestH1ServerRequests checks what the gateway's HTTP/1.1 server loop serves
// itself and what it hands to net/http, on the wire: every response in
// order, what the backend received, and whether the connection stays open;
// in cleartext and over TLS (ALPN http/1.1), where the backend must see
// X-Forwarded-Proto https whichever server served the request, on a port
// of its own and on a PERMISSIVE one.
func TestH1ServerRequests(t *testing.T) {
	plain := gatewayTo(t, startEcho(t, "b"))
	e := newTLSEnv(t)
	e.writePair("gw", e.ca.Issue(t, "gw", "gw.example.com"))
	secure := startFileTLSGateway(t, e, "STRICT")
	both := startFileTLSGateway(t, e, "PERMISSIVE")
	tlsConfig := e.clientConfig()
	tlsConfig.NextProtos = []string{"http/1.1"}
	transports := []struct {
		name  string
		dial  func() (net.Conn, error)
		proto string // X-Forwarded-Proto
	}{
		{"cleartext", func() (net.Conn, error) { return net.Dial("tcp", plain.p.Addrs()[8080].String()) }, "http"},
		{"TLS", func() (net.Conn, error) { return tls.Dial("tcp", secure.p.Addrs()[8443].String(), tlsConfig) }, "https"},
		// A PERMISSIVE port reads each connection's first byte to tell them apart.
		{"PERMISSIVE cleartext", func() (net.Conn, error) { return net.Dial("tcp", both.p.Addrs()[8443].String()) }, "http"},
		{"PERMISSIVE TLS", func() (net.Conn, error) { return tls.Dial("tcp", both.p.Addrs()[8443].String(), tlsConfig) }, "https"},
	}
	const host = "Host: example.com\r\n"
	type want struct {
		status int
		method string // what the backend saw; "" when it was not reached
		path   string
		query  string
		body   string
	}
	cases := []struct {
		name    string
		raw     string
		methods []string
		want    []want
		closed  bool
	}{
		{name: "get with query", raw: "GET /a/b?x=1&y HTTP/1.1\r\n" + host + "\r\n",
			methods: []string{"GET"}, want: []want{{200, "GET", "/a/b", "x=1&y", ""}}},
		{name: "escaped path sent as received", raw: "GET /a%2Fb/%7Ec HTTP/1.1\r\n" + host + "\r\n",
			methods: []string{"GET"}, want: []want{{200, "GET", "/a%2Fb/%7Ec", "", ""}}},
		{name: "pipelined", raw: "GET /1 HTTP/1.1\r\n" + host + "\r\nGET /2 HTTP/1.1\r\n" + host + "\r\n",
			methods: []string{"GET", "GET"}, want: []want{{200, "GET", "/1", "", ""}, {200, "GET", "/2", "", ""}}},
		{name: "body then pipelined get", raw: "POST /p HTTP/1.1\r\n" + host + "Content-Length: 5\r\n\r\nhelloGET /g HTTP/1.1\r\n" + host + "\r\n",
			methods: []string{"POST", "GET"}, want: []want{{200, "POST", "/p", "", "hello"}, {200, "GET", "/g", "", ""}}},
		{name: "head then get", raw: "HEAD /h HTTP/1.1\r\n" + host + "\r\nGET /g HTTP/1.1\r\n" + host + "\r\n",
			methods: []string{"HEAD", "GET"}, want: []want{{200, "", "", "", ""}, {200, "GET", "/g", "", ""}}},
		{name: "connection close", raw: "GET /c HTTP/1.1\r\n" + host + "Connection: close\r\n\r\n",
			methods: []string{"GET"}, want: []want{{200, "GET", "/c", "", ""}}, closed: true},
		{name: "no route is answered here too", raw: "GET /x HTTP/1.1\r\nHost: example.com\r\n\r\n",
			methods: []string{"GET"}, want: []want{{200, "GET", "/x", "", ""}}},

		// Handed to net/http, which serves the rest of the connection.
		{name: "chunked body (handed off)", raw: "POST /ch HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /after HTTP/1.1\r\n" + host + "\r\n",
			methods: []string{"POST", "GET"}, want: []want{{200, "POST", "/ch", "", "hello"}, {200, "GET", "/after", "", ""}}},
		{name: "HTTP/1.0 (handed off)", raw: "GET /old HTTP/1.0\r\n" + host + "\r\n",
			methods: []string{"GET"}, want: []want{{200, "GET", "/old", "", ""}}, closed: true},
		{name: "absolute-form target (handed off)", raw: "GET http://example.com/abs?q HTTP/1.1\r\n" + host + "\r\n",
			methods: []string{"GET"}, want: []want{{200, "GET", "/abs", "q", ""}}},
		{name: "head larger than the read buffer (handed off)", raw: "GET /big HTTP/1.1\r\n" + host + "X-Big: " + strings.Repeat("b", h1ReadBuffer) + "\r\n\r\n",
			methods: []string{"GET"}, want: []want{{200, "GET", "/big", "", ""}}},
		{name: "missing Host", raw: "GET / HTTP/1.1\r\n\r\n",
			methods: []string{"GET"}, want: []want{{400, "", "", "", ""}}, closed: true},
		{name: "two Hosts", raw: "GET / HTTP/1.1\r\n" + host + host + "\r\n",
			methods: []string{"GET"}, want: []want{{400, "", "", "", ""}}, closed: true},
		{name: "space before colon", raw: "GET / HTTP/1.1\r\n" + host + "X-A : 1\r\n\r\n",
			methods: []string{"GET"}, want: []want{{400, "", "", "", ""}}, closed: true},
		{name: "obsolete line folding (handed off; net/http joins the lines)", raw: "GET /f HTTP/1.1\r\n" + host + "X-A: 1\r\n 2\r\n\r\n",
			methods: []string{"GET"}, want: []want{{200, "GET", "/f", "", ""}}},
		{name: "bad Content-Length", raw: "POST / HTTP/1.1\r\n" + host + "Content-Length: +5\r\n\r\nhello",
			methods: []string{"POST"}, want: []want{{400, "", "", "", ""}}, closed: true},
		{name: "conflicting Content-Lengths", raw: "POST / HTTP/1.1\r\n" + host + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
			methods: []string{"POST"}, want: []want{{400, "", "", "", ""}}, closed: true},
	}
	for _, tr := range transports {
		for _, tc := range cases {
			t.Run(tr.name+"/"+tc.name, func(t *testing.T) {
				res, bodies, closed := rawExchangeOn(t, tr.dial, tc.raw, tc.methods...)
				for i, w := range tc.want {
					if res[i].StatusCode != w.status {
						t.Fatalf("response %d: status %d, want %d (body %q)", i+1, res[i].StatusCode, w.status, bodies[i])
					}
					if w.method == "" {
						continue
					}
					var e echoed
					if err := json.Unmarshal([]byte(bodies[i]), &e); err != nil {
						t.Fatalf("response %d: %v in %q", i+1, err, bodies[i])
					}
					got := want{res[i].StatusCode, e.Method, e.Path, e.Query, e.Body}
					if got != w {
						t.Errorf("response %d: backend saw %+v, want %+v", i+1, got, w)
					}
					if res[i].Header.Get("Date") == "" {
						t.Errorf("response %d has no Date", i+1)
					}
					if p := e.Header.Get("X-Forwarded-Proto"); p != tr.proto {
						t.Errorf("response %d: X-Forwarded-Proto %q, want %q", i+1, p, tr.proto)
					}
				}
				if closed != tc.closed {
					t.Errorf("connection closed = %v, want %v", closed, tc.closed)
				}
			})
		}
	}
}

// TestH1ServerHeadResponse checks that a HEAD response keeps the
// upstream's Content-Length and carries no body.
func TestH1ServerHeadResponse(t *testing.T) {
	g := gatewayTo(t, startEcho(t, "b"))
	res, bodies, _ := rawExchange(t, g, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", "HEAD")
	if res[0].ContentLength <= 0 || bodies[0] != "" {
		t.Errorf("HEAD: Content-Length %d, body %q", res[0].ContentLength, bodies[0])
	}
}

// TestH1ServerClientGone checks that a client leaving during a long request
// ends the upstream request, as net/http's own server would: a request
// without a body, and one whose body the upstream has read.
func TestH1ServerClientGone(t *testing.T) {
	cancelled := make(chan string, 1)
	b := startBackend(t, "b", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		select {
		case <-r.Context().Done():
			cancelled <- r.Method + " " + string(body)
		case <-time.After(20 * time.Second):
		}
	}))
	g := gatewayTo(t, b)
	for _, raw := range []string{
		"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
	} {
		method, _, _ := strings.Cut(raw, " ")
		t.Run(method, func(t *testing.T) {
			c, err := net.Dial("tcp", g.p.Addrs()[8080].String())
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(c, raw)
			time.Sleep(3 * watchDelay)
			c.Close()
			select {
			case got := <-cancelled:
				t.Logf("cancelled: %s", got)
			case <-time.After(10 * time.Second):
				t.Fatal("the upstream request was not cancelled after the client left")
			}
		})
	}
}

// TestH1ServerWatchedRequests checks requests that outlast watchDelay, so
// that the client watch reads from the connection while they are proxied:
// the connection serves the next request after them, and a request the
// client pipelines meanwhile (whose first byte the watch reads) is served
// whole.
func TestH1ServerWatchedRequests(t *testing.T) {
	b := startBackend(t, "b", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(3 * watchDelay)
		}
		io.WriteString(w, r.URL.Path)
	}))
	g := gatewayTo(t, b)
	c, err := net.Dial("tcp", g.p.Addrs()[8080].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	read := func(want string) {
		t.Helper()
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 || string(body) != want {
			t.Fatalf("status %d body %q, want 200 %q", res.StatusCode, body, want)
		}
	}
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	read("/slow")
	io.WriteString(c, "GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
	read("/after")

	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(2 * watchDelay)
	io.WriteString(c, "GET /pipelined HTTP/1.1\r\nHost: x\r\n\r\n")
	read("/slow")
	read("/pipelined")
	io.WriteString(c, "GET /last HTTP/1.1\r\nHost: x\r\n\r\n")
	read("/last")
}

// TestH1ServerShutdown checks a graceful shutdown, in cleartext and over
// TLS: an idle connection is closed at once, a request in flight gets its
// whole response with Connection: close.
func TestH1ServerShutdown(t *testing.T) {
	e := newTLSEnv(t)
	e.writePair("gw", e.ca.Issue(t, "gw", "gw.example.com"))
	tlsConfig := e.clientConfig()
	tlsConfig.NextProtos = []string{"http/1.1"}
	cases := []struct {
		name string
		port int
		cfg  func(b *backend) *ir.Config
		dial func(addr string) (net.Conn, error)
	}{
		{"cleartext", 8080,
			func(b *backend) *ir.Config {
				return meshConfig([]*ir.Listener{listenerOf(8080, route("r", "b", ir.Match{Prefix: "/"}))}, b)
			},
			func(addr string) (net.Conn, error) { return net.Dial("tcp", addr) }},
		{"TLS", 8443,
			func(b *backend) *ir.Config {
				yaml := strings.ReplaceAll(tlsGatewayYAML(fileTLSBlock("STRICT")), "DIR", e.dir)
				return compiled(t, yaml+nodeYAML("b", "http", b.port), map[string]string{hostOf("b"): b.addr})
			},
			func(addr string) (net.Conn, error) { return tls.Dial("tcp", addr, tlsConfig) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			b := startBackend(t, "b", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/slow" {
					<-release
				}
				io.WriteString(w, "done "+r.URL.Path)
			}))
			p, err := New(Options{Listen: func(int) (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }})
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Apply(tc.cfg(b), testGateway); err != nil {
				t.Fatal(err)
			}
			addr := p.Addrs()[tc.port].String()
			dial := func() (net.Conn, *bufio.Reader) {
				c, err := tc.dial(addr)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				c.SetDeadline(time.Now().Add(20 * time.Second))
				return c, bufio.NewReader(c)
			}
			idle, idleR := dial()
			io.WriteString(idle, "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
			if res, err := http.ReadResponse(idleR, nil); err != nil || res.StatusCode != 200 {
				t.Fatalf("first request: %v %v", res, err)
			} else {
				io.Copy(io.Discard, res.Body)
			}
			busy, busyR := dial()
			io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
			time.Sleep(100 * time.Millisecond) // the request reaches the backend

			shut := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				shut <- p.Shutdown(ctx)
			}()
			if _, err := idleR.ReadByte(); !errors.Is(err, io.EOF) {
				t.Errorf("idle connection: read %v, want EOF", err)
			}
			close(release)
			res, err := http.ReadResponse(busyR, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			if string(body) != "done /slow" || !res.Close {
				t.Errorf("request in flight: body %q, Connection: close %v", body, res.Close)
			}
			if err := <-shut; err != nil {
				t.Errorf("shutdown: %v", err)
			}
		})
	}
}

// TestH1ServerHeaderTimeout checks that a head sent in pieces must be
// whole within headerReadTimeout (slowloris).
func TestH1ServerHeaderTimeout(t *testing.T) {
	old := headerReadTimeout
	t.Cleanup(func() { headerReadTimeout = old }) // after the gateway's shutdown
	headerReadTimeout = 300 * time.Millisecond
	g := gatewayTo(t, startEcho(t, "b"))
	c, err := net.Dial("tcp", g.p.Addrs()[8080].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	b, err := io.ReadAll(c)
	if err != nil || len(b) != 0 {
		t.Fatalf("read %q, %v; want the connection closed", b, err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("closed after %v", time.Since(start))
	}
}

// TestH1ServerIdleTimeout checks that a keep-alive connection left idle is
// closed after idleTimeout, and not before.
func TestH1ServerIdleTimeout(t *testing.T) {
	old := idleTimeout
	t.Cleanup(func() { idleTimeout = old })
	idleTimeout = 1500 * time.Millisecond
	g := gatewayTo(t, startEcho(t, "b"))
	c, err := net.Dial("tcp", g.p.Addrs()[8080].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for i := 0; i < 2; i++ { // the second request finds the deadline already set
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
	}
	idleSince := time.Now()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("read %v, want EOF", err)
	}
	if idle := time.Since(idleSince); idle < 400*time.Millisecond {
		t.Errorf("closed after %v idle, want about %v", idle, idleTimeout)
	}
}

// FuzzH1ServerParse checks the request parser against net/http's: a head it
// takes, net/http reads the same way; what net/http refuses, it does not take.
func FuzzH1ServerParse(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /x?y=1 HTTP/1.1\r\nHost: a:80\r\nContent-Length: 3\r\nX-A: 1\r\nx-a: 2\r\n\r\n",
		"GET /%41%2f HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
		"PUT /a HTTP/1.1\r\nhost: b\r\ncontent-length: 03\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: \r\nx-request-id:  a \r\nConnection: keep-alive, close\r\nKeep-Alive: 5\r\nTe: trailers\r\nForwarded: for=x\r\nX-A:1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: x-a\r\nX-A: 1\r\nX-Request-Id: \r\n\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, head string) {
		i := strings.Index(head, "\r\n\r\n")
		if i < 0 {
			return
		}
		head = head[:i+4]
		sc := &h1ServerConn{addr: "127.0.0.1:1"}
		got := &http.Request{}
		if !sc.parse([]byte(head), got, &url.URL{}) {
			return
		}
		want, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
		if err != nil {
			t.Fatalf("taken here, refused by net/http (%v): %q", err, head)
		}
		if got.Method != want.Method || got.Host != want.Host || got.RequestURI != want.RequestURI ||
			got.URL.Path != want.URL.Path || got.URL.EscapedPath() != want.URL.EscapedPath() || got.URL.RawQuery != want.URL.RawQuery ||
			got.ContentLength != want.ContentLength || got.Close != want.Close {
			t.Fatalf("%q:\n got %s %s host %q path %q esc %q query %q len %d close %v\nwant %s %s host %q path %q esc %q query %q len %d close %v", head,
				got.Method, got.RequestURI, got.Host, got.URL.Path, got.URL.EscapedPath(), got.URL.RawQuery, got.ContentLength, got.Close,
				want.Method, want.RequestURI, want.Host, want.URL.Path, want.URL.EscapedPath(), want.URL.RawQuery, want.ContentLength, want.Close)
		}
		if len(got.Header) != len(want.Header) {
			t.Fatalf("%q: header %v, want %v", head, got.Header, want.Header)
		}
		for k, vv := range want.Header {
			if !equalStrings(got.Header[k], vv) {
				t.Fatalf("%q: %s: %q, want %q", head, k, got.Header[k], vv)
			}
		}
		for k := factConnection; k < nFacts; k++ {
			if !equalStrings(sc.facts[k], got.Header[factKeys[k]]) {
				t.Fatalf("%q: %s noted as %q, the header has %q", head, factKeys[k], sc.facts[k], got.Header[factKeys[k]])
			}
		}
		// The lines kept to send upstream are those the header map gives.
		if sc.sendLines {
			fw := &forwarded{conn: want.Header["Connection"]}
			if field(want.Header, "X-Request-Id") == "" {
				fw.reqID = []byte("generated")
			}
			var b bytes.Buffer
			w := bufio.NewWriter(&b)
			if err := writeHeader(w, want.Header, fw); err != nil {
				t.Fatalf("%q: lines kept, but the map's fields are refused: %v", head, err)
			}
			w.Flush()
			fromMap := strings.Split(strings.TrimSuffix(b.String(), "\r\n"), "\r\n")
			if b.Len() == 0 {
				fromMap = nil
			}
			var kept []string
			for _, l := range sc.lines {
				text, ok := strings.CutSuffix(l, "\r\n")
				if !ok {
					t.Fatalf("%q: line to send %q does not end in CRLF", head, l)
				}
				kept = append(kept, text)
			}
			slices.Sort(fromMap)
			slices.Sort(kept)
			if !slices.Equal(kept, fromMap) {
				t.Fatalf("%q: lines to send %q, the map gives %q", head, kept, fromMap)
			}
		}
		// The same head again on the same connection: its field lines
		// now come from the connection's cache.
		again := &http.Request{}
		if !sc.parse([]byte(head), again, &url.URL{}) || len(again.Header) != len(want.Header) {
			t.Fatalf("%q parsed again: header %v, want %v", head, again.Header, want.Header)
		}
		for k, vv := range want.Header {
			if !equalStrings(again.Header[k], vv) {
				t.Fatalf("%q parsed again: %s: %q, want %q", head, k, again.Header[k], vv)
			}
		}
	})
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func FuzzHeadEnd(f *testing.F) {
	for _, s := range []string{"\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET", "a\n\r\n\r\n", "\r\n\r", "\n\r\n\r\n\r\n", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := headEnd([]byte(s)), strings.Index(s, "\r\n\r\n"); got != want {
			t.Fatalf("headEnd(%q) = %d, want %d", s, got, want)
		}
	})
}
