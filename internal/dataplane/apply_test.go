package dataplane

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/ir"
)

func TestWeightedSplit(t *testing.T) {
	v1, v2, never := startEcho(t, "v1"), startEcho(t, "v2"), startEcho(t, "never")
	cfg := meshConfig([]*ir.Listener{listenerOf(8080, route("r", "app", ir.Match{Prefix: "/"}))}, v1, v2, never)
	cfg.Services["demo/app"] = &ir.VirtualService{Name: "demo/app", Router: "demo/app-vr"}
	cfg.Routers["demo/app-vr"] = &ir.VirtualRouter{Name: "demo/app-vr", Routes: []*ir.Route{{
		Name: "split", Kind: "http", Match: ir.Match{Prefix: "/"}, TotalWeight: 100,
		Targets: []ir.WeightedTarget{{Node: "demo/v1-vn", Weight: 90}, {Node: "demo/v2-vn", Weight: 10}, {Node: "demo/never-vn", Weight: 0}},
	}}}
	g := startGateway(t, cfg)
	const n = 2000
	counts := map[string]int{}
	for i := 0; i < n; i++ {
		counts[g.get("/").Backend]++
	}
	// Binomial(n, 0.1): accept within 5 standard deviations.
	mean, sd := n*0.1, math.Sqrt(n*0.1*0.9)
	if d := math.Abs(float64(counts["v2"]) - mean); d > 5*sd {
		t.Errorf("v2 got %d of %d, want %.0f ± %.0f", counts["v2"], n, mean, 5*sd)
	}
	if counts["never"] != 0 || counts["v1"]+counts["v2"] != n {
		t.Errorf("counts %v", counts)
	}
}

func TestRoundRobinEndpoints(t *testing.T) {
	a, b := startEcho(t, "a"), startEcho(t, "b")
	cfg := meshConfig([]*ir.Listener{listenerOf(8080, route("r", "pool", ir.Match{Prefix: "/"}))})
	addNode(cfg, "pool", &ir.VirtualNode{Listeners: []ir.PortProto{{Port: 80, Protocol: "http"}}, Endpoints: []string{a.addr, b.addr}})
	g := startGateway(t, cfg)
	var order []string
	for i := 0; i < 6; i++ {
		order = append(order, g.get("/").Backend)
	}
	for i := 1; i < len(order); i++ {
		if order[i] == order[i-1] {
			t.Fatalf("not round robin: %v", order)
		}
	}
	// A reload keeps the position: the next request goes to the other endpoint.
	last := order[len(order)-1]
	if err := g.p.Apply(cfg, testGateway); err != nil {
		t.Fatal(err)
	}
	if next := g.get("/").Backend; next == last {
		t.Errorf("round robin restarted after reload: %s twice", next)
	}
}

// sharedPortBackends starts echo backends on 127.0.0.1 and 127.0.0.2 with
// the same port, as two DNS answers for one name would be.
func sharedPortBackends(t *testing.T) (a, b *backend) {
	t.Helper()
	for attempt := 0; attempt < 20; attempt++ {
		la, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := la.Addr().(*net.TCPAddr).Port
		lb, err := net.Listen("tcp", fmt.Sprintf("127.0.0.2:%d", port))
		if err != nil {
			la.Close()
			continue
		}
		a = serveOn(t, "ip1", la)
		b = serveOn(t, "ip2", lb)
		return a, b
	}
	t.Skip("no port free on both 127.0.0.1 and 127.0.0.2")
	return nil, nil
}

