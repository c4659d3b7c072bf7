package xds

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/compile"
	"github.com/meshgate/meshgate/internal/source/file"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/xds"
)

// backend is a real gRPC server on loopback that names itself in the
// "backend" response header. UnaryCall with "x-slow" blocks until the call
// ends and records the deadline the call arrived with; with "x-flaky: KEY"
// it fails the first attempt for each KEY.
type backend struct {
	testgrpc.UnimplementedTestServiceServer
	name string
	addr string
	mu   sync.Mutex
	seen map[string]int
	// slowBudgets holds, per x-slow call, the time left until the
	// deadline the client sent (grpc-timeout); 0 when it sent none.
	slowBudgets []time.Duration
}

func (b *backend) EmptyCall(ctx context.Context, _ *testgrpc.Empty) (*testgrpc.Empty, error) {
	grpc.SetHeader(ctx, metadata.Pairs("backend", b.name))
	return &testgrpc.Empty{}, nil
}

func (b *backend) UnaryCall(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if len(md.Get("x-slow")) > 0 {
		var budget time.Duration
		if d, ok := ctx.Deadline(); ok {
			budget = time.Until(d)
		}
		b.mu.Lock()
		b.slowBudgets = append(b.slowBudgets, budget)
		b.mu.Unlock()
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if k := md.Get("x-flaky"); len(k) > 0 {
		b.mu.Lock()
		b.seen[k[0]]++
		n := b.seen[k[0]]
		b.mu.Unlock()
		if n == 1 {
			// No header before this error: gRPC retries only calls
			// that received no response headers.
			return nil, status.Error(codes.Unavailable, "first attempt fails")
		}
	}
	grpc.SetHeader(ctx, metadata.Pairs("backend", b.name))
	return &testgrpc.SimpleResponse{}, nil
}

func startBackend(t *testing.T, name string) *backend {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{name: name, addr: l.Addr().String(), seen: map[string]int{}}
	s := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(s, b)
	go s.Serve(l)
	t.Cleanup(s.Stop)
	return b
}

const meshManifests = `
apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata: {name: m}
spec:
  namespaceSelector: {}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: client, namespace: demo}
spec:
  listeners:
    - portMapping: {port: 8080, protocol: grpc}
  serviceDiscovery:
    dns: {hostname: client.demo.svc}
  backends:
    - virtualService:
        virtualServiceRef: {name: color}
EXTRABACKENDS
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: v1, namespace: demo}
spec:
  listeners:
    - portMapping: {port: 50051, protocol: grpc}
  serviceDiscovery:
    dns: {hostname: v1.demo.svc}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: v2, namespace: demo}
spec:
  listeners:
    - portMapping: {port: 50051, protocol: grpc}
  serviceDiscovery:
    dns: {hostname: v2.demo.svc}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: hidden, namespace: demo}
spec:
  provider:
    virtualNode:
      virtualNodeRef: {name: v1}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: color, namespace: demo}
spec:
  provider:
    virtualRouter:
      virtualRouterRef: {name: color-vr}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualRouter
metadata: {name: color-vr, namespace: demo}
spec:
  listeners:
    - portMapping: {port: 50051, protocol: grpc}
  routes:
    - name: canary-header
      priority: 1
      grpcRoute:
        match:
          serviceName: grpc.testing.TestService
          metadata:
            - name: x-canary
              match: {exact: "1"}
        action:
          weightedTargets:
            - virtualNodeRef: {name: v2}
              weight: 1
    - name: empty-call
      priority: 2
      grpcRoute:
        match: {serviceName: grpc.testing.TestService, methodName: EmptyCall}
        action:
          weightedTargets:
            - virtualNodeRef: {name: v2}
              weight: 1
    - name: slow
      priority: 3
      grpcRoute:
        match:
          serviceName: grpc.testing.TestService
          metadata:
            - name: x-slow
        action:
          weightedTargets:
            - virtualNodeRef: {name: v1}
              weight: 1
        timeout:
          perRequest: {unit: ms, value: 300}
    - name: flaky
      priority: 4
      grpcRoute:
        match:
          serviceName: grpc.testing.TestService
          metadata:
            - name: x-flaky
        action:
          weightedTargets:
            - virtualNodeRef: {name: v1}
              weight: 1
        retryPolicy:
          maxRetries: 2
          perRetryTimeout: {unit: s, value: 5}
          grpcRetryEvents: [unavailable]
    - name: split
      priority: 5
      grpcRoute:
        match: {serviceName: grpc.testing.TestService}
        action:
          weightedTargets:
            - virtualNodeRef: {name: v1}
              weight: V1WEIGHT
            - virtualNodeRef: {name: v2}
              weight: V2WEIGHT
`

// ackTracker records the versions a client ACKed, by type URL.
type ackTracker struct {
	mu    sync.Mutex
	acked map[string]map[string]bool // type URL -> versions
}

func (a *ackTracker) onAck(_, typeURL, version string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.acked[typeURL] == nil {
		a.acked[typeURL] = map[string]bool{}
	}
	a.acked[typeURL][version] = true
}

func (a *ackTracker) has(typeURL, version string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.acked[typeURL][version]
}

// mesh is meshManifests served by a Server on loopback, with backends v1
// and v2 behind the VirtualNodes of the same names.
type mesh struct {
	v1, v2  *backend
	srv     *Server
	addr    string // the ADS server
	acks    *ackTracker
	host    string // the VirtualService's hostname
	publish func(w1, w2 int) string
	// extraBackends is YAML added to the client's spec.backends by publish.
	extraBackends string
}

// nodeID is the client VirtualNode of meshManifests.
const nodeID = "mesh/m/virtualNode/client_demo"

func startMesh(t *testing.T) *mesh {
	t.Helper()
	m := &mesh{v1: startBackend(t, "v1"), v2: startBackend(t, "v2"), acks: &ackTracker{acked: map[string]map[string]bool{}}}
	dir := t.TempDir()
	m.srv = NewServer(Options{Registry: prometheus.NewRegistry(), OnAck: m.acks.onAck})
	ctx, cancel := context.WithCancel(context.Background())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m.addr = l.Addr().String()
	done := make(chan error, 1)
	go func() { done <- m.srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	// publish writes the manifests with the split's weights, loads,
	// compiles and publishes them, and returns the client's snapshot version.
	m.publish = func(w1, w2 int) string {
		t.Helper()
		text := strings.NewReplacer("V1WEIGHT", fmt.Sprint(w1), "V2WEIGHT", fmt.Sprint(w2), "EXTRABACKENDS\n", m.extraBackends).Replace(meshManifests)
		path := filepath.Join(dir, "mesh.yaml")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		set, err := file.Load([]string{path})
		if err != nil {
			t.Fatal(err)
		}
		set.Endpoints["v1.demo.svc"] = []string{m.v1.addr}
		set.Endpoints["v2.demo.svc"] = []string{m.v2.addr}
		cfg, problems := compile.Compile(set)
		if len(problems) > 0 {
			t.Fatalf("compile: %v", problems)
		}
		if err := m.srv.Publish(cfg); err != nil {
			t.Fatal(err)
		}
		m.host = cfg.Services["demo/color"].Hostname
		v := m.srv.Version(SnapshotKey(nodeID), true)
		if v == "" {
			t.Fatalf("no snapshot for %s", nodeID)
		}
		return v
	}
	return m
}

// waitAcked waits until the client ACKed version for all four resource types.
func (m *mesh) waitAcked(t *testing.T, version string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, typ := range []string{
		"type.googleapis.com/envoy.config.listener.v3.Listener",
		"type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
		"type.googleapis.com/envoy.config.cluster.v3.Cluster",
		"type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
	} {
		for !m.acks.has(typ, version) {
			if time.Now().After(deadline) {
				t.Fatalf("version %s of %s was not ACKed", version, typ)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func bootstrapJSON(addr string) string {
	return fmt.Sprintf(`{
		"xds_servers": [{"server_uri": %q, "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
		"node": {"id": %q, "locality": {}}
	}`, addr, nodeID)
}

// TestProxylessGRPC drives grpc-go's xDS client (a VirtualNode) through
// meshgate's ADS server to two real backends.
func TestProxylessGRPC(t *testing.T) {
	m := startMesh(t)
	v1 := m.v1
	srv := m.srv
	version := m.publish(1, 1)
	host := m.host
	bootstrap := bootstrapJSON(m.addr)
	resolver, err := xds.NewXDSResolverWithConfigForTesting([]byte(bootstrap))
	if err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient("xds:///"+host, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithResolvers(resolver))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	client := testgrpc.NewTestServiceClient(cc)

	call := func(method string, md ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if len(md) > 0 {
			ctx = metadata.AppendToOutgoingContext(ctx, md...)
		}
		var hdr metadata.MD
		var err error
		if method == "EmptyCall" {
			_, err = client.EmptyCall(ctx, &testgrpc.Empty{}, grpc.Header(&hdr), grpc.WaitForReady(true))
		} else {
			_, err = client.UnaryCall(ctx, &testgrpc.SimpleRequest{}, grpc.Header(&hdr), grpc.WaitForReady(true))
		}
		if b := hdr.Get("backend"); len(b) > 0 {
			return b[0], err
		}
		return "", err
	}
	// Path routing: EmptyCall has its own route to v2.
	for range 5 {
		if b, err := call("EmptyCall"); err != nil || b != "v2" {
			t.Fatalf("EmptyCall: backend %q, %v; want v2", b, err)
		}
	}
	m.waitAcked(t, version)

	// Header routing: x-canary: 1 goes to v2 whatever the split says.
	for range 5 {
		if b, err := call("UnaryCall", "x-canary", "1"); err != nil || b != "v2" {
			t.Fatalf("canary UnaryCall: backend %q, %v; want v2", b, err)
		}
	}

	// Weighted split 1:1: both backends serve.
	counts := map[string]int{}
	for range 200 {
		b, err := call("UnaryCall")
		if err != nil {
			t.Fatalf("UnaryCall: %v", err)
		}
		counts[b]++
	}
	if counts["v1"] < 20 || counts["v2"] < 20 {
		t.Fatalf("split 1:1 served %v; want both backends", counts)
	}

	// Timeout: the slow route's 300ms perRequest ends the call.
	if _, err := call("UnaryCall", "x-slow", "1"); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("slow call: %v; want DeadlineExceeded", err)
	}

	// Retry: the first attempt fails with UNAVAILABLE, the retry succeeds.
	if b, err := call("UnaryCall", "x-flaky", "k1"); err != nil || b != "v1" {
		t.Fatalf("flaky call: backend %q, %v; want v1 after a retry", b, err)
	}
	v1.mu.Lock()
	attempts := v1.seen["k1"]
	v1.mu.Unlock()
	if attempts != 2 {
		t.Fatalf("flaky call reached v1 %d times; want 2", attempts)
	}

	// The service dialled with its router port gets the same routes.
	ccPort, err := grpc.NewClient(fmt.Sprintf("xds:///%s:50051", host), grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithResolvers(resolver))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ccPort.Close() })
	{
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var hdr metadata.MD
		_, err := testgrpc.NewTestServiceClient(ccPort).EmptyCall(ctx, &testgrpc.Empty{}, grpc.Header(&hdr), grpc.WaitForReady(true))
		cancel()
		if b := hdr.Get("backend"); err != nil || len(b) != 1 || b[0] != "v2" {
			t.Fatalf("EmptyCall via %s:50051: backend %v, %v; want v2", host, b, err)
		}
	}

	// Live weight change: everything moves to v2 once the client has the
	// new snapshot.
	next := m.publish(0, 1)
	if next == version {
		t.Fatal("weight change did not change the snapshot version")
	}
	m.waitAcked(t, next)
	for range 50 {
		if b, err := call("UnaryCall"); err != nil || b != "v2" {
			t.Fatalf("after the weight change: backend %q, %v; want v2", b, err)
		}
	}
	if n := testutil.CollectAndCount(srv.nacks); n != 0 {
		t.Fatalf("NACKs were counted for %d resource types", n)
	}
}

// TestProxylessBackendsOnly checks that a proxyless client is served the
// backends its VirtualNode declares and nothing else. demo/hidden is a
// service of the mesh: while the client lists it, calls to it reach v1;
// once an edit drops it from the client's backends, the client's listener
// for it is gone and calls fail with UNAVAILABLE, while the backend that
// stays (demo/color) keeps serving.
func TestProxylessBackendsOnly(t *testing.T) {
	m := startMesh(t)
	m.extraBackends = "    - virtualService:\n        virtualServiceRef: {name: hidden}\n"
	version := m.publish(1, 0)
	resolver, err := xds.NewXDSResolverWithConfigForTesting([]byte(bootstrapJSON(m.addr)))
	if err != nil {
		t.Fatal(err)
	}
	dial := func(target string) testgrpc.TestServiceClient {
		cc, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithResolvers(resolver))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return testgrpc.NewTestServiceClient(cc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	call := func(c testgrpc.TestServiceClient, opts ...grpc.CallOption) (string, error) {
		var hdr metadata.MD
		_, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{}, append(opts, grpc.Header(&hdr))...)
		if b := hdr.Get("backend"); len(b) == 1 {
			return b[0], err
		}
		return "", err
	}
	const hiddenHost = "hidden.demo"
	hidden, color := dial("xds:///"+hiddenHost), dial("xds:///"+m.host)
	if b, err := call(hidden, grpc.WaitForReady(true)); err != nil || b != "v1" {
		t.Fatalf("call to %s while it is a backend: backend %q, %v; want v1", hiddenHost, b, err)
	}
	if b, err := call(color, grpc.WaitForReady(true)); err != nil || b != "v1" {
		t.Fatalf("call to %s: backend %q, %v; want v1", m.host, b, err)
	}
	m.waitAcked(t, version)

	m.extraBackends = ""
	next := m.publish(1, 0)
	if next == version {
		t.Fatal("dropping a backend did not change the client's snapshot")
	}
	m.waitAcked(t, next)
	// The ACK comes before the channel has its new state; calls made
	// meanwhile may still be served.
	for {
		_, err := call(hidden)
		if status.Code(err) == codes.Unavailable {
			break
		}
		if err != nil || ctx.Err() != nil {
			t.Fatalf("call to %s after it was dropped from the backends: %v; want UNAVAILABLE", hiddenHost, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if b, err := call(color); err != nil || b != "v1" {
		t.Fatalf("call to %s after the edit: backend %q, %v; want v1", m.host, b, err)
	}
}
