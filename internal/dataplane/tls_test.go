package dataplane

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/certs/certstest"
	"golang.org/x/net/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	testpb "google.golang.org/grpc/interop/grpc_testing"
)

// tlsEnv is a directory of test certificates: a CA that signs the
// gateway's certificates and one that signs client certificates.
type tlsEnv struct {
	t        *testing.T
	dir      string
	ca       *certstest.CA // signs gateway and upstream certificates
	clientCA *certstest.CA
}

func newTLSEnv(t *testing.T) *tlsEnv {
	return &tlsEnv{t: t, dir: t.TempDir(), ca: certstest.NewCA(t, "mesh CA"), clientCA: certstest.NewCA(t, "client CA")}
}

// path is a file of the environment.
func (e *tlsEnv) path(name string) string { return filepath.Join(e.dir, filepath.FromSlash(name)) }

func (e *tlsEnv) write(name string, data []byte) string {
	e.t.Helper()
	p := e.path(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		e.t.Fatal(err)
	}
	certstest.WriteFile(e.t, p, data)
	return p
}

// writePair writes a leaf's chain and key as NAME.pem and NAME.key.
func (e *tlsEnv) writePair(name string, l *certstest.Leaf) {
	e.write(name+".pem", l.CertPEM)
	e.write(name+".key", l.KeyPEM)
}

// clientConfig trusts the mesh CA and expects the gateway's name.
func (e *tlsEnv) clientConfig(certs ...tls.Certificate) *tls.Config {
	return &tls.Config{RootCAs: e.ca.Pool(), ServerName: "gw.example.com", Certificates: certs}
}

