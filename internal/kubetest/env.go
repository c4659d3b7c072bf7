// Package kubetest owns what the tests against a real API server share: a
// kube-apiserver and etcd started by controller-runtime's envtest with
// meshgate's CRDs installed, applying manifests the way `kubectl apply` does,
// and test hosts in network namespaces (the API server refuses loopback
// addresses in EndpointSlices, so backends that a Service's EndpointSlices
// can name live in a namespace of their own, reached over a veth pair).
//
// The binaries come from KUBEBUILDER_ASSETS, or else from
// hack/k8s-bins/build.sh, which builds them once per machine into a
// version-keyed cache outside the repository.
package kubetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/source/kube"
	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	sigsyaml "sigs.k8s.io/yaml"
)

// Env is a running API server with meshgate's CRDs.
type Env struct {
	Config *rest.Config
	Client client.Client
	env    *envtest.Environment
}

// RepoRoot is the directory of the repository this package is in.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Assets returns the directory of kube-apiserver and etcd: KUBEBUILDER_ASSETS
// when set, else the cache that hack/k8s-bins/build.sh fills (building the
// binaries there the first time, which takes about 11 minutes on 2 cores).
func Assets() (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	cmd := exec.Command("bash", filepath.Join(RepoRoot(), "hack", "k8s-bins", "build.sh"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("building kube-apiserver and etcd (hack/k8s-bins/build.sh): %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// Start starts an API server and etcd on loopback with the CRDs of
// config/crd/bases installed.
func Start() (*Env, error) {
	assets, err := Assets()
	if err != nil {
		return nil, err
	}
	e := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	cfg, err := e.Start()
	if err != nil {
		return nil, fmt.Errorf("starting kube-apiserver and etcd: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: kube.Scheme()})
	if err != nil {
		e.Stop()
		return nil, err
	}
	return &Env{Config: cfg, Client: c, env: e}, nil
}

// User returns a client configuration for a user of that name with no
// groups: it may do only what RBAC bindings grant it.
func (e *Env) User(name string) (*rest.Config, error) {
	u, err := e.env.AddUser(envtest.User{Name: name}, nil)
	if err != nil {
		return nil, err
	}
	return u.Config(), nil
}

// Stop stops the API server and etcd.
func (e *Env) Stop() error { return e.env.Stop() }

var (
	shared     *Env
	sharedErr  error
	sharedOnce sync.Once
)

// Shared returns the package's API server, starting it on first use; a
// TestMain stops it with StopShared.
func Shared(t testing.TB) *Env {
	t.Helper()
	sharedOnce.Do(func() { shared, sharedErr = Start() })
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

// StopShared stops the API server Shared started, if it did.
func StopShared() {
	if shared != nil {
		if err := shared.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the test API server:", err)
		}
	}
}

// Objects decodes every document of a YAML stream into unstructured
// objects, skipping empty documents.
func Objects(data []byte) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if doc == nil {
			continue
		}
		raw, err := yaml.Marshal(doc)
		if err != nil {
			return nil, err
		}
		js, err := sigsyaml.YAMLToJSON(raw)
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
}

// Apply applies obj with server-side apply, as `kubectl apply
// --server-side --force-conflicts` does; namespaced objects without a
// namespace go to "default".
func Apply(ctx context.Context, c client.Client, obj *unstructured.Unstructured) error {
	obj = obj.DeepCopy()
	namespaced, err := c.IsObjectNamespaced(obj)
	if err != nil {
		return err
	}
	if namespaced && obj.GetNamespace() == "" {
		obj.SetNamespace("default")
	}
	body, err := obj.MarshalJSON()
	if err != nil {
		return err
	}
	return c.Patch(ctx, obj, client.RawPatch(types.ApplyPatchType, body), client.FieldOwner("kubectl"), client.ForceOwnership)
}

// ApplyYAML applies every document of data in order.
func ApplyYAML(ctx context.Context, c client.Client, data []byte) error {
	objs, err := Objects(data)
	if err != nil {
		return err
	}
	for _, o := range objs {
		if err := Apply(ctx, c, o); err != nil {
			return fmt.Errorf("%s %s/%s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
	}
	return nil
}

// Eventually polls cond every 50ms until it holds or timeout passes; the
// timeout only keeps a broken test from hanging.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
