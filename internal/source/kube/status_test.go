package kube_test

import (
	"context"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/kubetest"
	"github.com/meshgate/meshgate/internal/source/kube"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// condition is what a test reads back of an object's status.
type condition struct {
	generation, observed int64
	condType, status     string
	reason, message      string
}

func readCondition(t *testing.T, c client.Client, kind, ns, name string) (condition, bool) {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("appmesh.k8s.aws/v1beta2")
	u.SetKind(kind)
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		if apierrors.IsNotFound(err) {
			return condition{}, false
		}
		t.Fatal(err)
	}
	got := condition{generation: u.GetGeneration()}
	got.observed, _, _ = unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == kind+"Active" {
			got.condType, _ = m["type"].(string)
			got.status, _ = m["status"].(string)
			got.reason, _ = m["reason"].(string)
			got.message, _ = m["message"].(string)
		}
	}
	return got, true
}

// waitCondition waits until the object's status is current (observed ==
// generation) and says status, with a message containing message.
func waitCondition(t *testing.T, c client.Client, kind, ns, name, status, message string) condition {
	t.Helper()
	var last condition
	kubetest.Eventually(t, wait, kind+" "+ns+"/"+name+" "+kind+"Active="+status+" "+message, func() bool {
		got, ok := readCondition(t, c, kind, ns, name)
		last = got
		return ok && got.observed == got.generation && got.status == status && strings.Contains(got.message, message)
	})
	return last
}

// TestStatusFollowsTheCluster runs the status writer on a real API server:
// every object gets observedGeneration and its App Mesh condition; a broken
// reference is False with a message that names what is missing, and turns
// True when the missing object appears; a spec change is observed; objects
// the API server stores but meshgate cannot accept are False with App
// Mesh's message.
func TestStatusFollowsTheCluster(t *testing.T) {
	env := kubetest.Shared(t)
	ctx := context.Background()
	ensureNamespace(t, env.Client, "st")
	writer := startStatusWriter(t, env)

	manifests := `
apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata: {name: st-mesh}
spec: {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: st}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualGateway
metadata: {name: vg, namespace: st}
spec:
  namespaceSelector: {}
  listeners: [{portMapping: {port: 8080, protocol: http}}]
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: vn, namespace: st}
spec:
  listeners: [{portMapping: {port: 8080, protocol: http}}]
  serviceDiscovery: {dns: {hostname: vn.st.svc.cluster.local}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata: {name: gr, namespace: st}
spec:
  httpRoute:
    match: {prefix: /}
    action: {target: {virtualService: {virtualServiceRef: {name: later}}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata: {name: two-matchers, namespace: st}
spec:
  httpRoute:
    match: {prefix: /x, headers: [{name: a, match: {exact: "1", prefix: "2"}}]}
    action: {target: {virtualService: {virtualServiceRef: {name: later}}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata: {name: not-a-scalar, namespace: st}
spec:
  httpRoute:
    match: {prefix: /y, headers: [{name: a, match: {exact: {nested: value}}}]}
    action: {target: {virtualService: {virtualServiceRef: {name: later}}}}
`
	if err := kubetest.ApplyYAML(ctx, env.Client, []byte(manifests)); err != nil {
		t.Fatal(err)
	}
	objs, _ := kubetest.Objects([]byte(manifests))
	t.Cleanup(func() {
		for _, o := range append(objs, laterService()) {
			if err := env.Client.Delete(ctx, o); err != nil && !apierrors.IsNotFound(err) {
				t.Error(err)
			}
		}
	})

	waitCondition(t, env.Client, "Mesh", "", "st-mesh", "True", "")
	waitCondition(t, env.Client, "VirtualGateway", "st", "vg", "True", "")
	waitCondition(t, env.Client, "VirtualNode", "st", "vn", "True", "")
	got := waitCondition(t, env.Client, "GatewayRoute", "st", "gr", "False", "virtualService st/later not found")
	if got.reason != "VirtualServiceNotFound" || got.observed != 1 {
		t.Errorf("GatewayRoute st/gr: %+v", got)
	}
	waitCondition(t, env.Client, "GatewayRoute", "st", "two-matchers", "False", "Too many Match Filters specified, only 1 allowed per header")
	got = waitCondition(t, env.Client, "GatewayRoute", "st", "not-a-scalar", "False", "spec.httpRoute.match.headers[0].match.exact")
	if got.reason != "Invalid" {
		t.Errorf("GatewayRoute st/not-a-scalar: %+v", got)
	}

	// The missing reference appears: the route recovers.
	if err := kubetest.Apply(ctx, env.Client, laterService()); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, env.Client, "VirtualService", "st", "later", "True", "")
	got = waitCondition(t, env.Client, "GatewayRoute", "st", "gr", "True", "")
	if got.reason != "" {
		t.Errorf("GatewayRoute st/gr after recovery: %+v", got)
	}

	// A spec change is observed at its new generation.
	gr := objs[3]
	unstructured.SetNestedField(gr.Object, int64(5), "spec", "priority")
	if err := kubetest.Apply(ctx, env.Client, gr); err != nil {
		t.Fatal(err)
	}
	got = waitCondition(t, env.Client, "GatewayRoute", "st", "gr", "True", "")
	if got.generation != 2 || got.observed != 2 {
		t.Errorf("GatewayRoute st/gr after an edit: %+v", got)
	}
	if writer.Writes() == 0 {
		t.Error("the writer counted no writes")
	}
}

func laterService() *unstructured.Unstructured {
	objs, err := kubetest.Objects([]byte(`
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: later, namespace: st}
spec: {provider: {virtualNode: {virtualNodeRef: {name: vn}}}}
`))
	if err != nil {
		panic(err)
	}
	return objs[0]
}

// startStatusWriter runs a status writer fed by a watch of env until the
// test ends, as the leader runs it.
func startStatusWriter(t *testing.T, env *kubetest.Env) *kube.StatusWriter {
	t.Helper()
	writer := kube.NewStatusWriter(env.Client, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- writer.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	watch(t, env, writer.Update)
	return writer
}
