package dataplane

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshgate/meshgate/internal/ir"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	// dnsTTL is how long a DNS answer for a node is used before it is
	// looked up again; dnsErrorTTL how long a failure is remembered.
	dnsTTL      = 5 * time.Second
	dnsErrorTTL = time.Second
)

// upstreams is the state that outlives configs: per node its DNS answers
// and clusters (one per listener: endpoints with their health, ejections,
// connection pool and transport; cluster.go), and the gateway listeners'
// connection pools.
type upstreams struct {
	resolve func(ctx context.Context, host string) ([]netip.Addr, error)
	metrics *metrics
	dialer  net.Dialer
	// dialConn is dialer.DialContext; a benchmark of the gateway's own
	// work replaces it with connections in memory.
	dialConn func(ctx context.Context, network, addr string) (net.Conn, error)
	log      *slog.Logger

	proxy            *httputil.ReverseProxy
	checkH1, checkH2 *http.Transport // health checks'

	listenerPools listenerPools

	mu     sync.Mutex // guards states; taken by Apply only
	states map[string]*nodeState
}

// upstreamNode is a node of one config with the state that survives it.
type upstreamNode struct {
	ir    *ir.VirtualNode
	state *nodeState
	// clusters are the node's listeners by port.
	clusters map[int]*cluster
	// addrs are the node's fixed endpoints as "IP:PORT" for each listener
	// port, built once per config: a bare IP endpoint is called at the
	// port of the listener in use, and requests must neither allocate nor
	// hand the cluster a new slice (cluster.endpoints keys on it).
	addrs map[int][]string
}

type nodeState struct {
	refresh sync.Mutex                           // one DNS lookup at a time
	dns     atomic.Pointer[map[dnsKey]*dnsEntry] // copy-on-write, read without locks

	mu       sync.Mutex // guards clusters
	clusters map[int]*cluster
}

type dnsKey struct {
	host string
	port int
	all  bool
}

type dnsEntry struct {
	addrs   []string // "IP:PORT", ready to dial
	err     error
	expires time.Time
}

func newUpstreams(resolve func(context.Context, string) ([]netip.Addr, error), m *metrics) *upstreams {
	u := &upstreams{
		resolve: resolve,
		metrics: m,
		dialer:  net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second},
		log:     slog.New(slog.DiscardHandler),
		states:  map[string]*nodeState{},
	}
	u.dialConn = u.dialer.DialContext
	u.checkH1, u.checkH2 = checkTransports()
	return u
}