func serveOn(t *testing.T, name string, ln net.Listener) *backend {
	srv := &http.Server{Handler: echoHandler(name)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	addr := ln.Addr().(*net.TCPAddr)
	return &backend{name: name, addr: addr.String(), port: addr.Port}
}

func TestDNSDiscovery(t *testing.T) {
	a, b := sharedPortBackends(t)
	var lookups atomic.Int32
	var fail atomic.Bool
	resolver := func(ctx context.Context, host string) ([]netip.Addr, error) {
		lookups.Add(1)
		switch {
		case fail.Load():
			return nil, errors.New("server misbehaving")
		case host == "app.demo.svc.cluster.local":
			return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")}, nil
		case host == "empty.demo.svc.cluster.local":
			return nil, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	cfg := meshConfig([]*ir.Listener{listenerOf(8080,
		route("lb", "lb", ir.Match{Prefix: "/lb"}),
		route("all", "all", ir.Match{Prefix: "/all"}),
		route("port", "port", ir.Match{Prefix: "/port"}),
		route("unknown", "unknown", ir.Match{Prefix: "/unknown"}),
		route("empty", "empty", ir.Match{Prefix: "/empty"}),
	)})
	listeners := []ir.PortProto{{Port: a.port, Protocol: "http"}}
	addNode(cfg, "lb", &ir.VirtualNode{Listeners: listeners, Hostname: "app.demo.svc.cluster.local", ResponseType: "LOADBALANCER"})
	addNode(cfg, "all", &ir.VirtualNode{Listeners: listeners, Hostname: "app.demo.svc.cluster.local", ResponseType: "ENDPOINTS"})
	addNode(cfg, "unknown", &ir.VirtualNode{Listeners: listeners, Hostname: "unknown.demo.svc.cluster.local"})
	addNode(cfg, "empty", &ir.VirtualNode{Listeners: listeners, Hostname: "empty.demo.svc.cluster.local"})
	// The target port picks the node listener; the node's first is unreachable.
	addNode(cfg, "port", &ir.VirtualNode{Listeners: []ir.PortProto{{Port: 1, Protocol: "http"}, {Port: a.port, Protocol: "http"}}, Hostname: "127.0.0.2"})
	for _, r := range cfg.Gateways[0].Listeners[0].Routes {
		if r.Name == "port" {
			r.Target.Port = a.port
		}
	}
	g := startGateway(t, cfg, func(o *Options) { o.Resolver = resolver })

	for i := 0; i < 4; i++ {
		if got := g.get("/lb").Backend; got != a.name {
			t.Fatalf("LOADBALANCER answered by %s, want the first address only", got)
		}
	}
	seen := map[string]int{}
	for i := 0; i < 4; i++ {
		seen[g.get("/all").Backend]++
	}
	if seen[a.name] != 2 || seen[b.name] != 2 {
		t.Errorf("ENDPOINTS spread %v, want 2 each", seen)
	}
	if got := g.get("/port").Backend; got != b.name {
		t.Errorf("target port: answered by %s", got)
	}
	if n := lookups.Load(); n != 2 {
		t.Errorf("%d lookups for 8 requests to 2 nodes, want answers cached", n)
	}
	for path, want := range map[string]string{
		"/unknown": "virtual node demo/unknown-vn: resolving unknown.demo.svc.cluster.local: lookup unknown.demo.svc.cluster.local: no such host\n",
		"/empty":   "virtual node demo/empty-vn: resolving empty.demo.svc.cluster.local: no addresses\n",
	} {
		if res := g.do(request{path: path}); res.status != http.StatusServiceUnavailable || res.body != want {
			t.Errorf("%s: %d %q, want 503 %q", path, res.status, res.body, want)
		}
	}
}

func TestDNSKeepsLastGoodAnswer(t *testing.T) {
	a := startEcho(t, "a")
	var fail atomic.Bool
	var lookups atomic.Int32
	resolver := func(ctx context.Context, host string) ([]netip.Addr, error) {
		lookups.Add(1)
		if fail.Load() {
			return nil, errors.New("timeout")
		}
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	st := &nodeState{}
	st.dns.Store(&map[dnsKey]*dnsEntry{})
	k := dnsKey{"app", a.port, false}
	now := time.Now()
	addrs, err := st.lookup(context.Background(), resolver, k, now)
	if err != nil || len(addrs) != 1 || addrs[0] != a.addr {
		t.Fatalf("first lookup %v %v", addrs, err)
	}
	fail.Store(true)
	addrs, err = st.lookup(context.Background(), resolver, k, now.Add(dnsTTL+time.Second))
	if err != nil || len(addrs) != 1 || lookups.Load() != 2 {
		t.Fatalf("stale refresh failure: %v %v (%d lookups), want the last good answer", addrs, err, lookups.Load())
	}
}

// TestApplyUnderLoad reloads repeatedly while requests run: none may fail.
func TestApplyUnderLoad(t *testing.T) {
	a, b := startEcho(t, "a"), startEcho(t, "b")
	cfgFor := func(target string, rewrite bool) *ir.Config {
		r := route("r", target, ir.Match{Prefix: "/"})
		if rewrite {
			r.Rewrite.Hostname = target + ".internal"
		}
		return meshConfig([]*ir.Listener{listenerOf(8080, r)}, a, b)
	}
	g := startGateway(t, cfgFor("a", false))
	const workers, perWorker = 8, 300
	var wg sync.WaitGroup
	var failed atomic.Int32
	var firstErr atomic.Value
	done := make(chan struct{})
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				res, err := g.send(request{path: fmt.Sprintf("/w/%d", i)})
				if err == nil && (res.status != http.StatusOK || (res.echo.Backend != "a" && res.echo.Backend != "b")) {
					err = fmt.Errorf("status %d body %q", res.status, res.body)
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	applies := 0
	for running := true; running; applies++ {
		select {
		case <-done:
			running = false
		default:
		}
		target := "a"
		if applies%2 == 1 {
			target = "b"
		}
		if err := g.p.Apply(cfgFor(target, applies%3 == 0), testGateway); err != nil {
			t.Fatal(err)
		}
	}
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed during %d applies; first: %v", n, workers*perWorker, applies, firstErr.Load())
	}
	if err := g.p.Apply(cfgFor("b", false), testGateway); err != nil {
		t.Fatal(err)
	}
	if got := g.get("/").Backend; got != "b" {
		t.Errorf("after the last apply answered by %s", got)
	}
}

func TestApplyFailureKeepsServing(t *testing.T) {
	a, b := startEcho(t, "a"), startEcho(t, "b")
	good := meshConfig([]*ir.Listener{listenerOf(8080, route("r", "a", ir.Match{Prefix: "/"}))}, a, b)
	var failPort atomic.Int32
	g := startGateway(t, good, func(o *Options) {
		o.Listen = func(port int) (net.Listener, error) {
			if int32(port) == failPort.Load() {
				return nil, errors.New("address already in use")
			}
			return net.Listen("tcp", "127.0.0.1:0")
		}
	})
	toB := func() *ir.Config {
		return meshConfig([]*ir.Listener{listenerOf(8080, route("r", "b", ir.Match{Prefix: "/"}))}, a, b)
	}

	// A config the router could serve, but that Validate rejects.
	invalid := toB()
	invalid.Routers["demo/x-vr"] = &ir.VirtualRouter{Name: "demo/x-vr", Routes: []*ir.Route{
		{Name: "r", Match: ir.Match{Prefix: "/"}, TotalWeight: 3, Targets: []ir.WeightedTarget{{Node: "demo/b-vn", Weight: 1}}},
	}}
	badIndex := toB()
	badIndex.Gateways[0].Listeners[0].AnyHost = []int{7}
	failPort.Store(9090)
	newPort := toB()
	newPort.Gateways[0].Listeners = append(newPort.Gateways[0].Listeners, listenerOf(9090, route("r9", "b", ir.Match{Prefix: "/"})))
	badLog := toB()
	badLog.Gateways[0].AccessLog = &ir.AccessLog{Path: t.TempDir() + "/access.log", Text: "%NOT_AN_OPERATOR%"}
	cases := map[string]struct {
		cfg     *ir.Config
		gateway string
		want    string
	}{
		"fails Validate":  {invalid, testGateway, "total weight 3"},
		"bad route index": {badIndex, testGateway, "out of range"},
		"unknown gateway": {toB(), "demo/other", "demo/other"},
		"listener fails":  {newPort, testGateway, "address already in use"},
		"bad access log":  {badLog, testGateway, "NOT_AN_OPERATOR"},
		"nil config":      {nil, testGateway, "no config"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			err := g.p.Apply(c.cfg, c.gateway)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Apply error %v, want one mentioning %q", err, c.want)
			}
			if got := g.get("/").Backend; got != "a" {
				t.Fatalf("after a failed Apply answered by %s, want the old config's a", got)
			}
			if _, ok := g.p.Addrs()[9090]; ok {
				t.Fatal("a failed Apply left a listener open")
			}
		})
	}
}

func TestListenersFollowConfig(t *testing.T) {
	a := startEcho(t, "a")
	on := func(ports ...int) *ir.Config {
		var ls []*ir.Listener
		for _, p := range ports {
			ls = append(ls, listenerOf(p, route(fmt.Sprint("r", p), "a", ir.Match{Prefix: "/"})))
		}
		return meshConfig(ls, a)
	}
	g := startGateway(t, on(8080))
	old := g.p.Addrs()[8080].String()
	if err := g.p.Apply(on(8080, 9090), testGateway); err != nil {
		t.Fatal(err)
	}
	if g.p.Addrs()[8080].String() != old {
		t.Error("a kept port was reopened")
	}
	if got := g.do(request{port: 9090, path: "/"}); got.echo.Backend != "a" {
		t.Fatalf("new port: %d %q", got.status, got.body)
	}
	if err := g.p.Apply(on(9090), testGateway); err != nil {
		t.Fatal(err)
	}
	if _, ok := g.p.Addrs()[8080]; ok {
		t.Fatal("removed port still listed")
	}
	eventually(t, "the removed listener refuses connections", func() bool {
		c, err := net.Dial("tcp", old)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
}

func TestShutdownDrains(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	slow := startBackend(t, "slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		echoHandler("slow")(w, r)
	}))
	p, err := New(Options{Listen: func(int) (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown(context.Background()) }) // a no-op once the test shut it down
	if p.Ready() {
		t.Fatal("ready before Apply")
	}
	if err := p.Apply(meshConfig([]*ir.Listener{listenerOf(8080, route("r", "slow", ir.Match{Prefix: "/"}))}, slow), testGateway); err != nil {
		t.Fatal(err)
	}
	if !p.Ready() {
		t.Fatal("not ready after Apply")
	}
	addr := p.Addrs()[8080].String()
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	type result struct {
		status int
		err    error
	}
	got := make(chan result, 1)
	go func() {
		res, err := client.Get("http://" + addr + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		res.Body.Close()
		got <- result{status: res.StatusCode}
	}()
	<-arrived
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		shut <- p.Shutdown(ctx)
	}()
	eventually(t, "the listener stops accepting", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	if p.Ready() {
		t.Error("ready while shutting down")
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	default:
	}
	close(release)
	if r := <-got; r.err != nil || r.status != http.StatusOK {
		t.Fatalf("in-flight request: %+v", r)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := p.Apply(meshConfig(nil), testGateway); err == nil {
		t.Error("Apply after Shutdown succeeded")
	}
}
