// Package compile owns turning the input set (resource.Set) into the routing
// table (ir.Config) and one status per input object.
//
// Compile is a pure, deterministic function made of ordered passes, one file
// per kind:
//
//  1. every object is validated on its own (bounds, enums, unions, regular
//     expressions, and the App Mesh controller's webhook rules with its
//     exact messages);
//  2. every namespaced object is placed in a mesh (mesh.go);
//  3. objects are built in dependency order: virtual nodes and their
//     endpoints, virtual routers and their routes, virtual services,
//     virtual gateways and their listeners, gateway routes.
//
// An object with a validation error is rejected whole: it gets an inactive
// status and is left out of the IR, and everything else still compiles. A
// reference to an object that is missing (or rejected) does not remove the
// referrer: a GatewayRoute whose VirtualService is missing stays in its
// listener's route table so that the requests it matches get a 503 that names
// the missing service instead of falling through to a less specific route.
//
// Standalone behaviour that App Mesh never had to define:
//   - With no Mesh object in the input, objects are accepted and keep the
//     mesh name they write (spec.mesh or spec.meshRef.name, possibly empty);
//     an object that names no mesh is then compatible with every mesh.
//   - With exactly one Mesh, objects that name no mesh belong to it; with
//     several, each Mesh's namespaceSelector is evaluated against the labels
//     of the object's Namespace, as the App Mesh controller does.
package compile

import (
	"cmp"
	"slices"
	"strings"

	"github.com/meshgate/meshgate/api/v1beta2"
	"github.com/meshgate/meshgate/internal/ir"
	"github.com/meshgate/meshgate/internal/resource"
)

// Compile turns set into the routing table and reports every problem of the
// input: the set's own decode problems and everything compile found, sorted by
// file, line and message. The returned config always passes ir.Config.Validate
// and holds exactly one status per input object.
func Compile(set *resource.Set) (*ir.Config, []resource.Problem) {
	c := newCompiler(set)
	c.validateMeshes()
	c.validateGateways()
	c.validateGatewayRoutes()
	c.validateServices()
	c.validateRouters()
	c.validateRoutes()
	c.validateNodes()
	c.assignMeshes()
	c.buildNodes()
	c.buildRouters()
	c.buildServices()
	c.buildGateways()
	c.buildGatewayRoutes()
	return c.finish()
}

// compiler holds the state of one Compile call.
type compiler struct {
	set *resource.Set
	// objs holds the compile state of every input object.
	objs map[resource.Key]*state
	// meshes are the Mesh objects of the input, sorted by name.
	meshes []*state
	cfg    *ir.Config
	// problems are compile's own problems, in the order found.
	problems []resource.Problem
	// byKind holds the sorted keys of each kind, computed once: passes ask
	// for them per object, and recomputing would make compile quadratic.
	byKind map[string][]resource.Key
	// labels memoizes label selectors and namespace labels (mesh.go).
	labels labelCache
}

// keys returns the keys of the objects of kind, sorted by namespace and name.
func (c *compiler) keys(kind string) []resource.Key {
	if ks, ok := c.byKind[kind]; ok {
		return ks
	}
	if c.byKind == nil {
		c.byKind = map[string][]resource.Key{}
	}
	ks := c.set.Keys(kind)
	c.byKind[kind] = ks
	return ks
}

// state is what compile knows about one input object.
type state struct {
	obj *resource.Object
	// mesh is the name of the Mesh the object belongs to ("" when the input
	// has no Mesh and the object names none); meshOK is false when no mesh
	// could be designated.
	mesh   string
	meshOK bool
	// reason is empty while the object is active; otherwise the status reason.
	reason string
	// rejected is true when the object is left out of the IR: it is invalid,
	// is in no usable mesh, or refers across meshes.
	rejected bool
	// message overrides the joined problems as the status message of an
	// inactive object (used when the cause is another object's problem).
	message string
	// problems are this object's problems, in the order found.
	problems []resource.Problem
	// notes are informational messages for an active object.
	notes []string
	// served is true once the object is part of the IR.
	served bool
	// data is what validation compiled for the build pass of its kind.
	data any
	// gateway is, for a GatewayRoute, the VirtualGateway it names or the
	// only one that selects it, whether or not it could bind.
	gateway string
}

func newCompiler(set *resource.Set) *compiler {
	c := &compiler{
		set:  set,
		objs: make(map[resource.Key]*state, len(set.Objects)),
		cfg: &ir.Config{
			Gateways: []*ir.Gateway{},
			Services: map[string]*ir.VirtualService{},
			Routers:  map[string]*ir.VirtualRouter{},
			Nodes:    map[string]*ir.VirtualNode{},
			Statuses: []ir.ObjectStatus{},
		},
	}
	states := make([]state, 0, len(set.Objects))
	for k, o := range set.Objects {
		states = append(states, state{obj: o, meshOK: true})
		c.objs[k] = &states[len(states)-1]
	}
	for _, k := range set.Keys(v1beta2.KindMesh) {
		c.meshes = append(c.meshes, c.objs[k])
	}
	return c
}

