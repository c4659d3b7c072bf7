package v1beta2

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// Mesh is cluster-scoped: the boundary of a service mesh.
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,categories=all
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="ARN",type="string",JSONPath=".status.meshARN",description="The AppMesh Mesh object's Amazon Resource Name"
// +kubebuilder:printcolumn:name="AGE",type="date",JSONPath=".metadata.creationTimestamp"
type Mesh struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              MeshSpec `json:"spec,omitempty"`
	Status            Status   `json:"status,omitempty"`
}

// MeshSpec is the desired state of a Mesh.
// +kubebuilder:validation:XValidation:rule="(!has(oldSelf.awsName) || (has(self.awsName) && self.awsName == oldSelf.awsName))",messageExpression="'Mesh update may not change these fields: ' + ('spec.awsName')"
type MeshSpec struct {
	// +kubebuilder:validation:MaxLength=255
	AWSName *string `json:"awsName,omitempty"`
	// NamespaceSelector selects member namespaces; absent selects none, {} all.
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	EgressFilter      *EgressFilter         `json:"egressFilter,omitempty"`
	// +kubebuilder:validation:Pattern=`^[0-9]{12}$`
	MeshOwner            *string               `json:"meshOwner,omitempty"`
	MeshServiceDiscovery *MeshServiceDiscovery `json:"meshServiceDiscovery,omitempty"`
}

// EgressFilter is ALLOW_ALL or DROP_ALL.
type EgressFilter struct {
	// +kubebuilder:validation:Enum=ALLOW_ALL;DROP_ALL
	Type string `json:"type"`
}

// MeshServiceDiscovery holds the mesh's IP preference. An empty block gets
// the webhook's message (App Mesh's validator dereferenced nil there).
// +kubebuilder:validation:XValidation:rule="has(self.ipPreference)",message="Only non-empty values allowed are IPv4_ONLY or IPv6_ONLY"
type MeshServiceDiscovery struct {
	// +kubebuilder:validation:Enum=IPv6_ONLY;IPv4_ONLY
	IPPreference *string `json:"ipPreference,omitempty"`
}
