package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/meshgate/meshgate/internal/compile"
	"github.com/meshgate/meshgate/internal/ir"
	"github.com/meshgate/meshgate/internal/router"
	"github.com/spf13/cobra"
)

func newRouteCommand() *cobra.Command {
	var in inputFlags
	var headers []string
	var method, output string
	var port int
	cmd := &cobra.Command{
		Use:   "route -f PATH... [-H 'Name: value'] [-X METHOD] URL",
		Short: "Explain which GatewayRoute, VirtualService, Route and VirtualNode would serve a request",
		Long: `Explain how the gateway would route one request: every candidate GatewayRoute in the
order they are tried and why each did or did not match, then the VirtualService, the
VirtualRouter route and the weighted VirtualNodes behind the chosen one, and the request
as it would be forwarded. Exit 1 when no GatewayRoute matches or the match cannot be
served (503).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("-o %q: expected text or json", output)
			}
			req, err := buildRequest(args[0], method, headers)
			if err != nil {
				return err
			}
			set, _, err := in.load()
			if err != nil {
				return err
			}
			cfg, _ := compile.Compile(set)
			gw, err := cfg.SelectGateway(in.gateway)
			if err != nil {
				return err
			}
			if req.Port, err = listenerPort(gw, port, args[0]); err != nil {
				return err
			}
			table, err := router.New(cfg, gw.Name)
			if err != nil {
				return err
			}
			ex := table.Explain(req)
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(routeReport{Gateway: gw.Name, Port: req.Port, Explanation: ex, Forwarded: forwardedURL(req, ex.Decision)}); err != nil {
					return err
				}
			} else {
				printExplanation(cmd.OutOrStdout(), cfg, gw, req, ex)
			}
			if ex.Decision.Status != 0 {
				return exitError{1}
			}
			return nil
		},
	}
	in.register(cmd)
	cmd.Flags().StringArrayVarP(&headers, "header", "H", nil, "request header 'Name: value' (repeatable)")
	cmd.Flags().StringVarP(&method, "request", "X", "GET", "request method")
	cmd.Flags().IntVar(&port, "port", 0, "gateway listener port the request arrives on (default: the URL's port, else the gateway's only listener)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

// routeReport is the JSON form of `route -o json`.
type routeReport struct {
	Gateway     string `json:"gateway"`
	Port        int    `json:"port"`
	Forwarded   string `json:"forwarded,omitempty"`
	Explanation router.Explanation
}

func buildRequest(rawURL, method string, headers []string) (*router.Request, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%q is not an absolute URL such as http://api.example.com/backend/items", rawURL)
	}
	h := http.Header{}
	for _, kv := range headers {
		name, value, ok := strings.Cut(kv, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("-H %q: expected 'Name: value'", kv)
		}
		h.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	host := u.Host
	if hh := h.Get("Host"); hh != "" {
		host = hh
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return &router.Request{Method: strings.ToUpper(method), Host: host, Path: path, RawQuery: u.RawQuery, Scheme: u.Scheme, Header: h}, nil
}

// listenerPort is the --port flag, else the URL's port, else the only listener.
func listenerPort(gw *ir.Gateway, flag int, rawURL string) (int, error) {
	if flag != 0 {
		return flag, nil
	}
	if u, err := url.Parse(rawURL); err == nil && u.Port() != "" {
		for _, l := range gw.Listeners {
			if strconv.Itoa(l.Port) == u.Port() {
				return l.Port, nil
			}
		}
	}
	if len(gw.Listeners) == 1 {
		return gw.Listeners[0].Port, nil
	}
	var ports []string
	for _, l := range gw.Listeners {
		ports = append(ports, strconv.Itoa(l.Port))
	}
	return 0, fmt.Errorf("VirtualGateway %s listens on %s; say which with --port", gw.Name, strings.Join(ports, ", "))
}

func forwardedURL(req *router.Request, d router.Decision) string {
	if d.Status != 0 {
		return ""
	}
	u := url.URL{Scheme: "http", Host: d.Host, Opaque: d.Path, RawQuery: req.RawQuery}
	return req.Method + " " + u.String()
}

func mark(ok bool) string {
	if ok {
		return "match"
	}
	return "no"
}

func printExplanation(w io.Writer, cfg *ir.Config, gw *ir.Gateway, req *router.Request, ex router.Explanation) {
	d := ex.Decision
	fmt.Fprintf(w, "request   %s %s (host %q, path %q)\n", req.Method, req.Host+req.Path+querySuffix(req.RawQuery), ex.Host, ex.Path)
	fmt.Fprintf(w, "listener  %s port %d\n\n", gw.Name, req.Port)
	fmt.Fprintln(w, "candidates, in the order tried:")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, s := range ex.Steps {
		prio := strconv.Itoa(s.Priority)
		if s.Priority > 1000 {
			prio = "unset"
		}
		fmt.Fprintf(tw, "  %s\t%s %s\t%s\tpriority %s\n", mark(s.Matched), kindLabel(s.Kind), s.Name, s.Group, prio)
		for _, c := range s.Checks {
			fmt.Fprintf(tw, "      %s\t%s\tgot %s\t\n", mark(c.Matched), c.Criterion, c.Value)
		}
	}
	tw.Flush()
	for _, n := range ex.Notes {
		fmt.Fprintln(w, "  note:", n)
	}
	fmt.Fprintln(w)
	switch d.Status {
	case http.StatusNotFound:
		fmt.Fprintf(w, "result    404: %s\n", orDefault(d.Reason, "no gateway route matched"))
		return
	case 0:
	default:
		fmt.Fprintf(w, "result    %d: %s\n", d.Status, d.Reason)
	}
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	if d.GatewayRoute != nil {
		fmt.Fprintf(tw, "gateway route\t%s\n", d.GatewayRoute.Name)
	}
	if d.Service != nil {
		fmt.Fprintf(tw, "virtual service\t%s (hostname %s)\n", d.Service.Name, d.Service.Hostname)
	}
	if d.Router != nil {
		fmt.Fprintf(tw, "virtual router\t%s\n", d.Router.Name)
	}
	if d.Route != nil {
		fmt.Fprintf(tw, "route\t%s\n", d.Route.Name)
	}
	total := 0
	for _, t := range d.Targets {
		total += t.Weight
	}
	targets := append([]ir.WeightedTarget(nil), d.Targets...)
	sort.SliceStable(targets, func(i, j int) bool { return targets[i].Weight > targets[j].Weight })
	for _, t := range targets {
		share := 100.0
		if total > 0 {
			share = 100 * float64(t.Weight) / float64(total)
		}
		fmt.Fprintf(tw, "virtual node\t%s\t%.0f%%\t%s\n", t.Node, share, endpointsOf(cfg, t))
	}
	if d.Status == 0 {
		fmt.Fprintf(tw, "forwarded as\t%s\n", forwardedURL(req, d))
	}
	tw.Flush()
}

func kindLabel(k string) string {
	if k == "route" {
		return "route"
	}
	return "gateway route"
}

func querySuffix(q string) string {
	if q == "" {
		return ""
	}
	return "?" + q
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// endpointsOf says where a target's traffic would go.
func endpointsOf(cfg *ir.Config, t ir.WeightedTarget) string {
	n, ok := cfg.Nodes[t.Node]
	if !ok {
		return "(not found: 503)"
	}
	port := t.Port
	if port == 0 && len(n.Listeners) > 0 {
		port = n.Listeners[0].Port
	}
	if len(n.Endpoints) > 0 {
		return "endpoints " + strings.Join(n.EndpointsAt(port), ", ")
	}
	if n.Hostname == "" {
		return "(no endpoints: give --resolve)"
	}
	return "DNS " + net.JoinHostPort(n.Hostname, strconv.Itoa(port))
}
