package compile

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/ir"
	"github.com/meshgate/meshgate/internal/resource"
)

var update = flag.Bool("update", false, "rewrite testdata/*.out.json from the current output")

// A golden case is testdata/NAME.in.yaml, or a directory testdata/NAME.in/
// whose YAML files are applied in name order (as `kubectl apply -f DIR`
// does), compiled into testdata/NAME.out.json. A line "# resolve: HOST=IP:PORT[,IP:PORT]"
// in an input file gives a VirtualNode hostname fixed endpoints, as --resolve does.

type golden struct {
	Config   *ir.Config `json:"config"`
	Problems []string   `json:"problems"`
}

func goldenCases(t *testing.T) []string {
	t.Helper()
	ins, err := filepath.Glob(filepath.Join("testdata", "*.in*"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, in := range ins {
		base := filepath.Base(in)
		names = append(names, base[:strings.Index(base, ".in")])
	}
	sort.Strings(names)
	if len(names) == 0 {
		t.Fatal("no golden cases in testdata")
	}
	return names
}

// loadCase builds the input set of a golden case. File names are relative to
// testdata so that goldens do not depend on where the tests run.
func loadCase(t *testing.T, name string) *resource.Set {
	t.Helper()
	set := resource.NewSet()
	var files []string
	if dir := filepath.Join("testdata", name+".in"); isDir(dir) {
		matches, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(matches)
		files = matches
	} else {
		files = []string{filepath.Join("testdata", name+".in.yaml")}
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel("testdata", f)
		set.AddFile(filepath.ToSlash(rel), data)
		for _, line := range strings.Split(string(data), "\n") {
			spec, ok := strings.CutPrefix(line, "# resolve: ")
			if !ok {
				continue
			}
			host, list, _ := strings.Cut(strings.TrimSpace(spec), "=")
			set.Endpoints[strings.ToLower(host)] = append(set.Endpoints[strings.ToLower(host)], strings.Split(list, ",")...)
		}
	}
	return set
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func render(t *testing.T, set *resource.Set) []byte {
	t.Helper()
	cfg, problems := Compile(set)
	g := golden{Config: cfg, Problems: []string{}}
	for _, p := range problems {
		g.Problems = append(g.Problems, p.String())
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(g); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestGolden(t *testing.T) {
	names := goldenCases(t)
	outs, _ := filepath.Glob(filepath.Join("testdata", "*.out.json"))
	for _, out := range outs {
		name := strings.TrimSuffix(filepath.Base(out), ".out.json")
		if !slices.Contains(names, name) {
			t.Errorf("%s has no input testdata/%s.in.yaml or testdata/%s.in/", out, name, name)
		}
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			set := loadCase(t, name)
			got := render(t, set)
			out := filepath.Join("testdata", name+".out.json")
			if *update {
				if err := os.WriteFile(out, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(out)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/compile -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (run with -update and review the diff):\n%s", out, firstDiff(want, got))
			}
		})
	}
}

// TestGoldenInvariants checks what must hold for every output: the config
// validates, every input object has exactly one status, statuses are sorted,
// and compiling the same input twice gives the same bytes.
func TestGoldenInvariants(t *testing.T) {
	for _, name := range goldenCases(t) {
		t.Run(name, func(t *testing.T) {
			set := loadCase(t, name)
			cfg, _ := Compile(set)
			if err := cfg.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
			if len(cfg.Statuses) != len(set.Objects) {
				t.Errorf("%d statuses for %d objects", len(cfg.Statuses), len(set.Objects))
			}
			seen := map[resource.Key]bool{}
			for i, s := range cfg.Statuses {
				k := resource.Key{Kind: s.Kind, Namespace: s.Namespace, Name: s.Name}
				if _, ok := set.Objects[k]; !ok || seen[k] {
					t.Errorf("status %d: %v is not one input object", i, k)
				}
				seen[k] = true
				if i > 0 {
					p := cfg.Statuses[i-1]
					if [3]string{p.Kind, p.Namespace, p.Name} != [3]string{s.Kind, s.Namespace, s.Name} &&
						!lessKey(p.Kind, p.Namespace, p.Name, s.Kind, s.Namespace, s.Name) {
						t.Errorf("statuses out of order at %d", i)
					}
				}
				if !s.Active && (s.Reason == "" || s.Message == "") {
					t.Errorf("inactive %v without reason or message", k)
				}
			}
			// Map order differs from run to run, so compile several times,
			// from the same set (Compile must not change it) and from fresh ones.
			first := render(t, set)
			for i := 0; i < 5; i++ {
				again := set
				if i%2 == 1 {
					again = loadCase(t, name)
				}
				if b := render(t, again); !bytes.Equal(first, b) {
					t.Fatalf("compiles of the same input differ:\n%s", firstDiff(first, b))
				}
			}
		})
	}
}

func lessKey(k1, n1, m1, k2, n2, m2 string) bool {
	if k1 != k2 {
		return k1 < k2
	}
	if n1 != n2 {
		return n1 < n2
	}
	return m1 < m2
}

// firstDiff shows the first differing line with some context.
func firstDiff(want, got []byte) string {
	wl, gl := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return "line " + strconv.Itoa(i+1) + ":\n- " + w + "\n+ " + g
		}
	}
	return "(no line differs)"
}

// TestSeedCopy keeps testdata/seed.in equal to the guide's manifests when
// they are available next to the repository.
func TestSeedCopy(t *testing.T) {
	const shared = "../../../shared/examples/seed"
	files, _ := filepath.Glob(filepath.Join(shared, "*.yaml"))
	if len(files) == 0 {
		t.Skip("shared seed manifests not available")
	}
	for _, f := range files {
		want, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("testdata", "seed.in", filepath.Base(f)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("testdata/seed.in/%s differs from %s", filepath.Base(f), f)
		}
	}
}

// TestCompileLeavesInputAlone holds Compile to not changing its input: the
// file source reuses the objects of unchanged files from one reload to the
// next, and a served config shares its regular expressions with the next.
// Each golden input is compiled twice and must be as it was decoded.
func TestCompileLeavesInputAlone(t *testing.T) {
	for _, name := range goldenCases(t) {
		t.Run(name, func(t *testing.T) {
			set, pristine := loadCase(t, name), loadCase(t, name)
			first, _ := Compile(set)
			second, _ := Compile(set)
			if !reflect.DeepEqual(set, pristine) {
				t.Error("Compile changed its input set")
			}
			a, _ := json.Marshal(first)
			b, _ := json.Marshal(second)
			if !bytes.Equal(a, b) {
				t.Errorf("compiling the same set again gave another config:\n%s\n%s", a, b)
			}
		})
	}
}
