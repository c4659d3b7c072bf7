package resource

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/meshgate/meshgate/api/v1beta2"
	"go.yaml.in/yaml/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The decoder walks the YAML node tree against the Go type instead of
// unmarshalling directly, so that every problem can name the field's JSON
// path and line, and so that unknown fields are caught: App Mesh's CRDs keep
// unknown keys, which silently turned typos into ignored configuration. The
// walk sets the typed value as it goes, with encoding/json's rules for what
// JSON would say (null, empty lists and maps, embedded structs, types that
// read themselves), since the App Mesh types are defined by their JSON.

var kindTypes = map[string]reflect.Type{
	v1beta2.KindMesh:           reflect.TypeFor[v1beta2.Mesh](),
	v1beta2.KindVirtualGateway: reflect.TypeFor[v1beta2.VirtualGateway](),
	v1beta2.KindGatewayRoute:   reflect.TypeFor[v1beta2.GatewayRoute](),
	v1beta2.KindVirtualService: reflect.TypeFor[v1beta2.VirtualService](),
	v1beta2.KindVirtualRouter:  reflect.TypeFor[v1beta2.VirtualRouter](),
	v1beta2.KindVirtualNode:    reflect.TypeFor[v1beta2.VirtualNode](),
	v1beta2.KindRoute:          reflect.TypeFor[v1beta2.StandaloneRoute](),
}

var kindNames = func() []string {
	var names []string
	for k := range kindTypes {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}()

var (
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	objectMetaType  = reflect.TypeFor[metav1.ObjectMeta]()
)

// metadata fields that compile relies on; they are checked strictly while the
// rest of metadata (server-written bookkeeping) is taken leniently.
var strictMetaFields = map[string]bool{"name": true, "namespace": true, "labels": true, "annotations": true}

const (
	appMeshGroup = "appmesh.k8s.aws"
	nullTag      = "!!null"
	mergeTag     = "!!merge"
	// maxDepth bounds recursion on hostile input; real manifests nest a few
	// dozen levels at most.
	maxDepth = 1000
	// maxListNesting bounds Lists inside Lists.
	maxListNesting = 8
)

// AddFile decodes every YAML (or JSON) document of one file and applies them
// in order into s, as `kubectl apply -f` would: a later document with the same
// Key replaces an earlier one. A document that does not decode adds Problems
// and leaves s.Objects as it was; a YAML syntax error stops the file there.
// Origin.Fields paths look like "spec.httpRoute.match.prefix" and
// "spec.listeners[0].portMapping.port"; map entries append ".key" as written
// ("metadata.labels.app.kubernetes.io/name"). When file is not empty, the
// objects refer to a copy of data (Object.Source) for as long as they live.
func (s *Set) AddFile(file string, data []byte) {
	text := string(data)
	var src *Source
	if file != "" {
		src = &Source{File: file, text: text}
	}
	s.addFile(file, data, text, src)
}

// Source is the text of a file as AddFile read it. The objects decoded from
// it refer to it, so that a holder of many objects can keep the text
// instead, a fraction of their size, and decode an object again when it
// needs it.
type Source struct {
	File string
	text string
}

// Source returns the file the object was decoded from, or nil when it was
// not decoded from a named file.
func (o *Object) Source() *Source { return o.src }

// Decode decodes the file again, into a new Set whose objects are equal to
// the ones AddFile made of it and refer to the same Source.
func (src *Source) Decode() *Set {
	s := NewSet()
	s.addFile(src.File, []byte(src.text), src.text, src)
	return s
}

// addFile is AddFile of data, whose text is also given, with objects that
// refer to src.
func (s *Set) addFile(file string, data []byte, text string, src *Source) {
	s.init()
	// Aliases can expand a small file into an enormous tree; the budget keeps
	// the work proportional to the file's size.
	budget := 10*len(data) + 100000
	// The fast path decodes into s with a journal: if the file turns out to
	// need the YAML library after all, its changes are undone and the
	// library decodes all of it again.
	sc := &scratch{}
	j := &journal{problems: s.Problems, skipped: s.Skipped}
	s.journal = j
	ok := fastParse(text, func(root *yaml.Node) { s.apply(file, src, sc, root, &budget, 0) })
	s.journal = nil
	if ok {
		return
	}
	j.undo(s)
	s.addLibrary(file, data, src)
}

// addLibrary is addFile with the YAML library only.
func (s *Set) addLibrary(file string, data []byte, src *Source) {
	s.init()
	budget := 10*len(data) + 100000
	sc := &scratch{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := decodeNode(dec, &doc)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			s.Problems = append(s.Problems, syntaxProblem(file, data, err))
			return
		}
		if len(doc.Content) == 0 {
			continue
		}
		s.apply(file, src, sc, doc.Content[0], &budget, 0)
	}
}

