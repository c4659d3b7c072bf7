package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestReadHead(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		request bool
		n       int  // Content-Length returned
		ok      bool // head accepted
	}{
		{"get", "GET / HTTP/1.1\r\nHost: a\r\n\r\nrest", true, -1, true},
		{"get, bare LF", "GET / HTTP/1.1\nHost: a\n\n", true, -1, true},
		{"post", "POST / HTTP/1.1\r\nHost: a\r\n\r\n", true, 0, false},
		{"get with a body", "GET / HTTP/1.1\r\ncontent-LENGTH: 3\r\n\r\nabc", true, 0, false},
		{"get, chunked", "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", true, 0, false},
		{"unterminated", "GET / HTTP/1.1\r\nHost: a\r\n", true, 0, false},
		{"response", "HTTP/1.1 200 OK\r\nCONTENT-length: 64\r\n\r\n", false, 64, true},
		{"response, spaces", "HTTP/1.1 200 OK\r\nContent-Length:  7 \r\n\r\n", false, 7, true},
		{"response without length", "HTTP/1.1 200 OK\r\nX: y\r\n\r\n", false, -1, true},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", false, 0, false},
		{"length over 1 MiB", "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", false, 0, false},
		{"304", "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", false, 0, false},
		{"100", "HTTP/1.1 100 Continue\r\n\r\n", false, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			head, n, err := readHead(bufio.NewReader(strings.NewReader(tc.in)), nil, tc.request)
			if (err == nil) != tc.ok {
				t.Fatalf("error %v, want accepted %v", err, tc.ok)
			}
			if tc.ok && (n != tc.n || !strings.HasPrefix(tc.in, string(head)) || !strings.HasSuffix(string(head), "\n\n") && !strings.HasSuffix(string(head), "\r\n\r\n")) {
				t.Errorf("head %q, length %d; want the head of %q and %d", head, n, tc.in, tc.n)
			}
		})
	}
}

// TestProxy sends keep-alive GETs through the proxy: they reach the backend
// unchanged over one upstream connection, and a POST closes the connection.
func TestProxy(t *testing.T) {
	var conns atomic.Int32
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Forwarded-For") != "" {
			t.Errorf("request rewritten: %v", r.Header)
		}
		io.WriteString(w, "hello "+r.URL.Path)
	}))
	backend.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	backend.Start()
	defer backend.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serve(ln, backend.Listener.Addr().String())

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for _, path := range []string{"/a", "/bb", "/ccc"} {
		io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
		res, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		if string(b) != "hello "+path {
			t.Errorf("%s: body %q", path, b)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d upstream connections, want 1", n)
	}
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
	if _, err := r.ReadByte(); err != io.EOF {
		t.Errorf("after a POST: %v, want the connection closed", err)
	}
}
