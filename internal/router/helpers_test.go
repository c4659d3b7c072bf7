package router

import (
	"net/http"
	"testing"

	"github.com/meshgate/meshgate/internal/ir"
)

const testGateway = "demo/gw"

// listenerOf builds an http listener whose routes are in the given order.
func listenerOf(port int, routes ...*ir.GatewayRoute) *ir.Listener {
	l := &ir.Listener{Port: port, Protocol: "http", Routes: routes}
	l.IndexHosts()
	return l
}

// mesh is the services, routers and nodes every test config shares.
func mesh(listeners ...*ir.Listener) *ir.Config {
	node := func(name string) *ir.VirtualNode {
		return &ir.VirtualNode{Name: name, Listeners: []ir.PortProto{{Port: 8080, Protocol: "http"}}, Hostname: name + ".local"}
	}
	return &ir.Config{
		Gateways: []*ir.Gateway{{Name: testGateway, Mesh: "demo", Listeners: listeners}},
		Services: map[string]*ir.VirtualService{
			"demo/a":             {Name: "demo/a", Hostname: "a.demo.svc.cluster.local", Node: "demo/a-vn"},
			"demo/b":             {Name: "demo/b", Hostname: "b.demo.svc.cluster.local", Node: "demo/b-vn"},
			"demo/r":             {Name: "demo/r", Hostname: "r.demo.svc.cluster.local", Router: "demo/r-vr"},
			"demo/ports":         {Name: "demo/ports", Hostname: "ports.demo.svc.cluster.local", Router: "demo/ports-vr"},
			"demo/ghost-node":    {Name: "demo/ghost-node", Node: "demo/ghost-vn"},
			"demo/ghost-router":  {Name: "demo/ghost-router", Router: "demo/ghost-vr"},
			"demo/no-provider":   {Name: "demo/no-provider"},
			"demo/zero":          {Name: "demo/zero", Router: "demo/zero-vr"},
			"demo/ghost-targets": {Name: "demo/ghost-targets", Router: "demo/ghost-targets-vr"},
			"demo/half-ghost":    {Name: "demo/half-ghost", Router: "demo/half-ghost-vr"},
		},
		Routers: map[string]*ir.VirtualRouter{
			"demo/r-vr": {
				Name:      "demo/r-vr",
				Listeners: []ir.PortProto{{Port: 8080, Protocol: "http"}},
				Routes: []*ir.Route{
					{Name: "api", Kind: "http", Match: ir.Match{Prefix: "/api"}, TotalWeight: 1,
						Targets: []ir.WeightedTarget{{Node: "demo/b-vn", Weight: 1}}},
					{Name: "host-c", Kind: "http", Match: ir.Match{Prefix: "/", Headers: []ir.HeaderMatch{{Name: "host", Type: ir.HeaderExact, Value: "c.internal"}}}, TotalWeight: 1,
						Targets: []ir.WeightedTarget{{Node: "demo/c-vn", Weight: 1}}},
					{Name: "split", Kind: "http", Match: ir.Match{Prefix: "/split"}, TotalWeight: 100,
						Targets: []ir.WeightedTarget{{Node: "demo/a-vn", Weight: 90}, {Node: "demo/b-vn", Weight: 10}, {Node: "demo/c-vn", Weight: 0}}},
					{Name: "default", Kind: "http", Match: ir.Match{Prefix: "/", Method: "GET"}, TotalWeight: 1,
						Targets: []ir.WeightedTarget{{Node: "demo/a-vn", Weight: 1, Port: 8080}}},
				},
			},
			"demo/ports-vr": {
				Name:      "demo/ports-vr",
				Listeners: []ir.PortProto{{Port: 8080, Protocol: "http"}, {Port: 9090, Protocol: "http"}},
				Routes: []*ir.Route{
					{Name: "on-9090", Kind: "http", Match: ir.Match{Prefix: "/", Port: 9090}, TotalWeight: 1,
						Targets: []ir.WeightedTarget{{Node: "demo/b-vn", Weight: 1}}},
					{Name: "on-8080", Kind: "http", Match: ir.Match{Prefix: "/", Port: 8080}, TotalWeight: 1,
						Targets: []ir.WeightedTarget{{Node: "demo/a-vn", Weight: 1}}},
				},
			},
			"demo/zero-vr": {Name: "demo/zero-vr", Routes: []*ir.Route{
				{Name: "nothing", Kind: "http", Match: ir.Match{Prefix: "/"}, Targets: []ir.WeightedTarget{{Node: "demo/a-vn", Weight: 0}}},
			}},
			"demo/ghost-targets-vr": {Name: "demo/ghost-targets-vr", Routes: []*ir.Route{
				{Name: "ghosts", Kind: "http", Match: ir.Match{Prefix: "/"}, TotalWeight: 2,
					Targets: []ir.WeightedTarget{{Node: "demo/ghost1-vn", Weight: 1}, {Node: "demo/ghost2-vn", Weight: 1}}},
			}},
			"demo/half-ghost-vr": {Name: "demo/half-ghost-vr", Routes: []*ir.Route{
				{Name: "half", Kind: "http", Match: ir.Match{Prefix: "/"}, TotalWeight: 2,
					Targets: []ir.WeightedTarget{{Node: "demo/a-vn", Weight: 1}, {Node: "demo/ghost-vn", Weight: 1}}},
			}},
		},
		Nodes: map[string]*ir.VirtualNode{
			"demo/a-vn": node("demo/a-vn"),
			"demo/b-vn": node("demo/b-vn"),
			"demo/c-vn": node("demo/c-vn"),
		},
	}
}

