package xds

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func TestSnapshotKey(t *testing.T) {
	for id, want := range map[string]string{
		"mesh/m/virtualGateway/gw_demo":                                        "m/virtualGateway/demo/gw",
		"mesh/m@123456789012/virtualGateway/gw_demo":                           "m/virtualGateway/demo/gw",
		"arn:aws:appmesh:eu-west-1:123456789012:mesh/m/virtualGateway/gw_demo": "m/virtualGateway/demo/gw",
		"mesh/m/virtualGateway/demo/gw":                                        "m/virtualGateway/demo/gw",
		"mesh/m/virtualNode/my-app_prod":                                       "virtualNode/prod/my-app",
		"mesh/m/virtualRouter/r_demo":                                          "invalid/mesh/m/virtualRouter/r_demo",
		"sidecar~10.0.0.1":                                                     "invalid/sidecar~10.0.0.1",
	} {
		if got := SnapshotKey(id); got != want {
			t.Errorf("SnapshotKey(%q) = %q, want %q", id, got, want)
		}
	}
}

// TestGatewayNACK serves a VirtualGateway Envoy's listeners over a raw ADS
// stream, rejects them, and checks that the rejected version is not sent
// again: the next response is the next snapshot.
func TestGatewayNACK(t *testing.T) {
	cfg, _ := compileCase(t, filepath.Join("testdata", "scenario4-weighted.in.yaml"))
	srv := NewServer(Options{Registry: prometheus.NewRegistry()})
	if err := srv.Publish(cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	cc, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(cc).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node := &core.Node{Id: "arn:aws:appmesh:eu-west-1:123456789012:mesh/my-app-mesh/virtualGateway/appmesh-gateway-vg_demo"}
	if err := stream.Send(&discovery.DiscoveryRequest{Node: node, TypeUrl: resource.ListenerType}); err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Resources) != 1 {
		t.Fatalf("got %d listeners, want 1", len(first.Resources))
	}
	ln := &listener.Listener{}
	if err := first.Resources[0].UnmarshalTo(ln); err != nil || ln.Name != GatewayListenerName(8080) {
		t.Fatalf("listener %v, %v; want %s", ln.Name, err, GatewayListenerName(8080))
	}
	if err := stream.Send(&discovery.DiscoveryRequest{
		TypeUrl: resource.ListenerType, ResponseNonce: first.Nonce,
		ErrorDetail: &status.Status{Code: 3, Message: "listener rejected by the test"},
	}); err != nil {
		t.Fatal(err)
	}
	// Once the NACK is handled, publish a change; the stream must carry it
	// next, not the rejected version again.
	for testutil.ToFloat64(srv.nacks.WithLabelValues("Listener")) == 0 {
		if ctx.Err() != nil {
			t.Fatal("the NACK was not counted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cfg.Gateways[0].Listeners[0].Port = 8081
	if err := srv.Publish(cfg); err != nil {
		t.Fatal(err)
	}
	next, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if next.VersionInfo == first.VersionInfo {
		t.Fatalf("the rejected version %s was sent again", first.VersionInfo)
	}
	if err := next.Resources[0].UnmarshalTo(ln); err != nil || ln.Name != GatewayListenerName(8081) {
		t.Fatalf("listener %v, %v; want %s", ln.Name, err, GatewayListenerName(8081))
	}
	if n := testutil.ToFloat64(srv.nacks.WithLabelValues("Listener")); n != 1 {
		t.Fatalf("%v NACKs counted, want 1", n)
	}
}

// TestPublishGoldens publishes every golden case: each snapshot must be
// consistent, except those that need AWS-only certificates.
func TestPublishGoldens(t *testing.T) {
	ins, err := filepath.Glob(filepath.Join("testdata", "*.in.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range ins {
		cfg, _ := compileCase(t, in)
		srv := NewServer(Options{})
		err := srv.Publish(cfg)
		for _, e := range unwrap(err) {
			if !strings.Contains(e.Error(), "cannot be used outside AWS") {
				t.Errorf("%s: %v", in, e)
			}
		}
		for _, g := range cfg.Gateways {
			if v := srv.Version(g.Mesh+"/"+Key(KindGateway, g.Name), false); v == "" && !strings.Contains(in, "tls") {
				t.Errorf("%s: gateway %s has no snapshot", in, g.Name)
			}
		}
	}
}

func unwrap(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
