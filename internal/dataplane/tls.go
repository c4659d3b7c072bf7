package dataplane

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshgate/meshgate/internal/certs"
	"github.com/meshgate/meshgate/internal/ir"
)

// TLS on both sides of the gateway: listeners terminate it (reference
// §4.3: STRICT, PERMISSIVE, DISABLED, client certificates checked against a
// trust bundle and, optionally, SANs), and the gateway's client policy
// originates it to upstreams (§4.4).
//
// Certificates, keys and trust bundles are files (or SDS secrets read as
// files, see package certs). They are read when a config is applied, and a
// handshake that finds them more than certRecheck old looks at the files
// again: a file that changed is read anew and used from then on, without a
// restart and without touching open connections. A change that does not
// load (a missing file, a key that does not match its certificate, a write
// caught half done) is logged and the material loaded before keeps
// serving; the next change is tried again.

// certRecheck is how often, at most, a handshake looks at its files.
var certRecheck = time.Second

// cipherSuites are TLS 1.2's forward-secret AEAD suites; TLS 1.3's are
// fixed by crypto/tls and are all of that kind.
var cipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// serverTLS is a port's TLS termination.
type serverTLS struct {
	mode   string // STRICT or PERMISSIVE
	config *tls.Config
}

// certStore holds the certificates and trust bundles of the active config,
// keyed by file, across configs: a reload that names the same files keeps
// what was loaded.
type certStore struct {
	sdsDir string
	log    *slog.Logger

	mu     sync.Mutex // guards the maps; taken by Apply only
	pairs  map[[2]string]*watched[*tls.Certificate]
	trusts map[string]*watched[*x509.CertPool]
}

func newCertStore(sdsDir string, log *slog.Logger) *certStore {
	return &certStore{sdsDir: sdsDir, log: log, pairs: map[[2]string]*watched[*tls.Certificate]{}, trusts: map[string]*watched[*x509.CertPool]{}}
}

// certUse collects the entries one config uses, so that Apply can forget
// the others once it succeeds.
type certUse struct {
	pairs  map[[2]string]bool
	trusts map[string]bool
}

// pair returns the loaded certificate of src, loading it now if it is new;
// the error says why a new one cannot be used.
func (s *certStore) pair(src ir.CertificateSource, use *certUse) (*watched[*tls.Certificate], error) {
	chain, key, err := certs.KeyPairFiles(src, s.sdsDir)
	if err != nil {
		return nil, err
	}
	k := [2]string{chain, key}
	use.pairs[k] = true
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.pairs[k]
	if w == nil {
		w = &watched[*tls.Certificate]{
			what:  "certificate " + chain,
			files: []string{chain, key},
			load:  func() (*tls.Certificate, error) { return certs.LoadKeyPair(chain, key) },
			log:   s.log,
		}
		s.pairs[k] = w
	}
	return w, w.ensure()
}

// trust returns the loaded trust bundle of v.
func (s *certStore) trust(v ir.TLSValidation, use *certUse) (*watched[*x509.CertPool], error) {
	file, err := certs.TrustFile(v, s.sdsDir)
	if err != nil {
		return nil, err
	}
	use.trusts[file] = true
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.trusts[file]
	if w == nil {
		w = &watched[*x509.CertPool]{
			what:  "trust bundle " + file,
			files: []string{file},
			load:  func() (*x509.CertPool, error) { return certs.LoadTrust(file) },
			log:   s.log,
		}
		s.trusts[file] = w
	}
	return w, w.ensure()
}

// keep forgets every entry use does not name.
func (s *certStore) keep(use *certUse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.pairs {
		if !use.pairs[k] {
			delete(s.pairs, k)
		}
	}
	for k := range s.trusts {
		if !use.trusts[k] {
			delete(s.trusts, k)
		}
	}
}