// journal records what a decode changed in a Set, to undo it.
type journal struct {
	objects    []undoObject
	namespaces []undoNamespace
	// problems and skipped are the slices as they were.
	problems []Problem
	skipped  []string
}

type undoObject struct {
	key Key
	old *Object
	had bool
}

type undoNamespace struct {
	name string
	old  Namespace
	had  bool
}

func (j *journal) undo(s *Set) {
	for i := len(j.objects) - 1; i >= 0; i-- {
		u := j.objects[i]
		if u.had {
			s.Objects[u.key] = u.old
		} else {
			delete(s.Objects, u.key)
		}
	}
	for i := len(j.namespaces) - 1; i >= 0; i-- {
		u := j.namespaces[i]
		if u.had {
			s.Namespaces[u.name] = u.old
		} else {
			delete(s.Namespaces, u.name)
		}
	}
	clear(s.Problems[len(j.problems):])
	s.Problems = j.problems
	clear(s.Skipped[len(j.skipped):])
	s.Skipped = j.skipped
}

func (s *Set) putObject(o *Object) {
	if s.journal != nil {
		old, had := s.Objects[o.Key]
		s.journal.objects = append(s.journal.objects, undoObject{o.Key, old, had})
	}
	s.Objects[o.Key] = o
}

func (s *Set) putNamespace(ns Namespace) {
	if s.journal != nil {
		old, had := s.Namespaces[ns.Name]
		s.journal.namespaces = append(s.journal.namespaces, undoNamespace{ns.Name, old, had})
	}
	s.Namespaces[ns.Name] = ns
}

// scratch is memory that the walkers of one file's documents reuse, one
// document after the other: nothing in it outlives a document's decoding.
type scratch struct {
	paths  []byte
	fields []fieldLine
	pairs  [][]pair
	pairAt [2]int // chunk, index of the next free pair
}

// newPairs returns an empty slice with room for n pairs.
func (sc *scratch) newPairs(n int) []pair {
	c, i := sc.pairAt[0], sc.pairAt[1]
	for c < len(sc.pairs) && len(sc.pairs[c])-i < n {
		c, i = c+1, 0
	}
	if c == len(sc.pairs) {
		sc.pairs = append(sc.pairs, make([]pair, max(n, 16<<min(c, 4))))
	}
	sc.pairAt = [2]int{c, i + n}
	return sc.pairs[c][i : i : i+n]
}

func (s *Set) init() {
	if s.Objects == nil {
		s.Objects = map[Key]*Object{}
	}
	if s.Namespaces == nil {
		s.Namespaces = map[string]Namespace{}
	}
	if s.Endpoints == nil {
		s.Endpoints = map[string][]string{}
	}
}

// decodeNode guards against panics in the third-party parser: it is fed
// whatever lands in a watched directory, and a running gateway must survive it.
func decodeNode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: parser failed: %v", r)
		}
	}()
	return dec.Decode(n)
}

func syntaxProblem(file string, data []byte, err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, after, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil && n >= 0 {
				line, msg = n, after
			}
		}
	}
	if line == 0 {
		line = badCharLine(data)
	}
	return Problem{File: file, Line: line, Message: "invalid YAML: " + msg}
}

// badCharLine finds the line of the first byte the YAML reader rejects
// without saying where (invalid UTF-8, control characters), or 0.
func badCharLine(data []byte) int {
	line := 1
	for len(data) > 0 {
		r, size := utf8.DecodeRune(data)
		switch {
		case r == utf8.RuneError && size == 1:
			return line
		case r == '\n':
			line++
		case r < 0x20 && r != '\t' && r != '\r', r == 0x7f:
			return line
		}
		data = data[size:]
	}
	return 0
}

// header is what classifies a document, read before the full walk.
type header struct {
	apiVersion, kind, name, namespace string
}

