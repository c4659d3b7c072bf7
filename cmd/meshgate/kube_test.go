//go:build !standalone

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/echo"
	"github.com/meshgate/meshgate/internal/kubetest"
	"github.com/meshgate/meshgate/internal/source/kube"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const kubeWait = 30 * time.Second

func TestMain(m *testing.M) {
	code := m.Run()
	kubetest.StopShared()
	os.Exit(code)
}

// writeKubeconfig writes a kubeconfig for cfg, as a user would have one.
func writeKubeconfig(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["test"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "test"}
	kc.CurrentContext = "test"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// startKubeGateway runs `meshgate serve --kubernetes` until the test ends,
// without waiting for it to be ready.
func startKubeGateway(t *testing.T, listenIP string, port int, args ...string) *gateway {
	t.Helper()
	adminPort := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	g := &gateway{
		url:   fmt.Sprintf("http://%s:%d", listenIP, port),
		admin: fmt.Sprintf("http://127.0.0.1:%d", adminPort),
		done:  make(chan error, 1),
	}
	cmd := newRootCommand()
	cmd.SetArgs(append([]string{"serve", "--kubernetes", "--listen-address", listenIP, "--admin-address", fmt.Sprintf("127.0.0.1:%d", adminPort), "--log-level", "error"}, args...))
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	go func() { g.done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-g.done:
		case <-time.After(40 * time.Second):
			t.Error("serve did not stop")
		}
	})
	return g
}

func (g *gateway) ready() bool {
	resp, err := http.Get(g.admin + "/ready")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// backendOf sends one request and returns the answering backend, or "" and
// a description of the failure.
func backendOf(url string) (string, string) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Sprintf("%d %s", resp.StatusCode, body)
	}
	var r echo.Reply
	if err := json.Unmarshal(body, &r); err != nil {
		return "", err.Error()
	}
	return r.Backend, ""
}

