package kube_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/kubetest"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// finalizersOf returns the object's finalizers, or nil and false once it is gone.
func finalizersOf(t *testing.T, c client.Client, kind, ns, name string) ([]string, bool) {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("appmesh.k8s.aws/v1beta2")
	u.SetKind(kind)
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, false
		}
		t.Fatal(err)
	}
	return u.GetFinalizers(), true
}

func waitFinalizers(t *testing.T, c client.Client, kind, ns, name string, want ...string) {
	t.Helper()
	var last []string
	what := kind + " " + ns + "/" + name + " with finalizers [" + strings.Join(want, " ") + "]"
	kubetest.Eventually(t, wait, what, func() bool {
		got, ok := finalizersOf(t, c, kind, ns, name)
		last = got
		return ok && slices.Equal(got, want)
	})
	if t.Failed() {
		t.Logf("last seen: %v", last)
	}
}

func waitGone(t *testing.T, c client.Client, kind, ns, name string) {
	t.Helper()
	kubetest.Eventually(t, wait, kind+" "+ns+"/"+name+" to be deleted", func() bool {
		_, ok := finalizersOf(t, c, kind, ns, name)
		return !ok
	})
}

func deleteObject(t *testing.T, c client.Client, kind, ns, name string) {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("appmesh.k8s.aws/v1beta2")
	u.SetKind(kind)
	u.SetNamespace(ns)
	u.SetName(name)
	if err := c.Delete(context.Background(), u); err != nil {
		t.Fatal(err)
	}
}

// TestAppMeshFinalizersReleased deletes objects that App Mesh's controller
// left its finalizers on: the leader's writer removes the AWS-resource
// finalizer at once, holds a Mesh's and a VirtualGateway's member
// finalizers while members remain, and never touches other finalizers.
func TestAppMeshFinalizersReleased(t *testing.T) {
	env := kubetest.Shared(t)
	ctx := context.Background()
	ensureNamespace(t, env.Client, "fin")
	startStatusWriter(t, env)

	const (
		resources = "finalizers.appmesh.k8s.aws/aws-appmesh-resources"
		meshes    = "finalizers.appmesh.k8s.aws/mesh-members"
		gateways  = "finalizers.appmesh.k8s.aws/virtualgateway-members"
		other     = "example.com/keep"
	)
	manifests := `
apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata:
  name: fin-mesh
  finalizers: [` + resources + `, ` + meshes + `]
spec: {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: fin}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualGateway
metadata:
  name: vg
  namespace: fin
  finalizers: [` + resources + `, ` + gateways + `]
spec:
  namespaceSelector: {}
  listeners: [{portMapping: {port: 8080, protocol: http}}]
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata:
  name: gr
  namespace: fin
  finalizers: [` + resources + `]
spec:
  httpRoute:
    match: {prefix: /}
    action: {target: {virtualService: {virtualServiceRef: {name: absent}}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata:
  name: vn
  namespace: fin
  finalizers: [` + resources + `, ` + other + `]
spec:
  listeners: [{portMapping: {port: 8080, protocol: http}}]
  serviceDiscovery: {dns: {hostname: vn.fin.svc.cluster.local}}
`
	if err := kubetest.ApplyYAML(ctx, env.Client, []byte(manifests)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Whatever a failure left behind must not hang the API server's
		// namespace: drop every finalizer and delete.
		objs, _ := kubetest.Objects([]byte(manifests))
		for _, o := range objs {
			patch := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`))
			if err := env.Client.Patch(ctx, o, patch); err != nil && !apierrors.IsNotFound(err) {
				t.Error(err)
			}
			if err := env.Client.Delete(ctx, o); err != nil && !apierrors.IsNotFound(err) {
				t.Error(err)
			}
		}
	})
	waitCondition(t, env.Client, "Mesh", "", "fin-mesh", "True", "")
	waitCondition(t, env.Client, "GatewayRoute", "fin", "gr", "False", "virtualService fin/absent not found")

	// Nothing is released before a deletion.
	if got, _ := finalizersOf(t, env.Client, "VirtualNode", "fin", "vn"); len(got) != 2 {
		t.Fatalf("VirtualNode fin/vn finalizers %v before its deletion", got)
	}

	// The Mesh keeps its member finalizer while the gateway, route and node
	// belong to it; the gateway keeps its own while its route exists.
	deleteObject(t, env.Client, "Mesh", "", "fin-mesh")
	waitFinalizers(t, env.Client, "Mesh", "", "fin-mesh", meshes)
	deleteObject(t, env.Client, "VirtualGateway", "fin", "vg")
	waitFinalizers(t, env.Client, "VirtualGateway", "fin", "vg", gateways)

	deleteObject(t, env.Client, "GatewayRoute", "fin", "gr")
	waitGone(t, env.Client, "GatewayRoute", "fin", "gr")
	waitGone(t, env.Client, "VirtualGateway", "fin", "vg")

	// Another controller's finalizer stays, so the node, and with it the
	// mesh, wait for that controller.
	deleteObject(t, env.Client, "VirtualNode", "fin", "vn")
	waitFinalizers(t, env.Client, "VirtualNode", "fin", "vn", other)
	if got, ok := finalizersOf(t, env.Client, "Mesh", "", "fin-mesh"); !ok || !slices.Equal(got, []string{meshes}) {
		t.Fatalf("Mesh fin-mesh with a member left: finalizers %v, present %v", got, ok)
	}
	vn := &unstructured.Unstructured{}
	vn.SetAPIVersion("appmesh.k8s.aws/v1beta2")
	vn.SetKind("VirtualNode")
	vn.SetNamespace("fin")
	vn.SetName("vn")
	if err := env.Client.Patch(ctx, vn, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`))); err != nil {
		t.Fatal(err)
	}
	waitGone(t, env.Client, "VirtualNode", "fin", "vn")
	waitGone(t, env.Client, "Mesh", "", "fin-mesh")
}
