package resource

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/meshgate/meshgate/api/v1beta2"
	"go.yaml.in/yaml/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The decoder walks the YAML node tree against the Go type instead of
// unmarshalling directly, so that every problem can name the field's JSON
// path and line, and so that unknown fields are caught: App Mesh's CRDs keep
// unknown keys, which silently turned typos into ignored configuration.

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
// ("metadata.labels.app.kubernetes.io/name").
func (s *Set) AddFile(file string, data []byte) {
	s.init()
	// Aliases can expand a small file into an enormous tree; the budget keeps
	// the work proportional to the file's size.
	budget := 10*len(data) + 100000
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
		s.apply(file, doc.Content[0], &budget, 0)
	}
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

func (s *Set) apply(file string, n *yaml.Node, budget *int, nesting int) {
	w := &walker{file: file, fields: map[string]int{}, budget: budget}
	defer func() { s.Problems = append(s.Problems, dedupe(w.problems)...) }()

	root, ok := w.enter(n, "", n.Line)
	if !ok {
		return
	}
	w.leave()
	if isNull(root) {
		return
	}
	line := root.Line
	if root.Kind != yaml.MappingNode {
		w.problem("", line, "expected a Kubernetes object (a mapping), got %s", describe(root))
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
	if md, ok := top["metadata"]; ok {
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
		w.problem("", line, "missing apiVersion")
	}
	if h.kind == "" {
		w.problem("", line, "missing kind")
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
			w.problem("kind", line, "unknown App Mesh kind %q (did you mean %q?)", h.kind, alt)
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

func (s *Set) applyList(w *walker, top map[string]pair, line, nesting int) {
	items, ok := top["items"]
	if !ok {
		return
	}
	n, ok := w.enter(items.value, "items", items.key.Line)
	if !ok {
		return
	}
	defer w.leave()
	switch {
	case isNull(n):
		return
	case n.Kind != yaml.SequenceNode:
		w.problem("items", items.key.Line, "expected a list, got %s", describe(n))
		return
	case nesting >= maxListNesting:
		w.problem("items", line, "Lists nested too deeply")
		return
	}
	for _, item := range n.Content {
		s.apply(w.file, item, w.budget, nesting+1)
	}
}

func (s *Set) applyNamespace(w *walker, top map[string]pair, h header, line int) {
	if h.name == "" {
		w.problem("", line, "missing metadata.name in Namespace")
		return
	}
	w.key = Key{Kind: "Namespace", Name: h.name}
	md := top["metadata"]
	v, _ := w.walk(md.value, objectMetaType, "metadata", md.key.Line, strict)
	if len(w.problems) > 0 {
		return
	}
	var meta metav1.ObjectMeta
	if err := roundTrip(v, &meta); err != nil {
		w.problem("metadata", md.key.Line, "%v", err)
		return
	}
	s.Namespaces[h.name] = Namespace{Name: h.name, Labels: meta.Labels}
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
		w.problem("", line, "missing metadata.name in %s", h.kind)
	} else {
		w.key = key
	}
	v, _ := w.walk(root, t, "", line, strict)
	if len(w.problems) > 0 {
		return
	}
	ptr := reflect.New(t).Interface()
	if err := roundTrip(v, ptr); err != nil {
		field, msg := "", err.Error()
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			field, msg = te.Field, fmt.Sprintf("cannot decode %s into %s", te.Value, te.Type)
		}
		w.problem(field, w.lineOf(field, line), "%s", msg)
		return
	}
	Meta(ptr).Namespace = key.Namespace
	s.Objects[key] = &Object{Key: key, Origin: Origin{File: w.file, Line: line, Fields: w.fields}, Value: ptr}
}

// roundTrip turns the walked generic value into the typed struct; the walk
// has already checked names and types, so DisallowUnknownFields only guards
// against a walker that let something through.
func roundTrip(v any, out any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(out)
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

// walker converts one object's node tree into a generic JSON value.
type walker struct {
	file     string
	key      Key
	fields   map[string]int
	problems []Problem
	budget   *int
	depth    int
	stopped  bool
}

type pair struct {
	name       string
	key, value *yaml.Node
}

func (w *walker) problem(field string, line int, format string, args ...any) {
	w.problems = append(w.problems, Problem{File: w.file, Line: line, Key: w.key, Field: field, Message: fmt.Sprintf(format, args...)})
}

func (w *walker) lineOf(path string, fallback int) int {
	return Origin{Line: fallback, Fields: w.fields}.LineOf(path)
}

// enter resolves aliases and charges the budget; every successful enter
// must be paired with leave.
func (w *walker) enter(n *yaml.Node, path string, line int) (*yaml.Node, bool) {
	if w.stopped {
		return nil, false
	}
	r := resolve(n)
	if r == nil {
		w.problem(path, line, "unresolvable YAML alias")
		return nil, false
	}
	*w.budget--
	if *w.budget < 0 {
		w.stopped = true
		w.problem(path, line, "document too large after expanding YAML aliases")
		return nil, false
	}
	if w.depth >= maxDepth {
		w.stopped = true
		w.problem(path, line, "nested too deeply")
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

// lookup returns a mapping's entries by name without reporting anything;
// the full walk reports problems later.
func (w *walker) lookup(n *yaml.Node) map[string]pair {
	m := map[string]pair{}
	for _, p := range w.pairs(n, "", lenientAll) {
		m[p.name] = p
	}
	return m
}

func (w *walker) headerString(m map[string]pair, name string) string {
	p, ok := m[name]
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
	field := name
	if name == "name" || name == "namespace" {
		field = "metadata." + name
	}
	w.problem(field, p.key.Line, "expected a string, got %s", describe(v))
	return ""
}

// pairs lists a mapping's entries with YAML merge keys ("<<") applied:
// explicit keys win over merged ones, earlier merge sources over later ones.
func (w *walker) pairs(n *yaml.Node, path string, m mode) []pair {
	var out []pair
	index := map[string]int{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == mergeTag {
			merges = append(merges, v)
			continue
		}
		name, ok := w.keyName(k, path, m)
		if !ok {
			continue
		}
		if j, dup := index[name]; dup {
			if m != lenientAll {
				w.problem(join(path, name), k.Line, "duplicate key %q (first at line %d)", name, out[j].key.Line)
			}
			out[j] = pair{name, k, v}
			continue
		}
		index[name] = len(out)
		out = append(out, pair{name, k, v})
	}
	for _, src := range merges {
		for _, p := range w.mergeSource(src, path, m) {
			if _, dup := index[p.name]; !dup {
				index[p.name] = len(out)
				out = append(out, p)
			}
		}
	}
	return out
}

func (w *walker) mergeSource(src *yaml.Node, path string, m mode) []pair {
	n, ok := w.enter(src, path, src.Line)
	if !ok {
		return nil
	}
	defer w.leave()
	switch n.Kind {
	case yaml.MappingNode:
		return w.pairs(n, path, m)
	case yaml.SequenceNode:
		var out []pair
		seen := map[string]bool{}
		for _, item := range n.Content {
			in, ok := w.enter(item, path, item.Line)
			if !ok {
				continue
			}
			if in.Kind != yaml.MappingNode {
				if m != lenientAll {
					w.problem(path, item.Line, "a << merge list must hold mappings, got %s", describe(in))
				}
				w.leave()
				continue
			}
			for _, p := range w.pairs(in, path, m) {
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
		w.problem(path, src.Line, "a << merge needs a mapping or a list of mappings, got %s", describe(n))
	}
	return nil
}

func (w *walker) keyName(k *yaml.Node, path string, m mode) (string, bool) {
	r := resolve(k)
	if r != nil && r.Kind == yaml.ScalarNode {
		return r.Value, true
	}
	if m != lenientAll {
		got := "an unresolvable alias"
		if r != nil {
			got = describe(r)
		}
		w.problem(path, k.Line, "expected a field name, got %s", got)
	}
	return "", false
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// mismatch reports a value of the wrong type unless the mode drops such values.
func (w *walker) mismatch(path string, line int, m mode, want string, n *yaml.Node) {
	if m == strict {
		w.problem(path, line, "expected %s, got %s", want, describe(n))
	}
}

// walk converts n, checked against Go type t, into a generic JSON value. ok
// is false when the value must be left out; whether that is a problem has
// then already been recorded.
func (w *walker) walk(n *yaml.Node, t reflect.Type, path string, line int, m mode) (v any, ok bool) {
	n, ok = w.enter(n, path, line)
	if !ok {
		return nil, false
	}
	defer w.leave()
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if isNull(n) {
		return nil, true
	}
	if t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) {
		return w.custom(n, t, path, line, m)
	}
	switch t.Kind() {
	case reflect.Struct:
		return w.object(n, t, path, line, m)
	case reflect.Map:
		return w.dict(n, t, path, line, m)
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return w.str(n, path, line, m)
		}
		return w.list(n, t, path, line, m)
	case reflect.String:
		return w.str(n, path, line, m)
	case reflect.Bool:
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" {
			var b bool
			if n.Decode(&b) == nil {
				return b, true
			}
		}
		w.mismatch(path, line, m, "true or false", n)
		return nil, false
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return w.integer(n, t, path, line, m)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return w.unsigned(n, t, path, line, m)
	case reflect.Float32, reflect.Float64:
		return w.float(n, t, path, line, m)
	}
	return w.genericBody(n, path, m), true
}

func (w *walker) object(n *yaml.Node, t reflect.Type, path string, line int, m mode) (any, bool) {
	if n.Kind != yaml.MappingNode {
		w.mismatch(path, line, m, "a mapping", n)
		return nil, false
	}
	fs := fieldsOf(t)
	out := map[string]any{}
	for _, p := range w.pairs(n, path, m) {
		fpath := join(path, p.name)
		w.fields[fpath] = p.key.Line
		ft, known := fs.types[p.name]
		fm := m
		switch {
		case path == "" && p.name == "status":
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
		case t == objectMetaType && m == strict && !strictMetaFields[p.name]:
			fm = lenientTypes
		}
		if v, ok := w.walk(p.value, ft, fpath, p.key.Line, fm); ok {
			out[p.name] = v
		}
	}
	return out, true
}

func (w *walker) dict(n *yaml.Node, t reflect.Type, path string, line int, m mode) (any, bool) {
	if n.Kind != yaml.MappingNode {
		w.mismatch(path, line, m, "a mapping", n)
		return nil, false
	}
	out := map[string]any{}
	for _, p := range w.pairs(n, path, m) {
		fpath := join(path, p.name)
		w.fields[fpath] = p.key.Line
		if v, ok := w.walk(p.value, t.Elem(), fpath, p.key.Line, m); ok {
			out[p.name] = v
		}
	}
	return out, true
}

func (w *walker) list(n *yaml.Node, t reflect.Type, path string, line int, m mode) (any, bool) {
	if n.Kind != yaml.SequenceNode {
		w.mismatch(path, line, m, "a list", n)
		return nil, false
	}
	out := make([]any, 0, len(n.Content))
	for i, item := range n.Content {
		ipath := fmt.Sprintf("%s[%d]", path, i)
		w.fields[ipath] = item.Line
		// A dropped item stays as null so later indexes keep their meaning.
		v, _ := w.walk(item, t.Elem(), ipath, item.Line, m)
		out = append(out, v)
	}
	return out, true
}

// str accepts any scalar as its literal text: manifests write `exact: true`
// or `value: 8080` where App Mesh means a string.
func (w *walker) str(n *yaml.Node, path string, line int, m mode) (any, bool) {
	if n.Kind != yaml.ScalarNode {
		w.mismatch(path, line, m, "a string", n)
		return nil, false
	}
	return n.Value, true
}

func (w *walker) integer(n *yaml.Node, t reflect.Type, path string, line int, m mode) (any, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		w.mismatch(path, line, m, "an integer", n)
		return nil, false
	}
	var i int64
	if err := n.Decode(&i); err != nil || reflect.New(t).Elem().OverflowInt(i) {
		if m == strict {
			w.problem(path, line, "integer %s is out of range", n.Value)
		}
		return nil, false
	}
	return json.Number(strconv.FormatInt(i, 10)), true
}

func (w *walker) unsigned(n *yaml.Node, t reflect.Type, path string, line int, m mode) (any, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		w.mismatch(path, line, m, "a non-negative integer", n)
		return nil, false
	}
	var u uint64
	if err := n.Decode(&u); err != nil || reflect.New(t).Elem().OverflowUint(u) {
		if m == strict {
			w.problem(path, line, "integer %s is out of range", n.Value)
		}
		return nil, false
	}
	return json.Number(strconv.FormatUint(u, 10)), true
}

func (w *walker) float(n *yaml.Node, t reflect.Type, path string, line int, m mode) (any, bool) {
	if n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!int" || n.ShortTag() == "!!float") {
		var f float64
		if n.Decode(&f) == nil && !math.IsInf(f, 0) && !math.IsNaN(f) && !reflect.New(t).Elem().OverflowFloat(f) {
			return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), true
		}
	}
	w.mismatch(path, line, m, "a number", n)
	return nil, false
}