// serveEcho serves an echo backend named name on ln until the test ends.
func serveEcho(t *testing.T, ln net.Listener, name string) {
	srv := &http.Server{Handler: echo.Handler(name)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// cluster applies manifests and deletes them when the test ends.
type cluster struct {
	t       *testing.T
	c       client.Client
	applied map[string]*unstructured.Unstructured
}

func newCluster(t *testing.T, c client.Client) *cluster {
	k := &cluster{t: t, c: c, applied: map[string]*unstructured.Unstructured{}}
	t.Cleanup(func() {
		for _, o := range k.applied {
			if o.GetKind() == "Namespace" {
				continue
			}
			if err := c.Delete(context.Background(), o); err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("delete %s %s: %v", o.GetKind(), o.GetName(), err)
			}
		}
	})
	return k
}

func (k *cluster) apply(yaml string) {
	k.t.Helper()
	objs, err := kubetest.Objects([]byte(yaml))
	if err != nil {
		k.t.Fatal(err)
	}
	for _, o := range objs {
		if err := kubetest.Apply(context.Background(), k.c, o); err != nil {
			k.t.Fatalf("apply %s %s: %v", o.GetKind(), o.GetName(), err)
		}
		k.applied[o.GetKind()+"/"+o.GetNamespace()+"/"+o.GetName()] = o
	}
}

func kgwManifests(port int, ipA, ipB, ipC string, w1, w2 int) string {
	return fmt.Sprintf(`
apiVersion: v1
kind: Namespace
metadata: {name: kgw}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata: {name: kgw-mesh}
spec: {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kgw}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualGateway
metadata: {name: gw, namespace: kgw}
spec:
  namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kgw}}
  listeners: [{portMapping: {port: %d, protocol: http}}]
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: v1, namespace: kgw}
spec:
  listeners: [{portMapping: {port: 8080, protocol: http}}]
  serviceDiscovery: {dns: {hostname: v1.kgw.svc.cluster.local}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: v2, namespace: kgw}
spec:
  listeners: [{portMapping: {port: 8080, protocol: http}}]
  serviceDiscovery: {dns: {hostname: v2.kgw}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualRouter
metadata: {name: vr, namespace: kgw}
spec:
  listeners: [{portMapping: {port: 8080, protocol: http}}]
  routes:
  - name: split
    httpRoute:
      match: {prefix: /}
      action:
        weightedTargets:
        - {virtualNodeRef: {name: v1}, weight: %d}
        - {virtualNodeRef: {name: v2}, weight: %d}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: svc, namespace: kgw}
spec: {provider: {virtualRouter: {virtualRouterRef: {name: vr}}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata: {name: svc, namespace: kgw}
spec:
  httpRoute:
    match: {prefix: /svc}
    action: {target: {virtualService: {virtualServiceRef: {name: svc}}}}
---
apiVersion: v1
kind: Service
metadata: {name: v1, namespace: kgw}
spec: {ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: v2, namespace: kgw}
spec: {ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: v1-abc, namespace: kgw, labels: {kubernetes.io/service-name: v1}}
addressType: IPv4
ports: [{port: 8080, protocol: TCP}]
endpoints:
- {addresses: [%s], conditions: {ready: true}}
- {addresses: [%s], conditions: {ready: true}}
- {addresses: [%s], conditions: {ready: false}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: v2-abc, namespace: kgw, labels: {kubernetes.io/service-name: v2}}
addressType: IPv4
ports: [{port: 8080, protocol: TCP}]
endpoints:
- {addresses: [%s]}
`, port, w1, w2, ipA, ipB, ipC, ipC)
}

// TestKubernetesGatewayFollowsTheCluster runs two `serve --kubernetes`
// replicas against a real API server. The backends are test hosts in a
// network namespace, named by EndpointSlices as pods would be; loopback
// addresses are refused in EndpointSlices. Under steady traffic the cluster
// changes: a new GatewayRoute, new weights, an endpoint removed. Not one
// request fails, and both replicas end with the same configuration.
func TestKubernetesGatewayFollowsTheCluster(t *testing.T) {
	env := kubetest.Shared(t)
	kubeconfig := writeKubeconfig(t, env.Config)
	ns := kubetest.NewNetns(t, 3)
	ips := ns.IPs()
	names := map[string]string{ips[0]: "v1-a", ips[1]: "v1-b", ips[2]: "v2"}
	for _, ip := range ips {
		serveEcho(t, ns.Listen(t, net.JoinHostPort(ip, "8080")), names[ip])
	}
	port := freePort(t)
	args := []string{"--kubeconfig", kubeconfig, "--gateway", "kgw/gw"}
	gws := []*gateway{startKubeGateway(t, "127.0.0.1", port, args...), startKubeGateway(t, "127.0.0.2", port, args...)}
	time.Sleep(200 * time.Millisecond)
	for _, g := range gws {
		if g.ready() {
			t.Fatal("a gateway is ready before its VirtualGateway exists")
		}
	}

	k := newCluster(t, env.Client)
	k.apply(kgwManifests(port, ips[0], ips[1], ips[2], 100, 0))
	for i, g := range gws {
		kubetest.Eventually(t, kubeWait, fmt.Sprintf("gateway %d to be ready", i), g.ready)
	}
	// Both ready endpoints of v1 answer; the one not ready never does.
	for i, g := range gws {
		seen := map[string]bool{}
		kubetest.Eventually(t, kubeWait, fmt.Sprintf("gateway %d to reach both v1 endpoints", i), func() bool {
			b, _ := backendOf(g.url + "/svc/")
			seen[b] = true
			return seen["v1-a"] && seen["v1-b"]
		})
		if seen["v2"] {
			t.Errorf("gateway %d sent to v2 with weight 0", i)
		}
	}

	// Steady traffic through both replicas until the changes are done.
	var failures atomic.Int64
	var sent atomic.Int64
	var failMsg sync.Map
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, g := range gws {
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, msg := backendOf(g.url + "/svc/"); msg != "" {
						failures.Add(1)
						failMsg.Store(msg, true)
					}
					sent.Add(1)
				}
			}()
		}
	}
	stopLoad := func() {
		close(stop)
		wg.Wait()
	}
	defer func() {
		select {
		case <-stop:
		default:
			stopLoad()
		}
	}()

	// A new GatewayRoute.
	k.apply(`
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: svc-v2, namespace: kgw}
spec: {provider: {virtualNode: {virtualNodeRef: {name: v2}}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata: {name: v2-direct, namespace: kgw}
spec:
  httpRoute:
    match: {prefix: /v2}
    action: {target: {virtualService: {virtualServiceRef: {name: svc-v2}}}}
`)
	for i, g := range gws {
		kubetest.Eventually(t, kubeWait, fmt.Sprintf("gateway %d to serve the new GatewayRoute", i), func() bool {
			b, _ := backendOf(g.url + "/v2/")
			return b == "v2"
		})
	}

	// New weights: everything to v2.
	k.apply(kgwManifests(port, ips[0], ips[1], ips[2], 0, 100))
	for i, g := range gws {
		kubetest.Eventually(t, kubeWait, fmt.Sprintf("gateway %d to follow the new weights", i), func() bool {
			for range 10 {
				if b, _ := backendOf(g.url + "/svc/"); b != "v2" {
					return false
				}
			}
			return true
		})
	}

	// Back to v1, then one of its endpoints is removed from the slice.
	k.apply(kgwManifests(port, ips[0], ips[1], ips[2], 100, 0))
	k.apply(strings.Replace(kgwManifests(port, ips[0], ips[1], ips[2], 100, 0),
		fmt.Sprintf("- {addresses: [%s], conditions: {ready: true}}\n", ips[1]), "", 1))
	for i, g := range gws {
		kubetest.Eventually(t, kubeWait, fmt.Sprintf("gateway %d to drop the removed endpoint", i), func() bool {
			var st struct {
				Config struct {
					Nodes map[string]struct {
						Endpoints []string `json:"endpoints"`
					} `json:"virtualNodes"`
				} `json:"config"`
			}
			adminJSON(t, g.admin+"/config", &st)
			eps := st.Config.Nodes["kgw/v1"].Endpoints
			return len(eps) == 1 && eps[0] == ips[0]
		})
		for range 10 {
			if b, msg := backendOf(g.url + "/svc/"); b != "v1-a" {
				t.Fatalf("gateway %d after the endpoint was removed: %q %s", i, b, msg)
			}
		}
	}
	stopLoad()
	if n := failures.Load(); n > 0 {
		var msgs []string
		failMsg.Range(func(k, _ any) bool { msgs = append(msgs, k.(string)); return true })
		t.Errorf("%d of %d requests failed during the changes: %s", n, sent.Load(), strings.Join(msgs, "; "))
	}
	if sent.Load() < 100 {
		t.Errorf("only %d requests were sent during the changes", sent.Load())
	}

	// The replicas agree.
	var configs [2]json.RawMessage
	for i, g := range gws {
		var st struct {
			Config json.RawMessage `json:"config"`
		}
		adminJSON(t, g.admin+"/config", &st)
		configs[i] = st.Config
	}
	if string(configs[0]) != string(configs[1]) {
		t.Errorf("the replicas disagree:\n%s\n%s", configs[0], configs[1])
	}
}