// httpsClient speaks HTTP/2 when h2, else HTTP/1.1, over TLS; every request
// opens a new connection unless keepAlive.
func httpsClient(t *testing.T, cfg *tls.Config, h2, keepAlive bool) *http.Client {
	var protos http.Protocols
	if h2 {
		protos.SetHTTP2(true)
	} else {
		protos.SetHTTP1(true)
	}
	tr := &http.Transport{TLSClientConfig: cfg, Protocols: &protos, DisableKeepAlives: !keepAlive}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// tlsGatewayYAML is a gateway with one http listener on 8443 whose tls
// block is given, and a route to virtual service b.
func tlsGatewayYAML(tlsBlock string) string {
	return `
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualGateway
metadata: {name: gw, namespace: demo}
spec:
  listeners:
    - portMapping: {port: 8443, protocol: http}
      tls:
` + indent(tlsBlock, "        ") + `
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata: {name: r, namespace: demo}
spec:
  virtualGateway: {name: gw}
  httpRoute:
    match: {prefix: /}
    action:
      target: {virtualService: {virtualServiceRef: {name: b}}}
      rewrite: {prefix: {defaultPrefix: DISABLED}}
`
}

func indent(s, by string) string {
	lines := strings.Split(strings.Trim(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = by + l
	}
	return strings.Join(lines, "\n")
}

// startTLSGateway serves tlsGatewayYAML with an echo backend b.
func startTLSGateway(t *testing.T, e *tlsEnv, tlsBlock string, opts ...func(*Options)) *gateway {
	t.Helper()
	b := startEcho(t, "b")
	cfg := compiled(t, strings.ReplaceAll(tlsGatewayYAML(tlsBlock), "DIR", e.dir)+nodeYAML("b", "http", b.port), map[string]string{hostOf("b"): b.addr})
	return startGateway(t, cfg, opts...)
}

// startFileTLSGateway is startTLSGateway in mode with the certificate in
// gw.pem and gw.key, and no client validation.
func startFileTLSGateway(t *testing.T, e *tlsEnv, mode string) *gateway {
	t.Helper()
	return startTLSGateway(t, e, fileTLSBlock(mode))
}

// fileTLSBlock is a listener's tls block in mode with the certificate in
// gw.pem and gw.key, and no client validation.
func fileTLSBlock(mode string) string {
	return "mode: " + mode + "\ncertificate:\n  file: {certificateChain: DIR/gw.pem, privateKey: DIR/gw.key}\n"
}

// get sends GET /x to the gateway's 8443 listener and returns the
// response's protocol and what the backend saw, or the error.
func tlsGet(g *gateway, c *http.Client, scheme string) (*http.Response, echoed, error) {
	res, err := c.Get(scheme + "://" + g.p.Addrs()[8443].String() + "/x")
	if err != nil {
		return nil, echoed{}, err
	}
	defer res.Body.Close()
	var e echoed
	b, _ := io.ReadAll(res.Body)
	if res.Header.Get("X-Backend") != "" {
		if err := json.Unmarshal(b, &e); err != nil {
			return res, e, err
		}
	}
	return res, e, nil
}

// TestTLSTermination serves HTTP/1.1 and HTTP/2 (by ALPN) and gRPC over TLS
// and refuses what a STRICT listener must refuse.
func TestTLSTermination(t *testing.T) {
	e := newTLSEnv(t)
	e.writePair("gw", e.ca.Issue(t, "gw", "gw.example.com"))
	g := startFileTLSGateway(t, e, "STRICT")
	for _, h2 := range []bool{false, true} {
		cfg := e.clientConfig()
		cfg.NextProtos = []string{"h2", "http/1.1"} // both offered; the transport's protocol picks
		if !h2 {
			cfg.NextProtos = []string{"http/1.1"}
		}
		res, echo, err := tlsGet(g, httpsClient(t, cfg, h2, true), "https")
		if err != nil {
			t.Fatal(err)
		}
		want, alpn := "HTTP/1.1", "http/1.1"
		if h2 {
			want, alpn = "HTTP/2.0", "h2"
		}
		if res.Proto != want || res.TLS.NegotiatedProtocol != alpn || echo.Backend != "b" || echo.Header.Get("X-Forwarded-Proto") != "https" {
			t.Errorf("h2=%v: %s, ALPN %q, backend %q, X-Forwarded-Proto %q", h2, res.Proto, res.TLS.NegotiatedProtocol, echo.Backend, echo.Header.Get("X-Forwarded-Proto"))
		}
	}
	refused := map[string]*tls.Config{
		"TLS 1.1":           {MaxVersion: tls.VersionTLS11},
		"CBC cipher suites": {MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA}},
	}
	for name, cfg := range refused {
		t.Run(name, func(t *testing.T) {
			cfg.RootCAs, cfg.ServerName = e.ca.Pool(), "gw.example.com"
			if _, _, err := tlsGet(g, httpsClient(t, cfg, false, false), "https"); err == nil {
				t.Fatal("handshake succeeded")
			}
		})
	}
	t.Run("plaintext on a STRICT port", func(t *testing.T) {
		res, echo, err := tlsGet(g, &http.Client{Timeout: 30 * time.Second}, "http")
		if err == nil && (res.StatusCode != http.StatusBadRequest || echo.Backend != "") {
			t.Fatalf("plaintext got %d from %q", res.StatusCode, echo.Backend)
		}
	})
}

// TestGRPCOverTLS makes gRPC calls over TLS (ALPN h2) through a grpc listener.
func TestGRPCOverTLS(t *testing.T) {
	e := newTLSEnv(t)
	e.writePair("gw", e.ca.Issue(t, "gw", "gw.example.com"))
	b := startGRPCBackend(t, "backend")
	yaml := strings.ReplaceAll(strings.Replace(grpcGatewayYAML, "protocol: grpc}", `protocol: grpc}
      tls:
        mode: STRICT
        certificate:
          file: {certificateChain: DIR/gw.pem, privateKey: DIR/gw.key}`, 1), "DIR", e.dir)
	cfg := compiled(t, yaml+nodeYAML("backend", "grpc", b.port)+nodeYAML("refused", "grpc", 1)+nodeYAML("unresolved", "grpc", 1), map[string]string{hostOf("backend"): b.addr})
	g := startGateway(t, cfg)
	c := grpcClient(t, g.p.Addrs()[8080].String(), grpc.WithTransportCredentials(credentials.NewTLS(e.clientConfig())))
	res, err := c.UnaryCall(callCtx(t), &testpb.SimpleRequest{ResponseSize: 10})
	if err != nil || res.ServerId != "backend" {
		t.Fatalf("%v %v", res, err)
	}
	stream, err := c.FullDuplexCall(callCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := int32(1); i <= 3; i++ {
		stream.Send(&testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{{Size: i}}})
		if m, err := stream.Recv(); err != nil || int32(len(m.Payload.Body)) != i {
			t.Fatalf("round %d: %v", i, err)
		}
	}
	stream.CloseSend()
}

// TestTLSPermissive serves TLS and plaintext, HTTP/1.1 and HTTP/2, on one
// PERMISSIVE port, and only plaintext on a DISABLED one.
func TestTLSPermissive(t *testing.T) {
	e := newTLSEnv(t)
	e.writePair("gw", e.ca.Issue(t, "gw", "gw.example.com"))
	g := startFileTLSGateway(t, e, "PERMISSIVE")
	clients := map[string]struct {
		c      *http.Client
		scheme string
		proto  string
	}{
		"TLS HTTP/1.1":      {httpsClient(t, e.clientConfig(), false, false), "https", "HTTP/1.1"},
		"TLS HTTP/2":        {httpsClient(t, e.clientConfig(), true, false), "https", "HTTP/2.0"},
		"plaintext":         {&http.Client{Timeout: 30 * time.Second}, "http", "HTTP/1.1"},
		"plaintext h2c":     {h2cClient(t), "http", "HTTP/2.0"},
		"TLS HTTP/1.1 kept": {httpsClient(t, e.clientConfig(), false, true), "https", "HTTP/1.1"},
	}
	for name, c := range clients {
		t.Run(name, func(t *testing.T) {
			for range 3 {
				res, echo, err := tlsGet(g, c.c, c.scheme)
				if err != nil {
					t.Fatal(err)
				}
				wantXFP := "http"
				if c.scheme == "https" {
					wantXFP = "https"
				}
				if res.Proto != c.proto || echo.Backend != "b" || echo.Header.Get("X-Forwarded-Proto") != wantXFP {
					t.Fatalf("%s from %q, X-Forwarded-Proto %q", res.Proto, echo.Backend, echo.Header.Get("X-Forwarded-Proto"))
				}
			}
		})
	}
	t.Run("a client that sends nothing does not hold others up", func(t *testing.T) {
		idle, err := net.Dial("tcp", g.p.Addrs()[8443].String())
		if err != nil {
			t.Fatal(err)
		}
		defer idle.Close()
		if _, _, err := tlsGet(g, httpsClient(t, e.clientConfig(), false, false), "https"); err != nil {
			t.Fatal(err)
		}
	})

	d := startFileTLSGateway(t, e, "DISABLED")
	if _, echo, err := tlsGet(d, &http.Client{Timeout: 30 * time.Second}, "http"); err != nil || echo.Backend != "b" {
		t.Fatalf("plaintext on DISABLED: %v", err)
	}
	if _, _, err := tlsGet(d, httpsClient(t, e.clientConfig(), false, false), "https"); err == nil {
		t.Fatal("TLS on a DISABLED port succeeded")
	}
}

// TestMutualTLS requires client certificates from the trusted CA and, when
// SANs are given, with one of them; certificate and trust come from files
// and from the secret directory.
func TestMutualTLS(t *testing.T) {
	e := newTLSEnv(t)
	e.writePair("gw", e.ca.Issue(t, "gw", "gw.example.com"))
	e.write("clients-ca.pem", e.clientCA.PEM)
	// The same material as SDS secrets.
	e.write("sds/spiffe:/example.org/gateway/cert.pem", mustRead(t, e.path("gw.pem")))
	e.write("sds/spiffe:/example.org/gateway/key.pem", mustRead(t, e.path("gw.key")))
	e.write("sds/client-ca/ca.pem", e.clientCA.PEM)

	good := e.clientCA.Issue(t, "client", "spiffe://example.org/client").TLS
	wrongSAN := e.clientCA.Issue(t, "other", "spiffe://example.org/other").TLS
	wrongCA := certstest.NewCA(t, "rogue CA").Issue(t, "client", "spiffe://example.org/client").TLS
	gateways := map[string]*gateway{
		"file": startTLSGateway(t, e, `
mode: STRICT
certificate:
  file: {certificateChain: DIR/gw.pem, privateKey: DIR/gw.key}
validation:
  trust:
    file: {certificateChain: DIR/clients-ca.pem}
  subjectAlternativeNames:
    match: {exact: [spiffe://example.org/client]}
`),
		"sds": startTLSGateway(t, e, `
mode: STRICT
certificate:
  sds: {secretName: "spiffe://example.org/gateway"}
validation:
  trust:
    sds: {secretName: client-ca}
  subjectAlternativeNames:
    match: {exact: [spiffe://example.org/client]}
`, func(o *Options) { o.SDSDir = e.path("sds") }),
	}
	for name, g := range gateways {
		t.Run(name, func(t *testing.T) {
			for _, h2 := range []bool{false, true} {
				if _, echo, err := tlsGet(g, httpsClient(t, e.clientConfig(good), h2, false), "https"); err != nil || echo.Backend != "b" {
					t.Fatalf("trusted client (h2=%v): %v", h2, err)
				}
			}
			for reject, certs := range map[string][]tls.Certificate{
				"no certificate": nil,
				"wrong CA":       {wrongCA},
				"wrong SAN":      {wrongSAN},
			} {
				if _, _, err := tlsGet(g, httpsClient(t, e.clientConfig(certs...), false, false), "https"); err == nil {
					t.Errorf("%s: accepted", reject)
				}
			}
		})
	}
	t.Run("no SANs: any certificate of the CA", func(t *testing.T) {
		g := startTLSGateway(t, e, `
mode: STRICT
certificate:
  file: {certificateChain: DIR/gw.pem, privateKey: DIR/gw.key}
validation:
  trust:
    file: {certificateChain: DIR/clients-ca.pem}
`)
		if _, _, err := tlsGet(g, httpsClient(t, e.clientConfig(wrongSAN), false, false), "https"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := tlsGet(g, httpsClient(t, e.clientConfig(wrongCA), false, false), "https"); err == nil {
			t.Fatal("a certificate of another CA was accepted")
		}
	})
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// servedCert is the leaf certificate a new connection to the gateway gets.
func servedCert(t *testing.T, g *gateway, e *tlsEnv) *x509.Certificate {
	t.Helper()
	c, err := tls.Dial("tcp", g.p.Addrs()[8443].String(), e.clientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

// TestCertificateRotation swaps the certificate files while requests run:
// none fails, open connections stay open, and new connections get the new
// certificate.
func TestCertificateRotation(t *testing.T) {
	old := certRecheck
	certRecheck = 20 * time.Millisecond
	t.Cleanup(func() { certRecheck = old })
	e := newTLSEnv(t)
	e.writePair("gw", e.ca.Issue(t, "first", "gw.example.com"))
	g := startFileTLSGateway(t, e, "STRICT")
	// A connection opened before the rotation, used after it.
	kept := httpsClient(t, e.clientConfig(), true, true)
	if _, _, err := tlsGet(g, kept, "https"); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var requests, failures atomic.Int64
	var firstErr atomic.Value
	for i := range 4 {
		client := httpsClient(t, e.clientConfig(), i%2 == 0, i < 2) // new connections and kept ones, h1 and h2
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				_, echo, err := tlsGet(g, client, "https")
				requests.Add(1)
				if err != nil || echo.Backend != "b" {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, errors.Join(err, errors.New("backend "+echo.Backend)))
				}
			}
		}()
	}
	for range 3 {
		time.Sleep(100 * time.Millisecond)
		next := e.ca.Issue(t, "second", "gw.example.com")
		// Chain first, then key: in between the files do not match, and the
		// certificate loaded before keeps serving.
		e.writePair("gw", next)
		eventually(t, "the new certificate is served", func() bool {
			return servedCert(t, g, e).SerialNumber.Cmp(next.Cert.SerialNumber) == 0
		})
	}
	time.Sleep(100 * time.Millisecond)
	cancel()
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed during rotation; first: %v", n, requests.Load(), firstErr.Load())
	}
	if requests.Load() < 10 {
		t.Fatalf("only %d requests ran", requests.Load())
	}
	if _, _, err := tlsGet(g, kept, "https"); err != nil {
		t.Fatalf("the connection opened before the rotation: %v", err)
	}
}

// lockedBuffer collects log output from many goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestCertificateErrors: a config whose certificate is missing or does not
// match its key is not applied and says why; a certificate file that
// breaks later is logged and the one loaded before keeps serving.
func TestCertificateErrors(t *testing.T) {
	old := certRecheck
	certRecheck = 20 * time.Millisecond
	t.Cleanup(func() { certRecheck = old })
	e := newTLSEnv(t)
	first := e.ca.Issue(t, "first", "gw.example.com")
	other := e.ca.Issue(t, "other", "gw.example.com")
	e.writePair("gw", first)
	e.write("other.key", other.KeyPEM)
	b := startEcho(t, "b")
	config := func(cert, key string) string {
		return strings.NewReplacer("CERT", cert, "KEY", key).Replace(tlsGatewayYAML(`
mode: STRICT
certificate:
  file: {certificateChain: CERT, privateKey: KEY}
`)) + nodeYAML("b", "http", b.port)
	}
	eps := map[string]string{hostOf("b"): b.addr}
	logs := &lockedBuffer{}
	g := startGateway(t, nil, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(logs, nil)) })

	for name, c := range map[string]struct{ cert, key, want string }{
		"missing certificate": {e.path("nope.pem"), e.path("gw.key"), "listener 8443 TLS: certificate chain " + e.path("nope.pem") + " does not exist"},
		"missing key":         {e.path("gw.pem"), e.path("nope.key"), "listener 8443 TLS: private key " + e.path("nope.key") + " does not exist"},
		"key of another":      {e.path("gw.pem"), e.path("other.key"), "listener 8443 TLS: private key " + e.path("other.key") + " does not match the certificate in " + e.path("gw.pem")},
	} {
		t.Run(name, func(t *testing.T) {
			err := g.p.Apply(compiled(t, config(c.cert, c.key), eps), testGateway)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Apply: %v, want %q", err, c.want)
			}
		})
	}
	if err := g.p.Apply(compiled(t, config(e.path("gw.pem"), e.path("gw.key")), eps), testGateway); err != nil {
		t.Fatal(err)
	}
	if got := servedCert(t, g, e); got.SerialNumber.Cmp(first.Cert.SerialNumber) != 0 {
		t.Fatalf("serving %s", got.Subject)
	}

	// The key file now belongs to another certificate.
	e.write("gw.key", other.KeyPEM)
	eventually(t, "the failed reload is logged", func() bool {
		servedCert(t, g, e)
		return strings.Contains(logs.String(), "TLS file change not applied") && strings.Contains(logs.String(), "does not match")
	})
	if got := servedCert(t, g, e); got.SerialNumber.Cmp(first.Cert.SerialNumber) != 0 {
		t.Fatalf("after a broken change, serving %s", got.Subject)
	}
	// A config reload naming the same broken files keeps the old certificate too.
	if err := g.p.Apply(compiled(t, config(e.path("gw.pem"), e.path("gw.key")), eps), testGateway); err != nil {
		t.Fatalf("re-apply with the broken files: %v", err)
	}
	if _, echo, err := tlsGet(g, httpsClient(t, e.clientConfig(), false, false), "https"); err != nil || echo.Backend != "b" {
		t.Fatalf("after a broken change: %v", err)
	}
	// Fixed: the certificate that matches the key now is served.
	e.write("gw.pem", other.CertPEM)
	eventually(t, "the fixed certificate is served", func() bool {
		return servedCert(t, g, e).SerialNumber.Cmp(other.Cert.SerialNumber) == 0
	})
}

