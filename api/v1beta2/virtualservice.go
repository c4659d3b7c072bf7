package v1beta2

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// VirtualService is the name clients call; its provider is a VirtualNode or a VirtualRouter.
type VirtualService struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              VirtualServiceSpec `json:"spec,omitempty"`
	Status            Status             `json:"status,omitempty"`
}

// VirtualServiceSpec is the desired state of a VirtualService.
type VirtualServiceSpec struct {
	// AWSName defaults to "<name>.<namespace>"; it is the Host the gateway sends.
	AWSName  *string                 `json:"awsName,omitempty"`
	Provider *VirtualServiceProvider `json:"provider,omitempty"`
	MeshRef  *MeshReference          `json:"meshRef,omitempty"`
	// Mesh is the guide form of MeshRef: a plain mesh name.
	Mesh string `json:"mesh,omitempty"`
}

// VirtualServiceProvider is a union: one of virtualNode, virtualRouter.
type VirtualServiceProvider struct {
	VirtualNode   *VirtualNodeServiceProvider   `json:"virtualNode,omitempty"`
	VirtualRouter *VirtualRouterServiceProvider `json:"virtualRouter,omitempty"`
}

// VirtualNodeServiceProvider serves a VirtualService from one VirtualNode.
type VirtualNodeServiceProvider struct {
	VirtualNodeRef *VirtualNodeReference `json:"virtualNodeRef,omitempty"`
	VirtualNodeARN *string               `json:"virtualNodeARN,omitempty"`
}

// VirtualRouterServiceProvider serves a VirtualService through a VirtualRouter.
type VirtualRouterServiceProvider struct {
	VirtualRouterRef *VirtualRouterReference `json:"virtualRouterRef,omitempty"`
	VirtualRouterARN *string                 `json:"virtualRouterARN,omitempty"`
}
