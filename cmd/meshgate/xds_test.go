//go:build !standalone

package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/meshgate/meshgate/internal/runner"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	xdsgrpc "google.golang.org/grpc/xds"
)

const xdsGatewayManifest = `
apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata: {name: m}
spec:
  namespaceSelector: {}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualGateway
metadata: {name: gw, namespace: demo}
spec:
  listeners:
    - portMapping: {port: PORT, protocol: http}
`

// TestXDSCommandUnixSocket runs the xds command's server on a Unix socket
// (the APPMESH_XDS_ENDPOINT=unix:// form) and checks that a gateway Envoy's
// ADS stream gets the listener, then the edited one after the file changes.
func TestXDSCommandUnixSocket(t *testing.T) {
	dir := t.TempDir()
	manifest := filepath.Join(dir, "mesh.yaml")
	write := func(port string) {
		if err := os.WriteFile(manifest, []byte(strings.ReplaceAll(xdsGatewayManifest, "PORT", port)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("8080")
	in := inputFlags{files: []string{manifest}}
	set, eps, err := in.load()
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "xds.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- serveXDS(ctx, xdsOptions{set: set, endpoints: eps, watch: in.files, xdsAddr: "unix://" + sock, adminAddr: "127.0.0.1:0",
			started: func(string, string) { close(started) }})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serveXDS: %v", err)
		}
	})
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("serveXDS: %v", err)
	}
	cc, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(cc).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	recvListener := func() (*discovery.DiscoveryResponse, string) {
		t.Helper()
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Resources) != 1 {
			t.Fatalf("%d listeners, want 1", len(resp.Resources))
		}
		l := &listener.Listener{}
		if err := resp.Resources[0].UnmarshalTo(l); err != nil {
			t.Fatal(err)
		}
		return resp, l.Name
	}
	if err := stream.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: "mesh/m/virtualGateway/gw_demo"}, TypeUrl: resource.ListenerType}); err != nil {
		t.Fatal(err)
	}
	first, name := recvListener()
	if name != "gateway_8080" {
		t.Fatalf("listener %s, want gateway_8080", name)
	}
	if err := stream.Send(&discovery.DiscoveryRequest{TypeUrl: resource.ListenerType, VersionInfo: first.VersionInfo, ResponseNonce: first.Nonce}); err != nil {
		t.Fatal(err)
	}
	write("9090")
	if _, name = recvListener(); name != "gateway_9090" {
		t.Fatalf("after the edit: listener %s, want gateway_9090", name)
	}
}

// namedBackend is a gRPC test server that names itself in the "backend"
// response header.
type namedBackend struct {
	testgrpc.UnimplementedTestServiceServer
	name string
}

func (b *namedBackend) UnaryCall(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	grpc.SetHeader(ctx, metadata.Pairs("backend", b.name))
	return &testgrpc.SimpleResponse{}, nil
}

func startNamedBackend(t *testing.T, name string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(s, &namedBackend{name: name})
	go s.Serve(l)
	t.Cleanup(s.Stop)
	return l.Addr().String()
}

const lastGoodCommon = `
apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata: {name: m}
spec: {namespaceSelector: {}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: client, namespace: demo}
spec:
  serviceDiscovery: {dns: {hostname: client.demo.svc}}
  backends:
    - virtualService: {virtualServiceRef: {name: a}}
    - virtualService: {virtualServiceRef: {name: b}}
`

// lastGoodService is VirtualService NAME with its router, which splits
// between nodes NAME1 and NAME2 with weights W1 and W2; EXTRA is added to
// the route.
const lastGoodService = `
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: NAME, namespace: demo}
spec: {provider: {virtualRouter: {virtualRouterRef: {name: NAME-vr}}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: NAME1, namespace: demo}
spec:
  listeners: [{portMapping: {port: 50051, protocol: grpc}}]
  serviceDiscovery: {dns: {hostname: NAME1.demo.svc}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: NAME2, namespace: demo}
spec:
  listeners: [{portMapping: {port: 50051, protocol: grpc}}]
  serviceDiscovery: {dns: {hostname: NAME2.demo.svc}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualRouter
metadata: {name: NAME-vr, namespace: demo}
spec:
  listeners: [{portMapping: {port: 50051, protocol: grpc}}]
  routes:
    - name: all
      EXTRA
      grpcRoute:
        match: {serviceName: grpc.testing.TestService}
        action:
          weightedTargets:
            - {virtualNodeRef: {name: NAME1}, weight: W1}
            - {virtualNodeRef: {name: NAME2}, weight: W2}
`

