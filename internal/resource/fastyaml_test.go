package resource

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// libraryRoots is what the YAML library makes of data, in the form
// fastParse passes on: the roots of the documents that are not empty or
// null.
func libraryRoots(data []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var roots []*yaml.Node
	for {
		var doc yaml.Node
		err := decodeNode(dec, &doc)
		if errors.Is(err, io.EOF) {
			return roots, nil
		}
		if err != nil {
			return roots, err
		}
		if len(doc.Content) > 0 && !isNull(doc.Content[0]) {
			roots = append(roots, doc.Content[0])
		}
	}
}

// copyNode copies a tree the fast path is about to reuse.
func copyNode(n *yaml.Node) *yaml.Node {
	c := *n
	c.Content = nil
	for _, k := range n.Content {
		c.Content = append(c.Content, copyNode(k))
	}
	return &c
}

// sameNode returns where a and b differ, or "".
func sameNode(a, b *yaml.Node, at string) string {
	if (a == nil) != (b == nil) {
		return fmt.Sprintf("%s: fast %v, library %v", at, a, b)
	}
	if a == nil {
		return ""
	}
	type view struct {
		Kind         yaml.Kind
		Style        yaml.Style
		Tag, Value   string
		Line, Column int
		Anchor       string
		Alias        bool
		N            int
	}
	va := view{a.Kind, a.Style, a.Tag, a.Value, a.Line, a.Column, a.Anchor, a.Alias != nil, len(a.Content)}
	vb := view{b.Kind, b.Style, b.Tag, b.Value, b.Line, b.Column, b.Anchor, b.Alias != nil, len(b.Content)}
	if va != vb {
		return fmt.Sprintf("%s: fast %+v, library %+v", at, va, vb)
	}
	for i := range a.Content {
		if d := sameNode(a.Content[i], b.Content[i], fmt.Sprintf("%s/%d", at, i)); d != "" {
			return d
		}
	}
	return ""
}

// checkFastParse fails when the fast path accepts data but the library does
// not agree on every node, and reports whether the fast path accepted it.
func checkFastParse(t *testing.T, data []byte) bool {
	t.Helper()
	var fast []*yaml.Node
	if !fastParse(string(data), func(root *yaml.Node) { fast = append(fast, copyNode(root)) }) {
		return false
	}
	lib, err := libraryRoots(data)
	if err != nil {
		t.Fatalf("fast path accepted what the library rejects (%v):\n%s", err, data)
	}
	if len(fast) != len(lib) {
		t.Fatalf("fast path: %d documents, library %d:\n%s", len(fast), len(lib), data)
	}
	for i := range fast {
		if d := sameNode(fast[i], lib[i], fmt.Sprintf("doc %d", i)); d != "" {
			t.Fatalf("%s\n%s", d, data)
		}
	}
	return true
}

// fastCases are inputs around the edges of the subset.
var fastCases = []string{
	"",
	"# only a comment\n",
	"---\n",
	"---\n---\n",
	"a: 1\n---\n",
	"--- # c\na: 1\n...\n",
	"a:\nb: 1\n",
	"a:\n  - x\n  -\n  - y\nc:\n",
	"a:   \n  # c\n  b: 1\n",
	"x:\n\n  y: 1\n",
	"k:\n- a\n- b\nc: d\n",
	"- \n  a: 1\n",
	"- a: 1\n  b: 2\n- c\n",
	"- a:\n  - x\n- b\n",
	"- a:\n- x\n",
	"- - a\n",
	"-\n  - a\n  - b\n",
	"  a: 1\n  b: 2\n",
	"a: 1 # c\nb: 'it''s' # d\nc: \"q\\\"\\u00e9\\n\"\n",
	"a: b: c\n",
	"a: b\n  c\n",
	"a: b\n c: d\n",
	"a:\n  b: 1\n c: 2\n",
	"a: -1\nb: -x\nc: - x\n",
	"a: [1, b, 'c', \"d\", {e: f}, []]\nb: {}\n",
	"a: {b: 1, c: [x, y]} # c\n",
	"a: [a: b]\n",
	"a: {b}\n",
	"a: {b: }\n",
	"a: [1, ]\n",
	"a: {b:c}\n",
	"a: {\"b\":c}\n",
	"{\"a\":1,\"b\":[1,2],\"c\":{},\"d\":null,\"e\":true,\"f\":\"x\\u003cy\"}",
	"{\n  \"a\": 1,\n  \"b\": [\n    1,\n    2\n  ]\n}\n",
	"{\n  \"a\": x\n  y\n}\n",
	"{\"a\"\n: 1}\n",
	"[1, 2]\n",
	"a: &x 1\nb: *x\n",
	"a: !!str 1\n",
	"a: |\n  x\n",
	"a: >\n  x\n",
	"a:\tb\n",
	"a: b\r\n",
	"a: é\n",
	"%YAML 1.2\n---\na: 1\n",
	"---x: 1\n",
	"a: ---x\n",
	"? a\n: b\n",
	"a: ?x\nb: :x\n",
	"<<: {a: 1}\nb: 2\n",
	"a: 0x1F\nb: 0o17\nc: 1_000\nd: 1e3\ne: .5\nf: .inf\ng: ~\nh: null\ni: TRUE\nj: yes\nk: 2024-01-01\nl: 1.\nm: 0b101\n",
	"a: '1'\nb: \"true\"\n",
	"a: b#c\nd: e #f\n",
	"'a': 1\n\"b\": 2\n",
	"\"a\" : 1\n",
	"a : 1\n",
	"a:b\n",
	"a: b:\n",
	"a: x, y]\n",
	"regex: /re1/[0-9]+/items\n",
	"a: {b: 1}}\n",
	"a: [\n  1]\n",
	"- [a, b]\n- {c: d}\n",
	"a: \"\\x41\"\n",
	"a: \"\\/\"\n",
	"a: \"\\ud800\"\n",
	"a: 'x\n  y'\n",
	"a:\n  {b: 1}\n",
	"a:\n  plain\n",
	"b: 1\n- a\n",
	"- a\nb: 1\n",
	"a: 1\n  # deeper comment\nb: 2\n",
	"a: 1\n# c\n  b: 2\n",
	"a: [b, c] d\n",
	"a: \"b\" c\n",
	"a: '' \nb: \"\"\n",
	"- \n- \n",
	"-\n",
	"a:",
	"a: 1",
	"- a",
	"{}",
	"[]\n",
	"{a: 1, b: 2}\n---\n[x]\n",
	"{\"a\": 1} # c\n\n---\nb: 2\n",
	"{\"a\": 1}\nb: 2\n",
	"{\"a\": [1,\n# c\n2]}\n",
	"{\"a\": 1,}\n",
	"{\"a\":-1,\"b\":1.5,\"c\":-0.5e-3}\n",
	"a: -\n",
	"a: -,\n",
	"[-, -a]\n",
	"[a?b]\n",
	"[a#b, c #d\n]\n",
	"a: 'b'#c\n",
	"a: 1 #\n",
	"#\na: 1\n#\n",
	"a:\n  -   x\n  -   y: 1\n      z: 2\n",
	"a:\n  -   y: 1\n     z: 2\n",
	"# → §\na: é # ü\nb: [ö, 'ä', \"ß\"]\nc: {x: ✓}\n",
	"a: \u00a0b\n",
	"a: x\u0085y\n",
	"a: x\u2028y\n",
	"\ufeffa: 1\n",
	"a: 1\n\ufeffb: 2\n",
	"a: \xff\n",
	"a: {b: arn:aws:x, c: [spiffe://x/y, a:b]}\n",
	"a: [a:, b]\n",
	"a: {b:, c: d}\n",
	"a: [a:[b]]\n",
	"arn:aws:x: 1\n",
	"a: 1\r\nb: [x, 'y']\r\nc:\r\n  - d: \"e\" # f\r\n",
	"a: 1\rb: 2\n",
	"a: 1\r\r\n",
	"a: 'x\r\n  y'\r\n",
}

