// Package file owns reading manifests from files and directories and
// watching them for changes.
//
// A directory is read recursively for .yaml, .yml and .json files, applied in
// lexical order of their full paths, as `kubectl apply -f DIR` would. Entries
// whose names start with "." are left out of directory walks: they are
// editor files, version control, or the "..data" internals of a Kubernetes
// ConfigMap mount whose files would otherwise be read twice. Symbolic links to
// files are followed; symbolic links to directories are not.
package file

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/meshgate/meshgate/internal/resource"
)

// Load reads every path (a file, or a directory read recursively), in the
// order given, into a new Set. Origin.File is the path as given, or joined
// onto a given directory, so relative paths stay relative. The error only
// reports paths that could not be read; the Set still holds everything that
// could. Decoding problems are in the Set's Problems.
func Load(paths []string) (*resource.Set, error) {
	files, err := read(paths)
	set, decoded := decodeCache(nil).build(files)
	loaded.remember(paths, loadRecord{digest(files, err), sizesOf(files), decoded})
	return set, err
}

// loaded is what Load read last, by list of paths. A caller loads its
// files, applies them, and only then watches them; Watch compares its own
// first read with Load's, so that a change in between (applying 10,000
// routes takes a while) is passed on rather than taken as the baseline.
var loaded = loads{m: map[string]loadRecord{}}

type loads struct {
	mu sync.Mutex
	m  map[string]loadRecord
}

type loadRecord struct {
	sum   fingerprint
	sizes map[string]int
	// decoded is what Load decoded, for the Watch of the same paths to
	// start from; the first Watch takes it.
	decoded decodeCache
}

func pathsKey(paths []string) string { return strings.Join(paths, "\x00") }

func (l *loads) remember(paths []string, r loadRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m[pathsKey(paths)] = r
}

// recall returns what Load read last of paths, and hands its decoded files
// over to the caller: the record does not keep them alive after that.
func (l *loads) recall(paths []string) (loadRecord, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := pathsKey(paths)
	r, ok := l.m[k]
	if ok && r.decoded != nil {
		l.m[k] = loadRecord{sum: r.sum, sizes: r.sizes}
	}
	return r, ok
}

type manifest struct {
	path string
	data []byte
}

// decodeCache is every file of the latest load as a Set of its own, by
// path, with the bytes it was decoded from. A reload decodes again only the
// files whose bytes changed: at 10,000 routes, decoding all of them is as
// long as compiling. The Sets built from it share the unchanged files'
// objects, as nothing changes a Set's objects once it is built.
type decodeCache map[string]decodedFile

type decodedFile struct {
	data []byte
	set  *resource.Set
}

// build decodes files into one Set, as AddFile of each in order would, and
// returns the cache for the next build: the files of this one.
func (c decodeCache) build(files []manifest) (*resource.Set, decodeCache) {
	next := make(decodeCache, len(files))
	parts := make([]*resource.Set, len(files))
	objects := 0
	for i, f := range files {
		d, ok := next[f.path]
		if !ok {
			d, ok = c[f.path]
		}
		if !ok || !bytes.Equal(d.data, f.data) {
			d = decodedFile{data: f.data, set: resource.NewSet()}
			d.set.AddFile(f.path, f.data)
		}
		next[f.path] = d
		parts[i] = d.set
		objects += len(d.set.Objects)
	}
	s := resource.NewSet()
	s.Objects = make(map[resource.Key]*resource.Object, objects)
	// Decoding a file depends on nothing but its bytes, and a later
	// document replaces an earlier one of the same key: merging the files'
	// own Sets in order is what AddFile of each would have made.
	for _, p := range parts {
		maps.Copy(s.Objects, p.Objects)
		maps.Copy(s.Namespaces, p.Namespaces)
		s.Problems = append(s.Problems, p.Problems...)
		s.Skipped = append(s.Skipped, p.Skipped...)
	}
	return s, next
}

func read(paths []string) ([]manifest, error) {
	var files []manifest
	var errs []error
	add := func(p string) {
		data, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, pathError(p, err))
			return
		}
		files = append(files, manifest{p, data})
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			errs = append(errs, pathError(p, err))
			continue
		}
		if !fi.IsDir() {
			add(p)
			continue
		}
		names, err := list(p)
		if err != nil {
			errs = append(errs, err)
		}
		for _, name := range names {
			add(name)
		}
	}
	return files, errors.Join(errs...)
}