func lastGoodDoc(name string, w1, w2 int, extra string) string {
	return strings.NewReplacer("NAME", name, "W1", fmt.Sprint(w1), "W2", fmt.Sprint(w2), "EXTRA", extra).Replace(lastGoodService)
}

// TestXDSCommandKeepsLastGoodObject runs the xds command on files with a
// proxyless grpc-go client of VirtualNode demo/client calling services a
// and b. Then one edit breaks a's router (a priority out of range, with
// its weights moved to a2) while b's router moves to b2: a keeps its last
// good version (calls still reach a1) and is marked so in /config, and b's
// update goes live.
func TestXDSCommandKeepsLastGoodObject(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "common.yaml"), lastGoodCommon)
	writeFile(t, filepath.Join(dir, "a.yaml"), lastGoodDoc("a", 1, 0, "priority: 1"))
	writeFile(t, filepath.Join(dir, "b.yaml"), lastGoodDoc("b", 1, 0, "priority: 1"))
	var resolve []string
	for _, n := range []string{"a1", "a2", "b1", "b2"} {
		resolve = append(resolve, n+".demo.svc="+startNamedBackend(t, n))
	}
	in := inputFlags{files: []string{dir}, resolve: resolve}
	set, eps, err := in.load()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type addrs struct{ xds, admin string }
	started := make(chan addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- serveXDS(ctx, xdsOptions{set: set, endpoints: eps, watch: in.files, xdsAddr: "127.0.0.1:0", adminAddr: "127.0.0.1:0",
			started: func(x, a string) { started <- addrs{x, a} }})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serveXDS: %v", err)
		}
	})
	var srv addrs
	select {
	case srv = <-started:
	case err := <-done:
		t.Fatalf("serveXDS: %v", err)
	}
	bootstrap := fmt.Sprintf(`{
		"xds_servers": [{"server_uri": %q, "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
		"node": {"id": "mesh/m/virtualNode/client_demo", "locality": {}}
	}`, srv.xds)
	resolver, err := xdsgrpc.NewXDSResolverWithConfigForTesting([]byte(bootstrap))
	if err != nil {
		t.Fatal(err)
	}
	call := func(service string) string {
		t.Helper()
		cc, err := grpc.NewClient("xds:///"+service+".demo", grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithResolvers(resolver))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		var hdr metadata.MD
		if _, err := testgrpc.NewTestServiceClient(cc).UnaryCall(ctx, &testgrpc.SimpleRequest{}, grpc.Header(&hdr), grpc.WaitForReady(true)); err != nil {
			t.Fatalf("call to %s: %v", service, err)
		}
		return strings.Join(hdr.Get("backend"), ",")
	}
	if a, b := call("a"), call("b"); a != "a1" || b != "b1" {
		t.Fatalf("before the edit: a served by %q, b by %q; want a1 and b1", a, b)
	}

	// a's broken edit is written first, so every reload that sees b's
	// edit sees it too.
	writeFile(t, filepath.Join(dir, "a.yaml"), lastGoodDoc("a", 0, 1, "priority: 5000"))
	writeFile(t, filepath.Join(dir, "b.yaml"), lastGoodDoc("b", 0, 1, "priority: 1"))
	waitFor(t, "b's edit to reach the client", func() bool { return call("b") == "b2" })
	for range 5 {
		if a := call("a"); a != "a1" {
			t.Fatalf("after a broken edit of a's router: a served by %q; want a1, its last good version", a)
		}
	}
	var cv configView
	adminJSON(t, "http://"+srv.admin+"/config", &cv)
	kept := false
	for _, st := range cv.Config.Statuses {
		if st.Kind == "VirtualRouter" && st.Name == "a-vr" {
			kept = st.Reason == runner.ReasonLastGoodKept && st.Active
		}
		if st.Kind == "VirtualGateway" {
			t.Errorf("/config shows gateway status %+v; the manifests have none", st)
		}
	}
	if !kept || len(cv.Problems) == 0 {
		t.Fatalf("/config: a-vr not marked %s, or no problem reported: %+v", runner.ReasonLastGoodKept, cv)
	}
}