func (s *Set) apply(file string, src *Source, sc *scratch, n *yaml.Node, budget *int, nesting int) {
	w := &walker{file: file, src: src, sc: sc, budget: budget, paths: sc.paths[:0], fields: sc.fields[:0]}
	sc.pairAt = [2]int{}
	defer func() {
		s.Problems = append(s.Problems, dedupe(w.problems)...)
		sc.paths, sc.fields = w.paths[:0], w.fields[:0]
	}()

	root, ok := w.enter(n, path{}, n.Line)
	if !ok {
		return
	}
	w.leave()
	if isNull(root) {
		return
	}
	line := root.Line
	if root.Kind != yaml.MappingNode {
		w.problem(path{}, line, "expected a Kubernetes object (a mapping), got %s", describe(root))
		return
	}
	if len(root.Content) > 0 {
		line = root.Content[0].Line
	}
	top := w.lookup(root)
	h := header{
		apiVersion: w.headerString(top, "apiVersion"),
		kind:       w.headerString(top, "kind"),
	}
	if md, ok := top.get("metadata"); ok {
		if mn := resolve(md.value); mn != nil && mn.Kind == yaml.MappingNode {
			meta := w.lookup(mn)
			h.name = w.headerString(meta, "name")
			h.namespace = w.headerString(meta, "namespace")
		}
	}
	if len(w.problems) > 0 {
		return
	}
	if h.apiVersion == "" {
		w.problem(path{}, line, "missing apiVersion")
	}
	if h.kind == "" {
		w.problem(path{}, line, "missing kind")
	}
	if len(w.problems) > 0 {
		return
	}

	group, _, _ := strings.Cut(h.apiVersion, "/")
	switch {
	case h.apiVersion == "v1" && h.kind == "List":
		s.applyList(w, top, line, nesting)
	case h.apiVersion == "v1" && h.kind == "Namespace":
		s.applyNamespace(w, top, h, line)
	case group == appMeshGroup && h.apiVersion != v1beta2.GroupVersion:
		s.skip(file, line, h, fmt.Sprintf("%s is not supported; use %s", h.apiVersion, strings.TrimPrefix(v1beta2.GroupVersion, appMeshGroup+"/")))
	case group == appMeshGroup:
		t, known := kindTypes[h.kind]
		if known {
			s.applyObject(w, root, t, h, line)
			return
		}
		if alt := suggest(h.kind, kindNames, false); alt != "" {
			w.problem(w.child(path{}, "kind"), line, "unknown App Mesh kind %q (did you mean %q?)", h.kind, alt)
			return
		}
		s.skip(file, line, h, h.kind+" is not supported")
	default:
		s.skip(file, line, h, "not an App Mesh kind")
	}
}

func (s *Set) skip(file string, line int, h header, reason string) {
	name := h.name
	switch {
	case name == "":
		name = "(unnamed)"
	case h.namespace != "":
		name = h.namespace + "/" + name
	}
	s.Skipped = append(s.Skipped, fmt.Sprintf("%s:%d: skipped %s %s %s (%s)", file, line, h.apiVersion, h.kind, name, reason))
}

func (s *Set) applyList(w *walker, top entries, line, nesting int) {
	items, ok := top.get("items")
	if !ok {
		return
	}
	at := w.child(path{}, "items")
	n, ok := w.enter(items.value, at, items.key.Line)
	if !ok {
		return
	}
	defer w.leave()
	switch {
	case isNull(n):
		return
	case n.Kind != yaml.SequenceNode:
		w.problem(at, items.key.Line, "expected a list, got %s", describe(n))
		return
	case nesting >= maxListNesting:
		w.problem(at, line, "Lists nested too deeply")
		return
	}
	for _, item := range n.Content {
		// The items' walkers must not reuse this walker's memory.
		s.apply(w.file, w.src, &scratch{}, item, w.budget, nesting+1)
	}
}

func (s *Set) applyNamespace(w *walker, top entries, h header, line int) {
	if h.name == "" {
		w.problem(path{}, line, "missing metadata.name in Namespace")
		return
	}
	w.key = Key{Kind: "Namespace", Name: h.name}
	md, _ := top.get("metadata")
	var meta metav1.ObjectMeta
	w.walk(md.value, reflect.ValueOf(&meta).Elem(), infoOf(objectMetaType), w.child(path{}, "metadata"), md.key.Line, strict)
	if len(w.problems) > 0 {
		return
	}
	if w.err != nil {
		w.problem(w.child(path{}, "metadata"), md.key.Line, "%v", w.err)
		return
	}
	s.putNamespace(Namespace{Name: h.name, Labels: meta.Labels})
}

func (s *Set) applyObject(w *walker, root *yaml.Node, t reflect.Type, h header, line int) {
	key := Key{Kind: h.kind, Namespace: h.namespace, Name: h.name}
	switch {
	case h.kind == v1beta2.KindMesh:
		// Cluster-scoped: kubectl ignores a namespace written on it.
		key.Namespace = ""
	case key.Namespace == "":
		key.Namespace = "default"
	}
	if h.name == "" {
		w.problem(path{}, line, "missing metadata.name in %s", h.kind)
	} else {
		w.key = key
	}
	ptr := reflect.New(t)
	w.walk(root, ptr.Elem(), infoOf(t), path{}, line, strict)
	if len(w.problems) > 0 {
		return
	}
	if err := w.err; err != nil {
		field, msg := "", err.Error()
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			field, msg = te.Field, fmt.Sprintf("cannot decode %s into %s", te.Value, te.Type)
		}
		w.problems = append(w.problems, Problem{File: w.file, Line: w.lineOf(field, line), Key: w.key, Field: field, Message: msg})
		return
	}
	v := ptr.Interface()
	Meta(v).Namespace = key.Namespace
	s.putObject(&Object{Key: key, Origin: Origin{File: w.file, Line: line, Fields: w.fieldMap()}, Value: v, src: w.src})
}

