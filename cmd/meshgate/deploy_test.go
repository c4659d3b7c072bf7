//go:build !standalone

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/kubetest"
	"github.com/meshgate/meshgate/internal/resource"
	"github.com/meshgate/meshgate/internal/source/kube"
	"go.yaml.in/yaml/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// deployFiles returns the manifests a kustomization lists, following
// directories, in order.
func deployFiles(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources []string `yaml:"resources"`
	}
	if err := yaml.Unmarshal(b, &k); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range k.Resources {
		p := filepath.Join(dir, r)
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s lists %s: %v", dir, r, err)
		}
		if fi.IsDir() {
			out = append(out, deployFiles(t, p)...)
		} else {
			out = append(out, p)
		}
	}
	return out
}

// helmVersion is the Helm that renders charts/meshgate in the tests.
const helmVersion = "v3.22.0"

// helmBinary builds helm once per machine into the user cache (about two
// minutes) and returns its path.
func helmBinary(t *testing.T) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(cache, "meshgate-test", "helm-"+helmVersion)
	bin := filepath.Join(dir, "helm")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "install", "helm.sh/helm/v3/cmd/helm@"+helmVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-mod=mod")
	cmd.Dir = t.TempDir() // outside this module, so its go.mod plays no part
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install helm %s: %v\n%s", helmVersion, err, out)
	}
	return bin
}

// installSources are the two ways to install meshgate: the kustomize
// manifests of deploy/ (with deploy/gateway/) and the Helm chart with a
// gateway, rendered as `helm install meshgate -n meshgate-system` would.
var installSources = []struct {
	name string
	docs func(t *testing.T) []string
}{
	{"deploy", func(t *testing.T) []string {
		root := kubetest.RepoRoot()
		var docs []string
		files := append(deployFiles(t, filepath.Join(root, "deploy")), deployFiles(t, filepath.Join(root, "deploy", "gateway"))...)
		for _, f := range files {
			if strings.Contains(f, filepath.Join("config", "crd")) {
				continue // installed by the test API server already
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			docs = append(docs, string(b))
		}
		return docs
	}},
	{"chart", func(t *testing.T) []string {
		helm := helmBinary(t)
		chart := filepath.Join(kubetest.RepoRoot(), "charts", "meshgate")
		if out, err := exec.Command(helm, "lint", "--strict", chart).CombinedOutput(); err != nil {
			t.Fatalf("helm lint: %v\n%s", err, out)
		}
		out, err := exec.Command(helm, "template", "meshgate", chart, "--namespace", "meshgate-system",
			"--set", "gateway.enabled=true,gateway.namespace=demo").Output()
		if err != nil {
			t.Fatalf("helm template: %v", err)
		}
		// The chart's CRDs are installed by the test API server already,
		// and `helm template` leaves them out.
		return []string{"apiVersion: v1\nkind: Namespace\nmetadata: {name: meshgate-system}\n", string(out)}
	}},
}

// TestDeployManifestsAndRBAC applies each install source to a real API
// server, then runs each mode as a user holding only the role it gives that
// mode: the gateway can read everything it watches and cannot write status;
// the controller can lead, write status and release App Mesh's finalizers.
func TestDeployManifestsAndRBAC(t *testing.T) {
	for _, src := range installSources {
		t.Run(src.name, func(t *testing.T) { testInstall(t, src.docs(t)) })
	}
}

func testInstall(t *testing.T, docs []string) {
	env := kubetest.Shared(t)
	ctx := context.Background()
	k := newCluster(t, env.Client)
	k.apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n")
	for _, d := range docs {
		k.apply(d)
	}

	bind := func(user, kind, role, ns string) {
		binding := "ClusterRoleBinding"
		meta := "metadata: {name: test-" + user + "-" + role + "}"
		if ns != "" {
			binding = "RoleBinding"
			meta = "metadata: {name: test-" + user + "-" + role + ", namespace: " + ns + "}"
		}
		k.apply("apiVersion: rbac.authorization.k8s.io/v1\nkind: " + binding + "\n" + meta +
			"\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: " + kind + ", name: " + role + "}" +
			"\nsubjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: " + user + "}]\n")
	}
	bind("test-gateway", "ClusterRole", "meshgate-gateway", "")
	bind("test-controller", "ClusterRole", "meshgate-controller", "")
	bind("test-controller", "Role", "meshgate-controller-leader-election", "meshgate-system")
	k.apply(`
apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata:
  name: rbac-mesh
  finalizers: [finalizers.appmesh.k8s.aws/aws-appmesh-resources]
spec: {namespaceSelector: {}}
`)

	// The gateway's role suffices to watch everything.
	gwCfg, err := env.User("test-gateway")
	if err != nil {
		t.Fatal(err)
	}
	var snaps atomic.Int64
	wctx, cancel := context.WithTimeout(ctx, kubeWait)
	done := make(chan error, 1)
	go func() {
		done <- kube.Watch(wctx, gwCfg, kube.Options{}, func(s *kube.Snapshot) {
			if _, ok := s.Objects[resource.Key{Kind: "Mesh", Name: "rbac-mesh"}]; ok {
				snaps.Add(1)
				cancel()
			}
		})
	}()
	if err := <-done; err != nil {
		t.Fatalf("watching as the gateway: %v", err)
	}
	cancel()
	if snaps.Load() == 0 {
		t.Fatal("the gateway's role did not let it see the cluster")
	}
	// ... and writes nothing.
	gwClient, err := client.New(gwCfg, client.Options{Scheme: kube.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	mesh := &unstructured.Unstructured{}
	mesh.SetAPIVersion("appmesh.k8s.aws/v1beta2")
	mesh.SetKind("Mesh")
	mesh.SetName("rbac-mesh")
	err = gwClient.Status().Patch(ctx, mesh, client.RawPatch(types.MergePatchType, []byte(`{"status":{"observedGeneration":1}}`)))
	if !apierrors.IsForbidden(err) {
		t.Fatalf("the gateway's role may patch status: %v", err)
	}

	// The controller's roles suffice to lead and write status.
	ctlCfg, err := env.User("test-controller")
	if err != nil {
		t.Fatal(err)
	}
	cctx, ccancel := context.WithCancel(ctx)
	cdone := make(chan error, 1)
	var elected atomic.Bool
	go func() {
		cdone <- runController(cctx, controllerOptions{
			restConfig: ctlCfg, leaderElectionNamespace: "meshgate-system", leaderElectionID: "meshgate-controller",
			healthAddr: "0", leaseDuration: 3 * time.Second, renewDeadline: 2 * time.Second, retryPeriod: 200 * time.Millisecond,
			elected: func() { elected.Store(true) },
		})
	}()
	t.Cleanup(func() {
		ccancel()
		if err := <-cdone; err != nil {
			t.Errorf("controller: %v", err)
		}
	})
	kubetest.Eventually(t, kubeWait, "the controller to lead and write the Mesh's status", func() bool {
		s, _ := readStatus(t, env.Client, "Mesh", "", "rbac-mesh")
		return elected.Load() && s == "True/1"
	})
	if err := env.Client.Delete(ctx, mesh); err != nil {
		t.Fatal(err)
	}
	kubetest.Eventually(t, kubeWait, "the controller to release the deleted Mesh's finalizer", func() bool {
		err := env.Client.Get(ctx, client.ObjectKey{Name: "rbac-mesh"}, mesh.DeepCopy())
		return apierrors.IsNotFound(err)
	})
}
