// Package router owns deciding, for one request at one gateway, which
// GatewayRoute, VirtualService, Route and weighted targets serve it, and how
// the request is rewritten before it is forwarded. It does no I/O: the data
// plane asks it once per request and the `meshgate route` command asks it to
// explain a decision.
//
// A Table is built once per config by New, which compiles every match into a
// form that is cheap to evaluate; Decide then only reads it, so one Table may
// serve any number of goroutines.
package router

import (
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/meshgate/meshgate/internal/ir"
)

// Request is what routing looks at in one HTTP request.
type Request struct {
	// Port is the gateway listener port the request arrived on.
	Port int
	// Method is the HTTP method (":method").
	Method string
	// Host is the Host header (":authority") as received; it may carry a port.
	Host string
	// Path is the request path as received, percent-encoded, without query.
	Path string
	// RawQuery is the query string without "?"; it is forwarded unchanged.
	RawQuery string
	// Scheme is "http" or "https".
	Scheme string
	Header http.Header
}

// Decision is the outcome of routing one request.
type Decision struct {
	// GatewayRoute is the route that matched; nil means no route (404).
	GatewayRoute *ir.GatewayRoute `json:"gatewayRoute,omitempty"`
	// Service is the target VirtualService; nil when it does not exist.
	Service *ir.VirtualService `json:"virtualService,omitempty"`
	// Router is set when the service's provider is a VirtualRouter that exists.
	Router *ir.VirtualRouter `json:"virtualRouter,omitempty"`
	// Route is the router route that matched.
	Route *ir.Route `json:"route,omitempty"`
	// Targets are the candidate nodes with weight > 0; a node provider gives
	// one target of weight 1. A target whose node does not exist is kept, so
	// that its share of traffic fails instead of silently moving to the others.
	Targets []ir.WeightedTarget `json:"targets,omitempty"`
	// Host and Path are what is forwarded: the Host header and the normalised,
	// rewritten, percent-encoded path. The query string is not part of Path.
	Host string `json:"host,omitempty"`
	Path string `json:"path,omitempty"`
	// Status is 0 to proxy, 404 when no gateway route matched and 503 when the
	// route's target cannot be resolved.
	Status int `json:"status,omitempty"`
	// Reason says why Status is not 0.
	Reason string `json:"reason,omitempty"`
}

// Table is the routing table of one gateway, immutable once built.
type Table struct {
	listeners []*listener
}

type listener struct {
	port   int
	exact  map[string]*group
	suffix []suffixGroup // longest suffix first
	// suffixKeys holds every suffix reversed, with its position in suffix as
	// payload, so a host finds the groups it ends with in one walk; it is
	// empty when two groups share a suffix, and suffix is scanned instead.
	suffixKeys trie
	any        *group
}

type suffixGroup struct {
	suffix string
	g      *group
}

// group is one candidate list (a hostname, a hostname suffix or any host),
// in precedence order.
type group struct {
	label  string
	routes []*gatewayRoute
	idx    *pathIndex // nil when the group is small enough to scan
}

type gatewayRoute struct {
	ir  *ir.GatewayRoute
	m   matcher
	res resolution
	// rewritePrefix and rewritePath are Rewrite.Prefix and Rewrite.Path made
	// to start with "/", so the rewritten path always does.
	rewritePrefix, rewritePath string
}

// resolution is what a gateway route's target resolves to, worked out once.
type resolution struct {
	svc     *ir.VirtualService
	router  *virtualRouter
	targets []ir.WeightedTarget // node provider: the single target
	// port is the router listener port router routes are matched against;
	// 0 accepts routes for any port.
	port   int
	status int
	reason string
}

type virtualRouter struct {
	ir     *ir.VirtualRouter
	routes []*route
	// noMatch is the 503 reason when no route matches.
	noMatch string
}

type route struct {
	ir      *ir.Route
	m       matcher
	targets []ir.WeightedTarget
	status  int
	reason  string
}

