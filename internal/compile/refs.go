package compile

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/meshgate/meshgate/api/v1beta2"
	"github.com/meshgate/meshgate/internal/resource"
)

// ref is a validated reference from one object to another, written either as
// a Kubernetes reference (namespace defaults to the referrer's) or as an App
// Mesh ARN naming the target by its awsName.
type ref struct {
	// kind is the kind of the target.
	kind string
	// field is the path of the reference field, for problems.
	field string
	// key is the target of a Kubernetes reference.
	key resource.Key
	// arn is set for an ARN reference.
	arn *arn
}

// arn is a parsed App Mesh ARN: mesh/<mesh>[@owner]/<type>/<name>.
type arn struct {
	text string
	mesh string
	typ  string
	name string
}

// String names the target in messages: "ns/name", or the ARN as written.
func (r ref) String() string {
	if r.arn != nil {
		return r.arn.text
	}
	return irName(r.key)
}

// arnTypes maps a kind to its resource type in ARNs.
var arnTypes = map[string]string{
	v1beta2.KindVirtualService: "virtualService",
	v1beta2.KindVirtualNode:    "virtualNode",
	v1beta2.KindVirtualRouter:  "virtualRouter",
	v1beta2.KindVirtualGateway: "virtualGateway",
}

var arnResource = regexp.MustCompile(`^mesh/([^/]+)/([^/]+)/([^/]+)$`)

// parseARN accepts the full form arn:<partition>:appmesh:<region>:<account>:mesh/...
// and the short form mesh/<mesh>/<type>/<name> (reference §1.8).
func parseARN(s string) (*arn, bool) {
	res := s
	if strings.HasPrefix(s, "arn:") {
		parts := strings.SplitN(s, ":", 6)
		if len(parts) != 6 || parts[2] != "appmesh" {
			return nil, false
		}
		res = parts[5]
	}
	m := arnResource.FindStringSubmatch(res)
	if m == nil {
		return nil, false
	}
	mesh, _, _ := strings.Cut(m[1], "@") // shared meshes carry @<owner>
	return &arn{text: s, mesh: mesh, typ: m[2], name: m[3]}, true
}

// parseRef validates a reference that is written as a Kubernetes reference
// (hasRef, ns, name) or an ARN. Exactly one must be given: the App Mesh
// controller silently let the ARN win when both were set.
func (c *compiler) parseRef(st *state, kind, base, refField string, hasRef bool, ns *string, name string, arnField string, arnText *string) (ref, bool) {
	typ := arnTypes[kind]
	switch {
	case hasRef && arnText != nil:
		c.invalid(st, base, fmt.Sprintf("both %s and %s are set; give only one", leaf(refField), leaf(arnField)))
		return ref{}, false
	case !hasRef && arnText == nil:
		c.invalid(st, base, fmt.Sprintf("no %s target; give %s or %s", typ, leaf(refField), leaf(arnField)))
		return ref{}, false
	case arnText != nil:
		a, ok := parseARN(*arnText)
		if !ok {
			c.invalid(st, arnField, fmt.Sprintf("%s %s is not an App Mesh ARN; expected arn:aws:appmesh:<region>:<account>:mesh/<mesh>/%s/<name> or mesh/<mesh>/%s/<name>",
				leaf(arnField), quote(*arnText), typ, typ))
			return ref{}, false
		}
		if a.typ != typ {
			c.invalid(st, arnField, fmt.Sprintf("expects %s ARN, got %s", typ, a.typ))
			return ref{}, false
		}
		return ref{kind: kind, field: arnField, arn: a}, true
	}
	nameField := c.join(refField, ".name")
	if name == "" {
		c.required(st, nameField, name, "the name of the "+typ)
		return ref{}, false
	}
	namespace := st.obj.Key.Namespace
	if ns != nil && *ns != "" {
		namespace = *ns
	}
	return ref{kind: kind, field: nameField, key: resource.Key{Kind: kind, Namespace: namespace, Name: name}}, true
}

// How a reference resolved.
type refResult int

const (
	refOK        refResult = iota
	refMissing             // no such object
	refInactive            // the object exists but is not part of the IR
	refCrossMesh           // the object is in another mesh
	refAmbiguous           // an ARN names several objects
)

// resolve finds the target of r for the referrer st.
func (c *compiler) resolve(st *state, r ref) (*state, refResult) {
	if r.arn != nil {
		return c.resolveARN(st, r)
	}
	t, ok := c.objs[r.key]
	if !ok {
		return nil, refMissing
	}
	if t.meshOK && !c.sameMesh(st.mesh, t.mesh) {
		return t, refCrossMesh
	}
	if !t.served {
		return t, refInactive
	}
	return t, refOK
}

func (c *compiler) resolveARN(st *state, r ref) (*state, refResult) {
	if !c.arnMeshMatches(st.mesh, r.arn.mesh) {
		return nil, refCrossMesh
	}
	var found []*state
	for _, k := range c.keys(r.kind) {
		t := c.objs[k]
		if t.meshOK && c.arnMeshMatches(t.mesh, r.arn.mesh) && awsName(t.obj) == r.arn.name {
			found = append(found, t)
		}
	}
	switch {
	case len(found) == 0:
		return nil, refMissing
	case len(found) > 1:
		return nil, refAmbiguous
	case !found[0].served:
		return found[0], refInactive
	}
	return found[0], refOK
}

// arnMeshMatches reports whether an object of mesh belongs to the mesh an ARN
// names (by the mesh's awsName).
func (c *compiler) arnMeshMatches(mesh, arnMesh string) bool {
	if len(c.meshes) == 0 {
		return mesh == "" || mesh == arnMesh
	}
	return c.meshAWSName(mesh) == arnMesh
}

// refProblem describes a reference that did not resolve to a usable object,
// with the reason for the referrer's status.
func (c *compiler) refProblem(st *state, r ref, t *state, res refResult) (reason, msg string) {
	typ := arnTypes[r.kind]
	switch res {
	case refMissing:
		if r.arn != nil {
			return r.kind + "NotFound", fmt.Sprintf("%s %s not found: no %s in mesh %s has awsName %s", typ, quote(r.arn.text), r.kind, r.arn.mesh, quote(r.arn.name))
		}
		return r.kind + "NotFound", fmt.Sprintf("%s %s not found", typ, r)
	case refInactive:
		return r.kind + "Inactive", fmt.Sprintf("%s %s is not active; see its status", typ, t.name())
	case refCrossMesh:
		if t == nil {
			return reasonMeshMismatch, fmt.Sprintf("%s %s is in mesh %s, not in mesh %s of %s", typ, quote(r.arn.text), r.arn.mesh, c.meshAWSName(st.mesh), st.obj.Key)
		}
		return reasonMeshMismatch, fmt.Sprintf("%s %s didn't belong to mesh %s", typ, t.name(), st.mesh)
	case refAmbiguous:
		return r.kind + "Ambiguous", fmt.Sprintf("%s %s names more than one %s in mesh %s; give %sRef instead", typ, quote(r.arn.text), r.kind, r.arn.mesh, typ)
	}
	return "", ""
}
