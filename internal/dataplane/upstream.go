package dataplane

import (
	"context"
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

// upstreams is the state that outlives configs: one transport per upstream
// protocol with its connection pools, and per-node balancing and DNS state.
type upstreams struct {
	resolve func(ctx context.Context, host string) ([]netip.Addr, error)
	metrics *metrics
	dialer  net.Dialer

	h1, h2           *http.Transport
	h1Proxy, h2Proxy *httputil.ReverseProxy

	mu     sync.Mutex // guards states; taken by Apply only
	states map[string]*nodeState
}

// upstreamNode is a node of one config with the state that survives it.
type upstreamNode struct {
	ir    *ir.VirtualNode
	state *nodeState
}

type nodeState struct {
	rr      atomic.Uint64
	refresh sync.Mutex                           // one DNS lookup at a time
	dns     atomic.Pointer[map[dnsKey]*dnsEntry] // copy-on-write, read without locks
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
		states:  map[string]*nodeState{},
	}
	u.h1 = u.transport(false)
	u.h2 = u.transport(true)
	return u
}

// proxies builds the two reverse proxies; errorHandler answers failed exchanges.
func (u *upstreams) proxies(errorHandler func(http.ResponseWriter, *http.Request, error), log *slog.Logger) {
	pool := &bufferPool{}
	errLog := slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	for _, x := range []struct {
		t *http.Transport
		p **httputil.ReverseProxy
	}{{u.h1, &u.h1Proxy}, {u.h2, &u.h2Proxy}} {
		*x.p = &httputil.ReverseProxy{
			Rewrite:        rewriteRequest,
			Transport:      x.t,
			ModifyResponse: noteResponse,
			ErrorHandler:   errorHandler,
			BufferPool:     pool,
			ErrorLog:       errLog,
		}
	}
}

func (u *upstreams) transport(h2 bool) *http.Transport {
	var protos http.Protocols
	if h2 {
		protos.SetUnencryptedHTTP2(true) // http2 and grpc nodes: prior-knowledge h2c
	} else {
		protos.SetHTTP1(true)
	}
	return &http.Transport{
		DialContext:           u.dial,
		Protocols:             &protos,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		// App Mesh's default per-request timeout: an upstream that accepts
		// a request and never answers gets a 504, not a hung client.
		ResponseHeaderTimeout: responseTimeout,
		// The gateway forwards bodies as they are; it must not ask for
		// gzip and decode on the client's behalf.
		DisableCompression: true,
	}
}

// dial connects to an endpoint and counts the connection under the node of
// the request that caused it.
func (u *upstreams) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := u.dialer.DialContext(ctx, network, addr)
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

// nodes pairs each node of a config with its lasting state, creating state
// for new nodes and forgetting nodes that are gone.
func (u *upstreams) nodes(cfg map[string]*ir.VirtualNode) map[string]*upstreamNode {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make(map[string]*upstreamNode, len(cfg))
	for name, n := range cfg {
		st := u.states[name]
		if st == nil {
			st = &nodeState{}
			st.dns.Store(&map[dnsKey]*dnsEntry{})
			u.states[name] = st
		}
		out[name] = &upstreamNode{ir: n, state: st}
	}
	for name := range u.states {
		if cfg[name] == nil {
			delete(u.states, name)
		}
	}
	return out
}

// endpoint picks the address to send to and whether to speak HTTP/2; reason
// is set when there is none.
func (u *upstreams) endpoint(ctx context.Context, n *upstreamNode, port int, now time.Time) (addr string, h2 bool, reason string) {
	node := n.ir
	port, proto := nodeListener(node, port)
	h2 = proto == "http2" || proto == "grpc"
	addrs := node.Endpoints
	if len(addrs) == 0 {
		switch {
		case node.Hostname == "":
			return "", false, "virtual node " + node.Name + " has no endpoints"
		case port == 0:
			return "", false, "virtual node " + node.Name + " has no listener port"
		}
		var err error
		addrs, err = n.state.lookup(ctx, u.resolve, dnsKey{node.Hostname, port, node.ResponseType == "ENDPOINTS"}, now)
		if err != nil {
			return "", false, fmt.Sprintf("virtual node %s: %v", node.Name, err)
		}
	}
	i := n.state.rr.Add(1) - 1
	return addrs[i%uint64(len(addrs))], h2, ""
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

func (u *upstreams) close() {
	u.h1.CloseIdleConnections()
	u.h2.CloseIdleConnections()
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
