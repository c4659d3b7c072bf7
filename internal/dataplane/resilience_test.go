package dataplane

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/compile"
	"github.com/meshgate/meshgate/internal/ir"
	"github.com/meshgate/meshgate/internal/resource"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// counted is a backend that counts the requests it received.
type counted struct {
	*backend
	calls atomic.Int32
}

// startCounted starts a backend whose handler gets the 1-based number of
// the request.
func startCounted(t *testing.T, name string, h func(n int32, w http.ResponseWriter, r *http.Request)) *counted {
	t.Helper()
	c := &counted{}
	c.backend = startBackend(t, name, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h(c.calls.Add(1), w, r)
	}))
	return c
}

// failing answers status to the first n requests, then echoes.
func failing(name string, n int32, status int) func(int32, http.ResponseWriter, *http.Request) {
	return func(i int32, w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if n < 0 || i <= n {
			w.Header().Set("X-Failed-Attempt", strconv.Itoa(int(i)))
			w.WriteHeader(status)
			io.WriteString(w, "failure from "+name)
			return
		}
		echoHandler(name)(w, r)
	}
}

func ms(v int64) *int64 { return &v }

// routed is a config whose gateway sends everything on port 8080 to
// service demo/svc, provided by router demo/svc-vr with the one route rt
// (its match and kind filled in).
func routed(rt *ir.Route) *ir.Config {
	cfg := meshConfig([]*ir.Listener{listenerOf(8080, route("gr", "svc", ir.Match{Prefix: "/"}))})
	if rt.Name == "" {
		rt.Name = "rt"
	}
	if rt.Kind == "" {
		rt.Kind = "http"
	}
	rt.Match = ir.Match{Prefix: "/"}
	rt.TotalWeight = 0
	for _, t := range rt.Targets {
		rt.TotalWeight += t.Weight
	}
	cfg.Services["demo/svc"] = &ir.VirtualService{Name: "demo/svc", Hostname: "svc.demo.svc.cluster.local", Router: "demo/svc-vr"}
	cfg.Routers["demo/svc-vr"] = &ir.VirtualRouter{Name: "demo/svc-vr", Routes: []*ir.Route{rt}}
	return cfg
}

// node adds virtual node demo/NAME-vn listening on port (protocol http
// unless given) with endpoints, and returns it for more settings.
func node(cfg *ir.Config, name string, port int, endpoints ...string) *ir.VirtualNode {
	n := &ir.VirtualNode{Listeners: []ir.PortProto{{Port: port, Protocol: "http"}}, Endpoints: endpoints}
	addNode(cfg, name, n)
	return n
}

func policy(n *ir.VirtualNode) *ir.NodeListenerPolicy {
	port := n.Listeners[0].Port
	if n.Policies == nil {
		n.Policies = map[int]*ir.NodeListenerPolicy{}
	}
	if n.Policies[port] == nil {
		n.Policies[port] = &ir.NodeListenerPolicy{}
	}
	return n.Policies[port]
}

func target(nodeName string) []ir.WeightedTarget {
	return []ir.WeightedTarget{{Node: "demo/" + nodeName + "-vn", Weight: 1}}
}

// in is g for subtest t, so that its failures are t's.
func (g *gateway) in(t testing.TB) *gateway {
	c := *g
	c.t = t
	return &c
}

// metric is the sum of the series of a metric whose labels include labels.
func (g *gateway) metric(name string, labels ...string) float64 {
	g.t.Helper()
	mfs, err := g.reg.Gather()
	if err != nil {
		g.t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
	}
	return sum
}

// series reports whether a series of the metric with these labels exists.
func (g *gateway) series(name string, labels ...string) bool {
	g.t.Helper()
	mfs, _ := g.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue series
				}
			}
			return true
		}
	}
	return false
}

func TestRetriesUntilSuccess(t *testing.T) {
	t.Run("default policy of a node-provided service retries 503", func(t *testing.T) {
		b := startCounted(t, "flaky", failing("flaky", 2, http.StatusServiceUnavailable))
		cfg := meshConfig([]*ir.Listener{listenerOf(8080, route("r", "flaky", ir.Match{Prefix: "/"}))})
		node(cfg, "flaky", b.port, b.addr)
		g := startGateway(t, cfg)
		if e := g.get("/"); e.Backend != "flaky" {
			t.Fatalf("answered by %q", e.Backend)
		}
		if n := b.calls.Load(); n != 3 {
			t.Errorf("backend saw %d attempts, want 3", n)
		}
		if got := g.metric("meshgate_upstream_retries_total", "virtual_node", "demo/flaky-vn", "reason", "503"); got != 2 {
			t.Errorf("retries counted %v, want 2", got)
		}
		if got := g.metric("meshgate_requests_total", "code", "200"); got != 1 {
			t.Errorf("requests counted %v, want one 200", got)
		}
	})
	t.Run("default policy gives up after two retries", func(t *testing.T) {
		b := startCounted(t, "down", failing("down", -1, http.StatusServiceUnavailable))
		cfg := meshConfig([]*ir.Listener{listenerOf(8080, route("r", "down", ir.Match{Prefix: "/"}))})
		node(cfg, "down", b.port, b.addr)
		g := startGateway(t, cfg)
		res := g.do(request{path: "/"})
		if res.status != http.StatusServiceUnavailable || res.body != "failure from down" {
			t.Fatalf("got %d %q, want the backend's last 503", res.status, res.body)
		}
		if n := b.calls.Load(); n != 3 {
			t.Errorf("backend saw %d attempts, want 3", n)
		}
	})
	t.Run("default policy does not retry 500", func(t *testing.T) {
		b := startCounted(t, "err", failing("err", 1, http.StatusInternalServerError))
		cfg := meshConfig([]*ir.Listener{listenerOf(8080, route("r", "err", ir.Match{Prefix: "/"}))})
		node(cfg, "err", b.port, b.addr)
		g := startGateway(t, cfg)
		if res := g.do(request{path: "/"}); res.status != http.StatusInternalServerError || b.calls.Load() != 1 {
			t.Fatalf("got %d after %d attempts, want 500 after 1", res.status, b.calls.Load())
		}
	})
	cases := map[string]struct {
		retry    *ir.RetryPolicy
		failures int32
		status   int
		want     int // status the client sees
		attempts int32
	}{
		"server-error retries 500":         {&ir.RetryPolicy{MaxRetries: 3, HTTPEvents: []string{"server-error"}}, 3, 500, 200, 4},
		"server-error retries 511":         {&ir.RetryPolicy{MaxRetries: 1, HTTPEvents: []string{"server-error"}}, 1, 511, 200, 2},
		"server-error skips 509":           {&ir.RetryPolicy{MaxRetries: 1, HTTPEvents: []string{"server-error"}}, 1, 509, 509, 1},
		"gateway-error retries 504":        {&ir.RetryPolicy{MaxRetries: 1, HTTPEvents: []string{"gateway-error"}}, 1, 504, 200, 2},
		"gateway-error skips 500":          {&ir.RetryPolicy{MaxRetries: 1, HTTPEvents: []string{"gateway-error"}}, 1, 500, 500, 1},
		"client-error retries 409":         {&ir.RetryPolicy{MaxRetries: 1, HTTPEvents: []string{"client-error"}}, 1, 409, 200, 2},
		"client-error skips 400":           {&ir.RetryPolicy{MaxRetries: 1, HTTPEvents: []string{"client-error"}}, 1, 400, 400, 1},
		"connection-error skips 503":       {&ir.RetryPolicy{MaxRetries: 1, TCPEvents: []string{"connection-error"}}, 1, 503, 503, 1},
		"maxRetries 0 never retries":       {&ir.RetryPolicy{MaxRetries: 0, HTTPEvents: []string{"server-error"}}, 1, 503, 503, 1},
		"retries stop at maxRetries":       {&ir.RetryPolicy{MaxRetries: 1, HTTPEvents: []string{"server-error"}}, 2, 502, 502, 2},
		"a route's default policy is 503s": {ir.DefaultRetryPolicy(), 2, 503, 200, 3},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			b := startCounted(t, "b", failing("b", c.failures, c.status))
			cfg := routed(&ir.Route{Retry: c.retry, Targets: target("b")})
			node(cfg, "b", b.port, b.addr)
			g := startGateway(t, cfg)
			res := g.do(request{path: "/"})
			if res.status != c.want || b.calls.Load() != c.attempts {
				t.Fatalf("got %d after %d attempts, want %d after %d", res.status, b.calls.Load(), c.want, c.attempts)
			}
			if f := res.header.Get("X-Failed-Attempt"); c.want == 200 && f != "" {
				t.Errorf("the answer carries a field of failed attempt %s", f)
			}
			if got := g.metric("meshgate_upstream_retries_total", "virtual_node", "demo/b-vn"); got != float64(c.attempts-1) {
				t.Errorf("retries counted %v, want %d", got, c.attempts-1)
			}
		})
	}
	t.Run("grpc unavailable in a trailers-only response", func(t *testing.T) {
		var calls atomic.Int32
		b := startH2CBackend(t, "rpc", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/grpc")
			if calls.Add(1) == 1 {
				w.Header().Set("Grpc-Status", "14")
				w.WriteHeader(http.StatusOK)
				return
			}
			w.Header().Set("X-Backend", "rpc")
			w.Header().Set("Trailer", "Grpc-Status")
			w.Write([]byte{0, 0, 0, 0, 0})
			w.Header().Set("Grpc-Status", "0")
		}))
		cfg := routed(&ir.Route{Kind: "grpc", Retry: &ir.RetryPolicy{MaxRetries: 2, GRPCEvents: []string{"unavailable"}}, Targets: target("rpc")})
		n := node(cfg, "rpc", b.port, b.addr)
		n.Listeners[0].Protocol = "grpc"
		g := startGateway(t, cfg)
		res := grpcPost(t, g, "/pkg.Svc/Get")
		if res.StatusCode != http.StatusOK || res.Header.Get("X-Backend") != "rpc" || res.Trailer.Get("Grpc-Status") != "0" {
			t.Fatalf("got %d %v %v", res.StatusCode, res.Header, res.Trailer)
		}
		if calls.Load() != 2 {
			t.Errorf("backend saw %d calls, want 2", calls.Load())
		}
		if got := g.metric("meshgate_upstream_retries_total", "virtual_node", "demo/rpc-vn", "reason", "grpc-unavailable"); got != 1 {
			t.Errorf("retries counted %v, want 1", got)
		}
	})
}

// grpcPost sends an empty gRPC call over cleartext HTTP/2 and reads the
// response, trailers included.
func grpcPost(t *testing.T, g *gateway, path string) *http.Response {
	t.Helper()
	res, err := grpcSend(g.url(8080, path))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func grpcSend(url string) (*http.Response, error) {
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &protos}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader([]byte{0, 0, 0, 0, 0}))
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	res, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res, nil
}

