package dataplane

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/ir"
)

// TestMatchKinds sends real requests through the gateway and checks which
// backend (one per route) answered.
func TestMatchKinds(t *testing.T) {
	str := func(s string) *string { return &s }
	hm := func(name, typ, value string) []ir.HeaderMatch {
		return []ir.HeaderMatch{{Name: name, Type: typ, Value: value}}
	}
	routes := []*ir.GatewayRoute{
		route("exact", "exact", ir.Match{PathExact: "/exact"}),
		route("regex", "regex", ir.Match{PathRegex: mustRegexp(t, "/items/[0-9]+")}),
		route("prefix", "prefix", ir.Match{Prefix: "/prefix"}),
		route("query-present", "query-present", ir.Match{Prefix: "/q1", Query: []ir.QueryMatch{{Name: "debug"}}}),
		route("query-exact", "query-exact", ir.Match{Prefix: "/q2", Query: []ir.QueryMatch{{Name: "v", Exact: str("2")}}}),
		route("h-present", "h-present", ir.Match{Prefix: "/h1", Headers: hm("x-a", ir.HeaderPresent, "")}),
		route("h-exact", "h-exact", ir.Match{Prefix: "/h2", Headers: hm("x-a", ir.HeaderExact, "yes")}),
		route("h-prefix", "h-prefix", ir.Match{Prefix: "/h3", Headers: hm("user-agent", ir.HeaderPrefix, "probe/")}),
		route("h-suffix", "h-suffix", ir.Match{Prefix: "/h4", Headers: hm("x-tenant", ir.HeaderSuffix, ".eu")}),
		route("h-regex", "h-regex", ir.Match{Prefix: "/h5", Headers: []ir.HeaderMatch{{Name: "x-version", Type: ir.HeaderRegex, Regex: mustRegexp(t, "v[0-9]+")}}}),
		route("h-range", "h-range", ir.Match{Prefix: "/h6", Headers: []ir.HeaderMatch{{Name: "x-n", Type: ir.HeaderRange, Start: 1, End: 100}}}),
		route("h-absent", "h-absent", ir.Match{Prefix: "/h7", Headers: []ir.HeaderMatch{{Name: "x-mobile", Type: ir.HeaderPresent, Invert: true}}}),
		route("h-not-exact", "h-not-exact", ir.Match{Prefix: "/h8", Headers: []ir.HeaderMatch{{Name: "x-a", Type: ir.HeaderExact, Value: "no", Invert: true}}}),
		route("method", "method", ir.Match{Prefix: "/m", Method: http.MethodPost}),
		route("grpc", "grpc", ir.Match{ServiceName: "pkg.Svc"}),
		route("grpc-meta", "grpc-meta", ir.Match{ServiceName: "pkg.Meta", MethodName: "Get", Headers: hm("tenant", ir.HeaderExact, "a")}),
		route("host-exact", "host-exact", ir.Match{Prefix: "/", Hostname: &ir.HostnameMatch{Exact: "api.example.com"}}),
		route("host-suffix", "host-suffix", ir.Match{Prefix: "/", Hostname: &ir.HostnameMatch{Suffix: ".example.com"}}),
		route("root", "root", ir.Match{Prefix: "/"}),
	}
	var backends []*backend
	for _, r := range routes {
		backends = append(backends, startEcho(t, r.Name))
	}
	backends = append(backends, startEcho(t, "port-9090"))
	cfg := meshConfig([]*ir.Listener{
		listenerOf(8080, routes...),
		listenerOf(9090, route("port-9090", "port-9090", ir.Match{Prefix: "/", Port: 9090})),
	}, backends...)
	g := startGateway(t, cfg)

	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Add(kv[i], kv[i+1])
		}
		return out
	}
	cases := map[string]struct {
		req  request
		want string
	}{
		"path exact":                  {request{path: "/exact"}, "exact"},
		"path exact with query":       {request{path: "/exact?a=1"}, "exact"},
		"path exact, longer":          {request{path: "/exact/x"}, "root"},
		"path regex":                  {request{path: "/items/42"}, "regex"},
		"path regex, whole string":    {request{path: "/items/42x"}, "root"},
		"prefix":                      {request{path: "/prefix/a/b"}, "prefix"},
		"prefix after normalising":    {request{path: "/x/..//prefix/a"}, "prefix"},
		"query present":               {request{path: "/q1?debug"}, "query-present"},
		"query present, absent":       {request{path: "/q1?other=1"}, "root"},
		"query exact":                 {request{path: "/q2?a=b&v=2"}, "query-exact"},
		"query exact, other":          {request{path: "/q2?v=3"}, "root"},
		"header present":              {request{path: "/h1", header: h("X-A", "")}, "h-present"},
		"header present, missing":     {request{path: "/h1"}, "root"},
		"header exact":                {request{path: "/h2", header: h("X-A", "yes")}, "h-exact"},
		"header exact, other":         {request{path: "/h2", header: h("X-A", "no")}, "root"},
		"header prefix":               {request{path: "/h3", header: h("User-Agent", "probe/1.0")}, "h-prefix"},
		"header suffix":               {request{path: "/h4", header: h("X-Tenant", "acme.eu")}, "h-suffix"},
		"header regex":                {request{path: "/h5", header: h("X-Version", "v7")}, "h-regex"},
		"header regex, partial":       {request{path: "/h5", header: h("X-Version", "v7b")}, "root"},
		"header range":                {request{path: "/h6", header: h("X-N", "99")}, "h-range"},
		"header range, end":           {request{path: "/h6", header: h("X-N", "100")}, "root"},
		"header inverted present":     {request{path: "/h7"}, "h-absent"},
		"header inverted, present":    {request{path: "/h7", header: h("X-Mobile", "1")}, "root"},
		"header inverted exact":       {request{path: "/h8", header: h("X-A", "yes")}, "h-not-exact"},
		"header inverted exact, miss": {request{path: "/h8"}, "root"},
		"method":                      {request{method: http.MethodPost, path: "/m", body: strings.NewReader("x")}, "method"},
		"method, other":               {request{path: "/m"}, "root"},
		"grpc service":                {request{method: http.MethodPost, path: "/pkg.Svc/Anything"}, "grpc"},
		"grpc method and metadata":    {request{method: http.MethodPost, path: "/pkg.Meta/Get", header: h("Tenant", "a")}, "grpc-meta"},
		"grpc metadata, other":        {request{method: http.MethodPost, path: "/pkg.Meta/Get", header: h("Tenant", "b")}, "root"},
		"hostname exact":              {request{path: "/", host: "API.example.com:8080"}, "host-exact"},
		"hostname suffix":             {request{path: "/", host: "www.Example.com"}, "host-suffix"},
		"hostname suffix, apex":       {request{path: "/", host: "example.com"}, "root"},
		"listener port":               {request{port: 9090, path: "/exact"}, "port-9090"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			res := g.do(c.req)
			if res.status != http.StatusOK || res.echo.Backend != c.want {
				t.Fatalf("answered by %q (status %d, body %q), want %q", res.echo.Backend, res.status, res.body, c.want)
			}
		})
	}
}

