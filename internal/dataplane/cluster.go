package dataplane

import (
	"crypto/tls"
	"net/http"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/meshgate/meshgate/internal/ir"
)

// A cluster is one VirtualNode listener as the gateway calls it: the
// endpoints behind it with their health and outlier state, its connection
// pool and its transport. Clusters live in the node's lasting state, keyed
// by listener port, and endpoints by "IP:PORT", so a reload that keeps a
// node, port and endpoint keeps what was learnt about it.

const (
	// nodeIdleDefault is how long an upstream connection may sit idle when
	// the node listener sets no timeout.idle (reference §4.7).
	nodeIdleDefault = 300 * time.Second
	// retiredTransportGrace is how long a transport replaced by a reload
	// keeps its connections for requests that were in flight.
	retiredTransportGrace = drainTimeout + 5*time.Second
)

type cluster struct {
	up   *upstreams
	node string
	port int

	// Set by each Apply: the listener's protocol and policy.
	cfg atomic.Pointer[clusterConfig]
	tr  atomic.Pointer[clusterTransport]

	pool limiter
	rr   atomic.Uint64

	mu     sync.Mutex // guards eps, closed and the checkers
	eps    map[string]*endpoint
	closed bool
	view   atomic.Pointer[endpointView]
}

// clusterConfig is what one config says about a cluster.
type clusterConfig struct {
	h2       bool // http2 and grpc listeners are called over HTTP/2
	hostname string
	policy   ir.NodeListenerPolicy // zero when the listener has none
	// tls originates TLS toward the listener's endpoints; nil calls them
	// in cleartext. A new pointer replaces the cluster's transport, so a
	// reload that keeps the policy should keep the pointer.
	tls *tls.Config
}

type clusterTransport struct {
	h2   bool
	idle time.Duration
	tls  *tls.Config
	tr   *http.Transport
	// h1 calls cleartext HTTP/1.1 endpoints, with tr for what it does not
	// take; nil for HTTP/2 and TLS clusters.
	h1 *h1Transport
}

func (t *clusterTransport) closeIdle() {
	if t.h1 != nil {
		t.h1.CloseIdleConnections() // and tr's; retires h1
		return
	}
	t.tr.CloseIdleConnections()
}

// endpointView is the endpoint states for one list of addresses, so that a
// request finds them without a lock or a map lookup while the list stays
// the same slice.
type endpointView struct {
	addrs []string
	eps   []*endpoint
}

type endpoint struct {
	addr string
	// healthy is the active health check's verdict; true without one.
	healthy atomic.Bool
	// ejectedUntil is when outlier ejection ends (unix nanoseconds); 0 when
	// the endpoint is not ejected.
	ejectedUntil atomic.Int64

	mu       sync.Mutex // guards the outlier counters and checkGen
	outlier  outlierState
	checkGen uint64 // bumped when a health check starts or stops

	checker *checker // guarded by cluster.mu
}

// available reports whether the endpoint may take traffic: it passes its
// health check and is not ejected.
func (e *endpoint) available(now int64) bool {
	return e.healthy.Load() && e.ejectedUntil.Load() <= now
}

func (c *cluster) config() *clusterConfig { return c.cfg.Load() }

// transport is the HTTP transport of the cluster's current protocol, and
// the URL scheme that makes it originate TLS or not.
func (c *cluster) transport() (http.RoundTripper, string) {
	t := c.tr.Load()
	switch {
	case t.tls != nil:
		return t.tr, "https"
	case t.h1 != nil:
		return t.h1, "http"
	}
	return t.tr, "http"
}