// list returns the manifest files under dir, sorted.
func list(dir string) ([]string, error) {
	var files []string
	var errs []error
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			errs = append(errs, pathError(p, err))
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if p != dir && hidden(d.Name()) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() || !isManifest(d.Name()) {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			fi, err := os.Stat(p)
			if err != nil {
				errs = append(errs, pathError(p, err))
				return nil
			}
			if !fi.Mode().IsRegular() {
				return nil
			}
		} else if !d.Type().IsRegular() {
			return nil
		}
		files = append(files, p)
		return nil
	})
	if err != nil {
		errs = append(errs, pathError(dir, err))
	}
	// WalkDir orders by path component ("d/a/x.yaml" before "d/a.yaml");
	// the rule is the order of the whole path.
	sort.Strings(files)
	return files, errors.Join(errs...)
}

func hidden(name string) bool { return strings.HasPrefix(name, ".") }

func isManifest(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// pathError says "PATH: reason" once, rather than "PATH: stat PATH: reason".
func pathError(p string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == p {
		err = pe.Err
	}
	return fmt.Errorf("%s: %w", p, err)
}

const (
	// settle is how long the first change after a quiet spell waits for the
	// rest of its write: an editor's write-and-rename, `kubectl cp`, or
	// kubelet swapping a ConfigMap mount's "..data" link all finish within
	// a few milliseconds. A half-written file read anyway is harmless: its
	// documents that do not decode keep their last good version, and the
	// write's next event reads it again.
	settle = 5 * time.Millisecond
	// quiet is how long events must stop before a reload while changes keep
	// coming (during a load, or within quiet of its end), so that a burst of
	// writes (several files copied, a checkout) costs one more load rather
	// than one per write. The steps of one such operation come well within
	// it.
	quiet = 50 * time.Millisecond
	// maxDelay bounds how long a steady stream of events can hold a reload back.
	maxDelay = time.Second
)

// Watch reloads paths whenever something changes under them and calls
// onChange with the new Set and the error Load would return. It watches every
// directory given (recursively, including subdirectories created later) and
// the directory of every file given, so that a file replaced by rename (as
// editors save) or a ConfigMap mount's "..data" symlink swap is seen.
//
// A change after a quiet spell is read within a few milliseconds, unless it
// removes or empties a file: that waits for the next change, as a file being
// rewritten in place looks the same for a moment, and is applied after one
// second if none comes. Changes that arrive while a load runs, or within
// 50 ms of its end, are coalesced into one more load once they stop for
// 50 ms, or at most one second after the first of them.
//
// Watch starts with a load of its own to know the current bytes; it calls
// onChange with it only if the bytes differ from what the latest Load of the
// same paths read (a change made after that Load is not lost). After that,
// onChange is called only when a reload reads different bytes, a different
// list of files, or a different read error.
// onChange runs on Watch's goroutine. If the watcher cannot be created,
// onChange gets a nil Set and the error, and Watch returns. Otherwise Watch
// returns when ctx is done.
func Watch(ctx context.Context, paths []string, onChange func(*resource.Set, error)) {
	watch(ctx, paths, onChange, hooks{})
}

// hooks let tests know when a change will be noticed (ready: the baseline
// is loaded) and count the loads (loading: a load starts reading).
type hooks struct {
	ready, loading func()
}

func watch(ctx context.Context, paths []string, onChange func(*resource.Set, error), h hooks) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		onChange(nil, fmt.Errorf("watching manifests: %w", err))
		return
	}
	defer w.Close()

	// Watches go in before the baseline is read, so no change can fall
	// between the two.
	addWatches(w, paths)
	files, err := read(paths)
	last := digest(files, err)
	sizes := sizesOf(files)
	// Files that changed since the caller's Load count as a change seen
	// now, compared with what Load read: the first read may have caught a
	// file in the middle of its rewrite.
	before, changed := loaded.recall(paths)
	decoded := before.decoded
	changed = changed && before.sum != last
	if changed {
		last, sizes = before.sum, before.sizes
	}
	if h.ready != nil {
		h.ready()
	}

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var (
		pending  bool
		first    time.Time     // the first event not yet loaded
		hold     time.Duration // settle or quiet, chosen at first
		loadedAt time.Time     // when the last load ended; zero before any
		// doubting is set while a file found gone or emptied waits to be
		// believed.
		doubting bool
	)
	schedule := func() {
		now := time.Now()
		if !pending {
			pending, first = true, now
			hold = settle
			if !loadedAt.IsZero() && now.Sub(loadedAt) < quiet {
				hold = quiet
			}
		}
		timer.Reset(min(hold, first.Add(maxDelay).Sub(now)))
	}
	if changed {
		schedule()
	}

	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-w.Events:
			if !ok {
				return
			}
			schedule()
		case _, ok := <-w.Errors:
			if !ok {
				return
			}
			// Usually a queue overflow: events were lost, so look again.
			schedule()
		case <-timer.C:
			pending = false
			if h.loading != nil {
				h.loading()
			}
			// Directories may have appeared (new subdirectories, a path
			// that did not exist yet) or been replaced.
			addWatches(w, paths)
			files, err := read(paths)
			if !doubting && lostContent(sizes, files) {
				// A file gone or emptied is more often one being rewritten
				// in place than one meant to go: a truncation is seen as
				// soon as it happens, the write after it can come 150 ms
				// later (open with O_TRUNC flushes on some filesystems).
				// Wait for that write; without one, believe it at maxDelay.
				doubting, pending, hold = true, true, quiet
				timer.Reset(time.Until(first.Add(maxDelay)))
				continue
			}
			doubting = false
			sizes = sizesOf(files)
			if d := digest(files, err); d != last {
				last = d
				var set *resource.Set
				set, decoded = decoded.build(files)
				onChange(set, err)
			}
			loadedAt = time.Now()
		}
	}
}

