package conformance

import (
	"crypto/tls"
	"encoding/csv"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/dataplane"
)

// TestSlowHTTP runs slowhttptest's slow-headers (slowloris) and slow-body
// (R-U-Dead-Yet) attacks on an http listener, in cleartext and over TLS,
// each with 300 connections, while another client keeps sending ordinary
// requests: slowhttptest's own probe and every ordinary request must be
// answered throughout.
func TestSlowHTTP(t *testing.T) {
	bin, err := exec.LookPath("slowhttptest")
	if err != nil {
		t.Fatal("slowhttptest is not installed (Debian package slowhttptest; .ci/run installs it)")
	}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok\n")
	}))
	t.Cleanup(backend.Close)
	dir := t.TempDir()
	ca, _ := gatewayCert(t, dir, "localhost", "127.0.0.1")
	yaml := twoListenerYAML("http", "httpRoute", "prefix: /", "backend", dir) + serviceYAML("backend", "http", port(backend.Listener.Addr()))
	addrs := startGateway(t, compiled(t, yaml, map[string]string{"backend.demo.svc.cluster.local": backend.Listener.Addr().String()}), dataplane.Options{})
	roots := ca.Pool()

	for _, c := range []struct {
		name, mode, url string
	}{
		{"slow headers", "-H", "http://" + addrs[8080].String() + "/"},
		{"slow body", "-B", "http://" + addrs[8080].String() + "/"},
		// HTTP/1.1 over TLS is the server loop's too (the listener's
		// handshake, then the same reads).
		{"slow headers over TLS", "-H", "https://" + addrs[8443].String() + "/"},
		{"slow body over TLS", "-B", "https://" + addrs[8443].String() + "/"},
	} {
		t.Run(c.name, func(t *testing.T) {
			url := c.url
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var sent, failed int
			wg.Add(1)
			go func() {
				defer wg.Done()
				client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
				defer client.CloseIdleConnections()
				for {
					select {
					case <-stop:
						return
					case <-time.After(50 * time.Millisecond):
					}
					sent++
					res, err := client.Get(url + "ordinary")
					if err != nil {
						failed++
						t.Logf("ordinary request: %v", err)
						continue
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusOK {
						failed++
						t.Logf("ordinary request: status %d", res.StatusCode)
					}
				}
			}()

			out := filepath.Join(t.TempDir(), "slow")
			cmd := exec.Command(bin, c.mode, "-c", "300", "-r", "150", "-i", "1", "-l", "8", "-p", "3", "-g", "-o", out, "-u", url)
			log, err := cmd.CombinedOutput()
			close(stop)
			wg.Wait()
			if err != nil {
				t.Fatalf("slowhttptest: %v\n%s", err, log)
			}
			rows := readSlowCSV(t, out+".csv")
			maxOpen := 0
			for _, r := range rows {
				if r.available == 0 {
					t.Errorf("second %d: slowhttptest's probe found the service unavailable", r.second)
				}
				maxOpen = max(maxOpen, r.connected+r.closed)
			}
			if maxOpen < 150 {
				t.Errorf("at most %d attack connections were made: the attack did not run (%d rows)", maxOpen, len(rows))
			}
			if sent == 0 || failed > 0 {
				t.Errorf("%d of %d ordinary requests failed during the attack", failed, sent)
			}
			t.Logf("%s: %d seconds, up to %d attack connections; %d ordinary requests, none failed", c.name, len(rows), maxOpen, sent)
		})
	}
}

type slowRow struct{ second, closed, pending, connected, available int }

// readSlowCSV reads slowhttptest's -g statistics: one row a second of
// closed, pending and connected attack connections, and the service's
// availability (the connection count when the probe was answered, else 0).
func readSlowCSV(t *testing.T, path string) []slowRow {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var rows []slowRow
	for _, rec := range recs[1:] {
		if len(rec) != 5 {
			t.Fatalf("%s: unexpected row %q", path, rec)
		}
		var v [5]int
		for i, s := range rec {
			if v[i], err = strconv.Atoi(s); err != nil {
				t.Fatalf("%s: unexpected row %q", path, rec)
			}
		}
		rows = append(rows, slowRow{v[0], v[1], v[2], v[3], v[4]})
	}
	if len(rows) == 0 {
		t.Fatalf("%s has no rows", path)
	}
	return rows
}