// each calls f for every object of kind whose Value has type T, in key order.
func each[T any](c *compiler, kind string, f func(st *state, v *T)) {
	for _, k := range c.keys(kind) {
		st := c.objs[k]
		if v, ok := st.obj.Value.(*T); ok {
			f(st, v)
		}
	}
}

// invalid records a validation problem: the object is rejected whole.
func (c *compiler) invalid(st *state, field, msg string) {
	c.reject(st, "Invalid", field, msg)
}

// reject records a problem that leaves the object out of the IR, with reason
// as its status reason unless it was already rejected for another.
func (c *compiler) reject(st *state, reason, field, msg string) {
	c.problem(st, field, msg)
	if !st.rejected {
		st.rejected = true
		st.reason = reason
	}
}

// fail records a problem that makes the object inactive for reason (unless it
// is already inactive) while it stays in the IR: a dangling reference.
func (c *compiler) fail(st *state, reason, field, msg string) {
	c.problem(st, field, msg)
	if st.reason == "" {
		st.reason = reason
	}
}

// problem records a problem of st's object at field without changing its state.
func (c *compiler) problem(st *state, field, msg string) {
	p := resource.Problem{
		File:    st.obj.Origin.File,
		Line:    st.obj.Origin.LineOf(field),
		Key:     st.obj.Key,
		Field:   field,
		Message: msg,
	}
	st.problems = append(st.problems, p)
	c.problems = append(c.problems, p)
}

// cascade rejects st because of another object, without a problem of its
// own: the cause is reported on the object that has it.
func (c *compiler) cascade(st *state, reason, msg string) {
	if !st.rejected {
		st.rejected = true
		st.reason = reason
		st.message = msg
	}
}

// note adds an informational message to an object's status.
func (st *state) note(msg string) {
	st.notes = append(st.notes, msg)
}

// ok reports whether the object may still go into the IR.
func (st *state) ok() bool { return !st.rejected }

// name is the object's "namespace/name" as used in the IR.
func (st *state) name() string { return irName(st.obj.Key) }

func irName(k resource.Key) string {
	if k.Namespace == "" {
		return k.Name
	}
	return k.Namespace + "/" + k.Name
}

// finish builds the statuses and sorts the problems.
func (c *compiler) finish() (*ir.Config, []resource.Problem) {
	// Statuses go by kind, namespace and name; keys has sorted each kind.
	var kinds []string
	for k := range c.objs {
		if !slices.Contains(kinds, k.Kind) {
			kinds = append(kinds, k.Kind)
		}
	}
	slices.Sort(kinds)
	keys := make([]resource.Key, 0, len(c.objs))
	for _, kind := range kinds {
		keys = append(keys, c.keys(kind)...)
	}
	c.cfg.Statuses = slices.Grow(c.cfg.Statuses, len(keys))
	for _, k := range keys {
		st := c.objs[k]
		s := ir.ObjectStatus{
			Kind:      k.Kind,
			Namespace: k.Namespace,
			Name:      k.Name,
			File:      st.obj.Origin.File,
			Line:      st.obj.Origin.Line,
			Condition: condition(k.Kind),
			Active:    st.reason == "",
			Gateway:   st.gateway,
		}
		if st.meshOK {
			s.Mesh = st.mesh
		}
		switch {
		case st.reason != "":
			s.Reason = st.reason
			s.Message = st.message
			if s.Message == "" {
				s.Message = joinProblems(st.problems)
			}
		default:
			// An active object may still carry problems that do not stop it
			// from serving (a VirtualNode's missing backend); say them first.
			msgs := []string{}
			if len(st.problems) > 0 {
				msgs = append(msgs, joinProblems(st.problems))
			}
			msgs = append(msgs, st.notes...)
			s.Message = strings.Join(msgs, "; ")
		}
		c.cfg.Statuses = append(c.cfg.Statuses, s)
	}

	problems := append(slices.Clone(c.set.Problems), c.problems...)
	slices.SortStableFunc(problems, func(a, b resource.Problem) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Message, b.Message))
	})
	return c.cfg, problems
}

func joinProblems(ps []resource.Problem) string {
	msgs := make([]string, len(ps))
	for i, p := range ps {
		if p.Field != "" {
			msgs[i] = p.Field + ": " + p.Message
		} else {
			msgs[i] = p.Message
		}
	}
	return strings.Join(msgs, "; ")
}

// condition is App Mesh's condition type for a kind (§5); the guide's
// standalone Route gets RouteActive.
func condition(kind string) string {
	return kind + "Active"
}