// startTLSBackend is an echo backend that serves TLS with leaf (HTTP/2 too
// when h2) and, when clientCAs is set, requires a client certificate. It
// reports the client certificate's subject in X-Peer.
func startTLSBackend(t *testing.T, name string, leaf *certstest.Leaf, h2 bool, clientCAs *x509.CertPool) *backend {
	t.Helper()
	srv := httptestTLSServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			w.Header().Set("X-Tls", r.TLS.NegotiatedProtocol)
		}
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			w.Header().Set("X-Peer", r.TLS.PeerCertificates[0].Subject.CommonName)
		}
		echoHandler(name)(w, r)
	}), leaf, h2, clientCAs)
	return newBackend(name, srv)
}

// originationYAML is a gateway whose client policy is given, with one
// route to virtual service b.
func originationYAML(clientPolicy string) string {
	return `
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualGateway
metadata: {name: gw, namespace: demo}
spec:
  listeners:
    - portMapping: {port: 8080, protocol: http}
  backendDefaults:
    clientPolicy:
      tls:
` + indent(clientPolicy, "        ") + `
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata: {name: r, namespace: demo}
spec:
  virtualGateway: {name: gw}
  httpRoute:
    match: {prefix: /}
    action:
      target: {virtualService: {virtualServiceRef: {name: b}}}
      rewrite: {prefix: {defaultPrefix: DISABLED}}
`
}

