package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/meshgate/meshgate/bench/manifests"
)

// body is what the backend answers: 64 bytes, as small as an API health or
// lookup response, so the proxies' per-request work dominates.
var body = strings.Repeat("x", 63) + "\n"

// probeBody is the backend's answer to exactly /probe, which is what the
// reload probe route's prefix rewrite forwards; any other route (the
// catch-all) forwards the path unchanged and gets body.
const probeBody = "probe\n"

// target is one thing the load generators measure: the backend directly or
// a proxy in front of it.
type target struct {
	name string
	h1   string // base URL for HTTP/1.1
	h2c  string // base URL for h2c with prior knowledge; "" when not spoken
	tls  string // base URL of a TLS port taking HTTP/1.1 and HTTP/2 (ALPN); "" when none
	path string // request path (with query) every load sends
	proc *process
	// notes is how it is configured, for the report.
	notes string
	// accessLog is the file it logs requests to (-access-log), emptied
	// before each load it is measured under, so that a run's logs hold
	// the last run's lines and not many gigabytes.
	accessLog string
}

func (t *target) pid() int { return t.proc.pid() }

// base is the URL l is sent to, "" when t does not speak l's protocol (the
// load then skips t and the report leaves it out of that load's table).
func (t *target) base(l load) string {
	switch {
	case l.tls:
		return t.tls
	case l.h2:
		return t.h2c
	}
	return t.h1
}

// startBackend starts the nginx backend every proxy forwards to: one worker,
// no access log, a fixed 64-byte body on HTTP/1.1 and on an h2c port.
func startBackend(ctx context.Context, dir, cpu string) (*target, int, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, 0, err
	}
	conf := fmt.Sprintf(`worker_processes 1;
daemon off;
pid %[1]s/backend.pid;
error_log stderr warn;
worker_rlimit_nofile 65535;
events { worker_connections 16384; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    default_type text/plain;
    client_body_temp_path %[1]s/backend-tmp;
    server {
        listen 127.0.0.1:%[2]d backlog=4096;
        listen 127.0.0.1:%[3]d http2 backlog=4096;
        location / { return 200 %[4]q; }
        location = /probe { return 200 "probe\n"; }
    }
}
`, dir, ports[0], ports[1], body)
	p, err := nginxStart("backend", dir, cpu, conf)
	if err != nil {
		return nil, 0, err
	}
	t := &target{name: "direct", h1: fmt.Sprintf("http://127.0.0.1:%d", ports[0]), h2c: fmt.Sprintf("http://127.0.0.1:%d", ports[1]),
		path: "/items/42", proc: p, notes: "nginx returning a fixed 64-byte body; the ceiling"}
	return t, ports[0], waitServing(ctx, t.h1+t.path, p)
}

func nginxStart(name, dir, cpu, conf string) (*process, error) {
	if err := os.MkdirAll(filepath.Join(dir, name+"-tmp"), 0o755); err != nil {
		return nil, err
	}
	path, err := writeFile(dir, name+".nginx.conf", conf)
	if err != nil {
		return nil, err
	}
	return start(name, cpu, filepath.Join(dir, name+".log"), nil, "nginx", "-p", dir, "-e", "stderr", "-c", path)
}

// accessLogs (-access-log) has every proxy log each request to a file in
// the run's directory, written in batches where the proxy can: what
// logging costs, as most gateways run with it on.
var accessLogs bool

// startNginx is nginx as a keep-alive reverse proxy: one worker, an upstream
// keepalive pool larger than the connection count, access log off (with
// -access-log, buffered: buffer=64k flush=1s), the X-Forwarded-* headers
// meshgate adds too.
func startNginx(ctx context.Context, dir, cpu string, backend int, cf certFiles) (*target, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	location := `location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
        }`
	nginxLog, logNote, logPath := "access_log off;", "access_log off", ""
	if accessLogs {
		logPath = filepath.Join(dir, "nginx-access.log")
		nginxLog = fmt.Sprintf("access_log %s combined buffer=64k flush=1s;", logPath)
		logNote = "`access_log ... combined buffer=64k flush=1s`"
	}
	conf := fmt.Sprintf(`worker_processes 1;
daemon off;
pid %[1]s/nginx.pid;
error_log stderr warn;
worker_rlimit_nofile 65535;
events { worker_connections 16384; }
http {
    %[9]s
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    client_body_temp_path %[1]s/nginx-tmp/body;
    proxy_temp_path %[1]s/nginx-tmp/proxy;
    upstream backend {
        server 127.0.0.1:%[2]d;
        keepalive 512;
        keepalive_requests 1000000;
        keepalive_timeout 300s;
    }
    server {
        listen 127.0.0.1:%[3]d backlog=4096;
        %[5]s
    }
    server {
        listen 127.0.0.1:%[4]d http2 backlog=4096;
        %[5]s
    }
    server {
        listen 127.0.0.1:%[6]d ssl http2 backlog=4096;
        ssl_certificate %[7]s;
        ssl_certificate_key %[8]s;
        %[5]s
    }
}
`, dir, backend, ports[0], ports[1], location, ports[2], cf.cert, cf.key, nginxLog)
	p, err := nginxStart("nginx", dir, cpu, conf)
	if err != nil {
		return nil, err
	}
	t := &target{name: "nginx", h1: fmt.Sprintf("http://127.0.0.1:%d", ports[0]), h2c: fmt.Sprintf("http://127.0.0.1:%d", ports[1]),
		tls: fmt.Sprintf("https://127.0.0.1:%d", ports[2]), path: "/items/42", proc: p, accessLog: logPath,
		notes: "worker_processes 1, upstream keepalive 512, " + logNote + "; h2c on a second port (`listen ... http2`), TLS on a third (`listen ... ssl http2`)"}
	return t, waitServing(ctx, t.h1+t.path, p)
}

