package v1beta2

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// SchemeGroupVersion is group appmesh.k8s.aws, version v1beta2.
var SchemeGroupVersion = schema.GroupVersion{Group: "appmesh.k8s.aws", Version: "v1beta2"}

var (
	// SchemeBuilder registers the kinds of this group with a scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds the kinds of this group to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(SchemeGroupVersion,
		&Mesh{}, &MeshList{},
		&VirtualGateway{}, &VirtualGatewayList{},
		&GatewayRoute{}, &GatewayRouteList{},
		&VirtualService{}, &VirtualServiceList{},
		&VirtualRouter{}, &VirtualRouterList{},
		&VirtualNode{}, &VirtualNodeList{},
	)
	// The guide's Route is served as kind Route; its Go name differs
	// because Route is already the entry type of VirtualRouter.spec.routes.
	s.AddKnownTypeWithName(SchemeGroupVersion.WithKind(KindRoute), &StandaloneRoute{})
	s.AddKnownTypeWithName(SchemeGroupVersion.WithKind(KindRoute+"List"), &StandaloneRouteList{})
	metav1.AddToGroupVersion(s, SchemeGroupVersion)
	return nil
}

// MeshList is a list of Meshes.
// +kubebuilder:object:root=true
type MeshList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Mesh `json:"items"`
}

// VirtualGatewayList is a list of VirtualGateways.
// +kubebuilder:object:root=true
type VirtualGatewayList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []VirtualGateway `json:"items"`
}

// GatewayRouteList is a list of GatewayRoutes.
// +kubebuilder:object:root=true
type GatewayRouteList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []GatewayRoute `json:"items"`
}

// VirtualServiceList is a list of VirtualServices.
// +kubebuilder:object:root=true
type VirtualServiceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []VirtualService `json:"items"`
}

// VirtualRouterList is a list of VirtualRouters.
// +kubebuilder:object:root=true
type VirtualRouterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []VirtualRouter `json:"items"`
}

// VirtualNodeList is a list of VirtualNodes.
// +kubebuilder:object:root=true
type VirtualNodeList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []VirtualNode `json:"items"`
}

// StandaloneRouteList is a list of the guide's Routes (kind RouteList).
// +kubebuilder:object:root=true
type StandaloneRouteList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []StandaloneRoute `json:"items"`
}