func TestRetryReplaysBodies(t *testing.T) {
	b := startCounted(t, "b", func(n int32, w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("fail") != "" && n == 1 {
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		echoHandler("b")(w, r)
	})
	cfg := meshConfig([]*ir.Listener{listenerOf(8080, route("r", "b", ir.Match{Prefix: "/"}))})
	node(cfg, "b", b.port, b.addr)
	g := startGateway(t, cfg)
	random := func(n int) ([]byte, string) {
		body := make([]byte, n)
		rand.Read(body)
		sum := sha256.Sum256(body)
		return body, hex.EncodeToString(sum[:])
	}
	t.Run("a small body of unknown length is sent again whole", func(t *testing.T) {
		g := g.in(t)
		b.calls.Store(0)
		body, sum := random(10 << 10)
		pr, pw := io.Pipe()
		go func() {
			for i := 0; i < len(body); i += 1000 {
				pw.Write(body[i:min(i+1000, len(body))])
			}
			pw.Close()
		}()
		res := g.do(request{method: http.MethodPost, path: "/?fail=1", body: pr})
		if res.status != http.StatusOK || res.echo.BodySHA256 != sum || b.calls.Load() != 2 {
			t.Fatalf("got %d, body %d bytes (sha match %v), after %d attempts", res.status, res.echo.BodyLen, res.echo.BodySHA256 == sum, b.calls.Load())
		}
	})
	t.Run("a body of exactly the replay limit is retried", func(t *testing.T) {
		g := g.in(t)
		b.calls.Store(0)
		body, sum := random(maxReplayBody)
		res := g.do(request{method: http.MethodPut, path: "/?fail=1", body: bytes.NewReader(body)})
		if res.status != http.StatusOK || res.echo.BodySHA256 != sum || b.calls.Load() != 2 {
			t.Fatalf("got %d after %d attempts", res.status, b.calls.Load())
		}
	})
	t.Run("a large body is not retried", func(t *testing.T) {
		g := g.in(t)
		b.calls.Store(0)
		before := g.metric("meshgate_upstream_retries_total")
		body, _ := random(1 << 20)
		res := g.do(request{method: http.MethodPost, path: "/?fail=1", body: bytes.NewReader(body)})
		if res.status != http.StatusServiceUnavailable || b.calls.Load() != 1 {
			t.Fatalf("got %d after %d attempts, want the 503 after 1", res.status, b.calls.Load())
		}
		if got := g.metric("meshgate_upstream_retries_total"); got != before {
			t.Errorf("retries counted %v, want %v", got, before)
		}
	})
	t.Run("a body of unknown length that outgrows the limit is not retried", func(t *testing.T) {
		g := g.in(t)
		b.calls.Store(0)
		body, _ := random(maxReplayBody + 1)
		pr, pw := io.Pipe()
		go func() {
			pw.Write(body)
			pw.Close()
		}()
		res := g.do(request{method: http.MethodPost, path: "/?fail=1", body: pr})
		if res.status != http.StatusServiceUnavailable || b.calls.Load() != 1 {
			t.Fatalf("got %d after %d attempts, want the 503 after 1", res.status, b.calls.Load())
		}
	})
}

func TestRetryGoesToAnotherEndpoint(t *testing.T) {
	bad := startCounted(t, "bad", failing("bad", -1, http.StatusServiceUnavailable))
	good := startEcho(t, "good")
	t.Run("after a 503", func(t *testing.T) {
		// One retry only: it must go to the other endpoint for every
		// request to succeed.
		cfg := routed(&ir.Route{Retry: &ir.RetryPolicy{MaxRetries: 1, HTTPEvents: []string{"gateway-error"}}, Targets: target("pool")})
		node(cfg, "pool", 80, bad.addr, good.addr)
		g := startGateway(t, cfg)
		for i := range 30 {
			if e := g.get("/"); e.Backend != "good" {
				t.Fatalf("request %d answered by %s", i, e.Backend)
			}
		}
		if n := bad.calls.Load(); n == 0 || n > 30 {
			t.Fatalf("bad endpoint saw %d attempts, want each request at most once and some", n)
		}
	})
	t.Run("after a connect failure", func(t *testing.T) {
		cfg := routed(&ir.Route{Retry: &ir.RetryPolicy{MaxRetries: 1, TCPEvents: []string{"connection-error"}}, Targets: target("pool")})
		node(cfg, "pool", 80, closedAddr(t), good.addr)
		g := startGateway(t, cfg)
		for i := range 30 {
			if e := g.get("/"); e.Backend != "good" {
				t.Fatalf("request %d answered by %s", i, e.Backend)
			}
		}
		if got := g.metric("meshgate_upstream_retries_total", "reason", "connect-failure"); got == 0 {
			t.Error("no connect failure was retried")
		}
	})
	t.Run("default policy of a node-provided service, connect failure", func(t *testing.T) {
		cfg := meshConfig([]*ir.Listener{listenerOf(8080, route("r", "pool", ir.Match{Prefix: "/"}))})
		node(cfg, "pool", 80, closedAddr(t), good.addr)
		g := startGateway(t, cfg)
		for i := range 30 {
			if e := g.get("/"); e.Backend != "good" {
				t.Fatalf("request %d answered by %s", i, e.Backend)
			}
		}
		if got := g.metric("meshgate_upstream_retries_total", "virtual_node", "demo/pool-vn", "reason", "connect-failure"); got == 0 {
			t.Error("no connect failure was retried")
		}
	})
}

// hanging is a backend that answers only when released (or its client
// goes away) on requests whose path starts with /hang, and echoes others.
func hanging(t *testing.T, name string) (*counted, func()) {
	release := make(chan struct{})
	var once sync.Once
	b := startCounted(t, name, func(n int32, w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/hang") || (strings.HasPrefix(r.URL.Path, "/first") && n == 1) {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		if d, err := time.ParseDuration(r.URL.Query().Get("sleep")); err == nil {
			time.Sleep(d)
		}
		echoHandler(name)(w, r)
	})
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	return b, free
}

func TestPerRetryTimeout(t *testing.T) {
	t.Run("a hung attempt is retried", func(t *testing.T) {
		b, _ := hanging(t, "b")
		cfg := routed(&ir.Route{
			Retry:   &ir.RetryPolicy{MaxRetries: 2, PerRetryTimeoutMillis: 200, HTTPEvents: []string{"gateway-error"}},
			Timeout: &ir.Timeout{PerRequestMillis: ms(30000)},
			Targets: target("b"),
		})
		node(cfg, "b", b.port, b.addr)
		g := startGateway(t, cfg)
		if e := g.get("/first"); e.Backend != "b" {
			t.Fatalf("answered by %q", e.Backend)
		}
		if got := g.metric("meshgate_upstream_retries_total", "reason", "per-try-timeout"); got != 1 {
			t.Errorf("per-try timeouts retried %v, want 1", got)
		}
	})
	t.Run("the last attempt's timeout is a 504", func(t *testing.T) {
		b, _ := hanging(t, "b")
		cfg := routed(&ir.Route{
			Retry:   &ir.RetryPolicy{MaxRetries: 1, PerRetryTimeoutMillis: 100, HTTPEvents: []string{"server-error"}},
			Targets: target("b"),
		})
		node(cfg, "b", b.port, b.addr)
		g := startGateway(t, cfg)
		res := g.do(request{path: "/hang"})
		if res.status != http.StatusGatewayTimeout || res.body != "upstream request timeout\n" || b.calls.Load() != 2 {
			t.Fatalf("got %d %q after %d attempts, want 504 after 2", res.status, res.body, b.calls.Load())
		}
	})
}

