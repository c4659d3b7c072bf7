package file

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/resource"
)

// wait is how long a test waits for something that should happen soon.
const wait = 5 * time.Second

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// configMap is a non-App-Mesh document: it shows up in Skipped, in order.
func configMap(name string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s}\n", name)
}

func mesh(rev string) string {
	return fmt.Sprintf("apiVersion: appmesh.k8s.aws/v1beta2\nkind: Mesh\nmetadata:\n  name: m\n  labels: {rev: %q}\n", rev)
}

// skippedNames returns the names in the Skipped notes, in order.
func skippedNames(s *resource.Set) []string {
	var out []string
	for _, line := range s.Skipped {
		_, after, _ := strings.Cut(line, " skipped v1 ConfigMap ")
		name, _, _ := strings.Cut(after, " ")
		out = append(out, name)
	}
	return out
}

func rev(s *resource.Set) string {
	o := s.Objects[resource.Key{Kind: "Mesh", Name: "m"}]
	if o == nil {
		return ""
	}
	return resource.Meta(o.Value).Labels["rev"]
}

func TestLoadOrder(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	write(t, filepath.Join(a, "b.yaml"), configMap("a-b"))
	write(t, filepath.Join(a, "a.yaml"), configMap("a-a"))
	write(t, filepath.Join(a, "a", "x.yml"), configMap("a-a-x"))
	write(t, filepath.Join(a, "d.json"), `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a-d"}}`)
	write(t, filepath.Join(a, "sub", "deeper", "c.YAML"), configMap("a-sub-deeper-c"))
	write(t, filepath.Join(a, "notes.txt"), configMap("ignored"))
	write(t, filepath.Join(a, ".hidden.yaml"), configMap("ignored"))
	write(t, filepath.Join(a, ".git", "x.yaml"), configMap("ignored"))
	write(t, filepath.Join(b, "z.yaml"), configMap("b-z")+"---\n"+configMap("b-z2"))
	single := filepath.Join(dir, "single.txt")
	write(t, single, configMap("single"))

	s, err := Load([]string{b, single, a})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"b-z", "b-z2", "single", "a-a", "a-a-x", "a-b", "a-d", "a-sub-deeper-c"}
	if got := skippedNames(s); !reflect.DeepEqual(got, want) {
		t.Errorf("order:\n got %q\nwant %q", got, want)
	}
	if !strings.HasPrefix(s.Skipped[4], filepath.Join(a, "a", "x.yml")+":1: ") {
		t.Errorf("origin: %s", s.Skipped[4])
	}
}

func TestLoadRelativePathsStayRelative(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "manifests", "mesh.yaml"), mesh("1"))
	t.Chdir(dir)
	s, err := Load([]string{"manifests"})
	if err != nil {
		t.Fatal(err)
	}
	o := s.Objects[resource.Key{Kind: "Mesh", Name: "m"}]
	if o == nil || o.Origin.File != filepath.Join("manifests", "mesh.yaml") {
		t.Fatalf("origin = %+v", o)
	}
}

