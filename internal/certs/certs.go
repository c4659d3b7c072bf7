// Package certs owns reading the certificates, private keys and trusted CA
// bundles that App Mesh TLS settings name, from files and from the local
// secret directory that stands in for an SDS provider, with errors that say
// which file is wrong and how. Both `meshgate check` and the data plane use
// it, so a certificate that check accepts is one the gateway can serve.
//
// Secret directory: an App Mesh `sds.secretName` NAME is read below a
// directory DIR (serve --sds-dir) as DIR/NAME/cert.pem (the certificate
// chain, leaf first) and DIR/NAME/key.pem (its private key) for
// certificates, and DIR/NAME/ca.pem for trust. NAME may contain slashes
// (SPIFFE IDs do: spiffe://example.org/ns/app/sa/web is read from
// DIR/spiffe:/example.org/ns/app/sa/web/); it must stay below DIR.
package certs

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/meshgate/meshgate/internal/ir"
)

// File names inside a secret's directory.
const (
	SecretCert  = "cert.pem"
	SecretKey   = "key.pem"
	SecretTrust = "ca.pem"
)

// ErrNoSecretDir is returned for an SDS secret when no secret directory is set.
var ErrNoSecretDir = errors.New("no secret directory is set (serve --sds-dir)")

// secretDir is the directory of secret name below dir.
func secretDir(dir, name string) (string, error) {
	if dir == "" {
		return "", fmt.Errorf("sds secret %q: %w", name, ErrNoSecretDir)
	}
	clean := filepath.Clean(filepath.FromSlash(name))
	if name == "" || filepath.IsAbs(clean) || clean == "." || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("sds secret %q: the name must stay below the secret directory", name)
	}
	return filepath.Join(dir, clean), nil
}

// KeyPairFiles are the certificate chain and private key files of src.
func KeyPairFiles(src ir.CertificateSource, sdsDir string) (chain, key string, err error) {
	switch {
	case src.SDSSecret != "":
		d, err := secretDir(sdsDir, src.SDSSecret)
		if err != nil {
			return "", "", err
		}
		return filepath.Join(d, SecretCert), filepath.Join(d, SecretKey), nil
	case src.ACMCertificateARN != "":
		return "", "", fmt.Errorf("acm certificate %s: ACM certificates are only available to App Mesh inside AWS; give file or sds", src.ACMCertificateARN)
	case src.CertificateChain == "" || src.PrivateKey == "":
		return "", "", errors.New("no certificate: give file (certificateChain and privateKey) or sds")
	}
	return src.CertificateChain, src.PrivateKey, nil
}

// TrustFile is the CA bundle file of v.
func TrustFile(v ir.TLSValidation, sdsDir string) (string, error) {
	switch {
	case v.TrustSDSSecret != "":
		d, err := secretDir(sdsDir, v.TrustSDSSecret)
		if err != nil {
			return "", err
		}
		return filepath.Join(d, SecretTrust), nil
	case len(v.TrustACM) > 0:
		return "", fmt.Errorf("acm trust %s: AWS Private CA trust is only available to App Mesh inside AWS; give file or sds", strings.Join(v.TrustACM, ", "))
	case v.TrustFile == "":
		return "", errors.New("no trust: give file or sds")
	}
	return v.TrustFile, nil
}

// readFile reads one file, saying what it was meant to hold when it cannot.
func readFile(what, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%s %s does not exist", what, path)
	case err != nil:
		return nil, fmt.Errorf("%s %s: %w", what, path, errors.Unwrap(err))
	}
	return b, nil
}

// certificates parses every PEM CERTIFICATE block of a file.
func certificates(what, path string, data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s %s: certificate %d does not parse: %w", what, path, len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s %s holds no PEM certificate", what, path)
	}
	return out, nil
}

// LoadKeyPair reads a PEM certificate chain (leaf first) and its private
// key, and checks that they belong together.
func LoadKeyPair(chainFile, keyFile string) (*tls.Certificate, error) {
	chainPEM, err := readFile("certificate chain", chainFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := readFile("private key", keyFile)
	if err != nil {
		return nil, err
	}
	chain, err := certificates("certificate chain", chainFile, chainPEM)
	if err != nil {
		return nil, err
	}
	if !hasKey(keyPEM) {
		return nil, fmt.Errorf("private key %s holds no PEM private key", keyFile)
	}
	pair, err := tls.X509KeyPair(chainPEM, keyPEM)
	if err != nil {
		if strings.Contains(err.Error(), "does not match") {
			return nil, fmt.Errorf("private key %s does not match the certificate in %s (%s)", keyFile, chainFile, describe(chain[0]))
		}
		return nil, fmt.Errorf("private key %s with certificate chain %s: %w", keyFile, chainFile, err)
	}
	return &pair, nil
}

func hasKey(data []byte) bool {
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return false
		}
		if block.Type == "PRIVATE KEY" || strings.HasSuffix(block.Type, " PRIVATE KEY") {
			return true
		}
	}
}

// LoadTrust reads a PEM bundle of trusted CA certificates.
func LoadTrust(path string) (*x509.CertPool, error) {
	data, err := readFile("trust bundle", path)
	if err != nil {
		return nil, err
	}
	certs, err := certificates("trust bundle", path, data)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// describe names a certificate for messages: its subject and SANs.
func describe(c *x509.Certificate) string {
	names := append([]string{}, c.DNSNames...)
	for _, u := range c.URIs {
		names = append(names, u.String())
	}
	s := "subject " + c.Subject.String()
	if len(names) > 0 {
		s += ", SANs " + strings.Join(names, " ")
	}
	return s
}

// SANs lists every subject alternative name of a certificate as App Mesh's
// subjectAlternativeNames matches them: DNS names, URIs, IP addresses and
// email addresses.
func SANs(c *x509.Certificate) []string {
	out := append([]string{}, c.DNSNames...)
	for _, u := range c.URIs {
		out = append(out, u.String())
	}
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	return append(out, c.EmailAddresses...)
}

// MatchSAN reports whether one of the certificate's SANs is exactly one of names.
func MatchSAN(c *x509.Certificate, names []string) bool {
	for _, have := range SANs(c) {
		for _, want := range names {
			if have == want {
				return true
			}
		}
	}
	return false
}

// CheckKeyPair loads the certificate and key of src and returns the first
// problem, for check-time validation. ACM sources are a problem.
func CheckKeyPair(src ir.CertificateSource, sdsDir string) error {
	chain, key, err := KeyPairFiles(src, sdsDir)
	if err != nil {
		return err
	}
	_, err = LoadKeyPair(chain, key)
	return err
}

// CheckTrust loads the trust bundle of v.
func CheckTrust(v ir.TLSValidation, sdsDir string) error {
	f, err := TrustFile(v, sdsDir)
	if err != nil {
		return err
	}
	_, err = LoadTrust(f)
	return err
}
