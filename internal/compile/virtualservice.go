package compile

import (
	"fmt"
	"strings"

	"github.com/meshgate/meshgate/api/v1beta2"
	"github.com/meshgate/meshgate/internal/ir"
)

// validateServices checks every VirtualService on its own (reference §1.4)
// and reads its provider reference.
func (c *compiler) validateServices() {
	each(c, v1beta2.KindVirtualService, func(st *state, vs *v1beta2.VirtualService) {
		c.awsNameLength(st, vs.Spec.AWSName)
		p := vs.Spec.Provider
		if p == nil {
			return
		}
		const f = "spec.provider"
		switch c.one(st, f, "virtualNode", p.VirtualNode, "virtualRouter", p.VirtualRouter) {
		case "virtualNode":
			n := p.VirtualNode
			var ns *string
			name := ""
			if n.VirtualNodeRef != nil {
				ns, name = n.VirtualNodeRef.Namespace, n.VirtualNodeRef.Name
			}
			r, ok := c.parseRef(st, v1beta2.KindVirtualNode, f+".virtualNode", f+".virtualNode.virtualNodeRef", n.VirtualNodeRef != nil, ns, name,
				f+".virtualNode.virtualNodeARN", n.VirtualNodeARN)
			if ok {
				st.data = &r
			}
		case "virtualRouter":
			n := p.VirtualRouter
			var ns *string
			name := ""
			if n.VirtualRouterRef != nil {
				ns, name = n.VirtualRouterRef.Namespace, n.VirtualRouterRef.Name
			}
			r, ok := c.parseRef(st, v1beta2.KindVirtualRouter, f+".virtualRouter", f+".virtualRouter.virtualRouterRef", n.VirtualRouterRef != nil, ns, name,
				f+".virtualRouter.virtualRouterARN", n.VirtualRouterARN)
			if ok {
				st.data = &r
			}
		}
	})
}

// buildServices puts every valid VirtualService in the IR with its awsName
// as the Host the gateway sends. A missing or inactive provider keeps the
// service (requests to it get 503 naming the provider); a provider in another
// mesh rejects it.
func (c *compiler) buildServices() {
	each(c, v1beta2.KindVirtualService, func(st *state, vs *v1beta2.VirtualService) {
		if !st.ok() {
			return
		}
		svc := &ir.VirtualService{Name: st.name(), Hostname: awsName(st.obj)}
		if (vs.Spec.AWSName == nil || *vs.Spec.AWSName == "") && strings.Contains(st.obj.Key.Name, ".") {
			// Users often name the service after its DNS name; App Mesh
			// still appends the namespace, and that is the Host sent.
			st.note(fmt.Sprintf("awsName defaults to %s (App Mesh's <name>.<namespace>), the Host the gateway sends; set spec.awsName: %s to send the name as written",
				quote(svc.Hostname), st.obj.Key.Name))
		}
		if r, ok := st.data.(*ref); ok {
			name := r.String()
			t, res := c.resolve(st, *r)
			if t != nil {
				name = t.name()
			}
			if res != refOK {
				reason, msg := c.refProblem(st, *r, t, res)
				if res == refCrossMesh || res == refAmbiguous {
					c.reject(st, reason, r.field, msg)
					return
				}
				c.fail(st, reason, r.field, msg)
			}
			if r.kind == v1beta2.KindVirtualNode {
				svc.Node = name
			} else {
				svc.Router = name
			}
		} else if vs.Spec.Provider == nil {
			st.note("spec.provider is not set: requests to this service get 503 until it names a virtualNode or virtualRouter")
		}
		st.served = true
		c.cfg.Services[svc.Name] = svc
	})
}