func TestRequestTimeouts(t *testing.T) {
	old := responseTimeout
	t.Cleanup(func() { responseTimeout = old })
	cases := map[string]struct {
		route    *ir.Timeout // nil: the service is provided by the node
		node     *ir.Timeout
		fallback time.Duration // responseTimeout
		path     string
		want     int
	}{
		"route timeout":                {&ir.Timeout{PerRequestMillis: ms(200)}, &ir.Timeout{PerRequestMillis: ms(60000)}, time.Minute, "/hang", 504},
		"route timeout, with a body":   {&ir.Timeout{PerRequestMillis: ms(200)}, nil, time.Minute, "/hang?body", 504},
		"node timeout":                 {nil, &ir.Timeout{PerRequestMillis: ms(200)}, time.Minute, "/hang", 504},
		"node timeout behind a router": {&ir.Timeout{IdleMillis: ms(60000)}, &ir.Timeout{PerRequestMillis: ms(200)}, time.Minute, "/hang", 504},
		"default":                      {nil, nil, 200 * time.Millisecond, "/hang", 504},
		"route 0 disables the node's":  {&ir.Timeout{PerRequestMillis: ms(0)}, &ir.Timeout{PerRequestMillis: ms(200)}, 200 * time.Millisecond, "/slow?sleep=600ms", 200},
		"route longer than the node's": {&ir.Timeout{PerRequestMillis: ms(5000)}, &ir.Timeout{PerRequestMillis: ms(200)}, 200 * time.Millisecond, "/slow?sleep=600ms", 200},
		"node longer than the default": {nil, &ir.Timeout{PerRequestMillis: ms(5000)}, 200 * time.Millisecond, "/slow?sleep=600ms", 200},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			responseTimeout = c.fallback
			b, _ := hanging(t, "b")
			var cfg *ir.Config
			if c.route != nil {
				cfg = routed(&ir.Route{Timeout: c.route, Targets: target("b")})
			} else {
				cfg = meshConfig([]*ir.Listener{listenerOf(8080, route("r", "b", ir.Match{Prefix: "/"}))})
			}
			n := node(cfg, "b", b.port, b.addr)
			if c.node != nil {
				policy(n).Timeout = c.node
			}
			g := startGateway(t, cfg)
			start := time.Now()
			req := request{path: c.path}
			if strings.Contains(c.path, "?body") {
				req.method, req.body = http.MethodPost, strings.NewReader("payload")
			}
			res := g.do(req)
			if res.status != c.want {
				t.Fatalf("got %d %q, want %d", res.status, res.body, c.want)
			}
			if c.want == 504 {
				if res.body != "upstream request timeout\n" {
					t.Errorf("body %q", res.body)
				}
				if d := time.Since(start); d < 200*time.Millisecond {
					t.Errorf("504 after %v, before the 200ms timeout", d)
				}
				if b.calls.Load() != 1 {
					t.Errorf("a timed-out request was tried %d times; the request timeout ends retries", b.calls.Load())
				}
			}
		})
	}
	t.Run("grpc client gets DEADLINE_EXCEEDED", func(t *testing.T) {
		responseTimeout = time.Minute
		b := startH2CBackend(t, "rpc", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}))
		cfg := meshConfig([]*ir.Listener{listenerOf(8080, route("r", "rpc", ir.Match{Prefix: "/"}))})
		n := node(cfg, "rpc", b.port, b.addr)
		n.Listeners[0].Protocol = "grpc"
		policy(n).Timeout = &ir.Timeout{PerRequestMillis: ms(200)}
		g := startGateway(t, cfg)
		res := grpcPost(t, g, "/pkg.Svc/Get")
		if res.StatusCode != http.StatusOK || res.Header.Get("Grpc-Status") != "4" {
			t.Fatalf("got %d %v", res.StatusCode, res.Header)
		}
	})
}

func TestStreamIdleTimeout(t *testing.T) {
	b := startBackend(t, "b", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/silent":
			<-r.Context().Done()
		case "/stall":
			io.WriteString(w, "first\n")
			http.NewResponseController(w).Flush()
			<-r.Context().Done()
		case "/trickle":
			for i := range 10 {
				io.WriteString(w, strings.Repeat("x", i+1)+"\n")
				http.NewResponseController(w).Flush()
				time.Sleep(100 * time.Millisecond)
			}
		}
	}))
	// The trickle lasts longer than the idle timeout, with gaps well within it.
	cfg := routed(&ir.Route{Timeout: &ir.Timeout{PerRequestMillis: ms(0), IdleMillis: ms(600)}, Targets: target("b")})
	node(cfg, "b", b.port, b.addr)
	g := startGateway(t, cfg)
	t.Run("no response", func(t *testing.T) {
		g := g.in(t)
		res := g.do(request{path: "/silent"})
		if res.status != http.StatusRequestTimeout || res.body != "stream timeout\n" {
			t.Fatalf("got %d %q, want 408 stream timeout", res.status, res.body)
		}
	})
	t.Run("a response that stops", func(t *testing.T) {
		g := g.in(t)
		res, err := g.client.Get(g.url(8080, "/stall"))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err == nil || string(body) != "first\n" {
			t.Fatalf("read %q, %v; want the first line, then the stream cut off", body, err)
		}
	})
	t.Run("activity keeps the stream alive", func(t *testing.T) {
		g := g.in(t)
		res := g.do(request{path: "/trickle"})
		if res.status != http.StatusOK || strings.Count(res.body, "\n") != 10 {
			t.Fatalf("got %d %q", res.status, res.body)
		}
	})
}

func TestUpstreamIdleConnectionsClose(t *testing.T) {
	var closed atomic.Int32
	srv := httptest.NewUnstartedServer(echoHandler("b"))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			closed.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	b := newBackend("b", srv)
	cfg := meshConfig([]*ir.Listener{listenerOf(8080, route("r", "b", ir.Match{Prefix: "/"}))})
	policy(node(cfg, "b", b.port, b.addr)).Timeout = &ir.Timeout{IdleMillis: ms(200)}
	g := startGateway(t, cfg)
	g.get("/")
	if closed.Load() != 0 {
		t.Fatal("connection closed at once")
	}
	eventually(t, "the idle upstream connection is closed", func() bool { return closed.Load() == 1 })
	eventually(t, "the connection gauge drops", func() bool { return g.metric("meshgate_upstream_connections", "virtual_node", "demo/b-vn") == 0 })
	// The next request opens a new connection.
	g.get("/")
}

// healthy is a backend whose /health answers 200 while ok is set.
type healthy struct {
	*backend
	ok    atomic.Bool
	calls atomic.Int32 // requests other than health checks
}

func startHealthy(t *testing.T, name string) *healthy {
	h := &healthy{}
	h.ok.Store(true)
	h.backend = startBackend(t, name, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			if !h.ok.Load() {
				w.WriteHeader(http.StatusInternalServerError)
			}
			return
		}
		h.calls.Add(1)
		echoHandler(name)(w, r)
	}))
	return h
}

func httpCheck(protocol string) *ir.HealthCheck {
	return &ir.HealthCheck{Protocol: protocol, Path: "/health", IntervalMillis: 30, TimeoutMillis: 2000, HealthyThreshold: 2, UnhealthyThreshold: 2}
}

// healthGauge is an endpoint's meshgate_upstream_endpoint_healthy, or -1
// before its first verdict.
func (g *gateway) healthGauge(node, addr string) float64 {
	if !g.series("meshgate_upstream_endpoint_healthy", "virtual_node", node, "endpoint", addr) {
		return -1
	}
	return g.metric("meshgate_upstream_endpoint_healthy", "virtual_node", node, "endpoint", addr)
}

// backends sends n requests and counts which backend answered; any other
// answer fails the test.
func (g *gateway) backends(n int) map[string]int {
	g.t.Helper()
	got := map[string]int{}
	for range n {
		got[g.get("/").Backend]++
	}
	return got
}