// TestControllerLeaderWritesStatus runs two `meshgate controller` replicas:
// one is elected, only it writes status, and when it stops the other takes
// over and keeps the status current.
func TestControllerLeaderWritesStatus(t *testing.T) {
	env := kubetest.Shared(t)
	k := newCluster(t, env.Client)
	k.apply(`
apiVersion: v1
kind: Namespace
metadata: {name: ctl}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata: {name: ctl-mesh}
spec: {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ctl}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualGateway
metadata: {name: gw, namespace: ctl}
spec:
  namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ctl}}
  listeners: [{portMapping: {port: 8080, protocol: http}}]
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata: {name: gr, namespace: ctl}
spec:
  httpRoute:
    match: {prefix: /}
    action: {target: {virtualService: {virtualServiceRef: {name: missing}}}}
`)
	type replica struct {
		writer  *kube.StatusWriter
		elected atomic.Bool
		cancel  context.CancelFunc
		done    chan error
	}
	start := func() *replica {
		r := &replica{done: make(chan error, 1)}
		ready := make(chan struct{})
		ctx, cancel := context.WithCancel(context.Background())
		r.cancel = cancel
		go func() {
			r.done <- runController(ctx, controllerOptions{
				restConfig:              env.Config,
				leaderElectionNamespace: "default",
				leaderElectionID:        "meshgate-test-controller",
				healthAddr:              "0",
				leaseDuration:           3 * time.Second,
				renewDeadline:           2 * time.Second,
				retryPeriod:             200 * time.Millisecond,
				writer:                  func(w *kube.StatusWriter) { r.writer = w; close(ready) },
				elected:                 func() { r.elected.Store(true) },
			})
		}()
		select {
		case <-ready:
		case err := <-r.done:
			t.Fatalf("controller exited: %v", err)
		}
		t.Cleanup(func() {
			r.cancel()
			select {
			case <-r.done:
			case <-time.After(kubeWait):
				t.Error("controller did not stop")
			}
		})
		return r
	}
	a, b := start(), start()
	kubetest.Eventually(t, kubeWait, "a leader", func() bool { return a.elected.Load() || b.elected.Load() })
	leader, follower := a, b
	if b.elected.Load() {
		leader, follower = b, a
	}
	if follower.elected.Load() {
		t.Fatal("both replicas lead")
	}
	kubetest.Eventually(t, kubeWait, "status on the objects", func() bool {
		vg, _ := readStatus(t, env.Client, "VirtualGateway", "ctl", "gw")
		gr, _ := readStatus(t, env.Client, "GatewayRoute", "ctl", "gr")
		return vg == "True/1" && strings.HasPrefix(gr, "False/1/VirtualServiceNotFound")
	})
	kubetest.Eventually(t, kubeWait, "the leader to count its writes", func() bool { return leader.writer.Writes() > 0 })
	if follower.writer.Writes() != 0 {
		t.Fatalf("writes: leader %d, follower %d; want only the leader's", leader.writer.Writes(), follower.writer.Writes())
	}

	// The leader stops; the other replica takes over and follows a change.
	leader.cancel()
	<-leader.done
	leader.done <- nil // for the cleanup
	kubetest.Eventually(t, kubeWait, "the other replica to lead", follower.elected.Load)
	k.apply(`
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: missing, namespace: ctl}
spec: {}
`)
	kubetest.Eventually(t, kubeWait, "the new leader to update the status", func() bool {
		gr, _ := readStatus(t, env.Client, "GatewayRoute", "ctl", "gr")
		return strings.HasPrefix(gr, "True/1")
	})
	// The API server may answer the test's read before the writer has
	// counted the patch that it acknowledged.
	kubetest.Eventually(t, kubeWait, "the new leader to count its writes", func() bool { return follower.writer.Writes() > 0 })
}

// readStatus returns "STATUS/OBSERVED/REASON" of an object's App Mesh
// condition, provided the status is current.
func readStatus(t *testing.T, c client.Client, kind, ns, name string) (string, bool) {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("appmesh.k8s.aws/v1beta2")
	u.SetKind(kind)
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		return "", false
	}
	observed, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	if observed != u.GetGeneration() {
		return "", false
	}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == kind+"Active" {
			s := fmt.Sprintf("%v/%d", m["status"], observed)
			if r, ok := m["reason"].(string); ok {
				s += "/" + r
			}
			return s, true
		}
	}
	return "", false
}
