package xds

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/compile"
	"github.com/meshgate/meshgate/internal/ir"
	"github.com/meshgate/meshgate/internal/source/file"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite testdata/*.{listeners,routes,clusters,endpoints}.yaml from the current output")

// compileCase loads testdata/NAME.in.yaml. Lines "# resolve: HOST=ADDR[,ADDR]" (ADDR IP:PORT or IP)
// give a VirtualNode hostname fixed endpoints, as --resolve does; lines
// "# proxyless: NAMESPACE/NAME" and "# sidecar: NAMESPACE/NAME" add that
// VirtualNode's proxyless or Envoy sidecar resources to the goldens.
func compileCase(t *testing.T, in string) (*ir.Config, []string) {
	cfg, clients, _ := compileCaseAll(t, in)
	return cfg, clients
}

func compileCaseAll(t *testing.T, in string) (*ir.Config, []string, []string) {
	t.Helper()
	set, err := file.Load([]string{in})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	var clients, sidecars []string
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "# resolve: "); ok {
			host, list, _ := strings.Cut(strings.TrimSpace(v), "=")
			set.Endpoints[host] = strings.Split(list, ",")
		}
		if v, ok := strings.CutPrefix(line, "# proxyless: "); ok {
			clients = append(clients, strings.TrimSpace(v))
		}
		if v, ok := strings.CutPrefix(line, "# sidecar: "); ok {
			sidecars = append(sidecars, strings.TrimSpace(v))
		}
	}
	cfg, problems := compile.Compile(set)
	for _, p := range problems {
		t.Logf("compile: %v", p)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg, clients, sidecars
}

func TestGolden(t *testing.T) {
	ins, err := filepath.Glob(filepath.Join("testdata", "*.in.yaml"))
	if err != nil || len(ins) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			cfg, clients, sidecars := compileCaseAll(t, in)
			out := map[string]map[string][]proto.Message{}
			add := func(key string, r *Resources) {
				for kind, list := range map[string][]proto.Message{
					"listeners": msgs(r.Listeners), "routes": msgs(r.Routes),
					"clusters": msgs(r.Clusters), "endpoints": msgs(r.Endpoints),
				} {
					if out[kind] == nil {
						out[kind] = map[string][]proto.Message{}
					}
					out[kind][key] = list
				}
				for _, w := range r.Warnings {
					t.Logf("%s: warning: %s", key, w)
				}
			}
			for _, g := range cfg.Gateways {
				r, err := Gateway(cfg, g.Name)
				if err != nil {
					t.Fatalf("gateway %s: %v", g.Name, err)
				}
				add(Key(KindGateway, g.Name), r)
			}
			for _, n := range clients {
				r, err := Client(cfg, n)
				if err != nil {
					t.Fatalf("client %s: %v", n, err)
				}
				add(Key(KindNode, n), r)
			}
			for _, n := range sidecars {
				r, err := Sidecar(cfg, n)
				if err != nil {
					t.Fatalf("sidecar %s: %v", n, err)
				}
				add("sidecar/"+Key(KindNode, n), r)
			}
			for _, kind := range []string{"listeners", "routes", "clusters", "endpoints"} {
				got := render(t, out[kind])
				path := filepath.Join("testdata", name+"."+kind+".yaml")
				if *update {
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run with -update)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from the output; run go test -update and review the diff\n%s", path, got)
				}
			}
		})
	}
}

func msgs[T proto.Message](list []T) []proto.Message {
	out := make([]proto.Message, len(list))
	for i, m := range list {
		out[i] = m
	}
	return out
}

// render writes protojson as YAML; the JSON round trip makes the output
// independent of protojson's randomised spacing.
func render(t *testing.T, byKey map[string][]proto.Message) []byte {
	t.Helper()
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	doc := map[string][]any{}
	for _, k := range keys {
		doc[k] = []any{}
		for _, m := range byKey[k] {
			b, err := protojson.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			var v any
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatal(err)
			}
			doc[k] = append(doc[k], v)
		}
	}
	y, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return y
}
