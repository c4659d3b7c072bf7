package certs_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/certs"
	"github.com/meshgate/meshgate/internal/certs/certstest"
	"github.com/meshgate/meshgate/internal/ir"
)

func TestLoadKeyPair(t *testing.T) {
	dir := t.TempDir()
	ca := certstest.NewCA(t, "ca")
	a := ca.Issue(t, "a", "a.example.com")
	b := ca.Issue(t, "b", "b.example.com")
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	aCert, aKey, bKey := write("a.pem", a.CertPEM), write("a.key", a.KeyPEM), write("b.key", b.KeyPEM)
	junk := write("junk.pem", []byte("not pem\n"))
	missing := filepath.Join(dir, "missing.pem")
	cases := map[string]struct {
		chain, key string
		err        string // substring; empty means success
	}{
		"good":           {aCert, aKey, ""},
		"missing chain":  {missing, aKey, "certificate chain " + missing + " does not exist"},
		"missing key":    {aCert, missing, "private key " + missing + " does not exist"},
		"chain not PEM":  {junk, aKey, "certificate chain " + junk + " holds no PEM certificate"},
		"key not PEM":    {aCert, junk, "private key " + junk + " holds no PEM private key"},
		"key is a cert":  {aCert, aCert, "holds no PEM private key"},
		"key of another": {aCert, bKey, "private key " + bKey + " does not match the certificate in " + aCert + " (subject CN=a, SANs a.example.com)"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			pair, err := certs.LoadKeyPair(c.chain, c.key)
			switch {
			case c.err == "" && err != nil:
				t.Fatal(err)
			case c.err == "" && len(pair.Certificate) != 2:
				t.Fatalf("chain of %d certificates, want leaf and CA", len(pair.Certificate))
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Fatalf("error %v, want %q", err, c.err)
			}
		})
	}
	if _, err := certs.LoadTrust(junk); err == nil || !strings.Contains(err.Error(), "trust bundle "+junk+" holds no PEM certificate") {
		t.Errorf("LoadTrust(junk): %v", err)
	}
	if pool, err := certs.LoadTrust(write("ca.pem", ca.PEM)); err != nil || pool == nil {
		t.Errorf("LoadTrust: %v", err)
	}
}

func TestFiles(t *testing.T) {
	cases := map[string]struct {
		src                ir.CertificateSource
		sdsDir             string
		wantChain, wantKey string
		err                string
	}{
		"file":         {src: ir.CertificateSource{CertificateChain: "/c.pem", PrivateKey: "/k.pem"}, wantChain: "/c.pem", wantKey: "/k.pem"},
		"sds":          {src: ir.CertificateSource{SDSSecret: "gw"}, sdsDir: "/s", wantChain: "/s/gw/cert.pem", wantKey: "/s/gw/key.pem"},
		"sds spiffe":   {src: ir.CertificateSource{SDSSecret: "spiffe://example.org/ns/a/sa/b"}, sdsDir: "/s", wantChain: "/s/spiffe:/example.org/ns/a/sa/b/cert.pem", wantKey: "/s/spiffe:/example.org/ns/a/sa/b/key.pem"},
		"sds no dir":   {src: ir.CertificateSource{SDSSecret: "gw"}, err: `sds secret "gw": no secret directory is set (serve --sds-dir)`},
		"sds escapes":  {src: ir.CertificateSource{SDSSecret: "../etc"}, sdsDir: "/s", err: "must stay below the secret directory"},
		"sds absolute": {src: ir.CertificateSource{SDSSecret: "/etc"}, sdsDir: "/s", err: "must stay below the secret directory"},
		"acm":          {src: ir.CertificateSource{ACMCertificateARN: "arn:x"}, err: "acm certificate arn:x: ACM certificates are only available to App Mesh inside AWS"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			chain, key, err := certs.KeyPairFiles(c.src, c.sdsDir)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || chain != c.wantChain || key != c.wantKey {
				t.Fatalf("got %q %q %v", chain, key, err)
			}
		})
	}
	if f, err := certs.TrustFile(ir.TLSValidation{TrustSDSSecret: "ca"}, "/s"); err != nil || f != "/s/ca/ca.pem" {
		t.Errorf("TrustFile(sds) = %q, %v", f, err)
	}
	if _, err := certs.TrustFile(ir.TLSValidation{TrustACM: []string{"arn:ca"}}, ""); err == nil {
		t.Error("TrustFile(acm) gave no error")
	}
}

func TestMatchSAN(t *testing.T) {
	ca := certstest.NewCA(t, "ca")
	l := ca.Issue(t, "x", "a.example.com", "spiffe://example.org/a", "10.0.0.1")
	for names, want := range map[string]bool{
		"a.example.com":          true,
		"spiffe://example.org/a": true,
		"10.0.0.1":               true,
		"b.example.com,x":        false,
		"A.example.com":          false, // exact, as App Mesh matches
	} {
		if got := certs.MatchSAN(l.Cert, strings.Split(names, ",")); got != want {
			t.Errorf("MatchSAN(%s) = %v", names, got)
		}
	}
}
