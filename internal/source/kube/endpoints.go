package kube

import (
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/meshgate/meshgate/api/v1beta2"
	"github.com/meshgate/meshgate/internal/resource"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// discover returns the fixed endpoints of every VirtualNode whose
// serviceDiscovery.dns.hostname names a Service of the cluster
// ("<svc>.<ns>.svc.<domain>", "<svc>.<ns>.svc" or "<svc>.<ns>"): the ready
// addresses of that Service's EndpointSlices, each with the node's listener
// port, because App Mesh's proxies send to the pod at the port the
// VirtualNode listens on, whatever the Service maps. A hostname that names no
// Service of the cluster, or an ExternalName Service, is left to DNS.
//
// resource.Set keeps one endpoint list per hostname, so a node with several
// listeners gets its first listener's port, and when two nodes share a
// hostname the first by namespace and name decides the port.
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
		if !ok || vn.Spec.ServiceDiscovery == nil || vn.Spec.ServiceDiscovery.DNS == nil || len(vn.Spec.Listeners) == 0 {
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
		port := strconv.FormatInt(int64(vn.Spec.Listeners[0].PortMapping.Port), 10)
		out[host] = readyAddresses(byService[svc], port)
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

// readyAddresses returns "IP:PORT" for every ready address of the slices,
// sorted and without duplicates (a Service's slices may repeat an address
// while it moves between them). An endpoint without a ready condition is
// ready, as the EndpointSlice API defines it.
func readyAddresses(slices_ []*discoveryv1.EndpointSlice, port string) []string {
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
					addrs = append(addrs, net.JoinHostPort(ip.String(), port))
				}
			}
		}
	}
	slices.Sort(addrs)
	return slices.Compact(addrs)
}