// startHAProxy is HAProxy in HTTP mode with one thread, server connections
// reused across clients, no logging (with -access-log, option httplog to
// its standard output, which goes to its log file), X-Forwarded-For added;
// its clear-text frontend also takes h2c with prior knowledge.
func startHAProxy(ctx context.Context, dir, cpu string, backend int, cf certFiles) (*target, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	haLog, haDefaults, logNote, logPath := "", "", "no log", ""
	if accessLogs {
		// HAProxy clears O_APPEND on its standard output, so an emptied
		// log keeps its length as a hole and takes no space for it.
		logPath = filepath.Join(dir, "haproxy.log")
		haLog = "\n    log stdout format raw local0"
		haDefaults = "\n    log global\n    option httplog"
		logNote = "`log stdout format raw local0`, `option httplog` (its standard output goes to its log file)"
	}
	conf := fmt.Sprintf(`global
    nbthread 1
    maxconn 8000
    pidfile %[1]s/haproxy.pid%[6]s

defaults
    mode http%[7]s
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
    option forwardfor
    http-reuse always

frontend fe
    bind 127.0.0.1:%[3]d
    default_backend be

frontend fe_tls
    bind 127.0.0.1:%[4]d ssl crt %[5]s alpn h2,http/1.1
    default_backend be

backend be
    server b1 127.0.0.1:%[2]d
`, dir, backend, ports[0], ports[1], cf.both, haLog, haDefaults)
	path, err := writeFile(dir, "haproxy.cfg", conf)
	if err != nil {
		return nil, err
	}
	p, err := start("haproxy", cpu, filepath.Join(dir, "haproxy.log"), nil, "haproxy", "-db", "-f", path)
	if err != nil {
		return nil, err
	}
	u := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	t := &target{name: "haproxy", h1: u, h2c: u, tls: fmt.Sprintf("https://127.0.0.1:%d", ports[1]), path: "/items/42", proc: p, accessLog: logPath,
		notes: "nbthread 1, http-reuse always, option forwardfor, " + logNote + "; TLS on a second frontend (`alpn h2,http/1.1`)"}
	return t, waitServing(ctx, t.h1+t.path, p)
}

// startCaddy is Caddy's reverse_proxy with an idle pool sized for the load,
// GOMAXPROCS=1, h1 and h2c, no admin endpoint and no access log (Caddy logs
// requests only when told to; with -access-log, to a file).
func startCaddy(ctx context.Context, dir, cpu string, backend int, cf certFiles) (*target, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	proxy := fmt.Sprintf(`reverse_proxy 127.0.0.1:%d {
		transport http {
			keepalive 5m
			keepalive_idle_conns 1024
			keepalive_idle_conns_per_host 1024
		}
	}`, backend)
	logNote, logPath := "no access log", ""
	if accessLogs {
		// Not rolled: rolling would compress the old files on the
		// server's CPU, and the runner empties the file between loads.
		logPath = filepath.Join(dir, "caddy-access.log")
		proxy += fmt.Sprintf("\n\tlog {\n\t\toutput file %s {\n\t\t\troll_disabled\n\t\t}\n\t}", logPath)
		logNote = "`log { output file ... { roll_disabled } }`"
	}
	conf := fmt.Sprintf(`{
	admin off
	auto_https off
	default_sni 127.0.0.1
	servers {
		protocols h1 h2 h2c
	}
}

http://127.0.0.1:%[1]d {
	bind 127.0.0.1
	%[3]s
}

https://127.0.0.1:%[2]d {
	bind 127.0.0.1
	tls %[4]s %[5]s
	%[3]s
}
`, ports[0], ports[1], proxy, cf.cert, cf.key)
	path, err := writeFile(dir, "Caddyfile", conf)
	if err != nil {
		return nil, err
	}
	home := filepath.Join(dir, "caddy-home")
	env := []string{"GOMAXPROCS=1", "HOME=" + home, "XDG_DATA_HOME=" + home, "XDG_CONFIG_HOME=" + home}
	p, err := start("caddy", cpu, filepath.Join(dir, "caddy.log"), env, "caddy", "run", "--adapter", "caddyfile", "--config", path)
	if err != nil {
		return nil, err
	}
	u := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	t := &target{name: "caddy", h1: u, h2c: u, tls: fmt.Sprintf("https://127.0.0.1:%d", ports[1]), path: "/items/42", proc: p, accessLog: logPath,
		notes: "GOMAXPROCS=1, keepalive_idle_conns(_per_host) 1024, h1+h2c, TLS (h1+h2) on a second site, " + logNote}
	return t, waitServing(ctx, t.h1+t.path, p)
}

