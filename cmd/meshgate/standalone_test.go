package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/echo"
)

// clusterPackages are what a standalone build must not link: they are most
// of the full binary and of its resident memory.
var clusterPackages = []string{"k8s.io/client-go/", "sigs.k8s.io/controller-runtime", "github.com/envoyproxy/go-control-plane/"}

// TestStandaloneBuild builds meshgate with -tags standalone and runs it as
// a user would: it serves the guide's manifests from files, links none of
// the cluster packages, and says plainly that the commands and the flag
// that need them are not in this build.
func TestStandaloneBuild(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-tags", "standalone", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, p := range clusterPackages {
			if strings.HasPrefix(dep, p) {
				t.Errorf("the standalone build links %s", dep)
			}
		}
	}

	bin := filepath.Join(t.TempDir(), "meshgate")
	if out, err := exec.Command("go", "build", "-tags", "standalone", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build -tags standalone: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"controller"}, {"xds"}, {"bootstrap"}, {"serve", "--kubernetes", "--gateway", "demo/gw"}} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "standalone build") {
			t.Errorf("meshgate %s: %v, %q; want an error that names the standalone build", strings.Join(args, " "), err, out)
		}
	}

	port, admin := freePort(t), freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	args := append([]string{"serve", "-f", copySeed(t, port), "--listen-address", "127.0.0.1",
		"--admin-address", fmt.Sprintf("127.0.0.1:%d", admin), "--log-level", "warn"}, seedResolve(t)...)
	cmd := exec.CommandContext(ctx, bin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	waitFor(t, "the standalone gateway to be ready", func() bool {
		res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/ready", admin))
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/v1/orders", port), nil)
	req.Host = "api.example.com"
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var r echo.Reply
	if res.StatusCode != http.StatusOK || json.Unmarshal(body, &r) != nil || r.Backend != "production-api-vn" || r.Path != "/v1/orders" {
		t.Fatalf("%d %s, want production-api-vn to answer /v1/orders", res.StatusCode, body)
	}
}
