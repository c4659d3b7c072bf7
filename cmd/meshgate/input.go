package main

import (
	"fmt"
	"strings"

	"github.com/meshgate/meshgate/internal/ir"
	"github.com/meshgate/meshgate/internal/resource"
	"github.com/meshgate/meshgate/internal/source/file"
	"github.com/spf13/cobra"
)

// inputFlags are the flags every command that reads manifests shares.
type inputFlags struct {
	files   []string
	resolve []string
	gateway string
}

func (f *inputFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringArrayVarP(&f.files, "filename", "f", nil, "manifest file or directory (repeatable; directories are read recursively)")
	cmd.Flags().StringArrayVar(&f.resolve, "resolve", nil, resolveUsage("instead of DNS"))
	cmd.Flags().StringVar(&f.gateway, "gateway", "", "NAMESPACE/NAME of the VirtualGateway to use when the manifests hold more than one")
}

// load reads the manifests and applies --resolve.
func (f *inputFlags) load() (*resource.Set, map[string][]string, error) {
	if len(f.files) == 0 {
		return nil, nil, fmt.Errorf("no manifests: give -f FILE or -f DIRECTORY")
	}
	eps, err := parseResolve(f.resolve)
	if err != nil {
		return nil, nil, err
	}
	set, err := file.Load(f.files)
	if err != nil {
		return nil, nil, err
	}
	for h, e := range eps {
		set.Endpoints[h] = e
	}
	return set, eps, nil
}

// resolveUsage is the help of --resolve; how says what the endpoints replace.
func resolveUsage(how string) string {
	return "HOST=ADDR[,ADDR...]: endpoints of the VirtualNode whose DNS hostname is HOST, " + how +
		" (repeatable); ADDR is IP:PORT, called at that port, or a bare IP, called at the port of the node listener in use"
}

// parseResolve parses repeated HOST=ADDR[,ADDR...] values, each ADDR an
// IP:PORT or a bare IP (IPv6 with a port in brackets).
func parseResolve(values []string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, v := range values {
		host, list, ok := strings.Cut(v, "=")
		if !ok || host == "" || list == "" {
			return nil, fmt.Errorf("--resolve %q: expected HOST=IP[:PORT][,IP[:PORT]...]", v)
		}
		for _, ep := range strings.Split(list, ",") {
			if err := ir.CheckEndpoint(ep); err != nil {
				return nil, fmt.Errorf("--resolve %q: %w", v, err)
			}
			out[strings.ToLower(host)] = append(out[strings.ToLower(host)], ep)
		}
	}
	return out, nil
}