// startFloor is bench/floor (the binary at bin): each client connection
// paired with one upstream connection, request and response heads copied
// unchanged, GOMAXPROCS=1, HTTP/1.1 only. It shows the cost of Go's runtime
// and netpoller alone, not a proxy anyone would deploy. Target
// go-floor-loop runs the same code on coroutines of one epoll loop (-loop):
// the runtime's scheduler and netpoller off the path.
func startFloor(ctx context.Context, bin, dir, cpu, name string, backend int) (*target, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	argv := []string{bin, "-listen", fmt.Sprintf("127.0.0.1:%d", port), "-upstream", fmt.Sprintf("127.0.0.1:%d", backend)}
	notes := "reference, not a proxy: bench/floor, GOMAXPROCS=1, one upstream connection per client connection, heads copied unchanged (no X-Forwarded-For), GET with Content-Length responses only; HTTP/1.1 only"
	if name == "go-floor-loop" {
		argv = append(argv, "-loop")
		notes += "; -loop: every connection a coroutine resumed by one epoll loop, sockets outside Go's netpoller"
	}
	p, err := start(name, cpu, filepath.Join(dir, name+".log"), []string{"GOMAXPROCS=1"}, argv...)
	if err != nil {
		return nil, err
	}
	t := &target{name: name, h1: fmt.Sprintf("http://127.0.0.1:%d", port), path: "/items/42", proc: p, notes: notes}
	return t, waitServing(ctx, t.h1+t.path, p)
}

// meshgate is a meshgate serve process on a generated manifest set.
type meshgate struct {
	*target
	dir   string // the watched manifest directory
	admin string // admin base URL
	port  int
}

// startMeshgate generates a set of routes GatewayRoutes into dir/name and
// serves it with GOMAXPROCS=1, --resolve pointing every VirtualNode at the
// backend. The request path is the deepest prefix route's, so matching
// goes through the whole table's precedence. With cf set, the listener
// terminates TLS and serves the TLS loads alone: meshgate serves one
// VirtualGateway, and App Mesh has a route on a gateway of two listeners
// name its port, so TLS is a gateway (and a process) of its own, as it
// would be deployed.
func startMeshgate(ctx context.Context, bin, dir, cpu, name string, routes, backend int, cf *certFiles, extra ...manifests.File) (*meshgate, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	mdir := filepath.Join(dir, name+"-manifests")
	mo := manifests.Options{Routes: routes, Port: ports[0]}
	if accessLogs {
		mo.AccessLog = filepath.Join(dir, name+"-access.log")
	}
	if cf != nil {
		mo.TLS = &manifests.TLS{CertificateChain: cf.cert, PrivateKey: cf.key}
	}
	files := manifests.Generate(mo)
	if err := manifests.WriteDir(mdir, append(files, extra...)...); err != nil {
		return nil, err
	}
	path := "/items/42" // the catch-all: the only route of a one-route set
	if i := manifests.Deepest(routes, manifests.ShapePrefix); i >= 0 {
		path = manifests.RequestFor(i).Path
	}
	p, err := start(name, cpu, filepath.Join(dir, name+".log"), []string{"GOMAXPROCS=1"},
		bin, "serve", "-f", mdir, "--listen-address", "127.0.0.1",
		"--admin-address", fmt.Sprintf("127.0.0.1:%d", ports[1]),
		"--resolve", fmt.Sprintf("%s=127.0.0.1:%d", manifests.BackendHost, backend),
		"--log-level", "warn")
	if err != nil {
		return nil, err
	}
	u := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	notes := fmt.Sprintf("GOMAXPROCS=1, %d GatewayRoute(s), request %s", routes, path)
	if accessLogs {
		notes += ", access log in Envoy's default format, written in batches"
	}
	m := &meshgate{target: &target{name: name, h1: u, h2c: u, path: path, proc: p, notes: notes, accessLog: mo.AccessLog},
		dir: mdir, admin: fmt.Sprintf("http://127.0.0.1:%d", ports[1]), port: ports[0]}
	if cf != nil {
		u = fmt.Sprintf("https://127.0.0.1:%d", ports[0])
		m.h1, m.h2c, m.tls = "", "", u
		m.notes += "; the listener with TLS mode STRICT and a file certificate"
	}
	return m, waitServing(ctx, u+path, p)
}

// waitServing polls url until it answers 200, the process exits or ctx
// ends (Ctrl-C). Its errors leave out p's name: every caller adds the
// target's. Compiling a very large set can take minutes, so the wait
// is long.
func waitServing(ctx context.Context, url string, p *process) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	// The TLS ports serve the run's own self-signed certificate.
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for {
		if p.exited() {
			return fmt.Errorf("exited during startup; see %s", p.log.Name())
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		res, err := c.Do(req)
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if ctx.Err() == context.Canceled {
				return fmt.Errorf("interrupted while waiting for %s to serve", url)
			}
			return fmt.Errorf("%s not serving 200 after 15 minutes (last error %v)", url, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
