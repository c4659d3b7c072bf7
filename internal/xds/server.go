package xds

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/meshgate/meshgate/internal/ir"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Options configures a Server.
type Options struct {
	Logger   *slog.Logger
	Registry prometheus.Registerer
	// OnAck, when set, is called for every ACK: the node id, the resource
	// type URL and the version the client accepted.
	OnAck func(nodeID, typeURL, version string)
}

// Server is a state-of-the-world v3 ADS server whose snapshots are keyed
// by App Mesh object (SnapshotKey), whatever form of node id the client
// sends.
type Server struct {
	opts Options
	log  *slog.Logger
	// envoy serves gateway Envoys in ADS mode (responses ordered so that
	// clusters precede their endpoints); proxyless serves gRPC clients,
	// which ask for listeners by name, a subset that ADS mode never answers.
	envoy, proxyless cache.SnapshotCache
	mux              *cache.MuxCache

	mu sync.Mutex
	// sent is the version last sent on each stream, by type URL: a NACK
	// refers to it (the ADS server drops requests with a stale nonce).
	sent map[int64]map[string]string
	// versions are the published snapshot versions by key.
	versions map[string]string

	nacks     *prometheus.CounterVec
	acks      *prometheus.CounterVec
	published *prometheus.CounterVec
}

// SnapshotKey is the key of the snapshot a node id is served: for a
// gateway "<mesh>/virtualGateway/<namespace>/<name>", for a virtual node
// "virtualNode/<namespace>/<name>" (the IR does not record a node's mesh).
// A default awsName "<name>_<namespace>" maps to "namespace/name":
// Kubernetes names cannot contain "_", so the last one separates them.
func SnapshotKey(nodeID string) string {
	ref, err := ParseNodeID(nodeID)
	if err != nil {
		return "invalid/" + nodeID
	}
	name := ref.Name
	if !strings.Contains(name, "/") {
		if i := strings.LastIndex(name, "_"); i > 0 {
			name = name[i+1:] + "/" + name[:i]
		}
	}
	if ref.Kind == KindGateway {
		return ref.Mesh + "/" + Key(KindGateway, name)
	}
	return Key(KindNode, name)
}

// classify tells proxyless gRPC clients (user agent "gRPC Go", "gRPC
// Node.js", ...) from Envoys: a virtual node's Envoy sidecar and its
// proxyless clients get different snapshots under the same key.
func classify(n *core.Node) string {
	if strings.Contains(strings.ToLower(n.GetUserAgentName()), "grpc") {
		return proxylessCache
	}
	return envoyCache
}

const (
	envoyCache     = "envoy"
	proxylessCache = "proxyless"
)

func (s *Server) cacheFor(which string) cache.SnapshotCache {
	if which == proxylessCache {
		return s.proxyless
	}
	return s.envoy
}

type nodeHash struct{}

func (nodeHash) ID(n *core.Node) string { return SnapshotKey(n.GetId()) }

type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Debugf(f string, args ...any) { a.l.Debug(fmt.Sprintf(f, args...)) }
func (a slogAdapter) Infof(f string, args ...any)  { a.l.Debug(fmt.Sprintf(f, args...)) }
func (a slogAdapter) Warnf(f string, args ...any)  { a.l.Warn(fmt.Sprintf(f, args...)) }
func (a slogAdapter) Errorf(f string, args ...any) { a.l.Error(fmt.Sprintf(f, args...)) }

// NewServer returns a server with no snapshots: clients wait until Publish.
func NewServer(opts Options) *Server {
	s := &Server{opts: opts, log: opts.Logger, sent: map[int64]map[string]string{}, versions: map[string]string{}}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.envoy = cache.NewSnapshotCache(true, nodeHash{}, slogAdapter{s.log})
	s.proxyless = cache.NewSnapshotCache(false, nodeHash{}, slogAdapter{s.log})
	s.mux = &cache.MuxCache{
		Classify:      func(r *cache.Request) string { return classify(r.GetNode()) },
		ClassifyDelta: func(r *cache.DeltaRequest) string { return classify(r.GetNode()) },
		Caches:        map[string]cache.Cache{envoyCache: s.envoy, proxylessCache: s.proxyless},
	}
	s.nacks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_xds_nacks_total",
		Help: "xDS responses a client rejected, by resource type.",
	}, []string{"type"})
	s.acks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_xds_acks_total",
		Help: "xDS responses a client accepted, by resource type.",
	}, []string{"type"})
	s.published = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshgate_xds_snapshots_total",
		Help: "Snapshots built, by result (published, unchanged or rejected).",
	}, []string{"result"})
	if opts.Registry != nil {
		opts.Registry.MustRegister(s.nacks, s.acks, s.published)
	}
	return s
}