func dedupe(ps []Problem) []Problem {
	seen := map[Problem]bool{}
	out := ps[:0]
	for _, p := range ps {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// mode says how strictly a subtree is checked.
type mode uint8

const (
	// strict reports unknown keys and values of the wrong type.
	strict mode = iota
	// lenientTypes (metadata) still reports unknown keys but drops values
	// of the wrong type.
	lenientTypes
	// lenientAll (status) drops unknown keys and values of the wrong type.
	lenientAll
)

// walker decodes one object's node tree into its Go value.
type walker struct {
	file     string
	src      *Source
	sc       *scratch
	key      Key
	problems []Problem
	budget   *int
	depth    int
	stopped  bool
	// err is the first error of a value the walk leaves to encoding/json
	// (a kind no App Mesh type has); reported as a problem of the whole
	// object when nothing else is wrong.
	err error

	// paths holds every field path of the object back to back, so that
	// Origin.Fields costs one string rather than one per field; fields are
	// the paths recorded, with their lines, in the order visited.
	paths  []byte
	fields []fieldLine
}

// path is a field path ("spec.listeners[0].port") as a span of
// walker.paths; the zero path is the object itself.
type path struct{ start, end int32 }

type fieldLine struct {
	path path
	line int
}

func (p path) empty() bool { return p.end == p.start }

func (w *walker) pathString(p path) string { return string(w.paths[p.start:p.end]) }

// child is the path of field name under p.
func (w *walker) child(p path, name string) path {
	start := len(w.paths)
	if !p.empty() {
		w.paths = append(w.paths, w.paths[p.start:p.end]...)
		w.paths = append(w.paths, '.')
	}
	w.paths = append(w.paths, name...)
	return path{int32(start), int32(len(w.paths))}
}

// index is the path of item i of the list at p.
func (w *walker) index(p path, i int) path {
	start := len(w.paths)
	w.paths = append(w.paths, w.paths[p.start:p.end]...)
	w.paths = append(w.paths, '[')
	w.paths = strconv.AppendInt(w.paths, int64(i), 10)
	w.paths = append(w.paths, ']')
	return path{int32(start), int32(len(w.paths))}
}

func (w *walker) record(p path, line int) {
	w.fields = append(w.fields, fieldLine{p, line})
}

// fieldMap is Origin.Fields: a later visit of a path wins.
func (w *walker) fieldMap() map[string]int {
	all := string(w.paths)
	m := make(map[string]int, len(w.fields))
	for _, f := range w.fields {
		m[all[f.path.start:f.path.end]] = f.line
	}
	return m
}

type pair struct {
	name       string
	key, value *yaml.Node
}

func (w *walker) problem(field path, line int, format string, args ...any) {
	w.problems = append(w.problems, Problem{File: w.file, Line: line, Key: w.key, Field: w.pathString(field), Message: fmt.Sprintf(format, args...)})
}

// lineOf is Origin.LineOf over the fields recorded so far.
func (w *walker) lineOf(field string, fallback int) int {
	all := string(w.paths)
	lines := map[string]int{}
	for _, f := range w.fields {
		lines[all[f.path.start:f.path.end]] = f.line
	}
	return Origin{Line: fallback, Fields: lines}.LineOf(field)
}

// enter resolves aliases and accounts for one more node; false means the
// walk must not go into n.
func (w *walker) enter(n *yaml.Node, p path, line int) (*yaml.Node, bool) {
	if w.stopped {
		return nil, false
	}
	r := resolve(n)
	if r == nil {
		w.problem(p, line, "unresolvable YAML alias")
		return nil, false
	}
	*w.budget--
	if *w.budget < 0 {
		w.stopped = true
		w.problem(p, line, "document too large after expanding YAML aliases")
		return nil, false
	}
	if w.depth >= maxDepth {
		w.stopped = true
		w.problem(p, line, "nested too deeply")
		return nil, false
	}
	w.depth++
	return r, true
}

func (w *walker) leave() { w.depth-- }

func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i > 100 {
			return nil
		}
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == nullTag
}

// entries are a mapping's entries, each name once.
type entries []pair

func (e entries) get(name string) (pair, bool) {
	for _, p := range e {
		if p.name == name {
			return p, true
		}
	}
	return pair{}, false
}

// lookup returns a mapping's entries without reporting anything; the full
// walk reports problems later.
func (w *walker) lookup(n *yaml.Node) entries {
	return w.pairs(n, path{}, lenientAll)
}

func (w *walker) headerString(m entries, name string) string {
	p, ok := m.get(name)
	if !ok {
		return ""
	}
	v := resolve(p.value)
	switch {
	case v == nil || isNull(v):
		return ""
	case v.Kind == yaml.ScalarNode:
		return v.Value
	}
	field := w.child(path{}, name)
	if name == "name" || name == "namespace" {
		field = w.child(w.child(path{}, "metadata"), name)
	}
	w.problem(field, p.key.Line, "expected a string, got %s", describe(v))
	return ""
}

// pairs lists a mapping's entries with YAML merge keys ("<<") applied:
// explicit keys win over merged ones, earlier merge sources over later ones.
func (w *walker) pairs(n *yaml.Node, at path, m mode) []pair {
	out := w.sc.newPairs(len(n.Content) / 2)
	// Mappings are small; a map to find duplicates pays only for large ones.
	var index map[string]int
	if len(n.Content) > 32 {
		index = map[string]int{}
	}
	find := func(name string) (int, bool) {
		if index != nil {
			j, ok := index[name]
			return j, ok
		}
		for j := range out {
			if out[j].name == name {
				return j, true
			}
		}
		return 0, false
	}
	add := func(p pair) {
		if index != nil {
			index[p.name] = len(out)
		}
		out = append(out, p)
	}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == mergeTag {
			merges = append(merges, v)
			continue
		}
		name, ok := w.keyName(k, at, m)
		if !ok {
			continue
		}
		if j, dup := find(name); dup {
			if m != lenientAll {
				w.problem(w.child(at, name), k.Line, "duplicate key %q (first at line %d)", name, out[j].key.Line)
			}
			out[j] = pair{name, k, v}
			continue
		}
		add(pair{name, k, v})
	}
	for _, src := range merges {
		for _, p := range w.mergeSource(src, at, m) {
			if _, dup := find(p.name); !dup {
				add(p)
			}
		}
	}
	return out
}

