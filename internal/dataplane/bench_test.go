package dataplane

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/ir"
)

// BenchmarkProxy measures one proxied GET over real loopback sockets,
// client → gateway → backend, with keep-alive on both hops.
func BenchmarkProxy(b *testing.B) {
	bk := startBackend(b, "b", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok\n")
	}))
	g := startGateway(b, meshConfig([]*ir.Listener{listenerOf(8080,
		withRewrite(route("r", "b", ir.Match{Prefix: "/api"}), ir.Rewrite{Prefix: "/", Hostname: "b.demo.svc.cluster.local"}))}, bk))
	url := g.url(8080, "/api/items?page=2")
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := g.client.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
}

// BenchmarkProxyKeepAlive is the shape of the wrk benchmark in
// BENCHMARKS.md: many keep-alive HTTP/1.1 clients, one route, a backend that
// answers a fixed 64-byte body. The client and the backend speak raw HTTP
// over loopback and allocate nothing per request, so ns/op and allocs/op are
// the gateway's (plus the kernel's share of loopback). Run it with -cpu 1 to
// match the benchmark's GOMAXPROCS=1.
func BenchmarkProxyKeepAlive(b *testing.B) {
	bk := startRawBackend(b)
	g := startGateway(b, meshConfig([]*ir.Listener{listenerOf(8080, route("r", "b", ir.Match{Prefix: "/"}))}, bk))
	addr := g.p.Addrs()[8080].String()
	req := []byte("GET /items/42 HTTP/1.1\r\nHost: bench.example.com\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n")
	b.SetParallelism(50) // × GOMAXPROCS client connections
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	defer func() {
		// CPU time is steadier than wall time on a shared machine; it
		// includes the in-process client and backend.
		b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
	}()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for pb.Next() {
			if _, err := c.Write(req); err != nil {
				b.Error(err)
				return
			}
			status, n, err := readRawResponse(br)
			if err != nil {
				b.Error(err)
				return
			}
			if status != 200 || n != len(rawBody) {
				b.Errorf("status %d, body of %d bytes", status, n)
				return
			}
		}
	})
}

// processCPU is the user and system CPU time the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var rawBody = strings.Repeat("x", 63) + "\n"

// startRawBackend answers every request on a connection with 200 and
// rawBody, reading only the request's head (no bodies).
func startRawBackend(b testing.TB) *backend {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	res := []byte("HTTP/1.1 200 OK\r\nServer: raw\r\nContent-Type: text/plain\r\nContent-Length: " + strconv.Itoa(len(rawBody)) + "\r\n\r\n" + rawBody)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					for {
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) <= 2 {
							break
						}
					}
					if _, err := c.Write(res); err != nil {
						return
					}
				}
			}()
		}
	}()
	a := ln.Addr().(*net.TCPAddr)
	return &backend{name: "b", addr: a.String(), port: a.Port}
}

// readRawResponse reads one response with a Content-Length body and
// returns its status and body length.
func readRawResponse(br *bufio.Reader) (status, n int, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, 0, err
	}
	if len(line) < 12 {
		return 0, 0, io.ErrUnexpectedEOF
	}
	status, _ = strconv.Atoi(string(line[9:12]))
	length := -1
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return 0, 0, err
		}
		if len(line) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(string(k), "Content-Length") {
			length, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	if length < 0 {
		return 0, 0, io.ErrUnexpectedEOF
	}
	if _, err := br.Discard(length); err != nil {
		return 0, 0, err
	}
	return status, length, nil
}

// BenchmarkProxyInMemory is BenchmarkProxyKeepAlive's exchange with both of
// the gateway's connections in memory: the client's hands it the next
// request as soon as the previous response is written, and the upstream's
// answers each request it is sent as nginx does. No system call, poller or
// other goroutine takes part, so ns/op is the gateway's own work per request
// on the direct path, steady enough to compare changes to it by. The
// requests are wrk's (a Host field alone) and a browser's (eight more).
func BenchmarkProxyInMemory(b *testing.B) {
	for _, bc := range []struct {
		name string
		req  string
	}{
		{"wrk", "GET /items/42 HTTP/1.1\r\nHost: bench.example.com\r\n\r\n"},
		{"browser", "GET /items/42 HTTP/1.1\r\nHost: bench.example.com\r\n" +
			"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36\r\n" +
			"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
			"Accept-Language: en-US,en;q=0.9\r\nAccept-Encoding: gzip, deflate, br\r\n" +
			"Cookie: session=abcdef0123456789; theme=dark\r\nReferer: http://bench.example.com/index.html\r\n" +
			"Cache-Control: no-cache\r\nSec-Fetch-Mode: navigate\r\n\r\n"},
	} {
		b.Run(bc.name, func(b *testing.B) { benchmarkInMemory(b, bc.req, nil) })
	}
	// With the gateway's access log on, in Envoy's default format, as App
	// Mesh gateways often had it.
	b.Run("wrk-access-log", func(b *testing.B) {
		benchmarkInMemory(b, "GET /items/42 HTTP/1.1\r\nHost: bench.example.com\r\nUser-Agent: wrk\r\n\r\n",
			&ir.AccessLog{Path: filepath.Join(b.TempDir(), "access.log")})
	})
	// Many connections at once, each request waiting its turn for the
	// client and for the upstream as it does on sockets: what the work
	// per request costs when each connection's state is colder.
	wrk := "GET /items/42 HTTP/1.1\r\nHost: bench.example.com\r\n\r\n"
	for _, conns := range []int{1, 50, 200} {
		b.Run(fmt.Sprintf("wrk-conns-%d", conns), func(b *testing.B) { benchmarkInMemoryConns(b, wrk, conns) })
	}
}

