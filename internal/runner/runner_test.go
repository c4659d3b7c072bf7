package runner

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/ir"
	"github.com/meshgate/meshgate/internal/resource"
)

// sink records what was published.
type sink struct {
	cfg     *ir.Config
	gateway string
}

func (s *sink) Apply(cfg *ir.Config, gateway string) error {
	s.cfg, s.gateway = cfg, gateway
	return nil
}

const base = `
apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata: {name: m}
spec: {namespaceSelector: {}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualGateway
metadata: {name: gw, namespace: ns}
spec:
  namespaceSelector: {}
  listeners: [{portMapping: {port: 8080, protocol: http}}]
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: n, namespace: ns}
spec:
  listeners: [{portMapping: {port: 80, protocol: http}}]
  serviceDiscovery: {dns: {hostname: n.local}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: s, namespace: ns}
spec: {provider: {virtualNode: {virtualNodeRef: {name: n}}}}
`

func route(prefix, extra string) string {
	return fmt.Sprintf(`
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata: {name: r, namespace: ns}
spec:
  httpRoute:
    match: {prefix: %s%s}
    action: {target: {virtualService: {virtualServiceRef: {name: s}}}}
`, prefix, extra)
}

func setOf(t *testing.T, docs ...string) *resource.Set {
	t.Helper()
	set := resource.NewSet()
	set.AddFile("m.yaml", []byte(strings.Join(docs, "\n---\n")))
	return set
}

// served returns the prefix of the route served on port 8080, or "".
func served(s *sink) string {
	for _, r := range s.cfg.Gateways[0].Listeners[0].Routes {
		return r.Match.Prefix
	}
	return ""
}

func status(s *sink, kind, name string) ir.ObjectStatus {
	for _, st := range s.cfg.Statuses {
		if st.Kind == kind && st.Name == name {
			return st
		}
	}
	return ir.ObjectStatus{}
}

func TestLastGoodVersionIsKept(t *testing.T) {
	out := &sink{}
	r := New(Options{Sink: out, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	steps := []struct {
		name, doc   string
		wantPrefix  string
		wantReason  string
		wantProblem bool
	}{
		{"first version serves", route("/v1", ""), "/v1", "", false},
		{"an invalid edit keeps /v1", route("/v2", ", method: FETCH"), "/v1", ReasonLastGoodKept, true},
		{"an edit that does not decode keeps /v1", route("/v3", ", methd: GET"), "/v1", ReasonLastGoodKept, true},
		{"a good edit replaces it", route("/v4", ""), "/v4", "", false},
		{"the route deleted is gone", "", "", "", false},
	}
	for _, st := range steps {
		docs := []string{base}
		if st.doc != "" {
			docs = append(docs, st.doc)
		}
		if err := r.Update(setOf(t, docs...)); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := served(out); got != st.wantPrefix {
			t.Errorf("%s: serving prefix %q, want %q", st.name, got, st.wantPrefix)
		}
		if got := status(out, "GatewayRoute", "r").Reason; st.wantReason != "" && got != st.wantReason {
			t.Errorf("%s: route status reason %q, want %q", st.name, got, st.wantReason)
		}
		if got := len(r.Snapshot().Problems) > 0; got != st.wantProblem {
			t.Errorf("%s: problems %v, want some: %v", st.name, r.Snapshot().Problems, st.wantProblem)
		}
	}
}

func TestNoGatewayIsAnErrorAndKeepsServing(t *testing.T) {
	out := &sink{}
	r := New(Options{Sink: out, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := r.Update(setOf(t, base, route("/v1", ""))); err != nil {
		t.Fatal(err)
	}
	err := r.Update(setOf(t, route("/v2", "")))
	if err == nil || !strings.Contains(err.Error(), "no valid VirtualGateway") {
		t.Fatalf("err %v, want no valid VirtualGateway", err)
	}
	if served(out) != "/v1" || r.Snapshot().LastError == "" {
		t.Fatalf("previous config not kept: %q, last error %q", served(out), r.Snapshot().LastError)
	}
}

// TestAllGatewaysSelectsNone checks the xDS runner: sets with no gateway
// or several are applied whole, and last good versions are still kept.
func TestAllGatewaysSelectsNone(t *testing.T) {
	out := &sink{gateway: "unset"}
	r := New(Options{AllGateways: true, Sink: out, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	noGateway := strings.Replace(base, "kind: VirtualGateway", "kind: Unused", 1)
	node := func(port string) string {
		return `
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: n2, namespace: ns}
spec:
  listeners: [{portMapping: {port: ` + port + `, protocol: http}}]
  serviceDiscovery: {dns: {hostname: n2.local}}
`
	}
	port := func() int {
		for _, n := range out.cfg.Nodes {
			if n.Name == "ns/n2" && len(n.Listeners) > 0 {
				return n.Listeners[0].Port
			}
		}
		return 0
	}
	secondGateway := strings.Replace(base[strings.Index(base, "---\napiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualGateway"):strings.Index(base, "---\napiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualNode")], "name: gw", "name: gw2", 1)
	for _, step := range []struct {
		name     string
		docs     []string
		wantPort int
	}{
		{"no gateway", []string{noGateway, node("81")}, 81},
		{"an invalid edit keeps port 81", []string{noGateway, node("0")}, 81},
		{"two gateways", []string{base, secondGateway, node("82")}, 82},
	} {
		if err := r.Update(setOf(t, step.docs...)); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if out.gateway != "" {
			t.Errorf("%s: Apply got gateway %q, want none", step.name, out.gateway)
		}
		if got := port(); got != step.wantPort {
			t.Errorf("%s: n2 listens on %d, want %d", step.name, got, step.wantPort)
		}
	}
	if got := len(out.cfg.Gateways); got != 2 {
		t.Errorf("%d gateways published, want 2", got)
	}
}

// TestLastGoodKeepsSources checks what the runner holds between updates:
// the text of the files the objects came from, not the decoded objects,
// unless an object has no file.
func TestLastGoodKeepsSources(t *testing.T) {
	r := New(Options{Sink: &sink{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	set := setOf(t, base, route("/v1", ""))
	unnamed := resource.NewSet()
	unnamed.AddFile("", []byte("apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualService\nmetadata: {name: s2, namespace: ns}\nspec: {provider: {virtualNode: {virtualNodeRef: {name: n}}}}\n"))
	for k, o := range unnamed.Objects {
		set.Objects[k] = o
	}
	if err := r.Update(set); err != nil {
		t.Fatal(err)
	}
	for k, kept := range r.lastGood {
		fromFile := k.Name != "s2"
		if fromFile != (kept.src != nil && kept.obj == nil) {
			t.Errorf("%v kept as %+v", k, kept)
		}
	}
	if len(r.lastGood) != len(set.Objects) {
		t.Errorf("%d kept of %d objects", len(r.lastGood), len(set.Objects))
	}
}
