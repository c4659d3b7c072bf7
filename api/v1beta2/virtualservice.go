package v1beta2

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// VirtualService is the name clients call; its provider is a VirtualNode or a VirtualRouter.
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=all
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="ARN",type="string",JSONPath=".status.virtualServiceARN",description="The AppMesh VirtualService object's Amazon Resource Name"
// +kubebuilder:printcolumn:name="AGE",type="date",JSONPath=".metadata.creationTimestamp"
type VirtualService struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              VirtualServiceSpec `json:"spec,omitempty"`
	Status            Status             `json:"status,omitempty"`
}

// VirtualServiceSpec is the desired state of a VirtualService.
// +kubebuilder:validation:XValidation:rule="(!has(oldSelf.awsName) || (has(self.awsName) && self.awsName == oldSelf.awsName)) && (!has(oldSelf.meshRef) || (has(self.meshRef) && self.meshRef == oldSelf.meshRef))",messageExpression="'VirtualService update may not change these fields: ' + (((has(oldSelf.awsName) && (!has(self.awsName) || self.awsName != oldSelf.awsName)) && (has(oldSelf.meshRef) && (!has(self.meshRef) || self.meshRef != oldSelf.meshRef))) ? 'spec.awsName,spec.meshRef' : ((has(oldSelf.awsName) && (!has(self.awsName) || self.awsName != oldSelf.awsName)) && !(has(oldSelf.meshRef) && (!has(self.meshRef) || self.meshRef != oldSelf.meshRef))) ? 'spec.awsName' : 'spec.meshRef')"
type VirtualServiceSpec struct {
	// AWSName defaults to "<name>.<namespace>"; it is the Host the gateway sends.
	// +kubebuilder:validation:MaxLength=255
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
