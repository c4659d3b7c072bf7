package kube

import (
	"net"
	"slices"
	"strings"

	"github.com/meshgate/meshgate/api/v1beta2"
	"github.com/meshgate/meshgate/internal/resource"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// discover returns the fixed endpoints of every VirtualNode whose
// serviceDiscovery.dns.hostname names a Service of the cluster
// ("<svc>.<ns>.svc.<domain>", "<svc>.<ns>.svc" or "<svc>.<ns>"): the ready
// addresses of that Service's EndpointSlices, as bare IPs. App Mesh's
// proxies send to the pod at the port of the node listener the route
// targets, whatever the Service maps (reference §3), so the port is not the
// Service's: each sink calls a bare IP at the port of the node listener in
// use (ir.VirtualNode.EndpointsAt). That way a node with several listeners,
// and nodes that share a hostname with different listener ports, each reach
// the pod at their own port. A hostname that names no Service of the
// cluster, or an ExternalName Service, is left to DNS.
func discover(set *resource.Set, svcs []corev1.Service, eps []discoveryv1.EndpointSlice, domain string) map[string][]string {
	services := map[string]*corev1.Service{}
	for i := range svcs {
		services[svcs[i].Namespace+"/"+svcs[i].Name] = &svcs[i]
	}
	byService := map[string][]*discoveryv1.EndpointSlice{}
	for i := range eps {
		s := &eps[i]
		if name := s.Labels[discoveryv1.LabelServiceName]; name != "" {
			byService[s.Namespace+"/"+name] = append(byService[s.Namespace+"/"+name], s)
		}
	}
	out := map[string][]string{}
	for _, k := range set.Keys(v1beta2.KindVirtualNode) {
		vn, ok := set.Objects[k].Value.(*v1beta2.VirtualNode)
		if !ok || vn.Spec.ServiceDiscovery == nil || vn.Spec.ServiceDiscovery.DNS == nil {
			continue
		}
		host := strings.ToLower(vn.Spec.ServiceDiscovery.DNS.Hostname)
		if _, done := out[host]; done {
			continue
		}
		svc := serviceOf(host, domain)
		if svc == "" {
			continue
		}
		if s := services[svc]; s == nil || s.Spec.Type == corev1.ServiceTypeExternalName {
			continue
		}
		out[host] = readyAddresses(byService[svc])
	}
	return out
}

// serviceOf returns "namespace/name" of the Service a hostname names, or "".
func serviceOf(host, domain string) string {
	host = strings.TrimSuffix(host, ".")
	for _, suffix := range []string{".svc." + strings.ToLower(domain), ".svc"} {
		if h, ok := strings.CutSuffix(host, suffix); ok {
			host = h
			break
		}
	}
	name, ns, ok := strings.Cut(host, ".")
	if !ok || name == "" || ns == "" || strings.Contains(ns, ".") {
		return ""
	}
	return ns + "/" + name
}

// readyAddresses returns every ready IP address of the slices,
// sorted and without duplicates (a Service's slices may repeat an address
// while it moves between them). An endpoint without a ready condition is
// ready, as the EndpointSlice API defines it.
func readyAddresses(slices_ []*discoveryv1.EndpointSlice) []string {
	addrs := []string{}
	for _, s := range slices_ {
		if s.AddressType != discoveryv1.AddressTypeIPv4 && s.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && !*e.Conditions.Ready {
				continue
			}
			for _, a := range e.Addresses {
				if ip := net.ParseIP(a); ip != nil {
					addrs = append(addrs, ip.String())
				}
			}
		}
	}
	slices.Sort(addrs)
	return slices.Compact(addrs)
}
