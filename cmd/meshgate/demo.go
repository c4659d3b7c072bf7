package main

import (
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"path"
	"sort"
	"strings"

	"github.com/meshgate/meshgate/api/v1beta2"
	"github.com/meshgate/meshgate/examples"
	"github.com/meshgate/meshgate/internal/echo"
	"github.com/meshgate/meshgate/internal/resource"
	"github.com/spf13/cobra"
)

func newDemoCommand() *cobra.Command {
	var listenAddr, adminAddr string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Serve the bundled example (the guide's four scenarios) with built-in echo backends",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			set, err := demoSet()
			if err != nil {
				return err
			}
			eps, stopBackends, err := startDemoBackends(set)
			if err != nil {
				return err
			}
			defer stopBackends()
			out := cmd.OutOrStdout()
			return serve(cmd.Context(), serveOptions{
				set:        set,
				endpoints:  eps,
				listenAddr: listenAddr,
				adminAddr:  adminAddr,
				started: func(admin string) {
					printDemoHelp(out, listenAddr, admin)
				},
			})
		},
	}
	cmd.Flags().StringVar(&listenAddr, "listen-address", "127.0.0.1", "IP address the demo gateway binds (its listener port is 8080)")
	cmd.Flags().StringVar(&adminAddr, "admin-address", "127.0.0.1:9901", "address of /ready, /metrics and /config")
	return cmd
}

// demoSet decodes the embedded examples/demo manifests.
func demoSet() (*resource.Set, error) {
	set := resource.NewSet()
	names, err := fs.Glob(examples.Demo, "demo/*.yaml")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	for _, n := range names {
		data, err := fs.ReadFile(examples.Demo, n)
		if err != nil {
			return nil, err
		}
		set.AddFile(path.Join("examples", n), data)
	}
	if len(set.Problems) > 0 {
		return nil, fmt.Errorf("bundled example does not decode: %s", set.Problems[0])
	}
	return set, nil
}

// startDemoBackends starts one echo backend on loopback per VirtualNode and
// returns the --resolve mapping that sends each node's hostname to it.
func startDemoBackends(set *resource.Set) (map[string][]string, func(), error) {
	eps := map[string][]string{}
	var servers []*http.Server
	stop := func() {
		for _, s := range servers {
			s.Close()
		}
	}
	for _, k := range set.Keys(v1beta2.KindVirtualNode) {
		vn := set.Objects[k].Value.(*v1beta2.VirtualNode)
		if vn.Spec.ServiceDiscovery == nil || vn.Spec.ServiceDiscovery.DNS == nil {
			continue
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			stop()
			return nil, nil, err
		}
		srv := &http.Server{Handler: echo.Handler(vn.Name)}
		servers = append(servers, srv)
		go srv.Serve(ln)
		eps[strings.ToLower(vn.Spec.ServiceDiscovery.DNS.Hostname)] = []string{ln.Addr().String()}
	}
	return eps, stop, nil
}

func printDemoHelp(w io.Writer, listenAddr, admin string) {
	gw := net.JoinHostPort(listenAddr, "8080")
	if listenAddr == "0.0.0.0" || listenAddr == "" {
		gw = "127.0.0.1:8080"
	}
	fmt.Fprintf(w, `
meshgate demo: the guide's four scenarios on http://%[1]s (echo backends answer with what they received)

  # 1. path-based: /backend/... goes to backend-app, /backend stripped
  curl -s http://%[1]s/backend/items

  # 2. host-based: each hostname has its own service
  curl -s -H 'Host: api.example.com' http://%[1]s/v1/orders
  curl -s -H 'Host: dev-api.example.com' http://%[1]s/v1/orders

  # 3. header canary: X-Canary-User: true goes to v2
  curl -s -H 'X-Canary-User: true' http://%[1]s/backend/items

  # 4. weighted canary: backend-app splits 90/10 between v1 and v2
  for i in $(seq 100); do curl -s http://%[1]s/backend/ | grep '"backend"'; done | sort | uniq -c

  # no route: 404
  curl -si http://%[1]s/nothing-here

  # admin: readiness, metrics, the active routing table
  curl -s http://%[2]s/ready; curl -s http://%[2]s/metrics | grep meshgate_; curl -s http://%[2]s/config

Press Ctrl-C to stop.
`, gw, admin)
}
