package xds

import (
	"fmt"
	"strings"
)

// Kinds of App Mesh objects an xDS client can be.
const (
	KindGateway = "virtualGateway"
	KindNode    = "virtualNode"
)

// NodeRef is what an xDS node id names: an App Mesh VirtualGateway or
// VirtualNode of a mesh.
type NodeRef struct {
	Mesh string
	Kind string // KindGateway or KindNode
	// Name is the object's App Mesh name: its awsName, or "namespace/name".
	Name string
}

// ParseNodeID reads the node id the App Mesh Envoy image sends (reference
// §7): "mesh/<mesh>/virtualGateway/<name>" or ".../virtualNode/<name>", or a
// full ARN "arn:aws:appmesh:<region>:<account>:mesh/...". A shared mesh is
// written "<mesh>@<owner>"; the owner is dropped. A name may also be
// "namespace/name", which the short form then carries as two segments.
func ParseNodeID(id string) (NodeRef, error) {
	s := id
	if strings.HasPrefix(s, "arn:") {
		parts := strings.SplitN(s, ":", 6)
		if len(parts) != 6 || parts[2] != "appmesh" {
			return NodeRef{}, fmt.Errorf("node id %q: not an App Mesh ARN", id)
		}
		s = parts[5]
	}
	parts := strings.Split(s, "/")
	if len(parts) < 4 || len(parts) > 5 || parts[0] != "mesh" || parts[1] == "" {
		return NodeRef{}, fmt.Errorf("node id %q: want mesh/<mesh>/virtualGateway/<name> or mesh/<mesh>/virtualNode/<name>", id)
	}
	mesh, _, _ := strings.Cut(parts[1], "@")
	kind := parts[2]
	if kind != KindGateway && kind != KindNode {
		return NodeRef{}, fmt.Errorf("node id %q: kind %q is neither %s nor %s", id, kind, KindGateway, KindNode)
	}
	name := strings.Join(parts[3:], "/")
	for _, p := range parts[3:] {
		if p == "" {
			return NodeRef{}, fmt.Errorf("node id %q: empty name", id)
		}
	}
	return NodeRef{Mesh: mesh, Kind: kind, Name: name}, nil
}

// Key is the snapshot key of an IR object: "<kind>/<namespace>/<name>".
func Key(kind, irName string) string { return kind + "/" + irName }
