//go:build !standalone

package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/meshgate/meshgate/internal/runner"
	"github.com/meshgate/meshgate/internal/source/kube"
	"github.com/meshgate/meshgate/internal/xds"
	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

func newControllerCommand() *cobra.Command {
	var kf kubeFlags
	var o controllerOptions
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Write App Mesh status (observedGeneration and the <Kind>Active condition) on every object, as the elected leader",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := kf.restConfig()
			if err != nil {
				return fmt.Errorf("kubernetes client configuration: %w", err)
			}
			o.restConfig = cfg
			o.source = kube.Options{ClusterDomain: kf.clusterDomain}
			if o.leaderElectionNamespace == "" {
				o.leaderElectionNamespace = podNamespace()
			}
			return runController(cmd.Context(), o)
		},
	}
	kf.registerClient(cmd)
	cmd.Flags().StringVar(&o.leaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election Lease; default: the pod's namespace (POD_NAMESPACE, or the service account's)")
	cmd.Flags().StringVar(&o.leaderElectionID, "leader-election-id", "meshgate-controller", "name of the leader election Lease")
	cmd.Flags().StringVar(&o.healthAddr, "health-address", ":8081", "address of /healthz and /readyz; 0 disables them")
	cmd.Flags().StringVar(&o.xdsAddr, "xds-address", "", "serve the cluster's gateways and nodes to Envoy over ADS on this address (HOST:PORT or unix:///PATH); every replica serves, leader or not")
	return cmd
}

type controllerOptions struct {
	restConfig                                *rest.Config
	source                                    kube.Options
	leaderElectionNamespace, leaderElectionID string
	healthAddr                                string
	// xdsAddr, when set, is where every replica serves xDS.
	xdsAddr string
	// leaseDuration, renewDeadline and retryPeriod default to
	// controller-runtime's (15s, 10s, 2s).
	leaseDuration, renewDeadline, retryPeriod time.Duration
	// writer, when set, receives the status writer before the manager
	// starts (tests read its write count).
	writer func(*kube.StatusWriter)
	// elected, when set, is called once this replica leads.
	elected func()
}

// runController runs the status writer under leader election, and with
// xdsAddr the xDS server on every replica, until ctx is done or
// SIGINT/SIGTERM arrives. Every replica keeps an up-to-date view of
// the cluster, so a new leader writes at once.
func runController(ctx context.Context, o controllerOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if o.leaderElectionNamespace == "" {
		return fmt.Errorf("no namespace for the leader election Lease: give --leader-election-namespace")
	}
	mo := manager.Options{
		Scheme:                        kube.Scheme(),
		Cache:                         kube.CacheOptions(),
		Metrics:                       metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:        o.healthAddr,
		LeaderElection:                true,
		LeaderElectionID:              o.leaderElectionID,
		LeaderElectionNamespace:       o.leaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
	}
	if o.leaseDuration > 0 {
		mo.LeaseDuration, mo.RenewDeadline, mo.RetryPeriod = &o.leaseDuration, &o.renewDeadline, &o.retryPeriod
	}
	mgr, err := ctrl.NewManager(o.restConfig, mo)
	if err != nil {
		return err
	}
	if o.healthAddr != "0" && o.healthAddr != "" {
		if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
			return err
		}
		if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
			return err
		}
	}
	log := slog.Default()
	writer := kube.NewStatusWriter(mgr.GetClient(), log)
	if o.writer != nil {
		o.writer(writer)
	}
	update := writer.Update
	if o.xdsAddr != "" {
		srv := xds.NewServer(xds.Options{Logger: log})
		l, err := listenXDS(o.xdsAddr)
		if err != nil {
			return fmt.Errorf("xds address: %w", err)
		}
		// Through a runner, as in `meshgate xds`: an object whose latest
		// version is invalid keeps its last good one on the Envoys.
		run := runner.New(runner.Options{AllGateways: true, Sink: &xdsSink{srv: srv, log: log}, Logger: log})
		update = func(s *kube.Snapshot) {
			writer.Update(s)
			run.Update(s.Set)
		}
		if err := mgr.Add(everyReplica(func(ctx context.Context) error { return srv.Serve(ctx, l) })); err != nil {
			return err
		}
	}
	src := kube.New(mgr.GetCache(), o.source)
	if err := mgr.Add(everyReplica(func(ctx context.Context) error { return src.Run(ctx, update) })); err != nil {
		return err
	}
	if err := mgr.Add(writer); err != nil {
		return err
	}
	if o.elected != nil {
		go func() {
			select {
			case <-mgr.Elected():
				o.elected()
			case <-ctx.Done():
			}
		}()
	}
	log.Info("controller starting", "lease", o.leaderElectionNamespace+"/"+o.leaderElectionID)
	return mgr.Start(ctx)
}

// everyReplica is a runnable that runs whether or not this replica leads.
type everyReplica func(ctx context.Context) error

func (f everyReplica) Start(ctx context.Context) error { return f(ctx) }
func (f everyReplica) NeedLeaderElection() bool        { return false }

// podNamespace is the namespace the process runs in, when it runs in a pod.
func podNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil {
		return strings.TrimSpace(string(b))
	}
	return ""
}