func TestFastParseMatchesLibrary(t *testing.T) {
	accepted := 0
	for _, in := range fastCases {
		t.Run(fmt.Sprintf("%q", in), func(t *testing.T) {
			if checkFastParse(t, []byte(in)) {
				accepted++
			}
		})
	}
	// Most cases are inside the subset; if few are, the fast path has
	// silently stopped being used.
	if accepted < len(fastCases)/3 {
		t.Errorf("fast path accepted only %d of %d cases", accepted, len(fastCases))
	}
}

// TestFastParseAcceptsManifests holds the fast path to what it is for: the
// example manifests decode without the library.
func TestFastParseAcceptsManifests(t *testing.T) {
	files := seedFiles(t)
	more, _ := filepath.Glob("../compile/testdata/*.in.yaml")
	files = append(files, more...)
	slow := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !checkFastParse(t, data) {
			t.Logf("%s: left to the library", f)
			slow++
		}
	}
	if slow > len(files)/4 {
		t.Errorf("%d of %d manifest files are left to the library", slow, len(files))
	}
}

func FuzzFastParse(f *testing.F) {
	for _, in := range fastCases {
		f.Add([]byte(in))
	}
	for _, file := range seedFiles(f) {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(strings.Repeat("a:\n  ", 50) + "b: 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFastParse(t, data)
	})
}

// checkSameSet fails unless AddFile, fast path or not, makes of data, added
// after before, exactly the set the YAML library alone makes of it.
func checkSameSet(t *testing.T, before, data []byte) {
	t.Helper()
	got, want := NewSet(), NewSet()
	got.AddFile("before.yaml", before)
	want.AddFile("before.yaml", before)
	got.AddFile("f.yaml", data)
	want.addLibrary("f.yaml", data, &Source{File: "f.yaml", text: string(data)})
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoding differs from the library's:\n got %+v\nwant %+v\ninput:\n%s", got, want, data)
	}
}

func TestFastPathMatchesLibrary(t *testing.T) {
	before := []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\nkind: x\n")
	for _, in := range append(fastCases,
		// A document noted as skipped, then one the fast path leaves to
		// the library, which fails on the file before reaching it.
		"apiVersion: 0\nkind: 0\n--- 000:",
		gatewayRouteHead+"  httpRoute:\n    match: {prefix: /a}\n---\n"+gatewayRouteHead+"  httpRoute: &r\n    match: {prefix: /b}\n",
	) {
		for _, b := range [][]byte{nil, before} {
			checkSameSet(t, b, []byte(in))
		}
	}
	for _, file := range seedFiles(t) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		checkSameSet(t, before, data)
	}
}

func FuzzFastPathMatchesLibrary(f *testing.F) {
	for _, in := range fastCases {
		f.Add([]byte(in))
	}
	f.Add([]byte("apiVersion: 0\nkind: 0\n--- 000:"))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSameSet(t, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"), data)
	})
}