// addWatches watches every directory under the directory paths and the
// directory of every other path (and of its symlink target). Adding a
// watched path again is harmless, so this runs before every reload. Errors
// are ignored: a path that cannot be watched shows up as a read error.
func addWatches(w *fsnotify.Watcher, paths []string) {
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			_ = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
				if err != nil || !d.IsDir() {
					return nil
				}
				if q != p && hidden(d.Name()) {
					return fs.SkipDir
				}
				_ = w.Add(q)
				return nil
			})
			continue
		}
		// Changes to a single file are seen in its directory: an editor's
		// rename-replace or a ConfigMap "..data" swap never touches the
		// watched name itself.
		_ = w.Add(filepath.Dir(p))
		if target, err := filepath.EvalSymlinks(p); err == nil && filepath.Dir(target) != filepath.Dir(p) {
			_ = w.Add(filepath.Dir(target))
		}
	}
}

func sizesOf(files []manifest) map[string]int {
	m := make(map[string]int, len(files))
	for _, f := range files {
		m[f.path] = len(f.data)
	}
	return m
}

// lostContent reports whether a file that had content before is now missing
// or empty.
func lostContent(before map[string]int, files []manifest) bool {
	now := sizesOf(files)
	for p, n := range before {
		if n > 0 && now[p] == 0 {
			return true
		}
	}
	return false
}

// digest identifies what a load read: every file's path and bytes, in order,
// and the read error. It is compared only within the process, so it is two
// 64-bit hashes with secret random seeds rather than a cryptographic hash,
// which took a reload of 10,000 routes (3 MB) 5 ms.
func digest(files []manifest, err error) fingerprint {
	var sum fingerprint
	for i := range sum {
		var h maphash.Hash
		h.SetSeed(digestSeeds[i])
		var n [8]byte
		for _, f := range files {
			binary.BigEndian.PutUint64(n[:], uint64(len(f.path)))
			h.Write(n[:])
			h.WriteString(f.path)
			binary.BigEndian.PutUint64(n[:], uint64(len(f.data)))
			h.Write(n[:])
			h.Write(f.data)
		}
		if err != nil {
			h.WriteString(err.Error())
		}
		sum[i] = h.Sum64()
	}
	return sum
}

// fingerprint is what digest returns.
type fingerprint [2]uint64

var digestSeeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}