func TestRewrites(t *testing.T) {
	b := startEcho(t, "b")
	routes := []*ir.GatewayRoute{
		withRewrite(route("default-prefix", "b", ir.Match{Prefix: "/backend"}), ir.Rewrite{Prefix: "/", Hostname: "b.demo.svc.cluster.local"}),
		withRewrite(route("value", "b", ir.Match{Prefix: "/maroon/"}), ir.Rewrite{Prefix: "/red/"}),
		route("disabled", "b", ir.Match{Prefix: "/red/"}),
		withRewrite(route("path", "b", ir.Match{PathExact: "/old"}), ir.Rewrite{Path: "/new"}),
		route("plain", "b", ir.Match{Prefix: "/"}),
	}
	g := startGateway(t, meshConfig([]*ir.Listener{listenerOf(8080, routes...)}, b))
	cases := map[string]struct {
		path, host                    string
		wantPath, wantQuery, wantHost string
	}{
		"default prefix":                {"/backend/items?x=1", "", "/items", "x=1", "b.demo.svc.cluster.local"},
		"default prefix, itself":        {"/backend", "", "/", "", "b.demo.svc.cluster.local"},
		"default prefix, slash":         {"/backend/", "", "/", "", "b.demo.svc.cluster.local"},
		"default prefix, 1":             {"/backend1", "", "/1", "", "b.demo.svc.cluster.local"},
		"prefix value":                  {"/maroon/tell?fishes=nemo", "shop.example.com", "/red/tell", "fishes=nemo", "shop.example.com"},
		"prefix disabled":               {"/red/tell", "shop.example.com", "/red/tell", "", "shop.example.com"},
		"path":                          {"/old?keep=1", "", "/new", "keep=1", ""},
		"host kept with port":           {"/x", "Client.Example.com:8080", "/x", "", "Client.Example.com:8080"},
		"normalised path forwarded":     {"/a/./b/../c//d", "", "/a/c/d", "", ""},
		"percent-encoding kept":         {"/files/a%2Fb%20c", "", "/files/a%2Fb%20c", "", ""},
		"query forwarded as received":   {"/q?a=1;b=2&c=%zz&d", "", "/q", "a=1;b=2&c=%zz&d", ""},
		"prefix rewrite on encoded dot": {"/backend/%2e%2e/backend/x", "", "/x", "", "b.demo.svc.cluster.local"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			res := g.do(request{path: c.path, host: c.host})
			if res.status != http.StatusOK {
				t.Fatalf("status %d %q", res.status, res.body)
			}
			e := res.echo
			wantHost := c.wantHost
			if wantHost == "" {
				wantHost = strings.TrimPrefix(g.url(8080, ""), "http://")
			}
			if e.Path != c.wantPath || e.Query != c.wantQuery || e.Host != wantHost {
				t.Fatalf("backend got path %q query %q host %q, want %q %q %q", e.Path, e.Query, e.Host, c.wantPath, c.wantQuery, wantHost)
			}
		})
	}
}