// New builds the table of the gateway named "namespace/name" in cfg.
func New(cfg *ir.Config, gateway string) (*Table, error) {
	if cfg == nil {
		return nil, fmt.Errorf("router: no config")
	}
	gw := cfg.Gateway(gateway)
	if gw == nil {
		return nil, fmt.Errorf("router: gateway %s not in config", gateway)
	}
	regexLiterals.Rotate()
	t := &Table{}
	routers := map[string]*virtualRouter{}
	for _, l := range gw.Listeners {
		if t.listener(l.Port) != nil {
			continue // Validate rejects duplicates upstream; first one wins here
		}
		cl, err := t.buildListener(cfg, l, routers)
		if err != nil {
			return nil, fmt.Errorf("router: gateway %s: %w", gateway, err)
		}
		t.listeners = append(t.listeners, cl)
	}
	return t, nil
}

func (t *Table) buildListener(cfg *ir.Config, l *ir.Listener, routers map[string]*virtualRouter) (*listener, error) {
	routes := make([]*gatewayRoute, len(l.Routes))
	for i, gr := range l.Routes {
		if gr == nil {
			return nil, fmt.Errorf("port %d: route %d is nil", l.Port, i)
		}
		r := &gatewayRoute{ir: gr, m: compileMatch(&gr.Match)}
		if p := gr.Rewrite.Prefix; p != "" {
			r.rewritePrefix = withSlash(p)
		}
		if p := gr.Rewrite.Path; p != "" {
			r.rewritePath = withSlash(p)
		}
		r.res = resolve(cfg, gr, routers)
		routes[i] = r
	}
	pick := func(label string, idx []int) (*group, error) {
		g := &group{label: label, routes: make([]*gatewayRoute, 0, len(idx))}
		for _, i := range idx {
			if i < 0 || i >= len(routes) {
				return nil, fmt.Errorf("port %d: route index %d out of range", l.Port, i)
			}
			g.routes = append(g.routes, routes[i])
		}
		g.idx = buildIndex(g.routes)
		return g, nil
	}
	cl := &listener{port: l.Port, exact: make(map[string]*group, len(l.Hosts))}
	for host, idx := range l.Hosts {
		host = strings.ToLower(host)
		g, err := pick("hostname "+host, idx)
		if err != nil {
			return nil, err
		}
		cl.exact[host] = g
	}
	for _, s := range l.Suffixes {
		suffix := strings.ToLower(s.Suffix)
		g, err := pick("hostname suffix "+suffix, s.Routes)
		if err != nil {
			return nil, err
		}
		cl.suffix = append(cl.suffix, suffixGroup{suffix: suffix, g: g})
	}
	// Longest suffix first is the contract; sorting again makes it hold
	// whatever order the config lists them in.
	sort.SliceStable(cl.suffix, func(i, j int) bool { return len(cl.suffix[i].suffix) > len(cl.suffix[j].suffix) })
	cl.suffixKeys = suffixTrie(cl.suffix)
	if len(l.AnyHost) > 0 {
		g, err := pick("any hostname", l.AnyHost)
		if err != nil {
			return nil, err
		}
		cl.any = g
	}
	return cl, nil
}

// resolve works out where a gateway route sends, so requests only copy the answer.
func resolve(cfg *ir.Config, gr *ir.GatewayRoute, routers map[string]*virtualRouter) resolution {
	name := gr.Target.Service
	svc := cfg.Services[name]
	if svc == nil {
		return resolution{status: http.StatusServiceUnavailable, reason: "virtual service " + name + " not found"}
	}
	res := resolution{svc: svc}
	switch {
	case svc.Node != "":
		if cfg.Nodes[svc.Node] == nil {
			res.status, res.reason = http.StatusServiceUnavailable, "virtual node "+svc.Node+" not found"
			return res
		}
		res.targets = []ir.WeightedTarget{{Node: svc.Node, Weight: 1, Port: gr.Target.Port}}
	case svc.Router != "":
		vr := cfg.Routers[svc.Router]
		if vr == nil {
			res.status, res.reason = http.StatusServiceUnavailable, "virtual router "+svc.Router+" not found"
			return res
		}
		res.router = routers[svc.Router]
		if res.router == nil {
			res.router = buildRouter(cfg, vr)
			routers[svc.Router] = res.router
		}
		res.port = gr.Target.Port
		if res.port == 0 && len(vr.Listeners) == 1 {
			// With one router listener an unset target port can only mean it.
			res.port = vr.Listeners[0].Port
		}
	default:
		res.status, res.reason = http.StatusServiceUnavailable, "virtual service "+name+" has no provider"
	}
	return res
}