// update applies a config's listener: protocol, pool, transport, health
// checks. Endpoints are kept.
func (c *cluster) update(cfg *clusterConfig) {
	old := c.cfg.Swap(cfg)
	c.pool.setLimits(poolLimits(cfg.policy.Pool))

	idle := nodeIdleDefault
	if t := cfg.policy.Timeout; t != nil && t.IdleMillis != nil {
		idle = time.Duration(*t.IdleMillis) * time.Millisecond
	}
	if cur := c.tr.Load(); cur == nil || cur.h2 != cfg.h2 || cur.idle != idle || cur.tls != cfg.tls {
		ct := &clusterTransport{h2: cfg.h2, idle: idle, tls: cfg.tls, tr: c.up.transport(cfg.h2, idle, cfg.tls)}
		if !cfg.h2 && cfg.tls == nil {
			ct.h1 = newH1Transport(c.up.dial, idle, ct.tr)
		}
		c.tr.Store(ct)
		if cur != nil {
			cur.closeIdle()
			time.AfterFunc(retiredTransportGrace, cur.closeIdle)
		}
	}

	var oldHC *ir.HealthCheck
	if old != nil {
		oldHC = old.policy.HealthCheck
		if old.hostname != cfg.hostname || old.tls != cfg.tls {
			oldHC = nil // checks send the hostname and speak the TLS: restart them
		}
	}
	if !reflect.DeepEqual(oldHC, cfg.policy.HealthCheck) {
		c.mu.Lock()
		for _, e := range c.eps {
			c.restartCheck(e, false)
		}
		c.mu.Unlock()
	}
}

// endpoints returns the states of addrs, creating states for new addresses
// and forgetting those no longer listed.
func (c *cluster) endpoints(addrs []string) []*endpoint {
	if v := c.view.Load(); v != nil && sameSlice(v.addrs, addrs) {
		return v.eps
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v := c.view.Load(); v != nil && sameSlice(v.addrs, addrs) {
		return v.eps
	}
	if c.closed {
		// A request of an old config still in flight: serve it with
		// stateless endpoints rather than start checks nobody will stop.
		eps := make([]*endpoint, len(addrs))
		for i, a := range addrs {
			eps[i] = &endpoint{addr: a}
			eps[i].healthy.Store(true)
		}
		return eps
	}
	eps := make([]*endpoint, 0, len(addrs))
	seen := make(map[string]bool, len(addrs))
	for _, a := range addrs {
		if seen[a] {
			continue
		}
		seen[a] = true
		e := c.eps[a]
		if e == nil {
			e = &endpoint{addr: a}
			e.healthy.Store(true)
			if c.eps == nil {
				c.eps = map[string]*endpoint{}
			}
			c.eps[a] = e
			c.restartCheck(e, true)
		}
		eps = append(eps, e)
	}
	for a, e := range c.eps {
		if !seen[a] {
			c.stopCheck(e)
			delete(c.eps, a)
		}
	}
	c.view.Store(&endpointView{addrs: addrs, eps: eps})
	return eps
}

// sameSlice reports whether a and b are the same slice (not merely equal):
// a DNS answer or a config's endpoint list is one slice for as long as it holds.
func sameSlice(a, b []string) bool {
	return len(a) == len(b) && (len(a) == 0 || unsafe.SliceData(a) == unsafe.SliceData(b))
}

// pick chooses the endpoint of an attempt, in turn among those available
// and not yet tried by this request. When every available endpoint was
// tried, any available one will do; when none is available (all failing
// their health check or ejected), every endpoint is used as if healthy
// (Envoy's panic mode), still preferring one not tried.
func (c *cluster) pick(eps []*endpoint, tried []*endpoint) *endpoint {
	n := len(eps)
	if n == 1 {
		return eps[0]
	}
	start := int(c.rr.Add(1)-1) % n
	now := time.Now().UnixNano()
	var anyAvailable, untried *endpoint
	for i := range n {
		e := eps[(start+i)%n]
		fresh := !slices.Contains(tried, e)
		if e.available(now) {
			if fresh {
				return e
			}
			if anyAvailable == nil {
				anyAvailable = e
			}
		} else if fresh && untried == nil {
			untried = e
		}
	}
	switch {
	case anyAvailable != nil:
		return anyAvailable
	case untried != nil:
		return untried
	}
	return eps[start]
}

// close stops the cluster's health checks and releases its connections;
// the cluster's node or listener is gone.
func (c *cluster) close() {
	c.mu.Lock()
	c.closed = true
	for _, e := range c.eps {
		c.stopCheck(e)
	}
	c.eps = nil
	c.view.Store(nil)
	c.mu.Unlock()
	c.pool.setLimits(0, 0)
	if t := c.tr.Load(); t != nil {
		t.closeIdle()
	}
}
