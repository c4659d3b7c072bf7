package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/certs/certstest"
)

// tlsManifests is a gateway with a STRICT listener on port whose
// certificate is the SDS secret "gateway", a route to backend, and a
// router with a TCP route (which a gateway does not serve).
func tlsManifests(port int) string {
	return fmt.Sprintf(`apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualGateway
metadata: {name: gw, namespace: demo}
spec:
  listeners:
    - portMapping: {port: %d, protocol: http}
      tls:
        mode: STRICT
        certificate:
          sds: {secretName: gateway}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata: {name: r, namespace: demo}
spec:
  virtualGateway: {name: gw}
  httpRoute:
    match: {prefix: /}
    action:
      target: {virtualService: {virtualServiceRef: {name: backend}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: backend-vn, namespace: demo}
spec:
  listeners: [{portMapping: {port: 8080, protocol: http}}]
  serviceDiscovery: {dns: {hostname: backend.demo.svc.cluster.local}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: backend, namespace: demo}
spec:
  provider: {virtualNode: {virtualNodeRef: {name: backend-vn}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: db-vn, namespace: demo}
spec:
  listeners: [{portMapping: {port: 5432, protocol: tcp}}]
  serviceDiscovery: {dns: {hostname: db.demo.svc.cluster.local}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualRouter
metadata: {name: db-vr, namespace: demo}
spec:
  listeners: [{portMapping: {port: 5432, protocol: tcp}}]
  routes:
    - name: db
      tcpRoute:
        action: {weightedTargets: [{virtualNodeRef: {name: db-vn}, weight: 1}]}
`, port)
}

const tcpNote = "TCP routes are not served at a gateway"

// TestCheckTLSFiles: check reads the certificates a gateway names and
// reports the ones it could not serve; it also says that TCP routes are
// not served.
func TestCheckTLSFiles(t *testing.T) {
	dir := t.TempDir()
	sds := filepath.Join(dir, "sds")
	writeFile(t, filepath.Join(dir, "mesh.yaml"), tlsManifests(8443))

	_, stderr, code := runCLI(t, "check", "-f", filepath.Join(dir, "mesh.yaml"))
	if code != 0 || !strings.Contains(stderr, tcpNote) {
		t.Fatalf("without --sds-dir: exit %d, stderr %s", code, stderr)
	}
	stdout, _, code := runCLI(t, "check", "-f", filepath.Join(dir, "mesh.yaml"), "--sds-dir", sds)
	want := "mesh.yaml:10: VirtualGateway demo/gw: spec.listeners[0].tls.certificate.sds.secretName: certificate chain " + filepath.Join(sds, "gateway", "cert.pem") + " does not exist\n"
	if code != 1 || !strings.HasSuffix(stdout, want) {
		t.Fatalf("missing secret: exit %d, stdout %q, want %q", code, stdout, want)
	}

	ca := certstest.NewCA(t, "ca")
	a, b := ca.Issue(t, "a", "gw.example.com"), ca.Issue(t, "b", "gw.example.com")
	if err := os.MkdirAll(filepath.Join(sds, "gateway"), 0o755); err != nil {
		t.Fatal(err)
	}
	certstest.WriteFile(t, filepath.Join(sds, "gateway", "cert.pem"), a.CertPEM)
	certstest.WriteFile(t, filepath.Join(sds, "gateway", "key.pem"), b.KeyPEM)
	stdout, _, code = runCLI(t, "check", "-f", filepath.Join(dir, "mesh.yaml"), "--sds-dir", sds)
	if code != 1 || !strings.Contains(stdout, "does not match the certificate in "+filepath.Join(sds, "gateway", "cert.pem")) {
		t.Fatalf("mismatched key: exit %d, stdout %q", code, stdout)
	}
	certstest.WriteFile(t, filepath.Join(sds, "gateway", "key.pem"), a.KeyPEM)
	if stdout, stderr, code := runCLI(t, "check", "-f", filepath.Join(dir, "mesh.yaml"), "--sds-dir", sds); code != 0 {
		t.Fatalf("good secret: exit %d: %s %s", code, stdout, stderr)
	}
}

// TestServeTLS serves a STRICT listener whose certificate comes from
// --sds-dir, and shows the listener's TLS and the TCP route note in
// /config. Without the secret, serve refuses to start and says why.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	writeFile(t, filepath.Join(dir, "mesh.yaml"), tlsManifests(port))
	sds := filepath.Join(dir, "sds")
	resolve := "backend.demo.svc.cluster.local=" + startEcho(t, "backend-vn")

	_, stderr, code := runCLI(t, "serve", "-f", dir, "--sds-dir", sds, "--listen-address", "127.0.0.1", "--admin-address", "127.0.0.1:0", "--resolve", resolve)
	if code == 0 || !strings.Contains(stderr, "certificate chain "+filepath.Join(sds, "gateway", "cert.pem")+" does not exist") {
		t.Fatalf("serve without the secret: exit %d, %s", code, stderr)
	}

	ca := certstest.NewCA(t, "ca")
	leaf := ca.Issue(t, "gw", "gw.example.com")
	if err := os.MkdirAll(filepath.Join(sds, "gateway"), 0o755); err != nil {
		t.Fatal(err)
	}
	certstest.WriteFile(t, filepath.Join(sds, "gateway", "cert.pem"), leaf.CertPEM)
	certstest.WriteFile(t, filepath.Join(sds, "gateway", "key.pem"), leaf.KeyPEM)
	g := startServe(t, port, "-f", dir, "--sds-dir", sds, "--resolve", resolve)

	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "gw.example.com"}}}
	res, err := client.Get(strings.Replace(g.url, "http://", "https://", 1) + "/x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("X-Backend") != "backend-vn" {
		t.Fatalf("%d %s", res.StatusCode, body)
	}

	res, err = http.Get(g.admin + "/config")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var cfg struct {
		Config struct {
			Gateways []struct {
				Listeners []struct {
					TLS *struct {
						Mode        string            `json:"mode"`
						Certificate map[string]string `json:"certificate"`
					} `json:"tls"`
				} `json:"listeners"`
			} `json:"gateways"`
			Statuses []struct {
				Kind, Name, Message string
			} `json:"statuses"`
		} `json:"config"`
	}
	if err := json.NewDecoder(res.Body).Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	if l := cfg.Config.Gateways[0].Listeners[0]; l.TLS == nil || l.TLS.Mode != "STRICT" || l.TLS.Certificate["sdsSecret"] != "gateway" {
		t.Errorf("/config listener TLS: %+v", l.TLS)
	}
	noted := false
	for _, s := range cfg.Config.Statuses {
		noted = noted || (s.Kind == "VirtualRouter" && s.Name == "db-vr" && strings.Contains(s.Message, tcpNote))
	}
	if !noted {
		t.Errorf("/config does not say that TCP routes are not served: %+v", cfg.Config.Statuses)
	}
}
