package dataplane

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/ir"
	"github.com/prometheus/client_golang/prometheus"
)

const testGateway = "demo/gw"

// echoed is what an echo backend received, as it reports it.
type echoed struct {
	Backend    string      `json:"backend"`
	Proto      string      `json:"proto"`
	Method     string      `json:"method"`
	Host       string      `json:"host"`
	Path       string      `json:"path"`  // escaped, as sent on the wire
	Query      string      `json:"query"` // raw
	Header     http.Header `json:"header"`
	Body       string      `json:"body,omitempty"` // when short
	BodyLen    int         `json:"bodyLen"`
	BodySHA256 string      `json:"bodySha256"`
	RemoteAddr string      `json:"remoteAddr"`
}

func echoHandler(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		sum := sha256.Sum256(body)
		path, query, _ := strings.Cut(r.RequestURI, "?")
		e := echoed{
			Backend: name, Proto: r.Proto, Method: r.Method, Host: r.Host, Path: path, Query: query,
			Header: r.Header, BodyLen: len(body), BodySHA256: hex.EncodeToString(sum[:]), RemoteAddr: r.RemoteAddr,
		}
		if len(body) <= 1024 {
			e.Body = string(body)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Backend", name)
		json.NewEncoder(w).Encode(e)
	}
}

// backend is a real HTTP server on 127.0.0.1 with an OS-chosen port.
type backend struct {
	name string
	srv  *httptest.Server
	addr string // "127.0.0.1:PORT"
	port int
}

func startBackend(t testing.TB, name string, h http.Handler) *backend {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return newBackend(name, srv)
}

// startH2CBackend serves HTTP/1.1 and cleartext HTTP/2 (prior knowledge).
func startH2CBackend(t *testing.T, name string, h http.Handler) *backend {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	srv.Config.Protocols = &protos
	srv.Start()
	t.Cleanup(srv.Close)
	return newBackend(name, srv)
}

func newBackend(name string, srv *httptest.Server) *backend {
	addr := srv.Listener.Addr().(*net.TCPAddr)
	return &backend{name: name, srv: srv, addr: addr.String(), port: addr.Port}
}

func startEcho(t testing.TB, name string) *backend { return startBackend(t, name, echoHandler(name)) }

// closedAddr is an address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// listenerOf builds an http listener whose routes are in the given order.
func listenerOf(port int, routes ...*ir.GatewayRoute) *ir.Listener {
	l := &ir.Listener{Port: port, Protocol: "http", Routes: routes}
	l.IndexHosts()
	return l
}

// meshConfig is a config with one gateway and, for every backend, a
// virtual node "demo/NAME-vn" with the backend as its endpoint and a
// virtual service "demo/NAME" it provides.
func meshConfig(listeners []*ir.Listener, backends ...*backend) *ir.Config {
	cfg := &ir.Config{
		Gateways: []*ir.Gateway{{Name: testGateway, Mesh: "demo", Listeners: listeners}},
		Services: map[string]*ir.VirtualService{},
		Routers:  map[string]*ir.VirtualRouter{},
		Nodes:    map[string]*ir.VirtualNode{},
	}
	for _, b := range backends {
		addNode(cfg, b.name, &ir.VirtualNode{
			Listeners: []ir.PortProto{{Port: b.port, Protocol: "http"}},
			Endpoints: []string{b.addr},
		})
	}
	return cfg
}

// addNode adds virtual node demo/NAME-vn and a service demo/NAME it provides.
func addNode(cfg *ir.Config, name string, n *ir.VirtualNode) {
	n.Name = "demo/" + name + "-vn"
	cfg.Nodes[n.Name] = n
	cfg.Services["demo/"+name] = &ir.VirtualService{Name: "demo/" + name, Hostname: name + ".demo.svc.cluster.local", Node: n.Name}
}

// route is a gateway route to service demo/service.
func route(name, service string, m ir.Match) *ir.GatewayRoute {
	return &ir.GatewayRoute{Name: name, Kind: "http", Priority: 1001, Match: m, Target: ir.Target{Service: "demo/" + service}}
}

func withRewrite(r *ir.GatewayRoute, rw ir.Rewrite) *ir.GatewayRoute {
	r.Rewrite = rw
	return r
}

func mustRegexp(t *testing.T, expr string) *ir.Regexp {
	t.Helper()
	re, err := ir.CompileRegexp(expr)
	if err != nil {
		t.Fatal(err)
	}
	return re
}

// gateway is a running Plane whose listeners are on OS-chosen ports.
type gateway struct {
	t      testing.TB
	p      *Plane
	reg    *prometheus.Registry
	client *http.Client
}

func startGateway(t testing.TB, cfg *ir.Config, opts ...func(*Options)) *gateway {
	t.Helper()
	reg := prometheus.NewRegistry()
	o := Options{
		Registry: reg,
		Listen:   func(int) (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") },
	}
	for _, f := range opts {
		f(&o)
	}
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	g := &gateway{t: t, p: p, reg: reg, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	if cfg != nil {
		if err := p.Apply(cfg, testGateway); err != nil {
			t.Fatalf("apply: %v", err)
		}
	}
	return g
}

// url is the gateway URL of a path on a gateway (IR) port.
func (g *gateway) url(port int, path string) string {
	a := g.p.Addrs()[port]
	if a == nil {
		g.t.Fatalf("no listener for port %d", port)
	}
	return "http://" + a.String() + path
}

// request sends a request to gateway port 8080 unless the request says otherwise.
type request struct {
	method string
	port   int
	path   string // with query
	host   string
	header http.Header
	body   io.Reader
}

type response struct {
	status int
	header http.Header
	body   string
	echo   echoed // when a backend answered
}

func (g *gateway) do(r request) response {
	g.t.Helper()
	resp, err := g.send(r)
	if err != nil {
		g.t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	return resp
}

func (g *gateway) send(r request) (response, error) {
	if r.method == "" {
		r.method = http.MethodGet
	}
	if r.port == 0 {
		r.port = 8080
	}
	req, err := http.NewRequest(r.method, g.url(r.port, r.path), r.body)
	if err != nil {
		return response{}, err
	}
	if r.host != "" {
		req.Host = r.host
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	res, err := g.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return response{}, err
	}
	out := response{status: res.StatusCode, header: res.Header, body: string(b)}
	if res.Header.Get("X-Backend") != "" {
		if err := json.Unmarshal(b, &out.echo); err != nil {
			return out, err
		}
	}
	return out, nil
}

// get is a GET of path on port 8080, failing the test unless a backend answered.
func (g *gateway) get(path string, header ...string) echoed {
	g.t.Helper()
	h := http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		h.Add(header[i], header[i+1])
	}
	res := g.do(request{path: path, header: h})
	if res.status != http.StatusOK || res.echo.Backend == "" {
		g.t.Fatalf("GET %s: status %d body %q", path, res.status, res.body)
	}
	return res.echo
}

// eventually polls cond until it holds, failing after a generous deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