// TestTLSOrigination calls TLS upstreams under the gateway's client
// policy: the upstream's certificate must chain to the policy's trust and
// carry one of its SANs, or, with none given, the node's DNS hostname.
func TestTLSOrigination(t *testing.T) {
	e := newTLSEnv(t)
	e.write("mesh-ca.pem", e.ca.PEM)
	e.write("rogue-ca.pem", certstest.NewCA(t, "rogue").PEM)
	e.writePair("gateway-client", e.clientCA.Issue(t, "gateway", "spiffe://example.org/gateway"))
	byHostname := e.ca.Issue(t, "b", hostOf("b"))
	bySPIFFE := e.ca.Issue(t, "b", "spiffe://example.org/b")

	cases := map[string]struct {
		policy    string
		leaf      *certstest.Leaf
		proto     string // node listener protocol
		clientCAs *x509.CertPool
		ports     bool // list the backend's port in the policy's ports
		wantOK    bool
		wantTLS   bool
		wantPeer  string
	}{
		"hostname":                {policy: "validation: {trust: {file: {certificateChain: DIR/mesh-ca.pem}}}", leaf: byHostname, proto: "http", wantOK: true, wantTLS: true},
		"hostname, HTTP/2":        {policy: "validation: {trust: {file: {certificateChain: DIR/mesh-ca.pem}}}", leaf: byHostname, proto: "http2", wantOK: true, wantTLS: true},
		"hostname does not match": {policy: "validation: {trust: {file: {certificateChain: DIR/mesh-ca.pem}}}", leaf: bySPIFFE, proto: "http"},
		"SAN": {policy: "validation: {trust: {file: {certificateChain: DIR/mesh-ca.pem}}, subjectAlternativeNames: {match: {exact: [spiffe://example.org/b]}}}",
			leaf: bySPIFFE, proto: "http", wantOK: true, wantTLS: true},
		"SAN does not match": {policy: "validation: {trust: {file: {certificateChain: DIR/mesh-ca.pem}}, subjectAlternativeNames: {match: {exact: [spiffe://example.org/c]}}}",
			leaf: bySPIFFE, proto: "http"},
		"untrusted CA": {policy: "validation: {trust: {file: {certificateChain: DIR/rogue-ca.pem}}}", leaf: byHostname, proto: "http"},
		"client certificate": {policy: `
certificate: {file: {certificateChain: DIR/gateway-client.pem, privateKey: DIR/gateway-client.key}}
validation: {trust: {file: {certificateChain: DIR/mesh-ca.pem}}}`,
			leaf: byHostname, proto: "http2", clientCAs: e.clientCA.Pool(), wantOK: true, wantTLS: true, wantPeer: "gateway"},
		"client certificate missing": {policy: "validation: {trust: {file: {certificateChain: DIR/mesh-ca.pem}}}",
			leaf: byHostname, proto: "http", clientCAs: e.clientCA.Pool()},
		"port listed":       {policy: "validation: {trust: {file: {certificateChain: DIR/mesh-ca.pem}}}", leaf: byHostname, proto: "http", ports: true, wantOK: true, wantTLS: true},
		"other port listed": {policy: "ports: [1]\nvalidation: {trust: {file: {certificateChain: DIR/mesh-ca.pem}}}", leaf: nil, proto: "http", wantOK: true},
		"not enforced":      {policy: "enforce: false\nvalidation: {trust: {file: {certificateChain: DIR/mesh-ca.pem}}}", leaf: nil, proto: "http", wantOK: true},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			var b *backend
			if c.leaf != nil {
				b = startTLSBackend(t, "b", c.leaf, c.proto != "http", c.clientCAs)
			} else {
				b = startEcho(t, "b")
			}
			policy := c.policy
			if c.ports {
				policy = "ports: [" + itoa(b.port) + "]\n" + policy
			}
			yaml := strings.ReplaceAll(originationYAML(policy), "DIR", e.dir) + nodeYAML("b", c.proto, b.port)
			g := startGateway(t, compiled(t, yaml, map[string]string{hostOf("b"): b.addr}))
			res := g.do(request{path: "/x"})
			switch {
			case !c.wantOK && res.status != http.StatusBadGateway:
				t.Fatalf("got %d %q, want 502", res.status, res.body)
			case !c.wantOK:
				return
			case res.status != http.StatusOK || res.echo.Backend != "b":
				t.Fatalf("got %d %q", res.status, res.body)
			}
			wantProto := "HTTP/1.1"
			if c.proto != "http" {
				wantProto = "HTTP/2.0"
			}
			if res.echo.Proto != wantProto || res.header.Get("X-Peer") != c.wantPeer || (res.header.Get("X-Tls") != "") != c.wantTLS {
				t.Fatalf("backend got %s, TLS ALPN %q, client certificate %q", res.echo.Proto, res.header.Get("X-Tls"), res.header.Get("X-Peer"))
			}
		})
	}
}

