package dataplane

import (
	"bufio"
	"net"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/meshgate/meshgate/internal/ir"
)

// TestDirectPathAllocations holds the steady-state direct path (a
// keep-alive HTTP/1.1 client, the server loop, a pooled upstream
// connection) to no allocation per request. The client and backend speak
// raw HTTP and allocate nothing per request, so what the process allocates
// is the gateway's; a little is allowed for what the runtime and the
// once-a-second caches allocate now and then. A request that is not
// idempotent (DELETE) is sent only on an upstream connection checked to
// be open, and the check allocates nothing either.
func TestDirectPathAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops what is put back at random under the race detector; make test runs this without it")
	}
	bk := startRawBackend(t)
	g := startGateway(t, meshConfig([]*ir.Listener{listenerOf(8080, route("r", "b", ir.Match{Prefix: "/"}))}, bk))
	for _, method := range []string{"GET", "DELETE"} {
		t.Run(method, func(t *testing.T) { directPathAllocations(t, g, method) })
	}
	// An access log in Envoy's default format, as App Mesh gateways often
	// had, writes a line for each request without allocating for it.
	cfg := meshConfig([]*ir.Listener{listenerOf(8080, route("r", "b", ir.Match{Prefix: "/"}))}, bk)
	cfg.Gateways[0].AccessLog = &ir.AccessLog{Path: filepath.Join(t.TempDir(), "access.log")}
	logged := startGateway(t, cfg)
	t.Run("GET with an access log", func(t *testing.T) { directPathAllocations(t, logged, "GET") })
}

func directPathAllocations(t *testing.T, g *gateway, method string) {
	c, err := net.Dial("tcp", g.p.Addrs()[8080].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	req := []byte(method + " /items/42 HTTP/1.1\r\nHost: bench.example.com\r\nUser-Agent: test\r\nAccept: */*\r\n\r\n")
	do := func(n int) {
		for range n {
			if _, err := c.Write(req); err != nil {
				t.Fatal(err)
			}
			if status, _, err := readRawResponse(br); err != nil || status != 200 {
				t.Fatalf("status %d, %v", status, err)
			}
		}
	}
	do(200) // pools, caches and the connection's buffers fill
	const n = 2000
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	do(n)
	runtime.ReadMemStats(&after)
	if per := float64(after.Mallocs-before.Mallocs) / n; per > 0.5 {
		t.Errorf("%.2f allocations per proxied request, want none", per)
	}
}