// watched is something loaded from files, loaded again when they change.
type watched[T any] struct {
	what  string
	files []string
	load  func() (T, error)
	log   *slog.Logger

	cur     atomic.Pointer[T]
	checked atomic.Int64 // unix nanoseconds of the last look at the files

	mu      sync.Mutex // one look at the files at a time; guards stamp, lastErr
	stamp   string     // of the files when last read, loaded or not
	lastErr error      // of that read
}

// get returns the current value, looking at the files first when the last
// look is more than certRecheck old. A handshake never waits for another's
// reload: it uses the value there is.
func (w *watched[T]) get() T {
	now := time.Now().UnixNano()
	if now-w.checked.Load() >= int64(certRecheck) && w.mu.TryLock() {
		w.checked.Store(now)
		w.refresh()
		w.mu.Unlock()
	}
	return *w.cur.Load()
}

// ensure looks at the files now; it fails only when nothing was ever loaded.
func (w *watched[T]) ensure() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.checked.Store(time.Now().UnixNano())
	w.refresh()
	if w.cur.Load() == nil {
		return w.lastErr
	}
	return nil
}

// refresh reloads when the files differ from the last read. Called with mu held.
func (w *watched[T]) refresh() {
	st := stamp(w.files)
	if st == w.stamp && (w.cur.Load() != nil || w.lastErr != nil) {
		return
	}
	w.stamp = st
	v, err := w.load()
	w.lastErr = err
	switch {
	case err != nil && w.cur.Load() != nil:
		w.log.Error("TLS file change not applied; the previously loaded one keeps serving", "what", w.what, "error", err)
	case err == nil:
		if w.cur.Swap(&v) != nil {
			w.log.Info("TLS file reloaded", "what", w.what)
		}
	}
}

// stamp identifies the contents of files by size and modification time; a
// file that cannot be examined stamps as missing.
func stamp(files []string) string {
	var b strings.Builder
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			b.WriteString("missing;")
			continue
		}
		fmt.Fprintf(&b, "%d/%d;", fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String()
}

// serverTLS builds the TLS termination of a listener, or nil when it serves
// plaintext.
func (p *Plane) serverTLS(t *ir.ListenerTLS, use *certUse) (*serverTLS, error) {
	if !t.Terminates() {
		return nil, nil
	}
	pair, err := p.certs.pair(t.Certificate, use)
	if err != nil {
		return nil, err
	}
	base := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   cipherSuites,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return pair.get(), nil },
	}
	v := t.ClientValidation
	if v == nil {
		return &serverTLS{mode: t.Mode, config: base}, nil
	}
	trust, err := p.certs.trust(*v, use)
	if err != nil {
		return nil, err
	}
	base.ClientAuth = tls.RequireAndVerifyClientCert
	// A resumed session would skip checking the client's certificate
	// against the trust bundle in force now.
	base.SessionTicketsDisabled = true
	if sans := v.SubjectAlternativeNames; len(sans) > 0 {
		base.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !certs.MatchSAN(cs.PeerCertificates[0], sans) {
				return fmt.Errorf("client certificate is not for any of %s", strings.Join(sans, ", "))
			}
			return nil
		}
	}
	// Each handshake gets a config with the trust bundle in force; it is
	// built again only when the bundle changes.
	type perTrust struct {
		pool *x509.CertPool
		cfg  *tls.Config
	}
	var last atomic.Pointer[perTrust]
	return &serverTLS{mode: t.Mode, config: &tls.Config{
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			pool := trust.get()
			if l := last.Load(); l != nil && l.pool == pool {
				return l.cfg, nil
			}
			cfg := base.Clone()
			cfg.ClientCAs = pool
			last.Store(&perTrust{pool, cfg})
			return cfg, nil
		},
	}}, nil
}

// portConfigs builds the port configs of a gateway's listeners, loading
// every certificate and trust bundle they name.
func (p *Plane) portConfigs(gw *ir.Gateway, use *certUse) (map[int]*portConfig, error) {
	out := make(map[int]*portConfig, len(gw.Listeners))
	for _, l := range gw.Listeners {
		t, err := p.serverTLS(l.TLS, use)
		if err != nil {
			return nil, fmt.Errorf("listener %d TLS: %w", l.Port, err)
		}
		out[l.Port] = &portConfig{protocol: l.Protocol, tls: t}
	}
	return out, nil
}