func (w *walker) mergeSource(src *yaml.Node, at path, m mode) []pair {
	n, ok := w.enter(src, at, src.Line)
	if !ok {
		return nil
	}
	defer w.leave()
	switch n.Kind {
	case yaml.MappingNode:
		return w.pairs(n, at, m)
	case yaml.SequenceNode:
		var out []pair
		seen := map[string]bool{}
		for _, item := range n.Content {
			in, ok := w.enter(item, at, item.Line)
			if !ok {
				continue
			}
			if in.Kind != yaml.MappingNode {
				if m != lenientAll {
					w.problem(at, item.Line, "a << merge list must hold mappings, got %s", describe(in))
				}
				w.leave()
				continue
			}
			for _, p := range w.pairs(in, at, m) {
				if !seen[p.name] {
					seen[p.name] = true
					out = append(out, p)
				}
			}
			w.leave()
		}
		return out
	}
	if m != lenientAll {
		w.problem(at, src.Line, "a << merge needs a mapping or a list of mappings, got %s", describe(n))
	}
	return nil
}

func (w *walker) keyName(k *yaml.Node, at path, m mode) (string, bool) {
	r := resolve(k)
	if r != nil && r.Kind == yaml.ScalarNode {
		return r.Value, true
	}
	if m != lenientAll {
		got := "an unresolvable alias"
		if r != nil {
			got = describe(r)
		}
		w.problem(at, k.Line, "expected a field name, got %s", got)
	}
	return "", false
}

// mismatch reports a value of the wrong type unless the mode drops such values.
func (w *walker) mismatch(at path, line int, m mode, want string, n *yaml.Node) {
	if m == strict {
		w.problem(at, line, "expected %s, got %s", want, describe(n))
	}
}

// walk decodes n into v, which must be settable and hold its zero value,
// checking it against v's type. It returns false when the value is left
// out (v is then untouched); whether that is a problem has then already
// been recorded. The result is what encoding/json would make of the node as
// JSON, which is how the App Mesh types are meant to be read.
func (w *walker) walk(n *yaml.Node, v reflect.Value, ti *typeInfo, at path, line int, m mode) bool {
	n, ok := w.enter(n, at, line)
	if !ok {
		return false
	}
	defer w.leave()
	return w.value(n, v, ti, at, line, m)
}

