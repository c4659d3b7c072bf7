package v1beta2

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// Mesh is cluster-scoped: the boundary of a service mesh.
type Mesh struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              MeshSpec `json:"spec,omitempty"`
	Status            Status   `json:"status,omitempty"`
}

// MeshSpec is the desired state of a Mesh.
type MeshSpec struct {
	AWSName *string `json:"awsName,omitempty"`
	// NamespaceSelector selects member namespaces; absent selects none, {} all.
	NamespaceSelector    *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	EgressFilter         *EgressFilter         `json:"egressFilter,omitempty"`
	MeshOwner            *string               `json:"meshOwner,omitempty"`
	MeshServiceDiscovery *MeshServiceDiscovery `json:"meshServiceDiscovery,omitempty"`
}

// EgressFilter is ALLOW_ALL or DROP_ALL.
type EgressFilter struct {
	Type string `json:"type"`
}

// MeshServiceDiscovery holds the mesh's IP preference.
type MeshServiceDiscovery struct {
	IPPreference *string `json:"ipPreference,omitempty"`
}