// upstreamTLS is the TLS configuration for calling one upstream listener
// (a node's port) under the gateway's client policy, or nil when the policy
// does not cover that port and the call is cleartext. The server's
// certificate must chain to the policy's trust bundle and carry one of the
// policy's SANs; with none given, it must be valid for the node's DNS
// hostname (§4.4). HTTP/2 upstreams are asked for h2 with ALPN.
func (p *Plane) upstreamTLS(policy *ir.ClientTLS, node *ir.VirtualNode, port int, h2 bool, use *certUse) (*tls.Config, error) {
	if !policy.AppliesTo(port) {
		return nil, nil
	}
	trust, err := p.certs.trust(policy.Validation, use)
	if err != nil {
		return nil, fmt.Errorf("client policy trust: %w", err)
	}
	sans := policy.Validation.SubjectAlternativeNames
	host := node.Hostname
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: cipherSuites,
		ServerName:   host,
		NextProtos:   []string{"http/1.1"},
		// Verification is done below, against the trust bundle in force
		// at each handshake and by App Mesh's name rule.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyUpstream(cs, trust.get(), sans, host)
		},
	}
	if h2 {
		cfg.NextProtos = []string{"h2"}
	}
	if c := policy.Certificate; c != nil {
		pair, err := p.certs.pair(*c, use)
		if err != nil {
			return nil, fmt.Errorf("client policy certificate: %w", err)
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return pair.get(), nil }
	}
	return cfg, nil
}

// verifyUpstream checks an upstream's certificate chain against roots and
// its name against sans, or host when sans is empty.
func verifyUpstream(cs tls.ConnectionState, roots *x509.CertPool, sans []string, host string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("upstream sent no certificate")
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return fmt.Errorf("upstream certificate: %w", err)
	}
	if len(sans) > 0 {
		if !certs.MatchSAN(leaf, sans) {
			return fmt.Errorf("upstream certificate (SANs %s) is not for any of %s", strings.Join(certs.SANs(leaf), ", "), strings.Join(sans, ", "))
		}
		return nil
	}
	if host == "" {
		return errors.New("the virtual node has no DNS hostname to check the upstream certificate against; give the client policy subjectAlternativeNames")
	}
	if err := leaf.VerifyHostname(host); err != nil {
		return fmt.Errorf("upstream certificate: %w", err)
	}
	return nil
}

func newCertUse() *certUse {
	return &certUse{pairs: map[[2]string]bool{}, trusts: map[string]bool{}}
}

// upstreamTLSConfigs builds the TLS configuration of every node listener
// the gateway's client policy covers, by node and port. A configuration
// that a reload does not change keeps its pointer (clusters replace their
// transport, and drop its connections, when the pointer changes).
func (p *Plane) upstreamTLSConfigs(policy *ir.ClientTLS, nodes map[string]*ir.VirtualNode, use *certUse) (map[string]map[int]*tls.Config, error) {
	p.upTLSMu.Lock()
	defer p.upTLSMu.Unlock()
	next := map[string]*tls.Config{}
	out := map[string]map[int]*tls.Config{}
	for name, n := range nodes {
		for _, l := range n.Listeners {
			if !policy.AppliesTo(l.Port) {
				continue
			}
			h2 := l.Protocol == "http2" || l.Protocol == "grpc"
			key := fmt.Sprintf("%+v|%s|%v", *policy, n.Hostname, h2)
			cfg := next[key]
			if cfg == nil {
				built, err := p.upstreamTLS(policy, n, l.Port, h2, use)
				if err != nil {
					return nil, err
				}
				cfg = p.upTLS[key]
				if cfg == nil {
					cfg = built
				}
				next[key] = cfg
			}
			if out[name] == nil {
				out[name] = map[int]*tls.Config{}
			}
			out[name][l.Port] = cfg
		}
	}
	p.upTLS = next
	return out, nil
}