// value is walk for an entered node; ti describes v's type.
func (w *walker) value(n *yaml.Node, v reflect.Value, ti *typeInfo, at path, line int, m mode) bool {
	t := ti.t
	if t.Kind() == reflect.Pointer {
		if isNull(n) {
			return true
		}
		e := reflect.New(t.Elem())
		if !w.value(n, e.Elem(), ti.elemInfo(), at, line, m) {
			return false
		}
		v.Set(e)
		return true
	}
	if isNull(n) {
		if ti.custom {
			// encoding/json lets the type itself read a null.
			w.keepErr(json.Unmarshal([]byte("null"), v.Addr().Interface()))
		}
		return true
	}
	if ti.custom {
		return w.custom(n, v, at, line, m)
	}
	switch t.Kind() {
	case reflect.Struct:
		return w.object(n, v, ti, at, line, m)
	case reflect.Map:
		return w.dict(n, v, ti, at, line, m)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return w.viaJSON(n, v, func() (any, bool) { return w.str(n, at, line, m) })
		}
		return w.list(n, v, ti, at, line, m)
	case reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return w.viaJSON(n, v, func() (any, bool) { return w.str(n, at, line, m) })
		}
		return w.list(n, v, ti, at, line, m)
	case reflect.String:
		s, ok := w.str(n, at, line, m)
		if ok {
			v.SetString(strings.Clone(s))
		}
		return ok
	case reflect.Bool:
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" {
			if b, ok := decodeBool(n); ok {
				v.SetBool(b)
				return true
			}
		}
		w.mismatch(at, line, m, "true or false", n)
		return false
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return w.integer(n, v, at, line, m)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return w.unsigned(n, v, at, line, m)
	case reflect.Float32, reflect.Float64:
		return w.float(n, v, at, line, m)
	}
	return w.viaJSON(n, v, func() (any, bool) { return w.genericBody(n, at, m), true })
}

// viaJSON sets v to what encoding/json makes of the generic value gen
// returns, for kinds no App Mesh type uses.
func (w *walker) viaJSON(n *yaml.Node, v reflect.Value, gen func() (any, bool)) bool {
	g, ok := gen()
	if !ok {
		return false
	}
	raw, err := json.Marshal(g)
	if err == nil {
		e := reflect.New(v.Type())
		if err = json.Unmarshal(raw, e.Interface()); err == nil {
			v.Set(e.Elem())
		}
	}
	w.keepErr(err)
	return true
}

func (w *walker) keepErr(err error) {
	if w.err == nil {
		w.err = err
	}
}

func (w *walker) object(n *yaml.Node, v reflect.Value, ti *typeInfo, at path, line int, m mode) bool {
	if n.Kind != yaml.MappingNode {
		w.mismatch(at, line, m, "a mapping", n)
		return false
	}
	fs := ti.fields
	for _, p := range w.pairs(n, at, m) {
		fpath := w.child(at, p.name)
		w.record(fpath, p.key.Line)
		f, known := fs.byName[p.name]
		fm := m
		switch {
		case at.empty() && p.name == "status":
			// Objects exported with `kubectl get -o yaml` carry a status
			// written by the App Mesh controller; it is informational only.
			if !known {
				continue
			}
			fm = lenientAll
		case !known:
			if m != lenientAll {
				w.problem(fpath, p.key.Line, "%s", unknownField(p.name, fs.names))
			}
			continue
		case ti.t == objectMetaType && m == strict && !strictMetaFields[p.name]:
			fm = lenientTypes
		}
		w.walk(p.value, fieldOf(v, f.index), f.info(), fpath, p.key.Line, fm)
	}
	return true
}

// fieldOf is v's field at index, allocating embedded pointers on the way as
// encoding/json does.
func fieldOf(v reflect.Value, index []int) reflect.Value {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v
}

func (w *walker) dict(n *yaml.Node, v reflect.Value, ti *typeInfo, at path, line int, m mode) bool {
	if n.Kind != yaml.MappingNode {
		w.mismatch(at, line, m, "a mapping", n)
		return false
	}
	t := v.Type()
	out := reflect.MakeMapWithSize(t, len(n.Content)/2)
	for _, p := range w.pairs(n, at, m) {
		fpath := w.child(at, p.name)
		w.record(fpath, p.key.Line)
		e := reflect.New(t.Elem()).Elem()
		if w.walk(p.value, e, ti.elemInfo(), fpath, p.key.Line, m) {
			out.SetMapIndex(reflect.ValueOf(strings.Clone(p.name)).Convert(t.Key()), e)
		}
	}
	v.Set(out)
	return true
}

func (w *walker) list(n *yaml.Node, v reflect.Value, ti *typeInfo, at path, line int, m mode) bool {
	if n.Kind != yaml.SequenceNode {
		w.mismatch(at, line, m, "a list", n)
		return false
	}
	out := v
	if v.Kind() == reflect.Slice {
		out = reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	}
	for i, item := range n.Content {
		ipath := w.index(at, i)
		w.record(ipath, item.Line)
		if i >= out.Len() {
			// encoding/json drops what does not fit an array.
			w.walk(item, reflect.New(v.Type().Elem()).Elem(), ti.elemInfo(), ipath, item.Line, m)
			continue
		}
		// A dropped item stays zero so later indexes keep their meaning.
		w.walk(item, out.Index(i), ti.elemInfo(), ipath, item.Line, m)
	}
	if v.Kind() == reflect.Slice {
		v.Set(out)
	}
	return true
}