// Publish translates cfg for every gateway and virtual node and replaces
// their snapshots. A snapshot that fails validation or is inconsistent is
// not published (the client keeps the previous one); the errors are
// returned together.
func (s *Server) Publish(cfg *ir.Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var errs []error
	keep := map[string]bool{}
	set := func(which, key string, r *Resources, err error) {
		keep[which+" "+key] = true
		if err == nil {
			err = s.set(which, key, r)
		}
		if err != nil {
			s.published.WithLabelValues("rejected").Inc()
			errs = append(errs, fmt.Errorf("%s (%s): %w", key, which, err))
		}
	}
	for _, g := range cfg.Gateways {
		r, err := Gateway(cfg, g.Name)
		set(envoyCache, g.Mesh+"/"+Key(KindGateway, g.Name), r, err)
	}
	nodes := make([]string, 0, len(cfg.Nodes))
	for n := range cfg.Nodes {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	for _, n := range nodes {
		r, err := Client(cfg, n)
		set(proxylessCache, Key(KindNode, n), r, err)
		r, err = Sidecar(cfg, n)
		set(envoyCache, Key(KindNode, n), r, err)
	}
	s.mu.Lock()
	for k := range s.versions {
		if !keep[k] {
			delete(s.versions, k)
			which, key, _ := strings.Cut(k, " ")
			s.cacheFor(which).ClearSnapshot(key)
		}
	}
	s.mu.Unlock()
	return errors.Join(errs...)
}

func (s *Server) set(which, key string, r *Resources) error {
	if err := r.Consistent(); err != nil {
		return err
	}
	res := map[resource.Type][]types.Resource{}
	h := sha256.New()
	add := func(typ string, m proto.Message) {
		res[typ] = append(res[typ], m)
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			panic(err) // generated messages always marshal
		}
		fmt.Fprintf(h, "%s %d\n", typ, len(b))
		h.Write(b)
	}
	for _, m := range r.Listeners {
		add(resource.ListenerType, m)
	}
	for _, m := range r.Routes {
		add(resource.RouteType, m)
	}
	for _, m := range r.Clusters {
		add(resource.ClusterType, m)
	}
	for _, m := range r.Endpoints {
		add(resource.EndpointType, m)
	}
	version := hex.EncodeToString(h.Sum(nil))[:16]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.versions[which+" "+key] == version {
		s.published.WithLabelValues("unchanged").Inc()
		return nil
	}
	snap, err := cache.NewSnapshot(version, res)
	if err != nil {
		return err
	}
	// go-control-plane's check sees only HCMs in filter chains, so it
	// applies to Envoy snapshots; API listeners rely on Consistent above.
	if which == envoyCache {
		if err := snap.Consistent(); err != nil {
			return err
		}
	}
	if err := s.cacheFor(which).SetSnapshot(context.Background(), key, snap); err != nil {
		return err
	}
	s.versions[which+" "+key] = version
	s.published.WithLabelValues("published").Inc()
	for _, w := range r.Warnings {
		s.log.Warn("xds translation", "snapshot", key, "warning", w)
	}
	s.log.Info("xds snapshot published", "snapshot", key, "clients", which, "version", version)
	return nil
}