func buildRouter(cfg *ir.Config, vr *ir.VirtualRouter) *virtualRouter {
	r := &virtualRouter{ir: vr, noMatch: "no route of virtual router " + vr.Name + " matched"}
	for _, rt := range vr.Routes {
		if rt == nil {
			continue
		}
		c := &route{ir: rt, m: compileMatch(&rt.Match)}
		var missing []string
		for _, t := range rt.Targets {
			if t.Weight <= 0 {
				continue
			}
			c.targets = append(c.targets, t)
			if cfg.Nodes[t.Node] == nil {
				missing = append(missing, t.Node)
			}
		}
		switch {
		case len(c.targets) == 0:
			c.status = http.StatusServiceUnavailable
			c.reason = "route " + rt.Name + " of virtual router " + vr.Name + " has no target with weight > 0"
		case len(missing) == len(c.targets):
			c.status = http.StatusServiceUnavailable
			if len(missing) == 1 {
				c.reason = "virtual node " + missing[0] + " not found"
			} else {
				c.reason = "virtual nodes " + strings.Join(missing, ", ") + " not found"
			}
		}
		r.routes = append(r.routes, c)
	}
	return r
}

func suffixTrie(groups []suffixGroup) trie {
	keys := make([]trieKey, 0, len(groups))
	seen := make(map[string]bool, len(groups))
	for i, s := range groups {
		if seen[s.suffix] {
			return trie{}
		}
		seen[s.suffix] = true
		keys = append(keys, trieKey{s: reverse(s.suffix), val: int32(i), exact: -1})
	}
	return buildTrie(keys)
}

func withSlash(p string) string {
	if strings.HasPrefix(p, "/") {
		return p
	}
	return "/" + p
}

func (t *Table) listener(port int) *listener {
	for _, l := range t.listeners {
		if l.port == port {
			return l
		}
	}
	return nil
}

// Decide routes one request. The listener is chosen by port. Candidates are
// the routes naming the request's hostname, then those of each hostname
// suffix it ends with (longest first), then those without a hostname, each
// group in precedence order; a group in which nothing matches is fallen
// through. The first route whose criteria all hold wins. Matching sees the
// host without its port, case-insensitively, and the path normalised
// (duplicate slashes merged, dot segments resolved); the normalised path is
// what is rewritten and forwarded. When the target service is provided by a
// virtual router, its first route that matches the request as forwarded
// (rewritten host and path, target port) picks the weighted targets.
func (t *Table) Decide(r *Request) Decision { return t.decide(r, nil) }

// decide is Decide and Explain: with ex set every candidate is evaluated in
// order and recorded, without it the indexes skip the suffix groups and
// routes that cannot match.
func (t *Table) decide(r *Request, ex *Explanation) Decision {
	l := t.listener(r.Port)
	if l == nil {
		return Decision{Status: http.StatusNotFound, Reason: fmt.Sprintf("no listener on port %d", r.Port)}
	}
	v := view{
		port:     r.Port,
		method:   r.Method,
		host:     stripPort(r.Host),
		rawHost:  r.Host,
		path:     normalizePath(r.Path),
		rawQuery: r.RawQuery,
		scheme:   r.Scheme,
		header:   r.Header,
	}
	if ex != nil {
		ex.Host, ex.Path = strings.ToLower(v.host), v.path
	}
	gr := l.find(&v, ex)
	if gr == nil {
		return Decision{Status: http.StatusNotFound, Reason: "no gateway route matched"}
	}
	d := Decision{GatewayRoute: gr.ir, Host: r.Host, Path: gr.rewrite(v.path)}
	if h := gr.ir.Rewrite.Hostname; h != "" {
		d.Host = h
	}
	res := &gr.res
	d.Service = res.svc
	if res.status != 0 {
		d.Status, d.Reason = res.status, res.reason
		return d
	}
	if res.router == nil {
		d.Targets = res.targets
		return d
	}
	d.Router = res.router.ir
	// The gateway is the mesh client: the router sees the request as forwarded.
	fwd := v
	fwd.port = res.port
	fwd.rawHost = d.Host
	fwd.host = stripPort(d.Host)
	fwd.path = d.Path
	rt := res.router.find(&fwd, ex)
	if rt == nil {
		d.Status, d.Reason = http.StatusServiceUnavailable, res.router.noMatch
		return d
	}
	d.Route = rt.ir
	d.Targets = rt.targets
	d.Status, d.Reason = rt.status, rt.reason
	return d
}