// gr is a gateway route to service demo/a with the given match.
func gr(name string, m ir.Match) *ir.GatewayRoute {
	return &ir.GatewayRoute{Name: name, Kind: "http", Priority: 1001, Match: m, Target: ir.Target{Service: "demo/a"}}
}

func to(r *ir.GatewayRoute, service string) *ir.GatewayRoute {
	r.Target.Service = service
	return r
}

func rewrite(r *ir.GatewayRoute, rw ir.Rewrite) *ir.GatewayRoute {
	r.Rewrite = rw
	return r
}

func host(exact string) *ir.HostnameMatch { return &ir.HostnameMatch{Exact: exact} }
func suffix(s string) *ir.HostnameMatch   { return &ir.HostnameMatch{Suffix: s} }
func str(s string) *string                { return &s }
func hdr(kv ...string) http.Header        { return headerOf(kv...) }
func headerOf(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func mustRegexp(t testing.TB, expr string) *ir.Regexp {
	t.Helper()
	re, err := ir.CompileRegexp(expr)
	if err != nil {
		t.Fatal(err)
	}
	return re
}

func mustTable(t testing.TB, cfg *ir.Config) *Table {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config invalid: %v", err)
	}
	tab, err := New(cfg, testGateway)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// req is a GET of path on port 8080 with Host example.com unless changed.
func req(path string, opts ...func(*Request)) *Request {
	r := &Request{Port: 8080, Method: http.MethodGet, Host: "example.com", Path: path, Scheme: "http", Header: http.Header{}}
	for _, o := range opts {
		o(r)
	}
	return r
}

func withHost(h string) func(*Request)        { return func(r *Request) { r.Host = h } }
func withPort(p int) func(*Request)           { return func(r *Request) { r.Port = p } }
func withMethod(m string) func(*Request)      { return func(r *Request) { r.Method = m } }
func withQuery(q string) func(*Request)       { return func(r *Request) { r.RawQuery = q } }
func withScheme(s string) func(*Request)      { return func(r *Request) { r.Scheme = s } }
func withHeader(h http.Header) func(*Request) { return func(r *Request) { r.Header = h } }