// benchmarkInMemoryConns is benchmarkInMemory with conns client connections
// served at once, and as many upstream connections. Reads yield to the
// other goroutines before they return, so that with one P the connections
// take turns, each request in flight while the others' are.
func benchmarkInMemoryConns(b *testing.B, req string, conns int) {
	res := []byte("HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Fri, 27 Nov 2026 09:38:16 GMT\r\nContent-Type: text/plain\r\nContent-Length: " +
		strconv.Itoa(len(rawBody)) + "\r\nConnection: keep-alive\r\n\r\n" + rawBody)
	bk := &backend{name: "b", addr: "127.0.0.1:9", port: 9}
	g := startGateway(b, meshConfig([]*ir.Listener{listenerOf(8080, route("r", "b", ir.Match{Prefix: "/"}))}, bk))
	var mu sync.Mutex
	var ups []*memUpstream
	g.p.up.dialConn = func(context.Context, string, string) (net.Conn, error) {
		mu.Lock()
		defer mu.Unlock()
		up := &memUpstream{res: res, yield: true}
		ups = append(ups, up)
		return up, nil
	}
	s := g.p.servers[8080]
	run := func(n int) []*memClient {
		clients := make([]*memClient, conns)
		var wg sync.WaitGroup
		for i := range clients {
			clients[i] = &memClient{req: []byte(req), left: n / conns, yield: true}
			if i < n%conns {
				clients[i].left++
			}
			wg.Go(func() { s.serveH1(clients[i]) })
		}
		wg.Wait()
		return clients
	}
	run(conns) // the upstream connections are dialled outside the timing
	b.ReportAllocs()
	b.ResetTimer()
	clients := run(b.N)
	b.StopTimer()
	n := 0
	for _, c := range clients {
		n += c.responses
	}
	for _, up := range ups {
		if up.err != nil {
			b.Fatalf("upstream: %v", up.err)
		}
	}
	if n != b.N {
		b.Fatalf("%d responses to %d requests", n, b.N)
	}
}

func benchmarkInMemory(b *testing.B, req string, log *ir.AccessLog) {
	res := []byte("HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Fri, 27 Nov 2026 09:38:16 GMT\r\nContent-Type: text/plain\r\nContent-Length: " +
		strconv.Itoa(len(rawBody)) + "\r\nConnection: keep-alive\r\n\r\n" + rawBody)
	bk := &backend{name: "b", addr: "127.0.0.1:9", port: 9}
	cfg := meshConfig([]*ir.Listener{listenerOf(8080, route("r", "b", ir.Match{Prefix: "/"}))}, bk)
	cfg.Gateways[0].AccessLog = log
	g := startGateway(b, cfg)
	var up *memUpstream
	g.p.up.dialConn = func(context.Context, string, string) (net.Conn, error) {
		if up != nil {
			return nil, errors.New("a second upstream connection")
		}
		up = &memUpstream{res: res}
		return up, nil
	}
	s := g.p.servers[8080]
	client := &memClient{req: []byte(req)}

	client.left = 1 // the upstream connection is dialled outside the timing
	s.serveH1(client)
	if !bytes.HasPrefix(client.last, []byte("HTTP/1.1 200 OK\r\n")) || !bytes.HasSuffix(client.last, []byte(rawBody)) {
		b.Fatalf("response:\n%s", client.last)
	}
	b.ReportAllocs()
	b.ResetTimer()
	client.left, client.responses = b.N, 0
	s.serveH1(client)
	b.StopTimer()
	if client.responses != b.N || up.err != nil {
		b.Fatalf("%d responses to %d requests; upstream: %v", client.responses, b.N, up.err)
	}
}

// memConn is the part of net.Conn that the connections in memory share.
type memConn struct{}

func (memConn) Close() error                     { return nil }
func (memConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080} }
func (memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000} }
func (memConn) SetDeadline(time.Time) error      { return nil }
func (memConn) SetReadDeadline(time.Time) error  { return nil }
func (memConn) SetWriteDeadline(time.Time) error { return nil }

// memClient sends req left times, each once the response before it was
// written, then ends the connection. It keeps the last response's bytes.
type memClient struct {
	memConn
	req       []byte
	left      int
	responses int
	answered  bool // the request last sent has its response
	last      []byte
	yield     bool // let the other goroutines run before each request
}

func (c *memClient) Read(p []byte) (int, error) {
	if c.left == 0 {
		return 0, io.EOF
	}
	if c.yield {
		runtime.Gosched()
	}
	c.left--
	c.answered = false
	c.last = c.last[:0]
	return copy(p, c.req), nil
}

func (c *memClient) Write(p []byte) (int, error) {
	if !c.answered {
		c.answered = true
		c.responses++
	}
	c.last = append(c.last, p...)
	return len(p), nil
}

// memUpstream answers every request written to it with res.
type memUpstream struct {
	memConn
	res     []byte
	pending []byte
	err     error
	yield   bool // let the other goroutines run before each response
}

func (u *memUpstream) Write(p []byte) (int, error) {
	if !bytes.HasSuffix(p, []byte("\r\n\r\n")) {
		u.err = fmt.Errorf("request head not written whole: %q", p)
	}
	u.pending = u.res
	return len(p), nil
}

func (u *memUpstream) Read(p []byte) (int, error) {
	if len(u.pending) == 0 {
		u.err = errors.New("read with no response due")
		return 0, u.err
	}
	if u.yield && len(u.pending) == len(u.res) {
		runtime.Gosched()
	}
	n := copy(p, u.pending)
	u.pending = u.pending[n:]
	return n, nil
}
