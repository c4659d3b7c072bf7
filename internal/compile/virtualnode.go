package compile

import (
	"fmt"
	"slices"
	"strings"

	"github.com/meshgate/meshgate/api/v1beta2"
	"github.com/meshgate/meshgate/internal/ir"
)

// vnInfo is what validation compiled of a VirtualNode.
type vnInfo struct {
	node     *ir.VirtualNode
	cloudMap bool
	backends []ref
	// backendTLS is the clientPolicy.tls of each of backends, nil when unset.
	backendTLS []*ir.ClientTLS
}

// validateNodes checks every VirtualNode on its own (reference §1.6, §4,
// §6.3) and compiles its listeners and service discovery.
func (c *compiler) validateNodes() {
	each(c, v1beta2.KindVirtualNode, func(st *state, vn *v1beta2.VirtualNode) {
		spec := &vn.Spec
		c.awsNameLength(st, spec.AWSName)
		c.selector(st, "spec.podSelector", spec.PodSelector)
		pms := make([]v1beta2.PortMapping, len(spec.Listeners))
		for i, l := range spec.Listeners {
			pms[i] = l.PortMapping
		}
		info := &vnInfo{node: &ir.VirtualNode{Name: st.name(), Listeners: c.listenerPorts(st, "spec.listeners", pms, routerProtocols...)}}
		if info.node.Listeners == nil {
			info.node.Listeners = []ir.PortProto{}
		}
		st.data = info
		for i, l := range spec.Listeners {
			c.nodeListener(st, fmt.Sprintf("spec.listeners[%d]", i), &l)
			nodeListenerResilience(info.node, &l)
			nodeListenerTLS(info.node, &l)
		}
		if spec.Listeners != nil && spec.ServiceDiscovery == nil {
			c.invalid(st, "spec.serviceDiscovery", fmt.Sprintf("ServiceDiscovery missing for VirtualNode-%s. ServiceDiscovery must be specified when a listener is specified.", vn.Name))
		}
		if sd := spec.ServiceDiscovery; sd != nil {
			c.serviceDiscovery(st, sd, info)
		}
		c.backends(st, vn, info)
		if len(spec.BackendGroups) > 0 {
			st.note("spec.backendGroups is ignored: BackendGroup is an experimental App Mesh kind that is not supported")
		}
		if spec.BackendDefaults != nil {
			c.clientPolicy(st, "spec.backendDefaults.clientPolicy", spec.BackendDefaults.ClientPolicy)
			info.node.ClientTLS = clientTLSIR(spec.BackendDefaults.ClientPolicy)
		}
		c.logging(st, "spec.logging", spec.Logging)
	})
}

func (c *compiler) nodeListener(st *state, f string, l *v1beta2.Listener) {
	proto := string(l.PortMapping.Protocol)
	c.healthCheck(st, f+".healthCheck", l.HealthCheck, l.PortMapping.Port, routerProtocols...)
	if p := l.ConnectionPool; p != nil {
		c.connectionPool(st, f+".connectionPool", proto, "Only one type of Virtual Node Connection Pool is allowed", p.TCP, p.HTTP, p.HTTP2, p.GRPC, routerProtocols...)
	}
	c.listenerTLS(st, f+".tls", l.TLS)
	if od := l.OutlierDetection; od != nil {
		of := f + ".outlierDetection"
		c.atLeast(st, of+".maxServerErrors", od.MaxServerErrors, 1)
		c.duration(st, of+".interval", &od.Interval)
		c.duration(st, of+".baseEjectionDuration", &od.BaseEjectionDuration)
		c.intRange(st, of+".maxEjectionPercent", od.MaxEjectionPercent, 0, 100)
	}
	if t := l.Timeout; t != nil {
		tf := f + ".timeout"
		switch kind := c.one(st, tf, "tcp", t.TCP, "http", t.HTTP, "http2", t.HTTP2, "grpc", t.GRPC); kind {
		case "":
		case "tcp":
			c.duration(st, tf+".tcp.idle", t.TCP.Idle)
		case "grpc":
			c.duration(st, tf+".grpc.perRequest", t.GRPC.PerRequest)
			c.duration(st, tf+".grpc.idle", t.GRPC.Idle)
		default:
			h := t.HTTP
			if kind == "http2" {
				h = t.HTTP2
			}
			c.duration(st, tf+"."+kind+".perRequest", h.PerRequest)
			c.duration(st, tf+"."+kind+".idle", h.Idle)
		}
		if kind := timeoutKind(t); kind != "" && kind != proto {
			c.invalid(st, tf+"."+kind, fmt.Sprintf("timeout.%s does not fit the listener's protocol %s; give timeout.%s", kind, proto, proto))
		}
	}
}

func timeoutKind(t *v1beta2.ListenerTimeout) string {
	if names := present("tcp", t.TCP, "http", t.HTTP, "http2", t.HTTP2, "grpc", t.GRPC); len(names) == 1 {
		return names[0]
	}
	return ""
}

