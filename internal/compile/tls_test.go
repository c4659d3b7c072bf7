package compile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/certs/certstest"
	"github.com/meshgate/meshgate/internal/resource"
)

// TestCheckFiles reads the certificate files a gateway names and reports
// the ones it could not serve, at the line of the field that names them.
func TestCheckFiles(t *testing.T) {
	dir := t.TempDir()
	ca := certstest.NewCA(t, "ca")
	gw := ca.Issue(t, "gw", "gw.example.com")
	other := ca.Issue(t, "other", "other.example.com")
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cert, key, otherKey := write("gw.pem", gw.CertPEM), write("gw.key", gw.KeyPEM), write("other.key", other.KeyPEM)
	write("sds/good/cert.pem", gw.CertPEM)
	write("sds/good/key.pem", gw.KeyPEM)
	write("sds/ca/ca.pem", ca.PEM)
	missing := filepath.Join(dir, "missing.pem")
	manifest := strings.NewReplacer("CERT", cert, "KEY", key, "OTHER", otherKey, "MISSING", missing).Replace(`apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualGateway
metadata: {name: gw, namespace: demo}
spec:
  listeners:
    - portMapping: {port: 8443, protocol: http}
      tls:
        mode: STRICT
        certificate:
          file: {certificateChain: CERT, privateKey: OTHER}
        validation:
          trust:
            file: {certificateChain: MISSING}
    - portMapping: {port: 9443, protocol: http}
      tls:
        mode: PERMISSIVE
        certificate:
          sds: {secretName: good}
        validation:
          trust:
            sds: {secretName: ca}
    - portMapping: {port: 7443, protocol: http}
      tls:
        mode: STRICT
        certificate:
          sds: {secretName: absent}
    - portMapping: {port: 8080, protocol: http}
      tls:
        mode: DISABLED
        certificate:
          file: {certificateChain: MISSING, privateKey: MISSING}
  backendDefaults:
    clientPolicy:
      tls:
        certificate:
          file: {certificateChain: CERT, privateKey: KEY}
        validation:
          trust:
            file: {certificateChain: KEY}
`)
	set := resource.NewSet()
	set.AddFile("gw.yaml", []byte(manifest))
	cfg, problems := Compile(set)
	if len(problems) > 0 {
		t.Fatalf("compile: %v", problems)
	}
	var got []string
	for _, p := range CheckFiles(set, cfg, filepath.Join(dir, "sds")) {
		got = append(got, p.String())
	}
	want := []string{
		"gw.yaml:10: VirtualGateway demo/gw: spec.listeners[0].tls.certificate.file: private key " + otherKey + " does not match the certificate in " + cert + " (subject CN=gw, SANs gw.example.com)",
		"gw.yaml:13: VirtualGateway demo/gw: spec.listeners[0].tls.validation.trust.file.certificateChain: trust bundle " + missing + " does not exist",
		"gw.yaml:26: VirtualGateway demo/gw: spec.listeners[2].tls.certificate.sds.secretName: certificate chain " + filepath.Join(dir, "sds/absent/cert.pem") + " does not exist",
		"gw.yaml:39: VirtualGateway demo/gw: spec.backendDefaults.clientPolicy.tls.validation.trust.file.certificateChain: trust bundle " + key + " holds no PEM certificate",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Without a secret directory, secrets are not checked.
	for _, p := range CheckFiles(set, cfg, "") {
		if strings.Contains(p.Field, ".sds.") {
			t.Errorf("checked without a secret directory: %s", p)
		}
	}
}