func TestHealthChecks(t *testing.T) {
	for _, protocol := range []string{"http", "tcp"} {
		t.Run(protocol+": a backend that dies gets no traffic", func(t *testing.T) {
			a, b := startHealthy(t, "a"), startHealthy(t, "b")
			cfg := meshConfig([]*ir.Listener{listenerOf(8080, route("r", "pool", ir.Match{Prefix: "/"}))})
			policy(node(cfg, "pool", 80, a.addr, b.addr)).HealthCheck = httpCheck(protocol)
			g := startGateway(t, cfg)
			eventually(t, "both endpoints are healthy", func() bool {
				return g.healthGauge("demo/pool-vn", a.addr) == 1 && g.healthGauge("demo/pool-vn", b.addr) == 1
			})
			if got := g.backends(10); got["a"] == 0 || got["b"] == 0 {
				t.Fatalf("traffic %v, want both", got)
			}
			a.srv.CloseClientConnections()
			a.srv.Close()
			eventually(t, "the dead endpoint is unhealthy", func() bool { return g.healthGauge("demo/pool-vn", a.addr) == 0 })
			retries := g.metric("meshgate_upstream_retries_total")
			if got := g.backends(40); got["b"] != 40 {
				t.Fatalf("traffic %v, want all on b", got)
			}
			if got := g.metric("meshgate_upstream_retries_total"); got != retries {
				t.Errorf("%v retries after detection: traffic still went to the dead endpoint", got-retries)
			}
		})
	}
	t.Run("http: unhealthy, then healthy again", func(t *testing.T) {
		a, b := startHealthy(t, "a"), startHealthy(t, "b")
		cfg := meshConfig([]*ir.Listener{listenerOf(8080, route("r", "pool", ir.Match{Prefix: "/"}))})
		policy(node(cfg, "pool", 80, a.addr, b.addr)).HealthCheck = httpCheck("http")
		g := startGateway(t, cfg)
		eventually(t, "a is healthy", func() bool { return g.healthGauge("demo/pool-vn", a.addr) == 1 })
		a.ok.Store(false)
		eventually(t, "a is unhealthy", func() bool { return g.healthGauge("demo/pool-vn", a.addr) == 0 })
		before := a.calls.Load()
		if got := g.backends(20); got["b"] != 20 || a.calls.Load() != before {
			t.Fatalf("traffic %v, want all on b", got)
		}
		a.ok.Store(true)
		eventually(t, "a is back in rotation", func() bool { return g.backends(2)["a"] > 0 })
	})
	t.Run("no healthy endpoint: all are used", func(t *testing.T) {
		a, b := startHealthy(t, "a"), startHealthy(t, "b")
		a.ok.Store(false)
		b.ok.Store(false)
		cfg := meshConfig([]*ir.Listener{listenerOf(8080, route("r", "pool", ir.Match{Prefix: "/"}))})
		policy(node(cfg, "pool", 80, a.addr, b.addr)).HealthCheck = httpCheck("http2")
		g := startGateway(t, cfg)
		eventually(t, "both are unhealthy", func() bool {
			return g.healthGauge("demo/pool-vn", a.addr) == 0 && g.healthGauge("demo/pool-vn", b.addr) == 0
		})
		if got := g.backends(10); got["a"] == 0 || got["b"] == 0 {
			t.Fatalf("traffic %v, want both", got)
		}
	})
}

// grpcHealthBackend serves the gRPC health service and echoes other requests.
type grpcHealthBackend struct {
	*backend
	health *health.Server
}

func startGRPCHealthBackend(t *testing.T, name string) *grpcHealthBackend {
	hs := health.NewServer()
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	t.Cleanup(srv.Stop)
	b := startH2CBackend(t, name, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			srv.ServeHTTP(w, r)
			return
		}
		echoHandler(name)(w, r)
	}))
	return &grpcHealthBackend{backend: b, health: hs}
}

func TestGRPCHealthCheck(t *testing.T) {
	a, b := startGRPCHealthBackend(t, "a"), startGRPCHealthBackend(t, "b")
	cfg := meshConfig([]*ir.Listener{listenerOf(8080, route("r", "pool", ir.Match{Prefix: "/"}))})
	n := node(cfg, "pool", 80, a.addr, b.addr)
	n.Listeners[0].Protocol = "http2"
	policy(n).HealthCheck = &ir.HealthCheck{Protocol: "grpc", IntervalMillis: 30, TimeoutMillis: 2000, HealthyThreshold: 2, UnhealthyThreshold: 2}
	g := startGateway(t, cfg)
	eventually(t, "both endpoints are healthy", func() bool {
		return g.healthGauge("demo/pool-vn", a.addr) == 1 && g.healthGauge("demo/pool-vn", b.addr) == 1
	})
	a.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	eventually(t, "a is unhealthy", func() bool { return g.healthGauge("demo/pool-vn", a.addr) == 0 })
	if got := g.backends(20); got["b"] != 20 {
		t.Fatalf("traffic %v, want all on b", got)
	}
	a.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	eventually(t, "a is back in rotation", func() bool { return g.backends(2)["a"] > 0 })
}