func (c *compiler) serviceDiscovery(st *state, sd *v1beta2.ServiceDiscovery, info *vnInfo) {
	const f = "spec.serviceDiscovery"
	switch c.one(st, f, "dns", sd.DNS, "awsCloudMap", sd.AWSCloudMap) {
	case "dns":
		if c.length(st, f+".dns.hostname", sd.DNS.Hostname, 1, 253) {
			info.node.Hostname = sd.DNS.Hostname
		}
		info.node.ResponseType = "LOADBALANCER"
		if rt := sd.DNS.ResponseType; rt != nil && c.enum(st, f+".dns.responseType", *rt, "LOADBALANCER", "ENDPOINTS") {
			info.node.ResponseType = *rt
		}
	case "awsCloudMap":
		cm := sd.AWSCloudMap
		c.length(st, f+".awsCloudMap.namespaceName", cm.NamespaceName, 1, 1024)
		c.length(st, f+".awsCloudMap.serviceName", cm.ServiceName, 1, 1024)
		for i, a := range cm.Attributes {
			af := fmt.Sprintf("%s.awsCloudMap.attributes[%d]", f, i)
			c.length(st, af+".key", a.Key, 1, 255)
			c.length(st, af+".value", a.Value, 1, 1024)
		}
		info.cloudMap = true
	}
}

// backends checks the node's backends: each a VirtualService by reference or
// ARN, with its client policy, and no backend twice.
func (c *compiler) backends(st *state, vn *v1beta2.VirtualNode, info *vnInfo) {
	seen := map[string]bool{}
	for i, b := range vn.Spec.Backends {
		f := fmt.Sprintf("spec.backends[%d].virtualService", i)
		vs := b.VirtualService
		var ns *string
		name := ""
		if vs.VirtualServiceRef != nil {
			ns, name = vs.VirtualServiceRef.Namespace, vs.VirtualServiceRef.Name
		}
		c.clientPolicy(st, f+".clientPolicy", vs.ClientPolicy)
		r, ok := c.parseRef(st, v1beta2.KindVirtualService, f, f+".virtualServiceRef", vs.VirtualServiceRef != nil, ns, name, f+".virtualServiceARN", vs.VirtualServiceARN)
		if !ok {
			continue
		}
		id, kind := r.String(), "VirtualServiceReferences"
		if r.arn != nil {
			kind = "VirtualServiceReferenceARNs"
		}
		if seen[kind+id] {
			c.invalid(st, f, fmt.Sprintf("VirtualNode-%s has duplicate %s %s", vn.Name, kind, id))
			continue
		}
		seen[kind+id] = true
		info.backends = append(info.backends, r)
		info.backendTLS = append(info.backendTLS, clientTLSIR(vs.ClientPolicy))
	}
}

// buildNodes puts every valid VirtualNode in the IR with its endpoints.
// Backends only have to exist in the node's mesh (as in App Mesh, they need
// not be active); a missing one is a problem but the node still serves.
func (c *compiler) buildNodes() {
	each(c, v1beta2.KindVirtualNode, func(st *state, _ *v1beta2.VirtualNode) {
		if !st.ok() {
			return
		}
		info := st.data.(*vnInfo)
		node := info.node
		if h := node.Hostname; h != "" {
			eps, ok := c.set.Endpoints[strings.ToLower(h)]
			if !ok {
				eps = c.set.Endpoints[h]
			}
			if len(eps) > 0 {
				node.Endpoints = slices.Clone(eps)
				slices.Sort(node.Endpoints)
			}
		}
		if info.cloudMap {
			st.note("AWS Cloud Map discovery is not available outside AWS; give endpoints with --resolve")
		}
		for i, b := range info.backends {
			t, res := c.resolve(st, b)
			if res == refOK || res == refInactive {
				// Services are built after nodes, so every one that exists
				// resolves as inactive here; one that is rejected later is
				// left out by the sinks, which look it up.
				node.Backends = append(node.Backends, ir.Backend{Service: t.name(), ClientTLS: info.backendTLS[i]})
				continue
			}
			_, msg := c.refProblem(st, b, t, res)
			c.problem(st, b.field, msg)
		}
		if m := c.meshState(st.mesh); m != nil {
			if mesh, ok := m.obj.Value.(*v1beta2.Mesh); ok && mesh.Spec.EgressFilter != nil {
				node.EgressAllowAll = mesh.Spec.EgressFilter.Type == "ALLOW_ALL"
			}
		}
		slices.SortStableFunc(node.Backends, func(a, b ir.Backend) int { return strings.Compare(a.Service, b.Service) })
		node.Backends = slices.CompactFunc(node.Backends, func(a, b ir.Backend) bool { return a.Service == b.Service })
		st.served = true
		c.cfg.Nodes[node.Name] = node
	})
}