// str accepts any scalar as its literal text: manifests write `exact: true`
// or `value: 8080` where App Mesh means a string.
func (w *walker) str(n *yaml.Node, at path, line int, m mode) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		w.mismatch(at, line, m, "a string", n)
		return "", false
	}
	return n.Value, true
}

func (w *walker) integer(n *yaml.Node, v reflect.Value, at path, line int, m mode) bool {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		w.mismatch(at, line, m, "an integer", n)
		return false
	}
	i, err := decodeInt(n)
	if err != nil || v.OverflowInt(i) {
		if m == strict {
			w.problem(at, line, "integer %s is out of range", n.Value)
		}
		return false
	}
	v.SetInt(i)
	return true
}

func (w *walker) unsigned(n *yaml.Node, v reflect.Value, at path, line int, m mode) bool {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		w.mismatch(at, line, m, "a non-negative integer", n)
		return false
	}
	u, err := decodeUint(n)
	if err != nil || v.OverflowUint(u) {
		if m == strict {
			w.problem(at, line, "integer %s is out of range", n.Value)
		}
		return false
	}
	v.SetUint(u)
	return true
}

func (w *walker) float(n *yaml.Node, v reflect.Value, at path, line int, m mode) bool {
	if n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!int" || n.ShortTag() == "!!float") {
		var f float64
		if n.Decode(&f) == nil && !math.IsInf(f, 0) && !math.IsNaN(f) && !v.OverflowFloat(f) {
			// As encoding/json would read the number written out.
			f, _ = strconv.ParseFloat(strconv.FormatFloat(f, 'g', -1, 64), v.Type().Bits())
			v.SetFloat(f)
			return true
		}
	}
	w.mismatch(at, line, m, "a number", n)
	return false
}

// decodeBool, decodeInt and decodeUint read a scalar the library has
// tagged !!bool or !!int as the library would; the spellings nearly every
// manifest uses are read here, because the library's Node.Decode sets up a
// whole decoder per call.
func decodeBool(n *yaml.Node) (bool, bool) {
	switch n.Value {
	case "true", "True", "TRUE":
		return true, true
	case "false", "False", "FALSE":
		return false, true
	}
	var b bool
	return b, n.Decode(&b) == nil
}

func decodeInt(n *yaml.Node) (int64, error) {
	if decimal(n.Value, true) {
		return strconv.ParseInt(n.Value, 10, 64)
	}
	var i int64
	err := n.Decode(&i)
	return i, err
}

func decodeUint(n *yaml.Node) (uint64, error) {
	if decimal(n.Value, false) {
		return strconv.ParseUint(n.Value, 10, 64)
	}
	var u uint64
	err := n.Decode(&u)
	return u, err
}

// decimal reports whether s is a plain decimal integer that every reading
// agrees on: digits without a leading zero, underscores or sign (but a
// minus when signed), short enough not to overflow.
func decimal(s string, signed bool) bool {
	if signed && len(s) > 1 && s[0] == '-' {
		s = s[1:]
	}
	if len(s) == 0 || len(s) > 18 || len(s) > 1 && s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// custom handles types with their own UnmarshalJSON (metav1.Time, ...): the
// node becomes a generic value and the type itself judges it.
func (w *walker) custom(n *yaml.Node, v reflect.Value, at path, line int, m mode) bool {
	g := w.genericBody(n, at, m)
	raw, err := json.Marshal(g)
	e := reflect.New(v.Type())
	if err == nil {
		err = json.Unmarshal(raw, e.Interface())
	}
	if err != nil {
		if m == strict {
			w.problem(at, line, "invalid value %s: %v", describe(n), err)
		}
		return false
	}
	v.Set(e.Elem())
	return true
}

func (w *walker) generic(n *yaml.Node, at path, line int, m mode) (any, bool) {
	n, ok := w.enter(n, at, line)
	if !ok {
		return nil, false
	}
	defer w.leave()
	return w.genericBody(n, at, m), true
}

// genericBody converts an entered node without a Go type to check it against.
func (w *walker) genericBody(n *yaml.Node, at path, m mode) any {
	switch n.Kind {
	case yaml.MappingNode:
		out := map[string]any{}
		for _, p := range w.pairs(n, at, m) {
			fpath := w.child(at, p.name)
			w.record(fpath, p.key.Line)
			if v, ok := w.generic(p.value, fpath, p.key.Line, m); ok {
				out[p.name] = v
			}
		}
		return out
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for i, item := range n.Content {
			ipath := w.index(at, i)
			w.record(ipath, item.Line)
			v, _ := w.generic(item, ipath, item.Line, m)
			out = append(out, v)
		}
		return out
	case yaml.ScalarNode:
		return scalarValue(n)
	}
	return nil
}

func scalarValue(n *yaml.Node) any {
	switch n.ShortTag() {
	case nullTag:
		return nil
	case "!!bool":
		var b bool
		if n.Decode(&b) == nil {
			return b
		}
	case "!!int":
		var i int64
		if n.Decode(&i) == nil {
			return json.Number(strconv.FormatInt(i, 10))
		}
		var u uint64
		if n.Decode(&u) == nil {
			return json.Number(strconv.FormatUint(u, 10))
		}
	case "!!float":
		var f float64
		if n.Decode(&f) == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
		}
	}
	return n.Value
}

