// Package resource owns the input of the pipeline: the set of App Mesh objects
// (and the Namespaces and endpoints discovery needs) that every source
// produces, the manifest decoder that keeps file and line for each field, and
// the apply-order merge that makes a later document replace an earlier one.
package resource

import (
	"fmt"
	"slices"
	"strings"

	"github.com/meshgate/meshgate/api/v1beta2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Key identifies an object as kubectl does: kind, namespace, name. Mesh is
// cluster-scoped, so its Namespace is empty.
type Key struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// String is "Kind namespace/name" ("Kind name" when cluster-scoped).
func (k Key) String() string {
	if k.Namespace == "" {
		return k.Kind + " " + k.Name
	}
	return k.Kind + " " + k.Namespace + "/" + k.Name
}

// Origin is where an object was written: file, the line of its document, and
// the line of each field by JSON path ("spec.httpRoute.match.prefix",
// list items as "spec.listeners[0].portMapping.port").
type Origin struct {
	File   string         `json:"file,omitempty"`
	Line   int            `json:"line,omitempty"`
	Fields map[string]int `json:"-"`
}

// LineOf returns the line of the field at path, or of its nearest written
// parent, or of the document.
func (o Origin) LineOf(path string) int {
	for p := path; p != ""; p = parent(p) {
		if l, ok := o.Fields[p]; ok {
			return l
		}
	}
	return o.Line
}

func parent(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		switch path[i] {
		case '.':
			return path[:i]
		case '[':
			return path[:i]
		}
	}
	return ""
}

// Problem is one thing wrong with the input, said the way `check` prints it.
type Problem struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Key     Key    `json:"object"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// String is "FILE:LINE: Kind namespace/name: field: message".
func (p Problem) String() string {
	s := ""
	if p.File != "" {
		s = fmt.Sprintf("%s:%d: ", p.File, p.Line)
	}
	if p.Key.Kind != "" {
		s += p.Key.String() + ": "
	}
	if p.Field != "" {
		s += p.Field + ": "
	}
	return s + p.Message
}

// Object is one decoded App Mesh object and where it came from. Value is a
// pointer to one of the v1beta2 kinds (*v1beta2.Mesh, ..., *v1beta2.StandaloneRoute).
type Object struct {
	Key    Key
	Origin Origin
	Value  any

	src *Source
}

// Namespace is what compile needs of a Kubernetes Namespace: its labels.
type Namespace struct {
	Name   string
	Labels map[string]string
}

// Set is the whole input of compile. Sources build it; nothing mutates it after.
type Set struct {
	// Objects holds every App Mesh object that decoded, by key.
	Objects map[Key]*Object
	// Namespaces holds the Namespace objects of the input, by name.
	Namespaces map[string]Namespace
	// Endpoints maps a VirtualNode's DNS hostname to fixed endpoints, each
	// "IP:PORT" or a bare IP called at the port of the node listener in use
	// (from --resolve, or from EndpointSlices in a cluster). A hostname not
	// in the map is resolved with DNS at serve time.
	Endpoints map[string][]string
	// Problems are documents that could not be decoded at all; compile
	// reports them with its own.
	Problems []Problem
	// Skipped notes non-App-Mesh documents that were left out, one line each.
	Skipped []string

	journal *journal // while AddFile may have to undo its changes
}

// NewSet returns an empty Set.
func NewSet() *Set {
	return &Set{Objects: map[Key]*Object{}, Namespaces: map[string]Namespace{}, Endpoints: map[string][]string{}}
}

// Keys returns the keys of the objects of one kind, sorted by namespace and name.
func (s *Set) Keys(kind string) []Key {
	var keys []Key
	for k := range s.Objects {
		if k.Kind == kind {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b Key) int {
		if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return keys
}

// Meta returns the ObjectMeta of any v1beta2 object value.
func Meta(v any) *metav1.ObjectMeta {
	switch o := v.(type) {
	case *v1beta2.Mesh:
		return &o.ObjectMeta
	case *v1beta2.VirtualGateway:
		return &o.ObjectMeta
	case *v1beta2.GatewayRoute:
		return &o.ObjectMeta
	case *v1beta2.VirtualService:
		return &o.ObjectMeta
	case *v1beta2.VirtualRouter:
		return &o.ObjectMeta
	case *v1beta2.VirtualNode:
		return &o.ObjectMeta
	case *v1beta2.StandaloneRoute:
		return &o.ObjectMeta
	}
	return nil
}