func TestOutlierDetection(t *testing.T) {
	t.Run("an endpoint answering 500 is ejected", func(t *testing.T) {
		bad := startCounted(t, "bad", failing("bad", -1, http.StatusInternalServerError))
		good := startEcho(t, "good")
		cfg := meshConfig([]*ir.Listener{listenerOf(8080, route("r", "pool", ir.Match{Prefix: "/"}))})
		policy(node(cfg, "pool", 80, bad.addr, good.addr)).OutlierDetection = &ir.OutlierDetection{
			MaxServerErrors: 3, IntervalMillis: 1000, BaseEjectionDurationMillis: 60000, MaxEjectionPercent: 50,
		}
		g := startGateway(t, cfg)
		errors := 0
		for g.metric("meshgate_upstream_ejections_total", "endpoint", bad.addr) == 0 {
			if res := g.do(request{path: "/"}); res.status != http.StatusOK {
				errors++
			}
			if errors > 3 {
				t.Fatalf("%d errors and no ejection", errors)
			}
		}
		if errors != 3 {
			t.Errorf("ejected after %d errors, want 3", errors)
		}
		seen := bad.calls.Load()
		if got := g.backends(30); got["good"] != 30 || bad.calls.Load() != seen {
			t.Fatalf("traffic %v after ejection, want all on good", got)
		}
	})
	t.Run("at least one endpoint may be ejected, no more than the percent", func(t *testing.T) {
		a := startCounted(t, "a", failing("a", -1, http.StatusBadGateway))
		b := startCounted(t, "b", failing("b", -1, http.StatusBadGateway))
		cfg := meshConfig([]*ir.Listener{listenerOf(8080, route("r", "pool", ir.Match{Prefix: "/"}))})
		policy(node(cfg, "pool", 80, a.addr, b.addr)).OutlierDetection = &ir.OutlierDetection{
			MaxServerErrors: 2, IntervalMillis: 1000, BaseEjectionDurationMillis: 60000, MaxEjectionPercent: 10,
		}
		g := startGateway(t, cfg)
		for range 20 {
			g.do(request{path: "/"})
		}
		ea := g.metric("meshgate_upstream_ejections_total", "endpoint", a.addr)
		eb := g.metric("meshgate_upstream_ejections_total", "endpoint", b.addr)
		if ea+eb != 1 {
			t.Fatalf("ejections a=%v b=%v, want exactly one", ea, eb)
		}
	})
	t.Run("ejection ends and grows with each ejection", func(t *testing.T) {
		var failing atomic.Bool
		failing.Store(true)
		bad := startCounted(t, "bad", func(_ int32, w http.ResponseWriter, r *http.Request) {
			if failing.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			echoHandler("bad")(w, r)
		})
		good := startEcho(t, "good")
		cfg := routed(&ir.Route{Retry: &ir.RetryPolicy{MaxRetries: 0, HTTPEvents: []string{"server-error"}}, Targets: target("pool")})
		policy(node(cfg, "pool", 80, bad.addr, good.addr)).OutlierDetection = &ir.OutlierDetection{
			MaxServerErrors: 1, IntervalMillis: 60000, BaseEjectionDurationMillis: 300, MaxEjectionPercent: 100,
		}
		g := startGateway(t, cfg)
		eventually(t, "bad is ejected", func() bool {
			g.do(request{path: "/"})
			return g.metric("meshgate_upstream_ejections_total", "endpoint", bad.addr) == 1
		})
		failing.Store(false)
		eventually(t, "bad is back after its ejection", func() bool { return g.backends(2)["bad"] > 0 })
	})
}

func TestConnectionPools(t *testing.T) {
	t.Run("node http pool: maxConnections in flight, maxPendingRequests waiting", func(t *testing.T) {
		b, free := hanging(t, "b")
		cfg := meshConfig([]*ir.Listener{listenerOf(8080, route("r", "b", ir.Match{Prefix: "/"}))})
		policy(node(cfg, "b", b.port, b.addr)).Pool = &ir.ConnectionPool{MaxConnections: 2, MaxPendingRequests: 1}
		g := startGateway(t, cfg)
		cl := g.p.cur.Load().nodes["demo/b-vn"].clusters[b.port]
		results := make(chan int, 3)
		for range 3 {
			go func() {
				res, err := g.send(request{path: "/hang"})
				if err != nil {
					results <- -1
					return
				}
				results <- res.status
			}()
		}
		eventually(t, "two requests reach the backend and one waits", func() bool {
			cl.pool.mu.Lock()
			defer cl.pool.mu.Unlock()
			return b.calls.Load() == 2 && len(cl.pool.waiters) == 1
		})
		res := g.do(request{path: "/hang"})
		if res.status != http.StatusServiceUnavailable || !strings.HasPrefix(res.body, "upstream overflow") {
			t.Fatalf("the 4th request got %d %q, want 503 upstream overflow", res.status, res.body)
		}
		if got := g.metric("meshgate_upstream_overflows_total", "virtual_node", "demo/b-vn"); got != 1 {
			t.Errorf("overflows counted %v, want 1", got)
		}
		free()
		for range 3 {
			if s := <-results; s != http.StatusOK {
				t.Errorf("a request within the pool got %d", s)
			}
		}
		if b.calls.Load() != 3 {
			t.Errorf("backend saw %d requests, want 3", b.calls.Load())
		}
	})
	t.Run("node http2 pool: maxRequests", func(t *testing.T) {
		release := make(chan struct{})
		var calls atomic.Int32
		b := startH2CBackend(t, "b", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			select {
			case <-release:
			case <-r.Context().Done():
			}
			echoHandler("b")(w, r)
		}))
		var once sync.Once
		free := func() { once.Do(func() { close(release) }) }
		t.Cleanup(free)
		cfg := meshConfig([]*ir.Listener{listenerOf(8080, route("r", "b", ir.Match{Prefix: "/"}))})
		n := node(cfg, "b", b.port, b.addr)
		n.Listeners[0].Protocol = "http2"
		policy(n).Pool = &ir.ConnectionPool{MaxRequests: 2}
		g := startGateway(t, cfg)
		results := make(chan int, 2)
		for range 2 {
			go func() {
				res, err := g.send(request{path: "/"})
				if err != nil {
					results <- -1
					return
				}
				results <- res.status
			}()
		}
		eventually(t, "two requests reach the backend", func() bool { return calls.Load() == 2 })
		if res := g.do(request{path: "/"}); res.status != http.StatusServiceUnavailable {
			t.Fatalf("the 3rd request got %d, want 503", res.status)
		}
		if res := grpcPost(t, g, "/pkg.Svc/Get"); res.Header.Get("Grpc-Status") != "14" {
			t.Fatalf("a gRPC call over the limit got %d %v, want UNAVAILABLE", res.StatusCode, res.Header)
		}
		free()
		for range 2 {
			if s := <-results; s != http.StatusOK {
				t.Errorf("a request within the pool got %d", s)
			}
		}
	})
	t.Run("gateway grpc listener pool: maxRequests", func(t *testing.T) {
		release := make(chan struct{})
		var calls atomic.Int32
		b := startH2CBackend(t, "rpc", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			select {
			case <-release:
			case <-r.Context().Done():
			}
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Grpc-Status", "0")
		}))
		var once sync.Once
		free := func() { once.Do(func() { close(release) }) }
		t.Cleanup(free)
		l := listenerOf(8080, route("r", "rpc", ir.Match{Prefix: "/"}))
		l.Protocol = "grpc"
		l.Pool = &ir.ConnectionPool{MaxRequests: 1}
		cfg := meshConfig([]*ir.Listener{l})
		node(cfg, "rpc", b.port, b.addr).Listeners[0].Protocol = "grpc"
		g := startGateway(t, cfg)
		first := make(chan string, 1)
		url := g.url(8080, "/pkg.Svc/Slow")
		go func() {
			res, err := grpcSend(url)
			if err != nil {
				first <- err.Error()
				return
			}
			first <- res.Header.Get("Grpc-Status")
		}()
		eventually(t, "the first call reaches the backend", func() bool { return calls.Load() == 1 })
		if res := grpcPost(t, g, "/pkg.Svc/Get"); res.StatusCode != http.StatusOK || res.Header.Get("Grpc-Status") != "14" {
			t.Fatalf("the 2nd call got %d %v, want UNAVAILABLE", res.StatusCode, res.Header)
		}
		free()
		if s := <-first; s != "0" {
			t.Errorf("the call within the pool got grpc-status %q", s)
		}
	})
	t.Run("gateway listener pool", func(t *testing.T) {
		b, free := hanging(t, "b")
		l := listenerOf(8080, route("r", "b", ir.Match{Prefix: "/"}))
		l.Pool = &ir.ConnectionPool{MaxConnections: 1, MaxPendingRequests: 1}
		cfg := meshConfig([]*ir.Listener{l}, b.backend)
		g := startGateway(t, cfg)
		lim := g.p.up.listenerPools.get(8080)
		results := make(chan int, 2)
		for range 2 {
			go func() {
				res, err := g.send(request{path: "/hang"})
				if err != nil {
					results <- -1
					return
				}
				results <- res.status
			}()
		}
		eventually(t, "one request reaches the backend and one waits", func() bool {
			lim.mu.Lock()
			defer lim.mu.Unlock()
			return b.calls.Load() == 1 && len(lim.waiters) == 1
		})
		res := g.do(request{path: "/hang"})
		if res.status != http.StatusServiceUnavailable || !strings.HasPrefix(res.body, "gateway listener overflow") {
			t.Fatalf("the 3rd request got %d %q, want 503", res.status, res.body)
		}
		if got := g.metric("meshgate_listener_overflows_total", "port", "8080"); got != 1 {
			t.Errorf("overflows counted %v, want 1", got)
		}
		free()
		for range 2 {
			if s := <-results; s != http.StatusOK {
				t.Errorf("a request within the pool got %d", s)
			}
		}
		// A reload that lifts the pool admits everything.
		cfg.Gateways[0].Listeners[0].Pool = nil
		if err := g.p.Apply(cfg, testGateway); err != nil {
			t.Fatal(err)
		}
		if g.p.up.listenerPools.get(8080) != nil {
			t.Error("pool kept after the reload removed it")
		}
	})
}

