package resource

import (
	"os"
	"testing"
)

func FuzzAddFile(f *testing.F) {
	for _, file := range seedFiles(f) {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"---\n---\n",
		"apiVersion: v1\nkind: List\nitems: [{apiVersion: v1, kind: List, items: [*x]}]\n",
		"apiVersion: v1\nkind: List\nitems: &i [{apiVersion: v1, kind: List, items: *i}]\n",
		"a: &a [*a]\n",
		"apiVersion: appmesh.k8s.aws/v1beta2\nkind: Mesh\nmetadata: {name: m}\nspec: {<<: [{egressFilter: {type: 1}}, 3]}\n",
		"apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualNode\nmetadata:\n  name: vn\n  creationTimestamp: 2024-01-01\nspec:\n  listeners:\n    - portMapping: {port: 0x1F, protocol: !!binary aGk=}\n",
		"{\"apiVersion\": \"appmesh.k8s.aws/v1beta2\", \"kind\": \"Route\", \"metadata\": {\"name\": \"r\"}, \"spec\": {\"priority\": 1e3}}",
		"apiVersion: appmesh.k8s.aws/v1beta2\nkind: GatewayRoute\nmetadata: {name: g}\nspec:\n  httpRoute:\n    match:\n      prefix: [\n",
		"? [a]\n: b\n",
		"apiVersion: v1\nkind: Namespace\nmetadata: {name: n, labels: {? {a: b} : c}}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := NewSet()
		s.AddFile("f.yaml", data)
		for _, p := range s.Problems {
			if p.Line < 0 {
				t.Errorf("problem with negative line: %v", p)
			}
			_ = p.String()
		}
		for k, o := range s.Objects {
			m := Meta(o.Value)
			if m == nil || o.Key != k || m.Name != k.Name || m.Namespace != k.Namespace || k.Name == "" {
				t.Errorf("object %v: key %v, value %#v", k, o.Key, o.Value)
			}
		}
	})
}