// custom handles types with their own UnmarshalJSON (metav1.Time, ...): the
// node becomes a generic value and the type itself judges it.
func (w *walker) custom(n *yaml.Node, t reflect.Type, path string, line int, m mode) (any, bool) {
	v := w.genericBody(n, path, m)
	raw, err := json.Marshal(v)
	if err == nil {
		err = json.Unmarshal(raw, reflect.New(t).Interface())
	}
	if err != nil {
		if m == strict {
			w.problem(path, line, "invalid value %s: %v", describe(n), err)
		}
		return nil, false
	}
	return v, true
}

func (w *walker) generic(n *yaml.Node, path string, line int, m mode) (any, bool) {
	n, ok := w.enter(n, path, line)
	if !ok {
		return nil, false
	}
	defer w.leave()
	return w.genericBody(n, path, m), true
}

// genericBody converts an entered node without a Go type to check it against.
func (w *walker) genericBody(n *yaml.Node, path string, m mode) any {
	switch n.Kind {
	case yaml.MappingNode:
		out := map[string]any{}
		for _, p := range w.pairs(n, path, m) {
			fpath := join(path, p.name)
			w.fields[fpath] = p.key.Line
			if v, ok := w.generic(p.value, fpath, p.key.Line, m); ok {
				out[p.name] = v
			}
		}
		return out
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for i, item := range n.Content {
			ipath := fmt.Sprintf("%s[%d]", path, i)
			w.fields[ipath] = item.Line
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
// structs promoted, as encoding/json does) and their types.
type structFields struct {
	types map[string]reflect.Type
	names []string
}

var fieldCache sync.Map // reflect.Type → *structFields

func fieldsOf(t reflect.Type) *structFields {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.(*structFields)
	}
	fs := &structFields{types: map[string]reflect.Type{}}
	collectFields(t, fs)
	for name := range fs.types {
		fs.names = append(fs.names, name)
	}
	sort.Strings(fs.names)
	fieldCache.Store(t, fs)
	return fs
}

func collectFields(t reflect.Type, fs *structFields) {
	var embedded []reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				embedded = append(embedded, et)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, taken := fs.types[name]; !taken {
			fs.types[name] = f.Type
		}
	}
	// Promoted fields come after the struct's own, so the shallower wins.
	for _, et := range embedded {
		collectFields(et, fs)
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