// sameConfig is cfg through JSON: equal, but sharing no memory with it, as
// a reload of unchanged manifests gives.
func sameConfig(t *testing.T, cfg *ir.Config) *ir.Config {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out ir.Config
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

func TestResilienceStateSurvivesReload(t *testing.T) {
	t.Run("an ejected endpoint stays out", func(t *testing.T) {
		bad := startCounted(t, "bad", failing("bad", -1, http.StatusInternalServerError))
		good := startEcho(t, "good")
		cfg := meshConfig([]*ir.Listener{listenerOf(8080, route("r", "pool", ir.Match{Prefix: "/"}))})
		policy(node(cfg, "pool", 80, bad.addr, good.addr)).OutlierDetection = &ir.OutlierDetection{
			MaxServerErrors: 1, IntervalMillis: 1000, BaseEjectionDurationMillis: 60000, MaxEjectionPercent: 50,
		}
		g := startGateway(t, cfg)
		eventually(t, "bad is ejected", func() bool {
			g.do(request{path: "/"})
			return g.metric("meshgate_upstream_ejections_total", "endpoint", bad.addr) == 1
		})
		if err := g.p.Apply(sameConfig(t, cfg), testGateway); err != nil {
			t.Fatal(err)
		}
		seen := bad.calls.Load()
		if got := g.backends(20); got["good"] != 20 || bad.calls.Load() != seen {
			t.Fatalf("traffic %v after the reload, want all on good", got)
		}
	})
	t.Run("an unhealthy endpoint stays out", func(t *testing.T) {
		a, b := startHealthy(t, "a"), startHealthy(t, "b")
		cfg := meshConfig([]*ir.Listener{listenerOf(8080, route("r", "pool", ir.Match{Prefix: "/"}))})
		hc := httpCheck("http")
		hc.IntervalMillis = 30
		policy(node(cfg, "pool", 80, a.addr, b.addr)).HealthCheck = hc
		g := startGateway(t, cfg)
		a.ok.Store(false)
		eventually(t, "a is unhealthy and b healthy", func() bool {
			return g.healthGauge("demo/pool-vn", a.addr) == 0 && g.healthGauge("demo/pool-vn", b.addr) == 1
		})
		if err := g.p.Apply(sameConfig(t, cfg), testGateway); err != nil {
			t.Fatal(err)
		}
		seen := a.calls.Load()
		if got := g.backends(20); got["b"] != 20 || a.calls.Load() != seen {
			t.Fatalf("traffic %v after the reload, want all on b", got)
		}
	})
	t.Run("a removed node's checks stop", func(t *testing.T) {
		a := startHealthy(t, "a")
		cfg := meshConfig([]*ir.Listener{listenerOf(8080, route("r", "pool", ir.Match{Prefix: "/"}))})
		policy(node(cfg, "pool", 80, a.addr)).HealthCheck = httpCheck("http")
		g := startGateway(t, cfg)
		eventually(t, "a is checked", func() bool { return g.healthGauge("demo/pool-vn", a.addr) == 1 })
		cl := g.p.cur.Load().nodes["demo/pool-vn"].clusters[80]
		delete(cfg.Nodes, "demo/pool-vn")
		if err := g.p.Apply(cfg, testGateway); err != nil {
			t.Fatal(err)
		}
		if g.series("meshgate_upstream_endpoint_healthy", "endpoint", a.addr) {
			t.Error("the removed endpoint still has a health gauge")
		}
		cl.mu.Lock()
		defer cl.mu.Unlock()
		if !cl.closed || len(cl.eps) != 0 {
			t.Error("the removed node's cluster still holds endpoints")
		}
	})
}

func TestPick(t *testing.T) {
	eps := make([]*endpoint, 4)
	for i := range eps {
		eps[i] = &endpoint{addr: string(rune('a' + i))}
		eps[i].healthy.Store(true)
	}
	c := &cluster{}
	picks := func(tried ...*endpoint) map[string]int {
		got := map[string]int{}
		for range 40 {
			got[c.pick(eps, tried).addr]++
		}
		return got
	}
	if got := picks(); len(got) != 4 || got["a"] != 10 {
		t.Errorf("round robin %v", got)
	}
	if got := picks(eps[0], eps[1]); got["a"]+got["b"] != 0 || got["c"] == 0 || got["d"] == 0 {
		t.Errorf("with a and b tried %v, want c and d", got)
	}
	eps[2].healthy.Store(false)
	eps[3].ejectedUntil.Store(time.Now().Add(time.Hour).UnixNano())
	if got := picks(); got["c"]+got["d"] != 0 {
		t.Errorf("unavailable endpoints picked %v", got)
	}
	if got := picks(eps[0]); got["b"] != 40 {
		t.Errorf("with a tried %v, want the other available one", got)
	}
	if got := picks(eps[0], eps[1]); got["c"]+got["d"] != 0 {
		t.Errorf("every available endpoint tried: %v, want an available one again", got)
	}
	eps[0].healthy.Store(false)
	eps[1].healthy.Store(false)
	if got := picks(); len(got) != 4 {
		t.Errorf("none available %v, want all in turn (panic mode)", got)
	}
	if got := picks(eps[0]); got["a"] != 0 {
		t.Errorf("none available, a tried: %v", got)
	}
}

// TestResilienceFromManifests runs a retry policy, a timeout and App Mesh's
// default policy as compile builds them from manifests.
func TestResilienceFromManifests(t *testing.T) {
	api := startCounted(t, "api", failing("api", 2, http.StatusInternalServerError))
	direct := startCounted(t, "direct", failing("direct", 1, http.StatusServiceUnavailable))
	slow, _ := hanging(t, "slow")
	manifests := `
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualGateway
metadata: {name: gw, namespace: demo}
spec:
  namespaceSelector: {}
  listeners:
    - portMapping: {port: 8080, protocol: http}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata: {name: api, namespace: demo}
spec:
  httpRoute:
    match: {prefix: /api}
    action:
      target:
        virtualService: {virtualServiceRef: {name: api}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata: {name: direct, namespace: demo}
spec:
  httpRoute:
    match: {prefix: /direct}
    action:
      target:
        virtualService: {virtualServiceRef: {name: direct}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: api, namespace: demo}
spec:
  provider:
    virtualRouter: {virtualRouterRef: {name: api-vr}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualRouter
metadata: {name: api-vr, namespace: demo}
spec:
  listeners:
    - portMapping: {port: 80, protocol: http}
  routes:
    - name: slow
      httpRoute:
        match: {prefix: /hang}
        action:
          weightedTargets: [{virtualNodeRef: {name: slow-vn}, weight: 1}]
        timeout:
          perRequest: {unit: ms, value: 300}
    - name: api
      httpRoute:
        match: {prefix: /}
        action:
          weightedTargets: [{virtualNodeRef: {name: api-vn}, weight: 1}]
        retryPolicy:
          maxRetries: 2
          perRetryTimeout: {unit: s, value: 5}
          httpRetryEvents: [server-error]
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: direct, namespace: demo}
spec:
  provider:
    virtualNode: {virtualNodeRef: {name: direct-vn}}
`
	for _, n := range []string{"api", "direct", "slow"} {
		manifests += `
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: ` + n + `-vn, namespace: demo}
spec:
  listeners:
    - portMapping: {port: 80, protocol: http}
  serviceDiscovery:
    dns: {hostname: ` + n + `.demo.svc.cluster.local}
`
	}
	set := resource.NewSet()
	set.AddFile("test.yaml", []byte(manifests))
	set.Endpoints["api.demo.svc.cluster.local"] = []string{api.addr}
	set.Endpoints["direct.demo.svc.cluster.local"] = []string{direct.addr}
	set.Endpoints["slow.demo.svc.cluster.local"] = []string{slow.addr}
	cfg, problems := compile.Compile(set)
	for _, p := range problems {
		t.Errorf("manifest problem: %s", p)
	}
	g := startGateway(t, cfg)

	if e := g.get("/api/x"); e.Backend != "api" || api.calls.Load() != 3 {
		t.Errorf("answered by %q after %d attempts, want api after 3", e.Backend, api.calls.Load())
	}
	if e := g.get("/direct"); e.Backend != "direct" || direct.calls.Load() != 2 {
		t.Errorf("answered by %q after %d attempts, want direct after 2 (App Mesh's default policy)", e.Backend, direct.calls.Load())
	}
	if res := g.do(request{path: "/api/hang"}); res.status != http.StatusGatewayTimeout {
		t.Errorf("the route with a 300ms timeout got %d, want 504", res.status)
	}
	if got := g.metric("meshgate_upstream_retries_total"); got != 3 {
		t.Errorf("retries counted %v, want 3", got)
	}
}

// TestHealthChecksDNSEndpoints checks endpoints found with DNS (ENDPOINTS:
// every address, on the listener port) from the moment the config applies.
func TestHealthChecksDNSEndpoints(t *testing.T) {
	var ok [2]atomic.Bool
	var lns [2]net.Listener
	for attempt := 0; lns[1] == nil; attempt++ {
		if attempt == 20 {
			t.Skip("no port free on both 127.0.0.1 and 127.0.0.2")
		}
		la, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lb, err := net.Listen("tcp", net.JoinHostPort("127.0.0.2", strings.TrimPrefix(la.Addr().String(), "127.0.0.1:")))
		if err != nil {
			la.Close()
			continue
		}
		lns = [2]net.Listener{la, lb}
	}
	for i, name := range []string{"ip1", "ip2"} {
		ok[i].Store(true)
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/health" {
				if !ok[i].Load() {
					w.WriteHeader(http.StatusServiceUnavailable)
				}
				return
			}
			echoHandler(name)(w, r)
		})}
		go srv.Serve(lns[i])
		t.Cleanup(func() { srv.Close() })
	}
	port := lns[0].Addr().(*net.TCPAddr).Port
	resolver := func(context.Context, string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")}, nil
	}
	cfg := meshConfig([]*ir.Listener{listenerOf(8080, route("r", "app", ir.Match{Prefix: "/"}))})
	n := &ir.VirtualNode{Listeners: []ir.PortProto{{Port: port, Protocol: "http"}}, Hostname: "app.demo.svc.cluster.local", ResponseType: "ENDPOINTS"}
	addNode(cfg, "app", n)
	policy(n).HealthCheck = httpCheck("http")
	g := startGateway(t, cfg, func(o *Options) { o.Resolver = resolver })
	a, b := lns[0].Addr().String(), lns[1].Addr().String()
	eventually(t, "both addresses are checked before any request", func() bool {
		return g.healthGauge("demo/app-vn", a) == 1 && g.healthGauge("demo/app-vn", b) == 1
	})
	ok[0].Store(false)
	eventually(t, "ip1 is unhealthy", func() bool { return g.healthGauge("demo/app-vn", a) == 0 })
	if got := g.backends(20); got["ip2"] != 20 {
		t.Fatalf("traffic %v, want all on ip2", got)
	}
}