func TestForwardedHeaders(t *testing.T) {
	b := startBackend(t, "b", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-From-Backend", "1")
		w.Header().Set("Keep-Alive", "timeout=5") // hop-by-hop: must not reach the client
		w.Header().Set("X-Backend", "b")
		w.WriteHeader(http.StatusCreated)
		echoHandler("b")(w, r)
	}))
	g := startGateway(t, meshConfig([]*ir.Listener{listenerOf(8080,
		withRewrite(route("r", "b", ir.Match{Prefix: "/"}), ir.Rewrite{Hostname: "b.demo.svc.cluster.local"}))}, b))

	res := g.do(request{path: "/x", host: "shop.example.com", header: http.Header{
		"X-Forwarded-For":   {"203.0.113.7"},
		"X-Forwarded-Proto": {"https"}, // the gateway speaks for itself
		"X-Custom":          {"kept"},
		"Connection":        {"X-Hop"},
		"X-Hop":             {"dropped"},
		"Proxy-Connection":  {"keep-alive"},
	}})
	if res.status != http.StatusCreated {
		t.Fatalf("status %d, want the backend's 201", res.status)
	}
	got := res.echo.Header
	checks := map[string]string{
		"X-Forwarded-For":   "203.0.113.7, 127.0.0.1",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  "shop.example.com",
		"X-Custom":          "kept",
		"X-Hop":             "",
		"Proxy-Connection":  "",
	}
	for k, want := range checks {
		if v := strings.Join(got[k], ","); v != want {
			t.Errorf("backend header %s = %q, want %q", k, v, want)
		}
	}
	if res.echo.Host != "b.demo.svc.cluster.local" {
		t.Errorf("backend Host = %q", res.echo.Host)
	}
	if id := got.Get("X-Request-Id"); !uuidV4.MatchString(id) {
		t.Errorf("generated X-Request-Id = %q, want a UUIDv4", id)
	}
	if res.header.Get("X-From-Backend") != "1" || res.header.Get("Keep-Alive") != "" {
		t.Errorf("response headers: %v", res.header)
	}
	res = g.do(request{path: "/x", header: http.Header{"X-Request-Id": {"abc"}}})
	if got := res.echo.Header.Get("X-Request-Id"); got != "abc" {
		t.Errorf("client X-Request-Id replaced by %q", got)
	}
	if got := res.echo.Header.Get("X-Forwarded-For"); got != "127.0.0.1" {
		t.Errorf("X-Forwarded-For without a prior value = %q", got)
	}
}