// proxies builds the reverse proxy; errorHandler answers failed exchanges.
// Its transport sends each attempt through the transport of the request's
// cluster (retry.go).
func (u *upstreams) proxies(errorHandler func(http.ResponseWriter, *http.Request, error), log *slog.Logger) {
	u.log = log
	u.proxy = &httputil.ReverseProxy{
		Rewrite:        rewriteRequest,
		Transport:      retryTransport{},
		ModifyResponse: noteResponse,
		ErrorHandler:   errorHandler,
		BufferPool:     &bufferPool{},
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// transport is the HTTP transport of one cluster: HTTP/2 (with prior
// knowledge in cleartext) for http2 and grpc listeners, HTTP/1.1 otherwise;
// TLS when tlsCfg is set; idle is how long an unused connection is kept (0:
// until the upstream closes it). Timeouts are the call's (timeout.go), not
// the transport's.
func (u *upstreams) transport(h2 bool, idle time.Duration, tlsCfg *tls.Config) *http.Transport {
	var protos http.Protocols
	switch {
	case h2 && tlsCfg == nil:
		protos.SetUnencryptedHTTP2(true)
	case h2:
		protos.SetHTTP2(true)
	default:
		protos.SetHTTP1(true)
	}
	return &http.Transport{
		DialContext:           u.dial,
		TLSClientConfig:       tlsCfg,
		Protocols:             &protos,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       idle,
		ExpectContinueTimeout: time.Second,
		// The gateway forwards bodies as they are; it must not ask for
		// gzip and decode on the client's behalf.
		DisableCompression: true,
	}
}

// dial connects to an endpoint and counts the connection under the node of
// the request that caused it.
func (u *upstreams) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := u.dialConn(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	node := ""
	if e := exchangeOf(ctx); e != nil {
		node = e.node
	}
	g := u.metrics.conns.WithLabelValues(node)
	g.Inc()
	return &trackedConn{Conn: c, gauge: g}, nil
}

type trackedConn struct {
	net.Conn
	gauge prometheus.Gauge
	once  sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(c.gauge.Dec)
	return c.Conn.Close()
}

// untracked is the connection c tracks, or c when it tracks none.
func untracked(c net.Conn) net.Conn {
	if t, ok := c.(*trackedConn); ok {
		return t.Conn
	}
	return c
}

// nodes pairs each node of a config with its lasting state, creating state
// for new nodes and listeners, applying each listener's policy, and
// forgetting (stopping the health checks of) nodes and listeners that are gone.
func (u *upstreams) nodes(cfg map[string]*ir.VirtualNode, tlsFor map[string]map[int]*tls.Config) map[string]*upstreamNode {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make(map[string]*upstreamNode, len(cfg))
	for name, n := range cfg {
		st := u.states[name]
		if st == nil {
			st = &nodeState{clusters: map[int]*cluster{}}
			st.dns.Store(&map[dnsKey]*dnsEntry{})
			u.states[name] = st
		}
		un := &upstreamNode{ir: n, state: st, clusters: map[int]*cluster{}}
		if len(n.Endpoints) > 0 {
			un.addrs = make(map[int][]string, len(n.Listeners))
			for _, l := range n.Listeners {
				un.addrs[l.Port] = n.EndpointsAt(l.Port)
			}
		}
		st.mu.Lock()
		for _, l := range n.Listeners {
			cfg := &clusterConfig{h2: l.Protocol == "http2" || l.Protocol == "grpc", hostname: n.Hostname, tls: tlsFor[name][l.Port]}
			if p := n.Policies[l.Port]; p != nil {
				cfg.policy = *p
			}
			un.clusters[l.Port] = st.cluster(u, name, l.Port, cfg)
		}
		for port, c := range st.clusters {
			if un.clusters[port] == nil {
				c.close()
				delete(st.clusters, port)
			}
		}
		st.mu.Unlock()
		for port, c := range un.clusters {
			switch {
			case len(n.Endpoints) > 0:
				// Fixed endpoints are known now: start their health checks.
				c.endpoints(un.addrs[port])
			case n.Hostname != "" && c.config().policy.HealthCheck != nil:
				// Resolve now rather than at the first request, so that
				// endpoints are checked before traffic reaches them.
				go u.target(context.Background(), un, port, time.Now())
			}
		}
		out[name] = un
	}
	for name, st := range u.states {
		if cfg[name] == nil {
			st.close()
			delete(u.states, name)
		}
	}
	return out
}

// cluster returns the node's cluster of port with cfg applied, creating it
// when new; s.mu is held.
func (s *nodeState) cluster(u *upstreams, node string, port int, cfg *clusterConfig) *cluster {
	c := s.clusters[port]
	if c == nil {
		c = &cluster{up: u, node: node, port: port}
		s.clusters[port] = c
	}
	c.update(cfg)
	return c
}

func (s *nodeState) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for port, c := range s.clusters {
		c.close()
		delete(s.clusters, port)
	}
}

// target finds the cluster of the node's listener port (0: its first) and
// its current endpoints; reason is set when there is none.
func (u *upstreams) target(ctx context.Context, n *upstreamNode, port int, now time.Time) (c *cluster, eps []*endpoint, reason string) {
	node := n.ir
	port, proto := nodeListener(node, port)
	c = n.clusters[port]
	if c == nil {
		// A port that is no listener of the node (or a node without
		// listeners): served plainly over the listener's protocol.
		n.state.mu.Lock()
		c = n.state.clusters[port]
		if c == nil {
			c = n.state.cluster(u, node.Name, port, &clusterConfig{h2: proto == "http2" || proto == "grpc", hostname: node.Hostname})
		}
		n.state.mu.Unlock()
	}
	var addrs []string
	if len(node.Endpoints) > 0 {
		addrs = n.addrs[port]
		if addrs == nil {
			// A port that is no listener of the node: rare, built per request.
			addrs = node.EndpointsAt(port)
		}
		if len(addrs) == 0 {
			return nil, nil, "virtual node " + node.Name + " has no listener port for its endpoints"
		}
	} else {
		switch {
		case node.Hostname == "":
			return nil, nil, "virtual node " + node.Name + " has no endpoints"
		case port == 0:
			return nil, nil, "virtual node " + node.Name + " has no listener port"
		}
		var err error
		addrs, err = n.state.lookup(ctx, u.resolve, dnsKey{node.Hostname, port, node.ResponseType == "ENDPOINTS"}, now)
		if err != nil {
			return nil, nil, fmt.Sprintf("virtual node %s: %v", node.Name, err)
		}
	}
	return c, c.endpoints(addrs), ""
}

// nodeListener is the node port to use (the target's, else the node's first
// listener) and that listener's protocol.
func nodeListener(n *ir.VirtualNode, port int) (int, string) {
	for _, l := range n.Listeners {
		if port == 0 || l.Port == port {
			return l.Port, l.Protocol
		}
	}
	return port, "http"
}

// lookup returns the cached answer for k, resolving when it is missing or
// stale. While one request refreshes a stale answer, others keep using it.
func (s *nodeState) lookup(ctx context.Context, resolve func(context.Context, string) ([]netip.Addr, error), k dnsKey, now time.Time) ([]string, error) {
	old := (*s.dns.Load())[k]
	if old != nil && now.Before(old.expires) {
		return old.addrs, old.err
	}
	if old != nil {
		if !s.refresh.TryLock() {
			return old.addrs, old.err
		}
	} else {
		s.refresh.Lock()
		// Another request may have resolved it while this one waited.
		if e := (*s.dns.Load())[k]; e != nil {
			s.refresh.Unlock()
			return e.addrs, e.err
		}
	}
	defer s.refresh.Unlock()
	e := resolveEntry(ctx, resolve, k)
	if e.err != nil && old != nil && old.err == nil {
		// Keep serving the last good answer through a DNS hiccup, retrying soon.
		e = &dnsEntry{addrs: old.addrs, expires: e.expires}
	}
	cur := *s.dns.Load()
	next := make(map[dnsKey]*dnsEntry, len(cur)+1)
	for key, v := range cur {
		next[key] = v
	}
	next[k] = e
	s.dns.Store(&next)
	return e.addrs, e.err
}

func resolveEntry(ctx context.Context, resolve func(context.Context, string) ([]netip.Addr, error), k dnsKey) *dnsEntry {
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(k.host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		// One impatient client must not turn into a cached failure for all.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dialTimeout)
		ips, err = resolve(rctx, k.host)
		cancel()
		if err == nil && len(ips) == 0 {
			err = errors.New("no addresses")
		}
		if err != nil {
			return &dnsEntry{err: fmt.Errorf("resolving %s: %w", k.host, err), expires: time.Now().Add(dnsErrorTTL)}
		}
	}
	if !k.all {
		ips = ips[:1] // LOADBALANCER: one address, like Envoy's logical DNS
	}
	addrs := make([]string, len(ips))
	for i, ip := range ips {
		addrs[i] = netip.AddrPortFrom(ip.Unmap(), uint16(k.port)).String()
	}
	return &dnsEntry{addrs: addrs, expires: time.Now().Add(dnsTTL)}
}

func systemResolve(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// close stops every health check and releases idle connections.
func (u *upstreams) close() {
	u.mu.Lock()
	for name, st := range u.states {
		st.close()
		delete(u.states, name)
	}
	u.mu.Unlock()
	u.checkH1.CloseIdleConnections()
	u.checkH2.CloseIdleConnections()
}

// bufferPool recycles the proxy's body copy buffers.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32*1024)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }
