package conformance

import (
	"crypto/tls"
	"encoding/xml"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/dataplane"
)

// h2spec is built from the version go.mod pins it at (a tool dependency:
// go get -tool github.com/summerwind/h2spec/cmd/h2spec@VERSION).
const h2specPkg = "github.com/summerwind/h2spec/cmd/h2spec"

// h2specResult is what one h2spec run reported, by test case.
type h2specResult struct {
	passed, failed, skipped []string
}

func (r h2specResult) String() string {
	return fmt.Sprintf("%d cases: %d passed, %d failed, %d skipped", len(r.passed)+len(r.failed)+len(r.skipped), len(r.passed), len(r.failed), len(r.skipped))
}

// junit is the part of h2spec's JUnit report that says what passed.
type junit struct {
	Suites []struct {
		Package string `xml:"package,attr"`
		Cases   []struct {
			Name    string    `xml:"classname,attr"`
			Failure *struct{} `xml:"failure"`
			Error   *struct{} `xml:"error"`
			Skipped *struct{} `xml:"skipped"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func runH2spec(t *testing.T, bin string, addr net.Addr, useTLS bool) h2specResult {
	t.Helper()
	report := filepath.Join(t.TempDir(), "report.xml")
	host, p, _ := net.SplitHostPort(addr.String())
	args := []string{"--host", host, "--port", p, "--junit-report", report, "--timeout", "3"}
	if useTLS {
		args = append(args, "--tls", "--insecure")
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	data, rerr := os.ReadFile(report)
	if rerr != nil {
		t.Fatalf("h2spec wrote no report (%v): %v\n%s", rerr, err, out)
	}
	var j junit
	if err := xml.Unmarshal(data, &j); err != nil {
		t.Fatal(err)
	}
	var r h2specResult
	for _, s := range j.Suites {
		for i, c := range s.Cases {
			id := s.Package + "/" + strconv.Itoa(i+1) + " " + c.Name
			switch {
			case c.Skipped != nil:
				r.skipped = append(r.skipped, id)
			case c.Failure != nil || c.Error != nil:
				r.failed = append(r.failed, id)
			default:
				r.passed = append(r.passed, id)
			}
		}
	}
	if len(r.passed)+len(r.failed) < 100 {
		t.Fatalf("h2spec ran %s:\n%s", r, out)
	}
	return r
}

// quiet discards the errors h2spec provokes on purpose.
var quiet = log.New(io.Discard, "", 0)

// h2specBackend answers every request with a body, as h2spec's flow
// control cases need one.
var h2specBackend = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, strings.Repeat("h2spec ", 64))
})

// TestH2spec runs h2spec against http2 listeners, in cleartext (prior
// knowledge) and over TLS, and against Go's own HTTP/2 server the same
// way. A case that fails through the gateway but passes against Go's
// server is a gateway bug.
func TestH2spec(t *testing.T) {
	bin := filepath.Join(binDir(t), "h2spec")
	goCmd(t, ".", nil, "build", "-o", bin, h2specPkg)

	dir := t.TempDir()
	_, leaf := gatewayCert(t, dir, "localhost", "127.0.0.1")

	// Go's HTTP/2 server, cleartext and TLS, serving what the backend serves.
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	h2c := httptest.NewUnstartedServer(h2specBackend)
	h2c.Config.Protocols = &protos
	h2c.Config.ErrorLog = quiet
	h2c.Start()
	t.Cleanup(h2c.Close)
	h2tls := httptest.NewUnstartedServer(h2specBackend)
	h2tls.EnableHTTP2 = true
	h2tls.Config.ErrorLog = quiet
	h2tls.TLS = &tls.Config{Certificates: []tls.Certificate{leaf.TLS}}
	h2tls.StartTLS()
	t.Cleanup(h2tls.Close)

	backend := h2c.Listener.Addr()
	yaml := twoListenerYAML("http2", "http2Route", "prefix: /", "backend", dir) + serviceYAML("backend", "http2", port(backend))
	addrs := startGateway(t, compiled(t, yaml, map[string]string{"backend.demo.svc.cluster.local": backend.String()}), dataplane.Options{})

	for _, c := range []struct {
		name         string
		gateway, ref net.Addr
		tls          bool
	}{
		{"cleartext", addrs[8080], h2c.Listener.Addr(), false},
		{"TLS", addrs[8443], h2tls.Listener.Addr(), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var ref h2specResult
			done := make(chan struct{})
			go func() { defer close(done); ref = runH2spec(t, bin, c.ref, c.tls) }()
			got := runH2spec(t, bin, c.gateway, c.tls)
			<-done
			t.Logf("h2spec %s: gateway %s; Go's net/http server %s", c.name, got, ref)
			for _, f := range got.failed {
				if !slices.Contains(ref.failed, f) {
					t.Errorf("fails through the gateway only: %s", f)
				}
			}
			for _, f := range got.failed {
				t.Logf("fails (as with Go's server): %s", f)
			}
		})
	}
}
