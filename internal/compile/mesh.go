package compile

import (
	"fmt"
	"strings"

	"github.com/meshgate/meshgate/api/v1beta2"
	"github.com/meshgate/meshgate/internal/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Condition reasons of objects that could not be placed in a mesh.
const (
	reasonMeshNotFound  = "MeshNotFound"
	reasonMeshAmbiguous = "MeshAmbiguous"
	reasonMeshInactive  = "MeshInactive"
	reasonMeshMismatch  = "MeshMismatch"
)

// validateMeshes checks every Mesh on its own (reference §1.1, §6.3).
func (c *compiler) validateMeshes() {
	each(c, v1beta2.KindMesh, func(st *state, m *v1beta2.Mesh) {
		if m.Spec.AWSName != nil && *m.Spec.AWSName != "" {
			c.length(st, "spec.awsName", *m.Spec.AWSName, 1, 255)
		}
		c.selector(st, "spec.namespaceSelector", m.Spec.NamespaceSelector)
		if ef := m.Spec.EgressFilter; ef != nil {
			c.enum(st, "spec.egressFilter.type", ef.Type, "ALLOW_ALL", "DROP_ALL")
		}
		if o := m.Spec.MeshOwner; o != nil && !isAccountID(*o) {
			c.invalid(st, "spec.meshOwner", fmt.Sprintf("meshOwner %s is not an AWS account id; give its 12 digits", quote(*o)))
		}
		// The controller dereferences a nil ipPreference when the block is
		// present but empty; here that is the same error as a wrong value.
		if sd := m.Spec.MeshServiceDiscovery; sd != nil {
			if sd.IPPreference == nil || (*sd.IPPreference != "IPv4_ONLY" && *sd.IPPreference != "IPv6_ONLY") {
				c.invalid(st, "spec.meshServiceDiscovery.ipPreference", "Only non-empty values allowed are IPv4_ONLY or IPv6_ONLY")
			}
		}
		st.served = st.ok()
	})
}

func isAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// selector checks that a label selector is well formed.
func (c *compiler) selector(st *state, field string, sel *metav1.LabelSelector) {
	if sel == nil {
		return
	}
	if _, err := metav1.LabelSelectorAsSelector(sel); err != nil {
		c.invalid(st, field, fmt.Sprintf("%s is not a valid label selector: %v", leaf(field), err))
	}
}

// meshFields returns what an object writes about its mesh: the guide's
// spec.mesh and App Mesh's spec.meshRef.
func meshFields(v any) (mesh string, ref *v1beta2.MeshReference) {
	switch o := v.(type) {
	case *v1beta2.VirtualGateway:
		return o.Spec.Mesh, o.Spec.MeshRef
	case *v1beta2.GatewayRoute:
		return o.Spec.Mesh, o.Spec.MeshRef
	case *v1beta2.VirtualService:
		return o.Spec.Mesh, o.Spec.MeshRef
	case *v1beta2.VirtualRouter:
		return o.Spec.Mesh, o.Spec.MeshRef
	case *v1beta2.VirtualNode:
		return o.Spec.Mesh, o.Spec.MeshRef
	case *v1beta2.StandaloneRoute:
		return o.Spec.Mesh, o.Spec.MeshRef
	}
	return "", nil
}

// assignMeshes places every namespaced object in a mesh (reference §1.8).
// The mesh an object names wins; otherwise the only Mesh of the input, or the
// one Mesh whose namespaceSelector selects the object's Namespace.
func (c *compiler) assignMeshes() {
	for _, kind := range []string{v1beta2.KindVirtualGateway, v1beta2.KindGatewayRoute, v1beta2.KindVirtualService,
		v1beta2.KindVirtualRouter, v1beta2.KindRoute, v1beta2.KindVirtualNode} {
		for _, st := range c.states(kind) {
			c.assignMesh(st)
		}
	}
}

func (c *compiler) assignMesh(st *state) {
	name, ref := meshFields(st.obj.Value)
	field := "spec.mesh"
	if ref != nil && ref.Name != "" {
		if name != "" && name != ref.Name {
			c.invalid(st, "spec.meshRef.name", fmt.Sprintf("meshRef.name %s and mesh %s name different meshes; give one", quote(ref.Name), quote(name)))
		}
		name, field = ref.Name, "spec.meshRef.name"
	}
	switch {
	case len(c.meshes) == 0:
		// Without any Mesh in the input the name is taken as written.
		st.mesh = name
		return
	case name != "":
		if c.meshState(name) == nil {
			st.meshOK = false
			c.reject(st, reasonMeshNotFound, field, fmt.Sprintf("mesh %s not found; the input has Mesh %s", quote(name), strings.Join(c.meshNames(), ", ")))
			return
		}
		st.mesh = name
	case len(c.meshes) == 1:
		st.mesh = c.meshes[0].obj.Key.Name
	default:
		ns := st.obj.Key.Namespace
		nsLabels := c.namespaceLabels(ns)
		var found []string
		for _, m := range c.meshes {
			sel := m.obj.Value.(*v1beta2.Mesh).Spec.NamespaceSelector
			if c.selects(sel, nsLabels) {
				found = append(found, m.obj.Key.Name)
			}
		}
		switch len(found) {
		case 1:
			st.mesh = found[0]
		case 0:
			st.meshOK = false
			c.reject(st, reasonMeshNotFound, "metadata.namespace", fmt.Sprintf("failed to find matching mesh for namespace: %s, expecting 1 but found 0", ns))
			return
		default:
			st.meshOK = false
			c.reject(st, reasonMeshAmbiguous, "metadata.namespace", fmt.Sprintf("found multiple matching meshes for namespace: %s, expecting 1 but found %d: %s", ns, len(found), strings.Join(found, ",")))
			return
		}
	}
	if m := c.meshState(st.mesh); m != nil && !m.ok() {
		c.cascade(st, reasonMeshInactive, fmt.Sprintf("mesh %s is not active; see its status", st.mesh))
	}
}

// labelCache holds what one compile made of label selectors and namespace
// labels: every GatewayRoute is matched against every VirtualGateway's
// selectors, and converting a selector costs far more than matching it.
type labelCache struct {
	selectors  map[*metav1.LabelSelector]labels.Selector
	namespaces map[string]labels.Set
}

// selects evaluates a label selector the way App Mesh does: an absent
// selector selects nothing, {} selects everything, a malformed one nothing.
func (c *compiler) selects(sel *metav1.LabelSelector, set labels.Set) bool {
	s, ok := c.labels.selectors[sel]
	if !ok {
		var err error
		if s, err = metav1.LabelSelectorAsSelector(sel); err != nil {
			s = labels.Nothing()
		}
		if c.labels.selectors == nil {
			c.labels.selectors = map[*metav1.LabelSelector]labels.Selector{}
		}
		c.labels.selectors[sel] = s
	}
	return s.Matches(set)
}

// namespaceLabels returns the labels of a Namespace. Kubernetes gives every
// namespace the label kubernetes.io/metadata.name=<name>, so a namespace the
// input does not describe still has that one. Callers must not modify it.
func (c *compiler) namespaceLabels(ns string) labels.Set {
	if l, ok := c.labels.namespaces[ns]; ok {
		return l
	}
	l := labels.Set{}
	if n, ok := c.set.Namespaces[ns]; ok {
		for k, v := range n.Labels {
			l[k] = v
		}
	}
	l["kubernetes.io/metadata.name"] = ns
	if c.labels.namespaces == nil {
		c.labels.namespaces = map[string]labels.Set{}
	}
	c.labels.namespaces[ns] = l
	return l
}

func (c *compiler) meshState(name string) *state {
	for _, m := range c.meshes {
		if m.obj.Key.Name == name {
			return m
		}
	}
	return nil
}

func (c *compiler) meshNames() []string {
	var names []string
	for _, m := range c.meshes {
		names = append(names, m.obj.Key.Name)
	}
	return names
}

// sameMesh reports whether objects of meshes a and b may refer to each
// other. Without any Mesh in the input an object that names no mesh is
// compatible with every mesh.
func (c *compiler) sameMesh(a, b string) bool {
	if len(c.meshes) == 0 && (a == "" || b == "") {
		return true
	}
	return a == b
}

// meshAWSName is the name of mesh in ARNs.
func (c *compiler) meshAWSName(mesh string) string {
	if m := c.meshState(mesh); m != nil {
		return awsName(m.obj)
	}
	return mesh
}

// awsName is the name App Mesh gives an object (reference §6.2): spec.awsName
// when set, else the Mesh's name, a VirtualService's "<name>.<namespace>" and
// every other kind's "<name>_<namespace>".
func awsName(o *resource.Object) string {
	var set *string
	switch v := o.Value.(type) {
	case *v1beta2.Mesh:
		set = v.Spec.AWSName
	case *v1beta2.VirtualGateway:
		set = v.Spec.AWSName
	case *v1beta2.GatewayRoute:
		set = v.Spec.AWSName
	case *v1beta2.VirtualService:
		set = v.Spec.AWSName
	case *v1beta2.VirtualRouter:
		set = v.Spec.AWSName
	case *v1beta2.VirtualNode:
		set = v.Spec.AWSName
	}
	if set != nil && *set != "" {
		return *set
	}
	switch o.Key.Kind {
	case v1beta2.KindMesh, v1beta2.KindRoute:
		return o.Key.Name
	case v1beta2.KindVirtualService:
		return o.Key.Name + "." + o.Key.Namespace
	}
	return o.Key.Name + "_" + o.Key.Namespace
}
