package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
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
