// Package v1beta2 holds the App Mesh resource types of group appmesh.k8s.aws,
// version v1beta2, with the field names of the App Mesh controller for
// Kubernetes, so manifests written for App Mesh decode unchanged.
//
// A few fields exist only to accept the simpler forms of the guide the project
// was founded on (spec.mesh as a plain name, GatewayRoute spec.virtualGateway,
// the standalone Route kind); each is marked "Guide form".
package v1beta2

// GroupVersion is the apiVersion every App Mesh manifest carries.
const GroupVersion = "appmesh.k8s.aws/v1beta2"

// The kinds of this group, as written in manifests.
const (
	KindMesh           = "Mesh"
	KindVirtualGateway = "VirtualGateway"
	KindGatewayRoute   = "GatewayRoute"
	KindVirtualService = "VirtualService"
	KindVirtualRouter  = "VirtualRouter"
	KindVirtualNode    = "VirtualNode"
	// KindRoute is the guide's standalone route: one entry of a
	// VirtualRouter's spec.routes written as its own object.
	KindRoute = "Route"
)
