package kube

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/meshgate/meshgate/api/v1beta2"
	"github.com/meshgate/meshgate/internal/ir"
	"github.com/meshgate/meshgate/internal/resource"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// App Mesh's controller put these finalizers on the objects it managed
// (appmesh-behaviour.md §1.8). Once meshgate replaces it, nothing else
// would ever remove them and deleting such an object would hang, so the
// leader removes them the way App Mesh did: the AWS-resource finalizer at
// once (meshgate owns nothing outside the cluster), the member finalizers
// of a Mesh and a VirtualGateway only when nothing belongs to them any more.
const (
	finalizerResources      = "finalizers.appmesh.k8s.aws/aws-appmesh-resources"
	finalizerMeshMembers    = "finalizers.appmesh.k8s.aws/mesh-members"
	finalizerGatewayMembers = "finalizers.appmesh.k8s.aws/virtualgateway-members"
)

// memberCounts says, per Mesh name and per VirtualGateway "namespace/name",
// how many objects still belong to it.
type memberCounts struct {
	mesh    map[string]int
	gateway map[string]int
}

func countMembers(statuses []ir.ObjectStatus) memberCounts {
	m := memberCounts{mesh: map[string]int{}, gateway: map[string]int{}}
	for _, st := range statuses {
		switch st.Kind {
		case v1beta2.KindMesh, v1beta2.KindRoute:
			// A Route is part of its VirtualRouter, which is counted.
			continue
		}
		if st.Mesh != "" {
			m.mesh[st.Mesh]++
		}
		if st.Kind == v1beta2.KindGatewayRoute && st.Gateway != "" {
			m.gateway[st.Gateway]++
		}
	}
	return m
}

// releasable returns the finalizers of u that may go now, given members.
func releasable(k resource.Key, u *unstructured.Unstructured, members memberCounts) []string {
	var out []string
	for _, f := range u.GetFinalizers() {
		switch {
		case f == finalizerResources,
			f == finalizerMeshMembers && k.Kind == v1beta2.KindMesh && members.mesh[k.Name] == 0,
			f == finalizerGatewayMembers && k.Kind == v1beta2.KindVirtualGateway && members.gateway[k.Namespace+"/"+k.Name] == 0:
			out = append(out, f)
		}
	}
	return out
}

// releaseFinalizers removes App Mesh's finalizers from the objects being
// deleted, as far as their members allow; it reports whether a patch
// failed for a reason other than a conflict or the object being gone.
func (w *StatusWriter) releaseFinalizers(ctx context.Context, snap *Snapshot, statuses []ir.ObjectStatus) (failed bool) {
	var members *memberCounts
	for k, u := range snap.Objects {
		if u.GetDeletionTimestamp() == nil || !slices.ContainsFunc(u.GetFinalizers(), isAppMeshFinalizer) {
			continue
		}
		if members == nil {
			m := countMembers(statuses)
			members = &m
		}
		drop := releasable(k, u, *members)
		if len(drop) == 0 {
			w.log.Info("deletion waits for members", "object", k.String(), "finalizers", u.GetFinalizers())
			continue
		}
		keep := slices.DeleteFunc(slices.Clone(u.GetFinalizers()), func(f string) bool { return slices.Contains(drop, f) })
		if err := w.patchFinalizers(ctx, u, keep); err != nil {
			if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
				continue
			}
			w.log.Error("removing App Mesh finalizers failed", "object", k.String(), "err", err)
			failed = true
			continue
		}
		w.log.Info("removed App Mesh finalizers", "object", k.String(), "finalizers", drop)
	}
	return failed
}

func isAppMeshFinalizer(f string) bool { return strings.HasPrefix(f, "finalizers.appmesh.k8s.aws/") }

// patchFinalizers sets u's finalizers to keep with a merge patch that
// carries the resourceVersion it was computed from, so that a finalizer
// another controller added meanwhile is never dropped.
func (w *StatusWriter) patchFinalizers(ctx context.Context, u *unstructured.Unstructured, keep []string) error {
	if keep == nil {
		keep = []string{}
	}
	body, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": u.GetResourceVersion(), "finalizers": keep},
	})
	if err != nil {
		return err
	}
	target := &unstructured.Unstructured{}
	target.SetGroupVersionKind(u.GroupVersionKind())
	target.SetNamespace(u.GetNamespace())
	target.SetName(u.GetName())
	return w.client.Patch(ctx, target, client.RawPatch(types.MergePatchType, body), client.FieldOwner(FieldOwner))
}
