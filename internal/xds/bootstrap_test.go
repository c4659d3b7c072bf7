package xds

import (
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"
)

func TestBootstrapGolden(t *testing.T) {
	cases := map[string]BootstrapOptions{
		"bootstrap-gateway": {NodeID: "mesh/m/virtualGateway/gw_demo", XDSAddress: "meshgate.meshgate-system.svc:18000", AdminAddress: "127.0.0.1:9901"},
		"bootstrap-unix":    {NodeID: "arn:aws:appmesh:eu-west-1:123456789012:mesh/m/virtualNode/app_demo", XDSAddress: "unix:///var/run/meshgate/xds.sock", SDSSocket: "/run/spire/sockets/agent.sock"},
	}
	for name, o := range cases {
		t.Run(name, func(t *testing.T) {
			b, err := Bootstrap(o)
			if err != nil {
				t.Fatal(err)
			}
			got := render(t, map[string][]proto.Message{"bootstrap": {b}})
			path := filepath.Join("testdata", name+".out.yaml")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if string(got) != string(want) {
				t.Errorf("%s differs; run go test -update and review the diff\n%s", path, got)
			}
		})
	}
	for _, bad := range []BootstrapOptions{
		{NodeID: "sidecar", XDSAddress: "127.0.0.1:18000"},
		{NodeID: "mesh/m/virtualNode/a_b", XDSAddress: "no-port"},
	} {
		if _, err := Bootstrap(bad); err == nil {
			t.Errorf("Bootstrap(%+v) succeeded", bad)
		}
	}
}
