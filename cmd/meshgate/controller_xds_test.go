//go:build !standalone

package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/meshgate/meshgate/internal/kubetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TestControllerServesXDS runs `meshgate controller --xds-address` against
// the API server and checks that a gateway Envoy's ADS stream gets the
// listener of a VirtualGateway applied to the cluster.
func TestControllerServesXDS(t *testing.T) {
	env := kubetest.Shared(t)
	k := newCluster(t, env.Client)
	k.apply(`
apiVersion: v1
kind: Namespace
metadata: {name: ctlxds}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata: {name: ctlxds-mesh}
spec: {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ctlxds}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualGateway
metadata: {name: gw, namespace: ctlxds}
spec:
  namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ctlxds}}
  listeners: [{portMapping: {port: 8443, protocol: http}}]
`)
	sock := filepath.Join(t.TempDir(), "xds.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 2*kubeWait)
	done := make(chan error, 1)
	go func() {
		done <- runController(ctx, controllerOptions{
			restConfig:              env.Config,
			leaderElectionNamespace: "default",
			leaderElectionID:        "meshgate-test-controller-xds",
			healthAddr:              "0",
			leaseDuration:           3 * time.Second,
			renewDeadline:           2 * time.Second,
			retryPeriod:             200 * time.Millisecond,
			xdsAddr:                 "unix://" + sock,
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("controller: %v", err)
			}
		case <-time.After(kubeWait):
			t.Error("controller did not stop")
		}
	})
	cc, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	// The socket exists once the manager has started; retry the stream until then.
	var name string
	kubetest.Eventually(t, kubeWait, "the gateway listener over ADS", func() bool {
		sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
		defer scancel()
		stream, err := discovery.NewAggregatedDiscoveryServiceClient(cc).StreamAggregatedResources(sctx)
		if err != nil {
			return false
		}
		if err := stream.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: "mesh/ctlxds-mesh/virtualGateway/gw_ctlxds"}, TypeUrl: resource.ListenerType}); err != nil {
			return false
		}
		resp, err := stream.Recv()
		if err != nil || len(resp.Resources) != 1 {
			return false
		}
		l := &listener.Listener{}
		if err := resp.Resources[0].UnmarshalTo(l); err != nil {
			t.Fatal(err)
		}
		name = l.Name
		return true
	})
	if name != "gateway_8443" {
		t.Fatalf("listener %s, want gateway_8443", name)
	}
}