func TestLoadLaterFileReplaces(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "1.yaml"), mesh("1"))
	write(t, filepath.Join(dir, "2.yaml"), mesh("2"))
	s, err := Load([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if rev(s) != "2" || len(s.Objects) != 1 {
		t.Errorf("rev %q, objects %v", rev(s), s.Objects)
	}
}

func TestLoadMissingPath(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	write(t, good, mesh("1")+"---\nkind: Broken\n")
	missing := filepath.Join(dir, "missing.yaml")
	s, err := Load([]string{missing, good})
	if err == nil || err.Error() != missing+": no such file or directory" {
		t.Fatalf("err = %v", err)
	}
	if rev(s) != "1" {
		t.Errorf("the readable file was not loaded")
	}
	// Decode problems are the Set's, not the error's.
	if len(s.Problems) != 1 || s.Problems[0].Message != "missing apiVersion" {
		t.Errorf("problems = %v", s.Problems)
	}
}

// configMapMount lays out dir as kubelet mounts a ConfigMap: the real file in
// a timestamped directory, "..data" pointing at it, and a top-level symlink
// through "..data".
func configMapMount(t *testing.T, dir, version, content string) {
	t.Helper()
	write(t, filepath.Join(dir, version, "mesh.yaml"), content)
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(version, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "mesh.yaml")
	if _, err := os.Lstat(link); err != nil {
		if err := os.Symlink(filepath.Join("..data", "mesh.yaml"), link); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoadConfigMapMount(t *testing.T) {
	dir := t.TempDir()
	configMapMount(t, dir, "..2024_01_01", mesh("1"))
	s, err := Load([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if rev(s) != "1" || len(s.Objects) != 1 || s.Objects[resource.Key{Kind: "Mesh", Name: "m"}].Origin.File != filepath.Join(dir, "mesh.yaml") {
		t.Errorf("objects %v", s.Objects)
	}
}

type update struct {
	set *resource.Set
	err error
}

// startWatch runs watch until the test ends and returns its callbacks.
func startWatch(t *testing.T, paths ...string) <-chan update {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan update, 100)
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		watch(ctx, paths, func(s *resource.Set, err error) { ch <- update{s, err} }, func() { close(ready) })
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case <-ready:
	case <-time.After(wait):
		t.Fatal("watch did not start")
	}
	return ch
}

// waitFor returns the first update that satisfies ok, and how many updates
// arrived until then.
func waitFor(t *testing.T, ch <-chan update, what string, ok func(update) bool) (update, int) {
	t.Helper()
	timeout := time.After(wait)
	for n := 1; ; n++ {
		select {
		case u := <-ch:
			if ok(u) {
				return u, n
			}
		case <-timeout:
			t.Fatalf("no update with %s", what)
		}
	}
}

func hasRev(r string) func(update) bool {
	return func(u update) bool { return u.err == nil && rev(u.set) == r }
}

func TestWatchEdit(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "mesh.yaml"), mesh("1"))
	ch := startWatch(t, dir)
	write(t, filepath.Join(dir, "mesh.yaml"), mesh("2"))
	waitFor(t, ch, "rev 2", hasRev("2"))
}

func TestWatchNewFileAndDirectory(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "mesh.yaml"), mesh("1"))
	ch := startWatch(t, dir)

	write(t, filepath.Join(dir, "more.yaml"), configMap("new-file"))
	waitFor(t, ch, "the new file", func(u update) bool {
		return reflect.DeepEqual(skippedNames(u.set), []string{"new-file"})
	})

	// A new subdirectory is watched too: a file written into it later,
	// after its creation was noticed, is still seen.
	sub := filepath.Join(dir, "sub")
	write(t, filepath.Join(sub, "a.yaml"), configMap("sub-a"))
	waitFor(t, ch, "the file in the new directory", func(u update) bool {
		return reflect.DeepEqual(skippedNames(u.set), []string{"new-file", "sub-a"})
	})
	write(t, filepath.Join(sub, "b.yaml"), configMap("sub-b"))
	waitFor(t, ch, "the second file in the new directory", func(u update) bool {
		return reflect.DeepEqual(skippedNames(u.set), []string{"new-file", "sub-a", "sub-b"})
	})
}

func TestWatchRenameReplace(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "mesh.yaml")
	write(t, file, mesh("1"))
	ch := startWatch(t, file)
	for _, r := range []string{"2", "3"} {
		write(t, file+".tmp", mesh(r))
		if err := os.Rename(file+".tmp", file); err != nil {
			t.Fatal(err)
		}
		waitFor(t, ch, "rev "+r, hasRev(r))
	}
}

func TestWatchConfigMapSwap(t *testing.T) {
	for _, name := range []string{"directory", "file"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			configMapMount(t, dir, "..2024_01_01", mesh("1"))
			path := dir
			if name == "file" {
				path = filepath.Join(dir, "mesh.yaml")
			}
			ch := startWatch(t, path)
			configMapMount(t, dir, "..2024_01_02", mesh("2"))
			waitFor(t, ch, "rev 2", hasRev("2"))
		})
	}
}

func TestWatchSkipsIdenticalContent(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "mesh.yaml"), mesh("1"))
	ch := startWatch(t, dir)
	write(t, filepath.Join(dir, "mesh.yaml"), mesh("1"))
	write(t, filepath.Join(dir, "notes.txt"), "not a manifest")
	write(t, filepath.Join(dir, "mesh.yaml"), mesh("2"))
	u, n := waitFor(t, ch, "rev 2", hasRev("2"))
	if n != 1 {
		t.Errorf("%d updates before rev 2; rewriting the same bytes must not call back", n-1)
	}
	_ = u
}

func TestWatchBurst(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "mesh.yaml")
	write(t, file, mesh("0"))
	ch := startWatch(t, dir)
	for i := 1; i <= 20; i++ {
		write(t, file, mesh(fmt.Sprint(i)))
	}
	// Once the last content is loaded no other update can follow: the
	// next load would read the same bytes.
	if _, n := waitFor(t, ch, "rev 20", hasRev("20")); n > 2 {
		t.Errorf("20 writes made %d updates, want 1 or 2", n)
	}
}

func TestWatchReportsReadErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "mesh.yaml")
	write(t, file, mesh("1"))
	ch := startWatch(t, file)
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ch, "an error", func(u update) bool { return u.err != nil && strings.Contains(u.err.Error(), file) })
	write(t, file, mesh("2"))
	waitFor(t, ch, "rev 2", hasRev("2"))
}

func TestWatchStopsOnCancel(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "mesh.yaml"), mesh("1"))
	before := runtime.NumGoroutine()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Watch(ctx, []string{dir}, func(*resource.Set, error) {})
	}()
	// Cancel while events are pending, so the timer is live.
	for i := range 5 {
		write(t, filepath.Join(dir, "mesh.yaml"), mesh(fmt.Sprint(i)))
	}
	cancel()
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatal("Watch did not return after cancel")
	}

	deadline := time.Now().Add(wait)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