func TestBodies(t *testing.T) {
	release := make(chan struct{})
	streamer := startBackend(t, "stream", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "first\n")
		http.NewResponseController(w).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "second\n")
	}))
	b := startEcho(t, "b")
	g := startGateway(t, meshConfig([]*ir.Listener{listenerOf(8080,
		route("stream", "stream", ir.Match{Prefix: "/stream"}),
		route("echo", "b", ir.Match{Prefix: "/"}))}, b, streamer))

	t.Run("large request body arrives intact", func(t *testing.T) {
		body := make([]byte, 8<<20)
		rand.Read(body)
		sum := sha256.Sum256(body)
		res := g.do(request{method: http.MethodPost, path: "/upload", body: bytes.NewReader(body)})
		if res.echo.BodyLen != len(body) || res.echo.BodySHA256 != hex.EncodeToString(sum[:]) {
			t.Fatalf("backend got %d bytes sha %s", res.echo.BodyLen, res.echo.BodySHA256)
		}
		if cl := res.echo.Header.Get("Content-Length"); cl != "8388608" {
			t.Errorf("Content-Length upstream = %q", cl)
		}
	})
	t.Run("chunked request body", func(t *testing.T) {
		pr, pw := io.Pipe()
		go func() {
			for i := 0; i < 100; i++ {
				io.WriteString(pw, "0123456789")
			}
			pw.Close()
		}()
		res := g.do(request{method: http.MethodPut, path: "/chunked", body: pr})
		if res.echo.BodyLen != 1000 || res.echo.Method != http.MethodPut {
			t.Fatalf("backend got %+v", res.echo)
		}
	})
	t.Run("response streams", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.url(8080, "/stream"), nil)
		res, err := g.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		br := bufio.NewReader(res.Body)
		// The backend holds "second" back until this first chunk arrives:
		// a gateway that buffered would never deliver it.
		line, err := br.ReadString('\n')
		if err != nil || line != "first\n" {
			t.Fatalf("first chunk %q, %v", line, err)
		}
		close(release)
		rest, err := io.ReadAll(br)
		if err != nil || string(rest) != "second\n" {
			t.Fatalf("rest %q, %v", rest, err)
		}
	})
}

