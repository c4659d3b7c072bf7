package file

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync/atomic"
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
	ch, _ := startCountedWatch(t, nil, paths...)
	return ch
}

// startCountedWatch is startWatch that also counts the loads the watcher
// makes, and runs block (if not nil) in onChange before passing the update
// on, as a slow reload would.
func startCountedWatch(t *testing.T, block func(update), paths ...string) (<-chan update, *atomic.Int32) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan update, 100)
	ready := make(chan struct{})
	done := make(chan struct{})
	loads := &atomic.Int32{}
	onChange := func(s *resource.Set, err error) {
		u := update{s, err}
		if block != nil {
			block(u)
		}
		ch <- u
	}
	go func() {
		defer close(done)
		watch(ctx, paths, onChange, hooks{ready: func() { close(ready) }, loading: func() { loads.Add(1) }})
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
	return ch, loads
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

// replace writes content to a file outside the watched tree and renames it
// over path: one event, as `mv` or an editor's atomic save makes.
func replace(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(t.TempDir(), "new.yaml")
	write(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestWatchOneChangeOneLoad(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "mesh.yaml")
	write(t, file, mesh("1"))
	ch, loads := startCountedWatch(t, nil, dir)
	replace(t, file, mesh("2"))
	waitFor(t, ch, "rev 2", hasRev("2"))
	if n := loads.Load(); n != 1 {
		t.Errorf("%d loads for one change, want 1", n)
	}
}

func TestWatchBurstOf50Writes(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "mesh.yaml")
	write(t, file, mesh("0"))
	ch, loads := startCountedWatch(t, nil, dir)
	for i := 1; i <= 50; i++ {
		write(t, file, mesh(fmt.Sprint(i)))
	}
	waitFor(t, ch, "rev 50", hasRev("50"))
	// Typically two loads: one as the burst starts, one after it. The
	// bound leaves room for a writer the scheduler pauses mid-burst.
	if n := loads.Load(); n > 5 {
		t.Errorf("50 writes made %d loads", n)
	}
}

func TestWatchChangesDuringLoadMakeOneMoreLoad(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "mesh.yaml")
	write(t, file, mesh("0"))
	loading, release := make(chan struct{}), make(chan struct{})
	var once atomic.Bool
	ch, loads := startCountedWatch(t, func(update) {
		// The first update stands for a slow reload: it holds the
		// watcher until the test has written everything.
		if once.CompareAndSwap(false, true) {
			close(loading)
			<-release
		}
	}, dir)
	replace(t, file, mesh("1"))
	select {
	case <-loading:
	case <-time.After(wait):
		t.Fatal("no load")
	}
	for i := 2; i <= 10; i++ {
		write(t, file, mesh(fmt.Sprint(i)))
	}
	close(release)
	waitFor(t, ch, "rev 10", hasRev("10"))
	// One more load; a third only if the machine stalls the watcher for
	// 50 ms while it takes in the queued events.
	if n := loads.Load(); n > 3 {
		t.Errorf("%d loads, want 2: the writes during the load must be coalesced", n)
	}
}

// TestWatchHalfWrittenFile reads a file caught in the middle of a write:
// the documents that do not decode are reported, and the write's next
// event reads the whole file.
func TestWatchHalfWrittenFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "mesh.yaml")
	write(t, file, mesh("1"))
	ch := startWatch(t, dir)
	full := mesh("2")
	half := full[:strings.Index(full, "labels:")+len("labels: {re")]
	write(t, file, half)
	waitFor(t, ch, "the half-written file", func(u update) bool {
		return u.err == nil && len(u.set.Problems) > 0 && u.set.Objects[resource.Key{Kind: "Mesh", Name: "m"}] == nil
	})
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(full[len(half):]); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ch, "rev 2", hasRev("2"))
}

// TestWatchConfigMapUpdates replays kubelet's updates of a ConfigMap mount
// several times, each removing the previous version's directory once the
// "..data" link points at the new one.
func TestWatchConfigMapUpdates(t *testing.T) {
	for _, name := range []string{"directory", "file"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			configMapMount(t, dir, "..v1", mesh("1"))
			path := dir
			if name == "file" {
				path = filepath.Join(dir, "mesh.yaml")
			}
			ch, loads := startCountedWatch(t, nil, path)
			for v := 2; v <= 4; v++ {
				configMapMount(t, dir, fmt.Sprintf("..v%d", v), mesh(fmt.Sprint(v)))
				if err := os.RemoveAll(filepath.Join(dir, fmt.Sprintf("..v%d", v-1))); err != nil {
					t.Fatal(err)
				}
				waitFor(t, ch, fmt.Sprintf("rev %d", v), hasRev(fmt.Sprint(v)))
			}
			if n := loads.Load(); n > 12 {
				t.Errorf("3 updates made %d loads", n)
			}
		})
	}
}

