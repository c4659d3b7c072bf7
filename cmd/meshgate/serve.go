package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/signal"
	"syscall"
	"time"

	"github.com/meshgate/meshgate/internal/admin"
	"github.com/meshgate/meshgate/internal/dataplane"
	"github.com/meshgate/meshgate/internal/resource"
	"github.com/meshgate/meshgate/internal/runner"
	"github.com/meshgate/meshgate/internal/source/file"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
)

// drainTimeout bounds how long SIGTERM waits for in-flight requests.
const drainTimeout = 30 * time.Second

func newServeCommand() *cobra.Command {
	var in inputFlags
	var kf kubeFlags
	var listenAddr, adminAddr, sdsDir string
	cmd := &cobra.Command{
		Use:   "serve -f PATH...",
		Short: "Serve a VirtualGateway from manifests, reloading them when they change",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if kf.enabled {
				return serveKubernetes(cmd.Context(), kf, in, serveOptions{listenAddr: listenAddr, adminAddr: adminAddr, sdsDir: sdsDir})
			}
			set, eps, err := in.load()
			if err != nil {
				return err
			}
			for _, s := range set.Skipped {
				slog.Info("skipped", "document", s)
			}
			return serve(cmd.Context(), serveOptions{
				set:        set,
				endpoints:  eps,
				gateway:    in.gateway,
				listenAddr: listenAddr,
				sdsDir:     sdsDir,
				adminAddr:  adminAddr,
				watch:      in.files,
			})
		},
	}
	in.register(cmd)
	kf.register(cmd)
	cmd.Flags().StringVar(&listenAddr, "listen-address", "0.0.0.0", "IP address the VirtualGateway listeners bind; each binds its portMapping.port")
	cmd.Flags().StringVar(&adminAddr, "admin-address", "127.0.0.1:9901", "address of /ready, /metrics and /config")
	cmd.Flags().StringVar(&sdsDir, "sds-dir", "", "directory of the secrets sds.secretName names: NAME/cert.pem and NAME/key.pem (certificates), NAME/ca.pem (trust)")
	return cmd
}

type serveOptions struct {
	set        *resource.Set
	endpoints  map[string][]string
	gateway    string
	listenAddr string
	sdsDir     string // where sds.secretName secrets are read as files
	adminAddr  string
	// watch are the paths reloaded on change; none for the embedded demo.
	watch []string
	// source, when set, feeds every new set to the runner until ctx is
	// done (the Kubernetes source); set may then be nil, and the gateway is
	// ready once the first set compiles.
	source func(ctx context.Context, update func(*resource.Set))
	// started is called once the gateway serves and the admin endpoint is up.
	started func(adminAddr string)
}

// serve runs the gateway until ctx is done or SIGINT/SIGTERM arrives, then
// drains in-flight requests.
func serve(ctx context.Context, o serveOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := slog.Default()

	reg := newRegistry()
	plane, err := dataplane.New(dataplane.Options{ListenAddress: o.listenAddr, Logger: log, Registry: reg, SDSDir: o.sdsDir})
	if err != nil {
		return err
	}
	run := runner.New(runner.Options{Gateway: o.gateway, Endpoints: o.endpoints, Sink: plane, Registry: reg, Logger: log})
	if o.set != nil {
		if err := run.Update(o.set); err != nil {
			return err
		}
	}
	adm, err := admin.Listen(o.adminAddr, admin.Sources{
		Ready:    plane.Ready,
		Config:   func() any { return run.Snapshot() },
		Gatherer: reg,
	}, log)
	if err != nil {
		shutdownPlane(plane)
		return fmt.Errorf("admin address: %w", err)
	}
	gwName := o.gateway
	if s := run.Snapshot(); s != nil {
		gwName = s.Gateway
	}
	log.Info("serving", "gateway", gwName, "admin", adm.Addr().String())
	if len(o.watch) > 0 {
		go file.Watch(ctx, o.watch, func(set *resource.Set, err error) {
			if err != nil {
				log.Error("reading manifests failed; the previous configuration keeps serving", "err", err)
				return
			}
			run.Update(set)
		})
	}
	if o.source != nil {
		go o.source(ctx, func(set *resource.Set) { run.Update(set) })
	}
	if o.started != nil {
		o.started(adm.Addr().String())
	}
	<-ctx.Done()
	log.Info("shutting down: draining in-flight requests")
	err = shutdownPlane(plane)
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	adm.Shutdown(sctx)
	return err
}

// newRegistry is the metrics registry of a long-running command: its own
// metrics plus the Go runtime's and the process's.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

func shutdownPlane(p *dataplane.Plane) error {
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
