package ir

import (
	"fmt"
	"net/netip"
)

// An endpoint of VirtualNode.Endpoints is either "IP:PORT", a fixed address
// used whatever listener of the node is called, or a bare IP ("10.0.0.7",
// "fd00::7"), the address of a pod that serves every listener of the node
// at the listener's own port: App Mesh sends traffic to the port of the node
// listener the route targets (reference §3), so one pod address stands for
// as many addresses as the node has listeners.

// parseEndpoint splits an endpoint into its address and port; port is 0
// for a bare IP. An IPv6 address with a port is written "[IP]:PORT".
func parseEndpoint(ep string) (netip.Addr, int, error) {
	if a, err := netip.ParseAddr(ep); err == nil {
		return a, 0, nil
	}
	ap, err := netip.ParseAddrPort(ep)
	if err != nil || ap.Port() == 0 {
		return netip.Addr{}, 0, fmt.Errorf("endpoint %q is neither IP nor IP:PORT", ep)
	}
	return ap.Addr(), int(ap.Port()), nil
}

// CheckEndpoint says why ep is not a valid endpoint, or returns nil.
func CheckEndpoint(ep string) error {
	_, _, err := parseEndpoint(ep)
	return err
}

// EndpointHasPort reports whether an endpoint is "IP:PORT" rather than a
// bare IP.
func EndpointHasPort(ep string) bool {
	_, p, err := parseEndpoint(ep)
	return err == nil && p != 0
}

// EndpointsAt returns the node's endpoints as "IP:PORT" for a call to its
// listener at port: fixed "IP:PORT" endpoints as they are, bare IPs at port.
// Bare IPs are left out when port is 0 (no listener to take the port from),
// and so are endpoints that do not parse (Validate rejects them). The
// result has no duplicates; when every endpoint has a port it is
// n.Endpoints itself, so that callers comparing slices see no change.
func (n *VirtualNode) EndpointsAt(port int) []string {
	bare := false
	for _, ep := range n.Endpoints {
		if !EndpointHasPort(ep) {
			bare = true
			break
		}
	}
	if !bare {
		return n.Endpoints
	}
	out := make([]string, 0, len(n.Endpoints))
	seen := make(map[string]bool, len(n.Endpoints))
	for _, ep := range n.Endpoints {
		a, p, err := parseEndpoint(ep)
		switch {
		case err != nil:
			continue
		case p == 0 && (port <= 0 || port > 65535):
			continue
		case p == 0:
			ep = netip.AddrPortFrom(a, uint16(port)).String()
		}
		if !seen[ep] {
			seen[ep] = true
			out = append(out, ep)
		}
	}
	return out
}

// validateEndpoints checks that every fixed endpoint is an IP or IP:PORT.
func (c *Config) validateEndpoints(bad func(string, ...any)) {
	for name, n := range c.Nodes {
		for _, ep := range n.Endpoints {
			if _, _, err := parseEndpoint(ep); err != nil {
				bad("virtual node %s: %v", name, err)
			}
		}
	}
}
