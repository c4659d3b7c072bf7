// Package dataplane owns serving a compiled gateway: its listeners, routing
// each request through a router.Table that Apply swaps atomically, proxying
// to upstream endpoints with retries, timeouts, health checks, outlier
// detection and connection pools, access logs and request metrics.
//
// Requests never lock on the config path: each loads one atomic pointer to an
// immutable snapshot and keeps it until it ends, so a reload never disturbs a
// request in flight. Upstream state (DNS answers, round-robin positions,
// endpoint health and ejections, connection pools, pooled connections) lives
// outside the snapshot, keyed by node, listener port and endpoint, so a
// reload keeps it.
package dataplane

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshgate/meshgate/internal/ir"
	"github.com/meshgate/meshgate/internal/router"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	// dialTimeout bounds connecting to an upstream, so a dead endpoint
	// gives a 502 instead of a hung request.
	dialTimeout = 5 * time.Second
	// drainTimeout bounds how long a listener that a reload removed waits
	// for its in-flight requests before its connections are closed.
	drainTimeout = 30 * time.Second
)

// responseTimeout is App Mesh's default request timeout (15 s), for requests
// whose route and node listener set none (timeout.go). A variable so tests
// can shorten it.
var responseTimeout = 15 * time.Second

// Options configure a Plane.
type Options struct {
	// ListenAddress is the IP every listener binds; empty means all addresses.
	ListenAddress string
	// Listen opens the listener of a gateway port. Nil listens on TCP
	// ListenAddress:port; tests pass a func that listens on port 0.
	Listen func(port int) (net.Listener, error)
	// Logger receives operational messages; nil discards them.
	Logger *slog.Logger
	// Registry receives the request and upstream metrics; nil skips registration.
	Registry prometheus.Registerer
	// Resolver looks up a virtual node's DNS hostname; nil uses the system resolver.
	Resolver func(ctx context.Context, host string) ([]netip.Addr, error)
	// SDSDir is where SDS secrets are read as files (see package certs).
	SDSDir string
}

// Plane serves one gateway of the configs it is given.
type Plane struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics
	up      *upstreams
	logs    *logFiles
	certs   *certStore
	upTLSMu sync.Mutex             // guards upTLS
	upTLS   map[string]*tls.Config // upstream TLS configs of the active config (tls.go)

	cur   atomic.Pointer[snapshot]
	ready atomic.Bool

	mu      sync.Mutex // serialises Apply and Shutdown; guards servers, closed
	servers map[int]*server
	closed  bool
	drains  sync.WaitGroup
}

// snapshot is everything a request needs from one applied config.
type snapshot struct {
	gateway string
	table   *router.Table
	nodes   map[string]*upstreamNode
	log     *accessLog // nil when the gateway has no access log
	// ports holds each listener's protocol and TLS termination (listener.go).
	ports map[int]*portConfig
	// boundPorts maps the TCP port a listener is bound to to its gateway
	// port, for Handler serving connections the Plane did not accept itself.
	boundPorts map[int]int
	onlyPort   int // the port when the gateway has exactly one listener
}

// New returns a Plane that serves nothing until Apply succeeds.
func New(opts Options) (*Plane, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(opts.Registry)
	if err != nil {
		return nil, err
	}
	resolve := opts.Resolver
	if resolve == nil {
		resolve = systemResolve
	}
	p := &Plane{
		opts:    opts,
		log:     log,
		metrics: m,
		logs:    newLogFiles(log),
		certs:   newCertStore(opts.SDSDir, log),
		servers: map[int]*server{},
	}
	p.up = newUpstreams(resolve, m)
	p.up.proxies(p.proxyError, log)
	return p, nil
}