func TestLocalReplies(t *testing.T) {
	b := startEcho(t, "b")
	cfg := meshConfig([]*ir.Listener{listenerOf(8080,
		route("ghost-service", "ghost", ir.Match{Prefix: "/ghost-service"}),
		route("ghost-node", "ghost-node", ir.Match{Prefix: "/ghost-node"}),
		route("routed", "routed", ir.Match{Prefix: "/routed"}),
		route("refused", "refused", ir.Match{Prefix: "/refused"}),
		route("reset", "reset", ir.Match{Prefix: "/reset"}),
		route("no-endpoints", "no-endpoints", ir.Match{Prefix: "/no-endpoints"}),
		route("half", "half", ir.Match{Prefix: "/half"}),
		route("b", "b", ir.Match{Prefix: "/b"}),
	)}, b)
	cfg.Services["demo/half"] = &ir.VirtualService{Name: "demo/half", Router: "demo/half-vr"}
	cfg.Routers["demo/half-vr"] = &ir.VirtualRouter{Name: "demo/half-vr", Routes: []*ir.Route{
		{Name: "half", Kind: "http", Match: ir.Match{Prefix: "/"}, TotalWeight: 2, Targets: []ir.WeightedTarget{{Node: "demo/b-vn", Weight: 1}, {Node: "demo/gone-vn", Weight: 1}}},
	}}
	cfg.Services["demo/ghost-node"] = &ir.VirtualService{Name: "demo/ghost-node", Node: "demo/nowhere-vn"}
	cfg.Services["demo/routed"] = &ir.VirtualService{Name: "demo/routed", Router: "demo/routed-vr"}
	cfg.Routers["demo/routed-vr"] = &ir.VirtualRouter{Name: "demo/routed-vr", Routes: []*ir.Route{
		{Name: "only-post", Kind: "http", Match: ir.Match{Prefix: "/", Method: http.MethodPost}, TotalWeight: 1, Targets: []ir.WeightedTarget{{Node: "demo/b-vn", Weight: 1}}},
	}}
	addNode(cfg, "refused", &ir.VirtualNode{Listeners: []ir.PortProto{{Port: 80, Protocol: "http"}}, Endpoints: []string{closedAddr(t)}})
	reset := startBackend(t, "reset", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			c.Close()
		}
	}))
	addNode(cfg, "reset", &ir.VirtualNode{Listeners: []ir.PortProto{{Port: reset.port, Protocol: "http"}}, Endpoints: []string{reset.addr}})
	addNode(cfg, "no-endpoints", &ir.VirtualNode{Listeners: []ir.PortProto{{Port: 80, Protocol: "http"}}})
	g := startGateway(t, cfg)

	cases := map[string]struct {
		path   string
		status int
		body   string
	}{
		"no gateway route":      {"/nothing", 404, "no route matched\n"},
		"missing service":       {"/ghost-service", 503, "virtual service demo/ghost not found\n"},
		"missing node":          {"/ghost-node", 503, "virtual node demo/nowhere-vn not found\n"},
		"no router route":       {"/routed", 503, "no route of virtual router demo/routed-vr matched\n"},
		"node without endpoint": {"/no-endpoints", 503, "virtual node demo/no-endpoints-vn has no endpoints\n"},
		"connect failure":       {"/refused", 502, "upstream connect error\n"},
		"upstream reset":        {"/reset", 502, "upstream reset before response headers\n"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			res := g.do(request{path: c.path})
			if res.status != c.status || res.body != c.body {
				t.Fatalf("got %d %q, want %d %q", res.status, res.body, c.status, c.body)
			}
		})
	}
	t.Run("grpc client gets grpc-status", func(t *testing.T) {
		res := g.do(request{method: http.MethodPost, path: "/nothing", header: http.Header{"Content-Type": {"application/grpc"}}})
		if res.status != http.StatusOK || res.header.Get("Grpc-Status") != "12" || res.header.Get("Grpc-Message") != "no route matched" {
			t.Fatalf("got %d %v", res.status, res.header)
		}
	})
	t.Run("a missing weighted target fails its share", func(t *testing.T) {
		got := map[string]int{}
		for range 200 {
			res := g.do(request{path: "/half"})
			switch {
			case res.status == http.StatusOK && res.echo.Backend == "b":
				got["b"]++
			case res.status == http.StatusServiceUnavailable && res.body == "virtual node demo/gone-vn not found\n":
				got["503"]++
			default:
				t.Fatalf("unexpected %d %q", res.status, res.body)
			}
		}
		if got["b"] == 0 || got["503"] == 0 {
			t.Fatalf("split %v, want both outcomes", got)
		}
	})
	t.Run("router route reached", func(t *testing.T) {
		res := g.do(request{method: http.MethodPost, path: "/routed", body: strings.NewReader("hi")})
		if res.status != http.StatusOK || res.echo.Backend != "b" || res.echo.Body != "hi" {
			t.Fatalf("got %d %q", res.status, res.body)
		}
	})
}

