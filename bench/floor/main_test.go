package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
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

// modes are the two ways the proxy serves its connections: a goroutine each
// (serve) and coroutines of one epoll loop (serveLoop).
var modes = []struct {
	name  string
	serve func(net.Listener, string) error
}{{"goroutines", serve}, {"loop", serveLoop}}

// listen starts the proxy in mode to upstream and returns its address.
func listen(t *testing.T, serve func(net.Listener, string) error, upstream string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go serve(ln, upstream)
	return ln.Addr().String()
}

// TestProxy sends keep-alive GETs through the proxy: they reach the backend
// unchanged over one upstream connection, and a POST closes the connection.
func TestProxy(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) { testProxy(t, m.serve) })
	}
}

func testProxy(t *testing.T, serve func(net.Listener, string) error) {
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
	c, err := net.Dial("tcp", listen(t, serve, backend.Listener.Addr().String()))
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

// TestProxyConcurrent runs keep-alive clients at once, with responses
// larger than a client's receive buffer, so that the proxy's writes wait
// for room and the loop interleaves connections mid-response.
func TestProxyConcurrent(t *testing.T) {
	body := strings.Repeat("0123456789", 100_000)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(r.URL.Path)+len(body)))
		io.WriteString(w, r.URL.Path+body)
	}))
	defer backend.Close()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			addr := listen(t, m.serve, backend.Listener.Addr().String())
			errs := make(chan error, 8)
			for i := range 8 {
				go func() { errs <- client(addr, i, body) }()
			}
			for range 8 {
				if err := <-errs; err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// client sends 6 GETs at once on one connection with a small receive
// buffer, waits before it reads, and checks every response: the proxy
// has more to write than the sockets between them hold.
func client(addr string, id int, body string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.(*net.TCPConn).SetReadBuffer(16 << 10)
	var paths []string
	for j := range 6 {
		paths = append(paths, fmt.Sprintf("/c%d-%d", id, j))
		io.WriteString(c, "GET "+paths[j]+" HTTP/1.1\r\nHost: x\r\n\r\n")
	}
	time.Sleep(20 * time.Millisecond)
	r := bufio.NewReader(c)
	for _, path := range paths {
		res, err := http.ReadResponse(r, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		b, err := io.ReadAll(res.Body)
		if err != nil || string(b) != path+body {
			return fmt.Errorf("%s: %d bytes, %v", path, len(b), err)
		}
	}
	return nil
}