// find returns the first route, in candidate-group order, that matches.
func (l *listener) find(v *view, ex *Explanation) *gatewayRoute {
	if g := l.exactGroup(v.host); g != nil {
		if r := g.find(v, ex); r != nil {
			return r
		}
	} else if ex != nil && v.host != "" {
		ex.note("no route names hostname " + strings.ToLower(v.host))
	}
	if ex == nil && len(l.suffixKeys.nodes) > 0 {
		// Longest suffix first: the deepest key the host ends with, then up.
		for n := l.suffixKeys.suffixes(v.host, true, true); n >= 0; n = l.suffixKeys.nodes[n].up {
			if r := l.suffix[l.suffixKeys.nodes[n].val].g.find(v, nil); r != nil {
				return r
			}
		}
	} else {
		for i := range l.suffix {
			s := &l.suffix[i]
			if !suffixMatch(v.host, s.suffix) {
				continue
			}
			if r := s.g.find(v, ex); r != nil {
				return r
			}
		}
	}
	if l.any != nil {
		return l.any.find(v, ex)
	}
	if ex != nil {
		ex.note("no route without a hostname on port " + fmt.Sprint(l.port))
	}
	return nil
}

// exactGroup looks the host up case-insensitively without allocating for
// hosts of ordinary length.
func (l *listener) exactGroup(host string) *group {
	if len(l.exact) == 0 {
		return nil
	}
	if !hasUpperASCII(host) {
		return l.exact[host]
	}
	var buf [256]byte
	if len(host) > len(buf) {
		return l.exact[strings.ToLower(host)]
	}
	b := buf[:len(host)]
	for i := 0; i < len(host); i++ {
		c := host[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return l.exact[string(b)] // converted in place for the lookup, not copied
}

func (g *group) find(v *view, ex *Explanation) *gatewayRoute {
	if ex != nil {
		for _, r := range g.routes {
			checks, ok := r.m.explain(v)
			ex.Steps = append(ex.Steps, Step{
				Kind: "gatewayRoute", Name: r.ir.Name, Group: g.label,
				Priority: r.ir.Priority, Matched: ok, Checks: checks,
			})
			if ok {
				return r
			}
		}
		ex.note(g.label + ": no route matched")
		return nil
	}
	if g.idx != nil {
		if i := g.idx.first(g.routes, v); i >= 0 {
			return g.routes[i]
		}
		return nil
	}
	for _, r := range g.routes {
		if r.m.matches(v) {
			return r
		}
	}
	return nil
}

func (r *virtualRouter) find(v *view, ex *Explanation) *route {
	for _, rt := range r.routes {
		if ex != nil {
			checks, ok := rt.m.explain(v)
			ex.Steps = append(ex.Steps, Step{
				Kind: "route", Name: rt.ir.Name, Group: "virtual router " + r.ir.Name,
				Priority: rt.ir.Priority, Matched: ok, Checks: checks,
			})
			if ok {
				return rt
			}
			continue
		}
		if rt.m.matches(v) {
			return rt
		}
	}
	return nil
}

// rewrite returns the path forwarded for the matched (normalised) path.
func (r *gatewayRoute) rewrite(path string) string {
	switch {
	case r.rewritePath != "":
		return r.rewritePath
	case r.rewritePrefix != "":
		rest := path
		if p := r.ir.Match.Prefix; strings.HasPrefix(path, p) {
			rest = path[len(p):]
		}
		rest = strings.TrimLeft(rest, "/")
		// The path usually has the replacement just before what is kept (a
		// "/" when the prefix is replaced by "/"); then the result is a
		// substring of it and costs no allocation.
		if cut := len(path) - len(rest); cut >= len(r.rewritePrefix) && path[cut-len(r.rewritePrefix):cut] == r.rewritePrefix {
			return path[cut-len(r.rewritePrefix):]
		}
		return r.rewritePrefix + rest
	}
	return path
}
