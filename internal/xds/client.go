package xds

import (
	"fmt"
	"strconv"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/meshgate/meshgate/internal/ir"
)

// Client translates what the proxyless gRPC client that is VirtualNode
// "namespace/name" is served: one API listener per backend of the node
// (spec.backends, as its Envoy would get), named by the service's hostname
// (its awsName) as the client dials it ("xds:///<hostname>"), plus
// "<hostname>:<port>" for each port of the service's provider.
//
// Routes carry the router's matches, weighted targets, retries (gRPC
// events) and the per-request timeout as max_stream_duration, which is
// what grpc-go reads. A router route without targets of weight > 0 is
// left out, so matching calls fail with UNAVAILABLE instead of going on to
// a later route.
func Client(cfg *ir.Config, node string) (*Resources, error) {
	if cfg.Nodes[node] == nil {
		return nil, fmt.Errorf("virtual node %s not in config", node)
	}
	t := newTranslator(cfg, true)
	n := cfg.Nodes[node]
	for _, b := range n.Backends {
		if p := n.BackendTLS(&b); p != nil && p.Enforce {
			t.warn("virtual node %s: its client TLS policy toward %s is not applied to proxyless gRPC clients, which call in plaintext", node, b.Service)
		}
	}
	r := &Resources{}
	for _, b := range n.Backends {
		svc := cfg.Services[b.Service]
		if svc == nil || svc.Hostname == "" {
			t.warn("virtual node %s: backend %s is not an active virtual service; it gets no API listener", node, b.Service)
			continue
		}
		host := svc.Hostname
		// Port 0 is the name without a port: the provider's only port, or
		// routes for any port.
		ports := []int{0}
		switch {
		case svc.Router != "" && cfg.Routers[svc.Router] != nil:
			for _, l := range cfg.Routers[svc.Router].Listeners {
				if l.Protocol != "tcp" {
					ports = append(ports, l.Port)
				}
			}
		case svc.Node != "" && cfg.Nodes[svc.Node] != nil:
			for _, l := range cfg.Nodes[svc.Node].Listeners {
				if l.Protocol != "tcp" {
					ports = append(ports, l.Port)
				}
			}
		}
		for _, port := range ports {
			dial := host
			if port != 0 {
				dial = host + ":" + strconv.Itoa(port)
			}
			rc := &route.RouteConfiguration{Name: "client/" + dial, VirtualHosts: []*route.VirtualHost{{
				Name: dial, Domains: []string{dial}, Routes: t.clientRoutes(svc, port),
			}}}
			r.Routes = append(r.Routes, rc)
			r.Listeners = append(r.Listeners, apiListener(dial, rc.Name))
		}
	}
	return t.finish(r)
}

func (t *translator) clientRoutes(svc *ir.VirtualService, port int) []*route.Route {
	everything := routeMatch(pathSpec{})
	if svc.Node != "" {
		tg := []target{{cluster: t.nodeCluster(svc.Node, port, 0), weight: 1}}
		return []*route.Route{t.forward(svc.Name, everything, tg, ir.DefaultRetryPolicy(), nil, "", nil)}
	}
	vr := t.cfg.Routers[svc.Router]
	if vr == nil {
		t.warn("virtual service %s: virtual router %s not found", svc.Name, svc.Router)
		return nil
	}
	if port == 0 && len(vr.Listeners) == 1 {
		port = vr.Listeners[0].Port
	}
	var out []*route.Route
	for _, rt := range vr.Routes {
		// gRPC clients make HTTP/2 calls; TCP routes are not theirs.
		if rt == nil || rt.Kind == "tcp" || (rt.Match.Port != 0 && port != 0 && rt.Match.Port != port) {
			continue
		}
		spec, err := conjoin(conds(&rt.Match))
		if err != nil {
			t.warn("virtual router %s route %s: %v; later routes are not served to proxyless clients", vr.Name, rt.Name, err)
			break
		}
		if spec.never {
			continue
		}
		tg := t.routerTargets(rt, port)
		if len(tg) == 0 {
			continue
		}
		out = append(out, t.forward(routeName(svc.Name, rt.Name), routeMatch(spec, &rt.Match), tg, rt.Retry, rt.Timeout, "", nil))
	}
	return out
}

func apiListener(name, rds string) *listener.Listener {
	m := &hcm.HttpConnectionManager{
		StatPrefix: name,
		RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{
			ConfigSource: adsSource(), RouteConfigName: rds,
		}},
		HttpFilters: []*hcm.HttpFilter{{
			Name:       "envoy.filters.http.router",
			ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: typed(&routerfilter.Router{})},
		}},
	}
	return &listener.Listener{Name: name, ApiListener: &listener.ApiListener{ApiListener: typed(m)}}
}