// TestWatchTruncateThenWrite rewrites a file in place with a pause between
// the truncation and the write, as a slow writer or filesystem makes: the
// empty file in between is never passed on.
func TestWatchTruncateThenWrite(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "mesh.yaml")
	write(t, file, mesh("1"))
	ch := startWatch(t, dir)
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if _, err := f.WriteString(mesh("2")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, n := waitFor(t, ch, "rev 2", hasRev("2")); n != 1 {
		t.Errorf("%d updates before rev 2; the emptied file must not be passed on", n-1)
	}
}

func TestWatchFileRemoved(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "mesh.yaml"), mesh("1"))
	write(t, filepath.Join(dir, "other.yaml"), configMap("other"))
	ch := startWatch(t, dir)
	if err := os.Remove(filepath.Join(dir, "mesh.yaml")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ch, "the set without the removed file", func(u update) bool {
		return u.err == nil && len(u.set.Objects) == 0 && reflect.DeepEqual(skippedNames(u.set), []string{"other"})
	})
}

// TestWatchSeesChangeAfterLoad changes a file between Load and Watch, as
// happens while a server applies what it loaded before watching: the change
// is passed on without another event.
func TestWatchSeesChangeAfterLoad(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "mesh.yaml"), mesh("1"))
	if s, err := Load([]string{dir}); err != nil || rev(s) != "1" {
		t.Fatalf("Load: %v, rev %q", err, rev(s))
	}
	write(t, filepath.Join(dir, "mesh.yaml"), mesh("2"))
	ch := startWatch(t, dir)
	if _, n := waitFor(t, ch, "rev 2", hasRev("2")); n != 1 {
		t.Errorf("%d updates before rev 2", n-1)
	}
}

// TestWatchAfterUnchangedLoad starts watching files unchanged since Load:
// nothing is passed on until they change.
func TestWatchAfterUnchangedLoad(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "mesh.yaml"), mesh("1"))
	if _, err := Load([]string{dir}); err != nil {
		t.Fatal(err)
	}
	ch := startWatch(t, dir)
	replace(t, filepath.Join(dir, "mesh.yaml"), mesh("2"))
	if _, n := waitFor(t, ch, "rev 2", hasRev("2")); n != 1 {
		t.Errorf("%d updates before rev 2; the unchanged files must not be passed on", n-1)
	}
}

// TestDecodeCacheBuildsWhatAddFileBuilds holds a build that reuses the
// decoding of unchanged files to the Set that AddFile of every file makes:
// same objects, namespaces, problems and skipped documents, with later files
// replacing earlier ones, across loads that change, add, remove, reorder and
// repeat files.
func TestDecodeCacheBuildsWhatAddFileBuilds(t *testing.T) {
	route := func(name, prefix string) string {
		return fmt.Sprintf("apiVersion: appmesh.k8s.aws/v1beta2\nkind: GatewayRoute\nmetadata: {name: %s, namespace: ns}\nspec:\n  httpRoute:\n    match: {prefix: %s}\n    action: {target: {virtualService: {virtualServiceRef: {name: s}}}}\n", name, prefix)
	}
	ns := "apiVersion: v1\nkind: Namespace\nmetadata: {name: ns, labels: {mesh: m}}\n"
	skipped := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
	broken := "apiVersion: appmesh.k8s.aws/v1beta2\nkind: GatewayRoute\nmetadata: {name: bad, namespace: ns}\nspec: {nope: 1}\n"
	a := manifest{"a.yaml", []byte(ns + "---\n" + route("r1", "/a") + "---\n" + route("r2", "/b"))}
	b := manifest{"b.yaml", []byte(route("r2", "/b2") + "---\n" + skipped + "---\n" + broken)}
	b2 := manifest{"b.yaml", []byte(route("r2", "/b3") + "---\nkind: [\n")}
	c := manifest{"c.yaml", []byte(route("r1", "/c"))}
	loads := []struct {
		name  string
		files []manifest
	}{
		{"first", []manifest{a, b}},
		{"unchanged", []manifest{a, b}},
		{"one file changed", []manifest{a, b2}},
		{"a file added", []manifest{a, b2, c}},
		{"reordered", []manifest{c, b2, a}},
		{"a file twice", []manifest{a, c, a}},
		{"a file removed", []manifest{c}},
		{"back", []manifest{a, b}},
	}
	var cache decodeCache
	for _, l := range loads {
		want := resource.NewSet()
		for _, f := range l.files {
			want.AddFile(f.path, f.data)
		}
		var got *resource.Set
		got, cache = cache.build(l.files)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: built %+v, AddFile made %+v", l.name, got, want)
		}
	}
}
