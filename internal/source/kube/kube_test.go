package kube_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/compile"
	"github.com/meshgate/meshgate/internal/ir"
	"github.com/meshgate/meshgate/internal/kubetest"
	"github.com/meshgate/meshgate/internal/source/file"
	"github.com/meshgate/meshgate/internal/source/kube"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const wait = 30 * time.Second

func TestMain(m *testing.M) {
	code := m.Run()
	kubetest.StopShared()
	os.Exit(code)
}

// watcher runs a Source against the test API server and keeps its latest
// snapshot.
type watcher struct {
	mu   sync.Mutex
	snap *kube.Snapshot
	also func(*kube.Snapshot)
}

func watch(t *testing.T, env *kubetest.Env, also func(*kube.Snapshot)) *watcher {
	t.Helper()
	w := &watcher{also: also}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- kube.Watch(ctx, env.Config, kube.Options{HoldOff: 20 * time.Millisecond}, func(s *kube.Snapshot) {
			w.mu.Lock()
			w.snap = s
			w.mu.Unlock()
			if w.also != nil {
				w.also(s)
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("source: %v", err)
		}
	})
	return w
}

// until returns the first snapshot for which cond holds.
func (w *watcher) until(t *testing.T, what string, cond func(*kube.Snapshot) bool) *kube.Snapshot {
	t.Helper()
	var got *kube.Snapshot
	kubetest.Eventually(t, wait, what, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.snap != nil && cond(w.snap) {
			got = w.snap
			return true
		}
		return false
	})
	return got
}

