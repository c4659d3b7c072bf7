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
	"sort"
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
	regexps.Rotate()
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
	// sorted holds every state by kind, namespace and name, and sortedKeys
	// their keys; byKind and keysByKind hold the part of each kind. They
	// are computed once: passes ask for a kind per object, and recomputing
	// would make compile quadratic.
	sorted     []*state
	sortedKeys []resource.Key
	byKind     map[string][]*state
	keysByKind map[string][]resource.Key
	// labels memoizes label selectors and namespace labels (mesh.go).
	labels labelCache
	// joined memoizes join.
	joined map[[2]string]string
}

// keys returns the keys of the objects of kind, sorted by namespace and name.
func (c *compiler) keys(kind string) []resource.Key { return c.keysByKind[kind] }

// states returns the states of the objects of kind, in the order of keys.
func (c *compiler) states(kind string) []*state { return c.byKind[kind] }

// join returns a + b, built once per compile: objects of one kind ask for
// the same field paths and conditions, and 10,000 routes would build each
// 10,000 times.
func (c *compiler) join(a, b string) string {
	k := [2]string{a, b}
	if s, ok := c.joined[k]; ok {
		return s
	}
	s := a + b
	c.joined[k] = s
	return s
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
	// irName memoizes name.
	irName string
}

func newCompiler(set *resource.Set) *compiler {
	c := &compiler{
		set:    set,
		objs:   make(map[resource.Key]*state, len(set.Objects)),
		joined: map[[2]string]string{},
		cfg: &ir.Config{
			Gateways: []*ir.Gateway{},
			Services: map[string]*ir.VirtualService{},
			Routers:  map[string]*ir.VirtualRouter{},
			Nodes:    map[string]*ir.VirtualNode{},
			Statuses: []ir.ObjectStatus{},
		},
	}
	states := make([]state, 0, len(set.Objects))
	c.sorted = make([]*state, 0, len(set.Objects))
	keys := make([]resource.Key, 0, len(set.Objects))
	for k, o := range set.Objects {
		states = append(states, state{obj: o, meshOK: true})
		c.sorted, keys = append(c.sorted, &states[len(states)-1]), append(keys, k)
	}
	sort.Sort(byKey{keys, c.sorted})
	c.sortedKeys = keys
	c.byKind, c.keysByKind = map[string][]*state{}, map[string][]resource.Key{}
	for i, k := range keys {
		c.objs[k] = c.sorted[i]
	}
	for start := 0; start < len(keys); {
		kind := keys[start].Kind
		end := start + 1
		for end < len(keys) && keys[end].Kind == kind {
			end++
		}
		// Full slice expressions: appending to one kind's slice must not
		// write over the next kind's.
		c.byKind[kind] = c.sorted[start:end:end]
		c.keysByKind[kind] = keys[start:end:end]
		start = end
	}
	c.meshes = c.states(v1beta2.KindMesh)
	return c
}

// byKey sorts keys, and the states of the same index with them, by kind,
// namespace and name.
type byKey struct {
	keys   []resource.Key
	states []*state
}

func (s byKey) Len() int { return len(s.keys) }

func (s byKey) Less(i, j int) bool {
	a, b := &s.keys[i], &s.keys[j]
	if a.Kind != b.Kind {
		return a.Kind < b.Kind
	}
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	return a.Name < b.Name
}

func (s byKey) Swap(i, j int) {
	s.keys[i], s.keys[j] = s.keys[j], s.keys[i]
	s.states[i], s.states[j] = s.states[j], s.states[i]
}

// each calls f for every object of kind whose Value has type T, in key order.
func each[T any](c *compiler, kind string, f func(st *state, v *T)) {
	for _, st := range c.states(kind) {
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
func (st *state) name() string {
	// Asked for many times per object (each route asks its service's).
	if st.irName == "" {
		st.irName = irName(st.obj.Key)
	}
	return st.irName
}

func irName(k resource.Key) string {
	if k.Namespace == "" {
		return k.Name
	}
	return k.Namespace + "/" + k.Name
}

// finish builds the statuses and sorts the problems.
func (c *compiler) finish() (*ir.Config, []resource.Problem) {
	// Statuses go by kind, namespace and name: the order of sorted.
	c.cfg.Statuses = slices.Grow(c.cfg.Statuses, len(c.sorted))
	for i, st := range c.sorted {
		c.status(c.sortedKeys[i], st)
	}

	problems := append(slices.Clone(c.set.Problems), c.problems...)
	slices.SortStableFunc(problems, func(a, b resource.Problem) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Message, b.Message))
	})
	return c.cfg, problems
}

// status appends the status of st's object, whose key is k.
func (c *compiler) status(k resource.Key, st *state) {
	s := ir.ObjectStatus{
		Kind:      k.Kind,
		Namespace: k.Namespace,
		Name:      k.Name,
		File:      st.obj.Origin.File,
		Line:      st.obj.Origin.Line,
		Condition: c.condition(k.Kind),
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
func (c *compiler) condition(kind string) string {
	return c.join(kind, "Active")
}
