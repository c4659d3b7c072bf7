// Package v1beta2 holds the App Mesh resource types of group appmesh.k8s.aws,
// version v1beta2, with the field names of the App Mesh controller for
// Kubernetes, so manifests written for App Mesh decode unchanged.
//
// A few fields exist only to accept the simpler forms of the guide the project
// was founded on (spec.mesh as a plain name, GatewayRoute spec.virtualGateway,
// the standalone Route kind); each is marked "Guide form".
//
// The kubebuilder markers give the CRDs of config/crd (`make generate`) App
// Mesh's schema bounds (appmesh-behaviour.md §1) and, as CEL rules, the App
// Mesh webhook rules that CEL can express, with the webhook's messages (§6.3,
// §6.4), so that the API server rejects what App Mesh rejected.
//
// +kubebuilder:object:generate=true
// +groupName=appmesh.k8s.aws
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