func TestHTTP2Upstream(t *testing.T) {
	grpcish := startH2CBackend(t, "h2", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "Grpc-Status")
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("X-Proto", r.Proto)
		w.Header().Set("X-Te", r.Header.Get("Te"))
		body, _ := io.ReadAll(r.Body)
		w.Write(body)
		w.Header().Set("Grpc-Status", "0")
	}))
	cfg := meshConfig([]*ir.Listener{listenerOf(8080, route("grpc", "h2", ir.Match{ServiceName: "pkg.Svc"}))})
	addNode(cfg, "h2", &ir.VirtualNode{Listeners: []ir.PortProto{{Port: grpcish.port, Protocol: "grpc"}}, Endpoints: []string{grpcish.addr}})
	cfg.Gateways[0].Listeners[0].Protocol = "grpc"
	g := startGateway(t, cfg)

	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Transport: &http.Transport{Protocols: &protos}}
	t.Cleanup(h2c.CloseIdleConnections)
	req, _ := http.NewRequest(http.MethodPost, g.url(8080, "/pkg.Svc/Get"), strings.NewReader("payload"))
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	res, err := h2c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.ProtoMajor != 2 || res.Header.Get("X-Proto") != "HTTP/2.0" || res.Header.Get("X-Te") != "trailers" || string(body) != "payload" {
		t.Fatalf("client proto %s, backend proto %q te %q, body %q", res.Proto, res.Header.Get("X-Proto"), res.Header.Get("X-Te"), body)
	}
	if res.Trailer.Get("Grpc-Status") != "0" {
		t.Fatalf("trailers %v", res.Trailer)
	}
}

// TestHandler serves through Handler without a listener: the gateway's only
// port is assumed.
func TestHandler(t *testing.T) {
	b := startEcho(t, "b")
	g := startGateway(t, meshConfig([]*ir.Listener{listenerOf(8080, route("r", "b", ir.Match{Prefix: "/only"}))}, b))
	srv := &http.Server{Handler: g.p.Handler()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	res, err := g.client.Get("http://" + ln.Addr().String() + "/only/x")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("X-Backend") != "b" {
		t.Fatalf("status %d", res.StatusCode)
	}
}

func TestUpstreamThatNeverAnswersGets504(t *testing.T) {
	old := responseTimeout
	responseTimeout = 300 * time.Millisecond
	t.Cleanup(func() { responseTimeout = old })
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	hang := startBackend(t, "hang", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	cfg := meshConfig([]*ir.Listener{listenerOf(8080, route("hang", "hang", ir.Match{Prefix: "/"}))})
	addNode(cfg, "hang", &ir.VirtualNode{Listeners: []ir.PortProto{{Port: hang.port, Protocol: "http"}}, Endpoints: []string{hang.addr}})
	g := startGateway(t, cfg)
	res := g.do(request{path: "/"})
	if res.status != http.StatusGatewayTimeout || res.body != "upstream request timeout\n" {
		t.Fatalf("got %d %q, want 504 upstream request timeout", res.status, res.body)
	}
}

// uuidV4 is the form of a generated X-Request-Id.
var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestRequestIDGenerate checks the generated IDs' form, version and variant
// over many draws, and that they differ: each hex group comes from its own
// bits.
func TestRequestIDGenerate(t *testing.T) {
	seen := map[string]bool{}
	groups := make([]map[string]bool, 5)
	for i := range groups {
		groups[i] = map[string]bool{}
	}
	for range 1000 {
		var id requestID
		id.generate()
		s := id.String()
		if !uuidV4.MatchString(s) {
			t.Fatalf("generated %q, want a UUIDv4", s)
		}
		if seen[s] {
			t.Fatalf("%q generated twice", s)
		}
		seen[s] = true
		for i, g := range strings.Split(s, "-") {
			groups[i][g] = true
		}
	}
	for i, g := range groups {
		if len(g) < 500 {
			t.Errorf("group %d took %d values in 1000 draws", i, len(g))
		}
	}
	var none requestID
	if none.String() != "" {
		t.Errorf("an ID never generated = %q", none.String())
	}
}