// TestGRPCOverTLSUpstream makes gRPC calls through the gateway to a gRPC
// server that serves TLS.
func TestGRPCOverTLSUpstream(t *testing.T) {
	e := newTLSEnv(t)
	e.write("mesh-ca.pem", e.ca.PEM)
	leaf := e.ca.Issue(t, "backend", hostOf("backend"))
	b := startGRPCBackend(t, "backend", grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{leaf.TLS}})))
	yaml := strings.Replace(grpcGatewayYAML, "    - portMapping: {port: 8080, protocol: grpc}\n", `    - portMapping: {port: 8080, protocol: grpc}
  backendDefaults:
    clientPolicy:
      tls:
        validation: {trust: {file: {certificateChain: `+e.path("mesh-ca.pem")+`}}}
`, 1)
	cfg := compiled(t, yaml+nodeYAML("backend", "grpc", b.port)+nodeYAML("refused", "grpc", 1)+nodeYAML("unresolved", "grpc", 1), map[string]string{hostOf("backend"): b.addr})
	g := startGateway(t, cfg)
	c := grpcClient(t, g.p.Addrs()[8080].String())
	for range 3 {
		if res, err := c.UnaryCall(callCtx(t), &testpb.SimpleRequest{ResponseSize: 10}); err != nil || res.ServerId != "backend" {
			t.Fatalf("%v %v", res, err)
		}
	}
}

