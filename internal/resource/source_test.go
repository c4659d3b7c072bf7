package resource

import (
	"reflect"
	"testing"
)

func TestSourceDecodesTheSameObjects(t *testing.T) {
	for name, input := range map[string]string{
		"fast path": gatewayRouteHead + "  httpRoute:\n    match: {prefix: /a}\n    action: {target: {virtualService: {virtualServiceRef: {name: s}}}}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n",
		"library":   gatewayRouteHead + "  httpRoute: &r\n    match: {prefix: /a}\n    action: {target: {virtualService: {virtualServiceRef: {name: s}}}}\n",
	} {
		t.Run(name, func(t *testing.T) {
			s := NewSet()
			s.AddFile("f.yaml", []byte(input))
			o := s.Objects[Key{"GatewayRoute", "demo", "gr"}]
			if o == nil || o.Source() == nil || o.Source().File != "f.yaml" {
				t.Fatalf("object %+v", o)
			}
			again := o.Source().Decode()
			if !reflect.DeepEqual(again, s) {
				t.Errorf("decoded again:\n%+v\nfirst:\n%+v", again, s)
			}
			if again.Objects[o.Key].Source() != o.Source() {
				t.Errorf("the objects decoded again refer to another Source")
			}
		})
	}
	s := NewSet()
	s.AddFile("", []byte(gatewayRouteHead))
	for _, o := range s.Objects {
		if o.Source() != nil {
			t.Errorf("an object without a file has a Source")
		}
	}
}