// Apply makes cfg's gateway the one served. It validates cfg, builds the
// routing table, opens listeners for new ports, swaps the snapshot and then
// drains and closes listeners for ports that went away. On any error the
// running config keeps serving and nothing changes.
func (p *Plane) Apply(cfg *ir.Config, gateway string) error {
	if cfg == nil {
		return errors.New("dataplane: no config")
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("dataplane: config not applied: %w", err)
	}
	table, err := router.New(cfg, gateway)
	if err != nil {
		return fmt.Errorf("dataplane: config not applied: %w", err)
	}
	gw := cfg.Gateway(gateway)
	certsUsed := newCertUse()
	ports, err := p.portConfigs(gw, certsUsed)
	if err != nil {
		return fmt.Errorf("dataplane: config not applied: %w", err)
	}
	upstreamTLS, err := p.upstreamTLSConfigs(gw.ClientTLS, cfg.Nodes, certsUsed)
	if err != nil {
		return fmt.Errorf("dataplane: config not applied: %w", err)
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("dataplane: shut down")
	}
	alog, err := p.logs.accessLog(gw.AccessLog)
	if err != nil {
		return fmt.Errorf("dataplane: config not applied: gateway %s: %w", gateway, err)
	}

	want := map[int]bool{}
	for _, l := range gw.Listeners {
		want[l.Port] = true
	}
	var opened []*server
	for _, l := range gw.Listeners {
		if p.servers[l.Port] != nil || containsPort(opened, l.Port) {
			continue
		}
		ln, err := p.listen(l.Port)
		if err != nil {
			for _, s := range opened {
				s.ln.Close()
			}
			return fmt.Errorf("dataplane: config not applied: listener port %d: %w", l.Port, err)
		}
		opened = append(opened, p.newServer(l.Port, ln))
	}

	snap := &snapshot{
		gateway:    gw.Name,
		table:      table,
		ports:      ports,
		nodes:      p.up.nodes(cfg.Nodes, upstreamTLS),
		log:        alog,
		boundPorts: map[int]int{},
	}
	if len(gw.Listeners) == 1 {
		snap.onlyPort = gw.Listeners[0].Port
	}
	for port, s := range p.servers {
		if want[port] {
			snap.boundPorts[tcpPort(s.ln.Addr())] = port
		}
	}
	for _, s := range opened {
		snap.boundPorts[tcpPort(s.ln.Addr())] = s.port
	}
	p.up.listenerPools.update(gw)
	p.cur.Store(snap)

	for _, s := range opened {
		p.servers[s.port] = s
		go s.serve()
	}
	for port, s := range p.servers {
		if !want[port] {
			delete(p.servers, port)
			p.drain(s)
		}
	}
	p.certs.keep(certsUsed)
	p.ready.Store(true)
	p.log.Info("config applied", "gateway", gw.Name, "ports", sortedPorts(p.servers))
	return nil
}

func tcpPort(a net.Addr) int {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.Port
	}
	return -1
}

func containsPort(ss []*server, port int) bool {
	for _, s := range ss {
		if s.port == port {
			return true
		}
	}
	return false
}

func sortedPorts(m map[int]*server) []int {
	ports := make([]int, 0, len(m))
	for p := range m {
		ports = append(ports, p)
	}
	sort.Ints(ports)
	return ports
}

func (p *Plane) listen(port int) (net.Listener, error) {
	if p.opts.Listen != nil {
		return p.opts.Listen(port)
	}
	return net.Listen("tcp", net.JoinHostPort(p.opts.ListenAddress, strconv.Itoa(port)))
}

// drain stops a listener from accepting and lets its requests finish in the background.
func (p *Plane) drain(s *server) {
	p.drains.Add(1)
	go func() {
		defer p.drains.Done()
		ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
		defer cancel()
		s.shutdown(ctx)
		p.log.Info("listener closed", "port", s.port)
	}()
}

// Ready reports whether a config has been applied and its listeners are up.
func (p *Plane) Ready() bool { return p.ready.Load() }

// Addrs returns each listening gateway port's bound address.
func (p *Plane) Addrs() map[int]net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[int]net.Addr, len(p.servers))
	for port, s := range p.servers {
		out[port] = s.ln.Addr()
	}
	return out
}

// Handler routes and proxies requests as the listeners do. The gateway port
// is the one whose listener accepted the connection; failing that, the only
// listener port of the gateway.
func (p *Plane) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		port := 0
		if snap := p.cur.Load(); snap != nil {
			port = snap.onlyPort
			if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
				if pt, ok := snap.boundPorts[tcpPort(a)]; ok {
					port = pt
				}
			}
		}
		p.limitUpgrade(port, r)
		p.serve(port, w, r)
	})
}

// Shutdown stops accepting, waits for in-flight requests to finish (or ctx
// to end, when it closes what is left) and releases upstream connections and
// access log files. The Plane cannot be used again.
func (p *Plane) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.ready.Store(false)
	servers := p.servers
	p.servers = nil
	p.mu.Unlock()

	errs := make(chan error, len(servers))
	for _, s := range servers {
		go func() {
			errs <- s.shutdown(ctx)
		}()
	}
	var err error
	for range servers {
		err = errors.Join(err, <-errs)
	}
	drained := make(chan struct{})
	go func() { p.drains.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-ctx.Done():
		err = errors.Join(err, ctx.Err())
	}
	p.up.close()
	p.logs.close()
	return err
}