// Version returns the version of the snapshot published for key, for
// Envoys or, with proxyless set, for proxyless gRPC clients; "" if none.
func (s *Server) Version(key string, proxyless bool) string {
	which := envoyCache
	if proxyless {
		which = proxylessCache
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.versions[which+" "+key]
}

// Consistent checks that every route configuration a listener (filter
// chain or API listener) names exists and is named, and that every EDS
// cluster has its endpoints and every endpoints resource a cluster.
func (r *Resources) Consistent() error {
	names := map[string]bool{}
	for _, rc := range r.Routes {
		names[rc.Name] = false
	}
	for _, l := range r.Listeners {
		for _, rds := range listenerRDS(l) {
			if _, ok := names[rds]; !ok {
				return fmt.Errorf("listener %s names missing route configuration %s", l.Name, rds)
			}
			names[rds] = true
		}
	}
	for n, used := range names {
		if !used {
			return fmt.Errorf("route configuration %s is not named by any listener", n)
		}
	}
	eps := map[string]bool{}
	for _, e := range r.Endpoints {
		eps[e.ClusterName] = false
	}
	for _, c := range r.Clusters {
		if c.GetEdsClusterConfig() == nil {
			continue
		}
		if _, ok := eps[c.Name]; !ok {
			return fmt.Errorf("EDS cluster %s has no endpoints resource", c.Name)
		}
		eps[c.Name] = true
	}
	for n, used := range eps {
		if !used {
			return fmt.Errorf("endpoints %s belong to no EDS cluster", n)
		}
	}
	return nil
}

// Register adds the ADS service to g.
func (s *Server) Register(ctx context.Context, g *grpc.Server) {
	srv := serverv3.NewServer(ctx, s.mux, serverv3.CallbackFuncs{
		StreamRequestFunc:  s.onRequest,
		StreamResponseFunc: s.onResponse,
		StreamClosedFunc: func(id int64, _ *core.Node) {
			s.mu.Lock()
			delete(s.sent, id)
			s.mu.Unlock()
		},
	})
	discovery.RegisterAggregatedDiscoveryServiceServer(g, srv)
}

// Serve serves ADS on l until ctx is done.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	g := grpc.NewServer(
		// The App Mesh agent's bootstrap pings every 10s (reference §7);
		// grpc-go's default policy would answer that with GOAWAY.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 20 * time.Second}),
	)
	s.Register(ctx, g)
	go func() {
		<-ctx.Done()
		g.Stop()
	}()
	err := g.Serve(l)
	if errors.Is(err, grpc.ErrServerStopped) || ctx.Err() != nil {
		return nil
	}
	return err
}

func (s *Server) onResponse(_ context.Context, id int64, req *discovery.DiscoveryRequest, resp *discovery.DiscoveryResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sent[id] == nil {
		s.sent[id] = map[string]string{}
	}
	s.sent[id][resp.GetTypeUrl()] = resp.GetVersionInfo()
}

// onRequest logs and counts NACKs. The snapshot cache answers any request
// whose version differs from the snapshot's, and a NACK carries the last
// version the client accepted, so it would get the rejected resources
// again at once, in a loop; the request is made to carry the rejected
// version instead, so the client waits for the next snapshot.
func (s *Server) onRequest(id int64, req *discovery.DiscoveryRequest) error {
	node := req.GetNode().GetId()
	if _, err := ParseNodeID(node); err != nil && req.GetResponseNonce() == "" {
		s.log.Warn("xds client with an id that names no App Mesh object", "node", node, "err", err)
	}
	if req.GetResponseNonce() == "" {
		return nil
	}
	typ := req.GetTypeUrl()
	short := typ[strings.LastIndex(typ, ".")+1:]
	if d := req.GetErrorDetail(); d != nil {
		s.mu.Lock()
		rejected := s.sent[id][typ]
		s.mu.Unlock()
		s.nacks.WithLabelValues(short).Inc()
		s.log.Error("xds client rejected configuration", "node", node, "type", short, "version", rejected, "err", d.GetMessage())
		if rejected != "" {
			req.VersionInfo = rejected
		}
		return nil
	}
	s.acks.WithLabelValues(short).Inc()
	if s.opts.OnAck != nil {
		s.opts.OnAck(node, typ, req.GetVersionInfo())
	}
	return nil
}

func listenerRDS(l *listener.Listener) []string {
	var out []string
	get := func(a *anypb.Any) {
		m := &hcm.HttpConnectionManager{}
		if a == nil || !a.MessageIs(m) || a.UnmarshalTo(m) != nil {
			return
		}
		if rds := m.GetRds(); rds != nil {
			out = append(out, rds.GetRouteConfigName())
		}
	}
	get(l.GetApiListener().GetApiListener())
	for _, fc := range l.GetFilterChains() {
		for _, f := range fc.GetFilters() {
			get(f.GetTypedConfig())
		}
	}
	return out
}
