package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"path/filepath"
	"time"
)

// certFiles is the certificate every TLS port of a run serves: one
// self-signed ECDSA P-256 certificate for 127.0.0.1, as PEM files.
type certFiles struct {
	cert, key string
	both      string // certificate then key, as HAProxy's crt takes them
}

// writeCert generates the run's certificate into dir.
func writeCert(dir string) (certFiles, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return certFiles{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return certFiles{}, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return certFiles{}, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	f := certFiles{cert: filepath.Join(dir, "tls-cert.pem"), key: filepath.Join(dir, "tls-key.pem"), both: filepath.Join(dir, "tls-both.pem")}
	for path, data := range map[string][]byte{f.cert: certPEM, f.key: keyPEM, f.both: append(append([]byte{}, certPEM...), keyPEM...)} {
		if _, err := writeFile(dir, filepath.Base(path), string(data)); err != nil {
			return certFiles{}, err
		}
	}
	return f, nil
}