// httptestTLSServer serves h over TLS with leaf.
func httptestTLSServer(t *testing.T, h http.Handler, leaf *certstest.Leaf, h2 bool, clientCAs *x509.CertPool) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = h2
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf.TLS}}
	if clientCAs != nil {
		srv.TLS.ClientCAs = clientCAs
		srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestWebSocketOverTLS opens a WebSocket through a STRICT http listener.
func TestWebSocketOverTLS(t *testing.T) {
	e := newTLSEnv(t)
	e.writePair("gw", e.ca.Issue(t, "gw", "gw.example.com"))
	ws := startBackend(t, "ws", websocket.Handler(func(c *websocket.Conn) { io.Copy(c, c) }))
	yaml := strings.ReplaceAll(tlsGatewayYAML(`
mode: STRICT
certificate:
  file: {certificateChain: DIR/gw.pem, privateKey: DIR/gw.key}
`), "DIR", e.dir) + nodeYAML("b", "http", ws.port)
	g := startGateway(t, compiled(t, yaml, map[string]string{hostOf("b"): ws.addr}))
	cfg, err := websocket.NewConfig("wss://"+g.p.Addrs()[8443].String()+"/echo", "https://client.example/")
	if err != nil {
		t.Fatal(err)
	}
	cfg.TlsConfig = e.clientConfig()
	conn, err := websocket.DialConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, "over tls"); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len("over tls"))
	if _, err := io.ReadFull(conn, got); err != nil || string(got) != "over tls" {
		t.Fatalf("%q %v", got, err)
	}
}