func readDir(t *testing.T, dir string) [][]byte {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no manifests in %s: %v", dir, err)
	}
	sort.Strings(names)
	var out [][]byte
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func ensureNamespace(t *testing.T, c client.Client, name string) {
	t.Helper()
	err := c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// comparable strips what differs between a file and a cluster (file and
// line of each object) from compile's output.
func comparable(t *testing.T, cfg *ir.Config) string {
	t.Helper()
	c := *cfg
	c.Statuses = slices.Clone(cfg.Statuses)
	for i := range c.Statuses {
		c.Statuses[i].File, c.Statuses[i].Line = "", 0
	}
	b, err := json.MarshalIndent(&c, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestManifestsApplyAndCompile applies the guide's manifests and the
// bundled examples to a real API server, every document of them (the plain
// Deployments, Services and Ingress too), and checks that the cluster
// compiles to exactly what the files compile to.
func TestManifestsApplyAndCompile(t *testing.T) {
	env := kubetest.Shared(t)
	ctx := context.Background()
	ensureNamespace(t, env.Client, "demo")
	w := watch(t, env, nil)
	for _, dir := range []string{
		filepath.Join(kubetest.RepoRoot(), "..", "shared", "examples", "seed"),
		filepath.Join(kubetest.RepoRoot(), "examples", "demo"),
	} {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			var applied []*unstructured.Unstructured
			for _, doc := range readDir(t, dir) {
				objs, err := kubetest.Objects(doc)
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range objs {
					if err := kubetest.Apply(ctx, env.Client, o); err != nil {
						t.Fatalf("apply %s %s: %v", o.GetKind(), o.GetName(), err)
					}
					applied = append(applied, o)
				}
			}
			t.Cleanup(func() {
				for _, o := range applied {
					if o.GetKind() == "Namespace" {
						continue
					}
					if o.GetNamespace() == "" && o.GetKind() != "Mesh" {
						o.SetNamespace("default")
					}
					if err := env.Client.Delete(ctx, o); err != nil && !apierrors.IsNotFound(err) {
						t.Errorf("delete %s %s: %v", o.GetKind(), o.GetName(), err)
					}
				}
			})
			fileSet, err := file.Load([]string{dir})
			if err != nil {
				t.Fatal(err)
			}
			want, _ := compile.Compile(fileSet)
			wantJSON := comparable(t, want)
			var got string
			w.until(t, "the cluster to compile like the files", func(s *kube.Snapshot) bool {
				cfg, _ := compile.Compile(s.Set)
				got = comparable(t, cfg)
				return got == wantJSON
			})
			if len(want.Statuses) == 0 || len(want.Gateways) == 0 {
				t.Fatalf("the manifests compiled to nothing: %s", wantJSON)
			}
		})
	}
	w.until(t, "the applied objects to be gone", func(s *kube.Snapshot) bool { return len(s.Objects) == 0 })
}

// TestAPIServerRejectsWithAppMeshMessages applies objects that App Mesh's
// webhooks (or its CRD schema) refused and expects the API server to refuse
// them with App Mesh's message; the valid twin of each is accepted.
func TestAPIServerRejectsWithAppMeshMessages(t *testing.T) {
	env := kubetest.Shared(t)
	ctx := context.Background()
	ensureNamespace(t, env.Client, "cel")
	gr := func(spec string) string {
		return "apiVersion: appmesh.k8s.aws/v1beta2\nkind: GatewayRoute\nmetadata: {name: gr, namespace: cel}\nspec:\n" + spec
	}
	httpGR := func(match string) string {
		return gr("  httpRoute:\n    match: " + match + "\n    action: {target: {virtualService: {virtualServiceRef: {name: vs}}}}\n")
	}
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"gatewayroute two types", gr("  httpRoute: {match: {prefix: /}, action: {target: {virtualService: {virtualServiceRef: {name: vs}}}}}\n  http2Route: {match: {prefix: /}, action: {target: {virtualService: {virtualServiceRef: {name: vs}}}}}\n"),
			"Found multiple types in GatewayRoute Spec. Only 1 (GRPC/HTTP/HTTP2) allowed"},
		{"gatewayroute no type", gr("  priority: 1\n"), "Missing GatewayRoute Type in GatewayRoute Spec"},
		{"match nothing", httpGR("{method: GET}"), "Either prefix or path or hostname must be specified"},
		{"prefix and path", httpGR("{prefix: /, path: {exact: /a}}"), "Both prefix and path cannot be specified. Only 1 allowed"},
		{"path exact and regex", httpGR("{path: {exact: /a, regex: /b}}"), "Both exact and regex for path are not allowed. Only one must be specified"},
		{"path empty", httpGR("{path: {}}"), "Either exact or regex for path must be specified"},
		{"hostname both", httpGR("{hostname: {exact: a.com, suffix: .com}}"), "Both exact and suffix match for hostname are not allowed. Only one must be specified"},
		{"hostname empty", httpGR("{hostname: {}}"), "Either exact or suffix match for hostname must be specified"},
		{"range", httpGR("{prefix: /, headers: [{name: x, match: {range: {start: 5, end: 5}}}]}"), "Invalid Match Range specified, end has to be greater than start"},
		{"query empty match", httpGR("{prefix: /, queryParameters: [{name: q, match: {}}]}"), "Missing Match criteria for one or more exact query match block, don't specify match block if you dont need it"},
		{"rewrite empty", gr("  httpRoute: {match: {prefix: /}, action: {target: {virtualService: {virtualServiceRef: {name: vs}}}, rewrite: {}}}\n"), "Either prefix, path or hostname for rewrite must be specified"},
		{"rewrite prefix and path", gr("  httpRoute: {match: {prefix: /}, action: {target: {virtualService: {virtualServiceRef: {name: vs}}}, rewrite: {prefix: {value: /a/}, path: {exact: /b}}}}\n"), "Both prefix and path for rewrites cannot be specified. Only 1 allowed"},
		{"rewrite both prefix forms", gr("  httpRoute: {match: {prefix: /}, action: {target: {virtualService: {virtualServiceRef: {name: vs}}}, rewrite: {prefix: {value: /a/, defaultPrefix: ENABLED}}}}\n"), "Cannot specify both defaultPrefix and prefix for rewrite, only 1 allowed"},
		{"rewrite value", gr("  httpRoute: {match: {prefix: /}, action: {target: {virtualService: {virtualServiceRef: {name: vs}}}, rewrite: {prefix: {value: /a}}}}\n"), "New Rewrite Prefix must start and end with '/'"},
		{"rewrite with bad match prefix", gr("  httpRoute: {match: {prefix: a}, action: {target: {virtualService: {virtualServiceRef: {name: vs}}}, rewrite: {prefix: {value: /a/}}}}\n"), "Prefix to be matched on must start with '/'"},
		{"grpc match", gr("  grpcRoute: {match: {metadata: [{name: x}]}, action: {target: {virtualService: {virtualServiceRef: {name: vs}}}}}\n"), "Either servicename or hostname must be specified"},
		{"priority bound", gr("  priority: 1001\n  httpRoute: {match: {prefix: /}, action: {target: {virtualService: {virtualServiceRef: {name: vs}}}}}\n"), "spec.priority: Invalid value: 1001: spec.priority in body should be less than or equal to 1000"},
		{"router duplicate routes", `apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualRouter
metadata: {name: vr, namespace: cel}
spec:
  listeners: [{portMapping: {port: 8080, protocol: http}}]
  routes:
  - {name: r, httpRoute: {match: {prefix: /}, action: {weightedTargets: [{virtualNodeRef: {name: vn}, weight: 1}]}}}
  - {name: r, httpRoute: {match: {prefix: /a}, action: {weightedTargets: [{virtualNodeRef: {name: vn}, weight: 1}]}}}
`, "VirtualRouter-vr has duplicate route entries"},
		{"router route prefix and path", `apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualRouter
metadata: {name: vr, namespace: cel}
spec:
  listeners: [{portMapping: {port: 8080, protocol: http}}]
  routes:
  - {name: r, httpRoute: {match: {prefix: /, path: {exact: /a}}, action: {weightedTargets: [{virtualNodeRef: {name: vn}, weight: 1}]}}}
`, "Both Prefix and Path cannot be specified, only 1 allowed"},
		{"router route no match", `apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualRouter
metadata: {name: vr, namespace: cel}
spec:
  listeners: [{portMapping: {port: 8080, protocol: http}}]
  routes:
  - {name: r, httpRoute: {match: {method: GET}, action: {weightedTargets: [{virtualNodeRef: {name: vn}, weight: 1}]}}}
`, "Either Prefix or Path must be specified"},
		{"weight bound", `apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualRouter
metadata: {name: vr, namespace: cel}
spec:
  listeners: [{portMapping: {port: 8080, protocol: http}}]
  routes:
  - {name: r, httpRoute: {match: {prefix: /}, action: {weightedTargets: [{virtualNodeRef: {name: vn}, weight: 101}]}}}
`, "should be less than or equal to 100"},
		{"node without service discovery", `apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: vn, namespace: cel}
spec:
  listeners: [{portMapping: {port: 8080, protocol: http}}]
`, "ServiceDiscovery missing for VirtualNode-vn. ServiceDiscovery must be specified when a listener is specified."},
		{"node two pools", `apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: vn, namespace: cel}
spec:
  listeners: [{portMapping: {port: 8080, protocol: http}, connectionPool: {http: {maxConnections: 1}, tcp: {maxConnections: 1}}}]
  serviceDiscovery: {dns: {hostname: vn.cel.svc.cluster.local}}
`, "Only one type of Virtual Node Connection Pool is allowed"},
		{"gateway two pools", `apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualGateway
metadata: {name: vg, namespace: cel}
spec:
  listeners: [{portMapping: {port: 8080, protocol: http}, connectionPool: {http: {maxConnections: 1}, grpc: {maxRequests: 1}}}]
`, "Only one type of Virtual Gateway Connection Pool is allowed"},
		{"gateway tcp", `apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualGateway
metadata: {name: vg, namespace: cel}
spec:
  listeners: [{portMapping: {port: 8080, protocol: tcp}}]
`, `Unsupported value: "tcp"`},
		{"port bound", `apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualGateway
metadata: {name: vg, namespace: cel}
spec:
  listeners: [{portMapping: {port: 0, protocol: http}}]
`, "should be greater than or equal to 1"},
		{"mesh ip preference", `apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata: {name: cel-mesh}
spec:
  meshServiceDiscovery: {}
`, "Only non-empty values allowed are IPv4_ONLY or IPv6_ONLY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := kubetest.ApplyYAML(ctx, env.Client, []byte(tc.yaml))
			if err == nil {
				t.Fatalf("accepted; want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant it to say %q", err, tc.want)
			}
		})
	}

	t.Cleanup(func() {
		for _, name := range []string{"gr", "gr2"} {
			u := &unstructured.Unstructured{}
			u.SetAPIVersion("appmesh.k8s.aws/v1beta2")
			u.SetKind("GatewayRoute")
			u.SetNamespace("cel")
			u.SetName(name)
			if err := env.Client.Delete(ctx, u); err != nil && !apierrors.IsNotFound(err) {
				t.Error(err)
			}
		}
	})

	// The guide's and App Mesh's accepted forms stay accepted.
	valid := gr("  virtualGateway: {name: vg}\n  mesh: m\n  httpRoute: {match: {prefix: /, headers: [{name: X-Canary, match: {exact: true}}], queryParameters: [{name: q, match: {exact: \"1\"}}]}, action: {target: {virtualService: {virtualServiceRef: {name: vs}}}, rewrite: {prefix: {value: /a/}}}}\n")
	if err := kubetest.ApplyYAML(ctx, env.Client, []byte(valid)); err != nil {
		t.Fatalf("a valid GatewayRoute was refused: %v", err)
	}

	// Fields App Mesh made immutable stay so; the message names the ones
	// that changed, in App Mesh's order.
	withRefs := gr("  awsName: a\n  meshRef: {name: m}\n  virtualGatewayRef: {name: vg}\n  httpRoute: {match: {prefix: /}, action: {target: {virtualService: {virtualServiceRef: {name: vs}}}}}\n")
	withRefs = strings.Replace(withRefs, "name: gr,", "name: gr2,", 1)
	if err := kubetest.ApplyYAML(ctx, env.Client, []byte(withRefs)); err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(strings.Replace(withRefs, "awsName: a", "awsName: b", 1), "virtualGatewayRef: {name: vg}", "virtualGatewayRef: {name: other}", 1)
	err := kubetest.ApplyYAML(ctx, env.Client, []byte(changed))
	want := "GatewayRoute update may not change these fields: spec.awsName,spec.virtualGatewayRef"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("changing awsName and virtualGatewayRef: %v\nwant %q", err, want)
	}
}
