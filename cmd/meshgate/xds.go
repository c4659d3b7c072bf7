//go:build !standalone

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/meshgate/meshgate/internal/admin"
	"github.com/meshgate/meshgate/internal/ir"
	"github.com/meshgate/meshgate/internal/resource"
	"github.com/meshgate/meshgate/internal/runner"
	"github.com/meshgate/meshgate/internal/source/file"
	"github.com/meshgate/meshgate/internal/xds"
	"github.com/spf13/cobra"
)

func newXDSCommand() *cobra.Command {
	var in inputFlags
	var xdsAddr, adminAddr string
	cmd := &cobra.Command{
		Use:   "xds -f PATH...",
		Short: "Serve manifests to Envoys and proxyless gRPC clients over xDS (ADS), reloading them when they change",
		Long: `Serve every VirtualGateway and VirtualNode of the manifests over the
Envoy xDS aggregated discovery service (state of the world, v3). Clients are
keyed by the node id the App Mesh Envoy image sends:
mesh/<mesh>/virtualGateway/<name> or mesh/<mesh>/virtualNode/<name> (full ARNs
too), where <name> is the default awsName <name>_<namespace> or
<namespace>/<name>. --xds-address unix:///path serves on a Unix socket.
When an edit makes an object invalid, that object keeps its last good
version (as with serve) and the rest of the edit is served.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			set, eps, err := in.load()
			if err != nil {
				return err
			}
			return serveXDS(cmd.Context(), xdsOptions{set: set, endpoints: eps, watch: in.files, xdsAddr: xdsAddr, adminAddr: adminAddr})
		},
	}
	cmd.Flags().StringArrayVarP(&in.files, "filename", "f", nil, "manifest file or directory (repeatable; directories are read recursively)")
	cmd.Flags().StringArrayVar(&in.resolve, "resolve", nil, resolveUsage("served over EDS instead of DNS"))
	cmd.Flags().StringVar(&xdsAddr, "xds-address", "127.0.0.1:18000", "address of the ADS gRPC server: HOST:PORT or unix:///PATH")
	cmd.Flags().StringVar(&adminAddr, "admin-address", "127.0.0.1:9901", "address of /ready, /metrics and /config")
	return cmd
}

type xdsOptions struct {
	set                *resource.Set
	endpoints          map[string][]string
	watch              []string
	xdsAddr, adminAddr string
	// started is called once both servers listen.
	started func(xdsAddr, adminAddr string)
}

// xdsSink publishes what the runner applies. Snapshots that fail keep
// their previous version while the others go live, so only a config that
// fails validation as a whole counts as not applied.
type xdsSink struct {
	srv *xds.Server
	log *slog.Logger

	mu      sync.Mutex
	lastErr string // the latest publish's snapshot errors
}

func (s *xdsSink) Apply(cfg *ir.Config, _ string) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	err := s.srv.Publish(cfg)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastErr = ""
	if err != nil {
		s.lastErr = err.Error()
		s.log.Error("some xDS snapshots were not published; their clients keep the previous ones", "err", err)
	}
	return nil
}

// state is what /config shows: the config last published, its problems
// and statuses (with objects kept in their last good version marked), and
// the errors of the latest update.
func (s *xdsSink) state(run *runner.Runner) any {
	st := run.Snapshot()
	if st == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	lastErr := st.LastError
	if s.lastErr != "" {
		lastErr = strings.TrimPrefix(lastErr+"; "+s.lastErr, "; ")
	}
	return map[string]any{"appliedAt": st.AppliedAt, "config": st.Config, "problems": st.Problems, "lastError": lastErr}
}

func listenXDS(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix://"); ok {
		// A socket left by a previous run would make the bind fail.
		if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
			os.Remove(path)
		}
		return net.Listen("unix", path)
	}
	return net.Listen("tcp", addr)
}

func serveXDS(ctx context.Context, o xdsOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := slog.Default()
	reg := newRegistry()
	srv := xds.NewServer(xds.Options{Logger: log, Registry: reg})
	sink := &xdsSink{srv: srv, log: log}
	run := runner.New(runner.Options{AllGateways: true, Endpoints: o.endpoints, Sink: sink, Registry: reg, Logger: log})
	update := func(set *resource.Set) {
		// The runner logs a failed update; clients keep what they have.
		run.Update(set)
	}
	update(o.set)

	l, err := listenXDS(o.xdsAddr)
	if err != nil {
		return fmt.Errorf("xds address: %w", err)
	}
	adm, err := admin.Listen(o.adminAddr, admin.Sources{
		Ready:    func() bool { return true },
		Config:   func() any { return sink.state(run) },
		Gatherer: reg,
	}, log)
	if err != nil {
		l.Close()
		return fmt.Errorf("admin address: %w", err)
	}
	if len(o.watch) > 0 {
		go file.Watch(ctx, o.watch, func(set *resource.Set, err error) {
			if err != nil {
				log.Error("reading manifests failed; the previous configuration keeps serving", "err", err)
				return
			}
			update(set)
		})
	}
	log.Info("serving xDS", "address", l.Addr().String(), "admin", adm.Addr().String())
	if o.started != nil {
		o.started(l.Addr().String(), adm.Addr().String())
	}
	err = srv.Serve(ctx, l)
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	adm.Shutdown(sctx)
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