// describe says what a node is, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "null"
		}
		v := n.Value
		if utf8.RuneCountInString(v) > 40 {
			v = string([]rune(v)[:40]) + "..."
		}
		if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
			return "the quoted string " + strconv.Quote(v)
		}
		return strconv.Quote(v)
	}
	return "an unexpected YAML node"
}

// structFields is the JSON view of a struct: field names (with embedded
// structs promoted, as encoding/json does), their types and where they are.
type structFields struct {
	byName map[string]*structField
	names  []string
}

type structField struct {
	typ   reflect.Type
	index []int
	ti    atomic.Pointer[typeInfo]
}

func (f *structField) info() *typeInfo {
	ti := f.ti.Load()
	if ti == nil {
		ti = infoOf(f.typ)
		f.ti.Store(ti)
	}
	return ti
}

// typeInfo is what the walk needs to know of a Go type, computed once.
type typeInfo struct {
	t      reflect.Type
	custom bool          // reads itself from JSON (json.Unmarshaler)
	fields *structFields // for structs
	elem   atomic.Pointer[typeInfo]
}

// elemInfo describes the element type of a pointer, slice, array or map.
func (ti *typeInfo) elemInfo() *typeInfo {
	e := ti.elem.Load()
	if e == nil {
		e = infoOf(ti.t.Elem())
		ti.elem.Store(e)
	}
	return e
}

var typeCache sync.Map // reflect.Type → *typeInfo

func infoOf(t reflect.Type) *typeInfo {
	if ti, ok := typeCache.Load(t); ok {
		return ti.(*typeInfo)
	}
	ti := &typeInfo{t: t, custom: t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType)}
	if t.Kind() == reflect.Struct {
		ti.fields = fieldsOf(t)
	}
	typeCache.Store(t, ti)
	return ti
}

func fieldsOf(t reflect.Type) *structFields {
	fs := &structFields{byName: map[string]*structField{}}
	collectFields(t, nil, fs)
	for name := range fs.byName {
		fs.names = append(fs.names, name)
	}
	sort.Strings(fs.names)
	return fs
}

func collectFields(t reflect.Type, at []int, fs *structFields) {
	type embed struct {
		t     reflect.Type
		index []int
	}
	var embedded []embed
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		index := append(slices.Clip(at), i)
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				embedded = append(embedded, embed{et, index})
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, taken := fs.byName[name]; !taken {
			fs.byName[name] = &structField{typ: f.Type, index: index}
		}
	}
	// Promoted fields come after the struct's own, so the shallower wins.
	for _, e := range embedded {
		collectFields(e.t, e.index, fs)
	}
}

func unknownField(name string, allowed []string) string {
	msg := fmt.Sprintf("unknown field %q; expected one of: %s", name, strings.Join(allowed, ", "))
	if alt := suggest(name, allowed, true); alt != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", alt)
	}
	return msg
}

// suggest returns the allowed name closest to name, if one is close enough
// to be a likely typo: equal but for case, a few edits away, or, with
// prefixes, a prefix ("http" for "httpRoute").
func suggest(name string, allowed []string, prefixes bool) string {
	ln := strings.ToLower(name)
	limit := 1
	switch {
	case len(ln) > 8:
		limit = 3
	case len(ln) > 4:
		limit = 2
	}
	best, bestDist := "", math.MaxInt
	for _, a := range allowed {
		la := strings.ToLower(a)
		var d int
		switch {
		case la == ln:
			d = 0
		case prefixes && len(ln) >= 3 && len(la) >= 3 && (strings.HasPrefix(la, ln) || strings.HasPrefix(ln, la)):
			d = max(len(la), len(ln)) - min(len(la), len(ln))
		default:
			if abs(len(la)-len(ln)) > limit {
				continue
			}
			d = editDistance(ln, la)
			if d > limit {
				continue
			}
		}
		if d < bestDist {
			best, bestDist = a, d
		}
	}
	return best
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// editDistance is the optimal string alignment distance between a and b,
// by bytes: Levenshtein plus transposition of neighbours ("nmae" → "name").
func editDistance(a, b string) int {
	// rows i-2, i-1 and i of the dynamic programming table
	pp := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], pp[j-2]+1)
			}
		}
		pp, prev, cur = prev, cur, pp
	}
	return prev[len(b)]
}
