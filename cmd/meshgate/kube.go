//go:build !standalone

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/go-logr/logr"
	"github.com/meshgate/meshgate/internal/resource"
	"github.com/meshgate/meshgate/internal/source/kube"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
)

// restConfig loads the client configuration the way kubectl and controllers do.
func (f *kubeFlags) restConfig() (*rest.Config, error) {
	if f.kubeconfig != "" {
		return clientcmd.BuildConfigFromFlags("", f.kubeconfig)
	}
	return ctrl.GetConfig()
}

// client-go's and controller-runtime's logs go to the process logger, so that
// one --log-level governs everything. Their loggers are process-wide and not
// safe to swap while clients run, so they are set once, before any client
// exists, to a handler that follows slog.Default.
func init() {
	l := logr.FromSlogHandler(followDefault{})
	ctrl.SetLogger(l)
	klog.SetLogger(l)
}

// followDefault is a slog.Handler that hands every record to the handler of
// slog.Default at the time of the record.
type followDefault struct {
	ops []func(slog.Handler) slog.Handler
}

func (h followDefault) current() slog.Handler {
	cur := slog.Default().Handler()
	for _, op := range h.ops {
		cur = op(cur)
	}
	return cur
}

func (h followDefault) Enabled(ctx context.Context, l slog.Level) bool {
	return slog.Default().Handler().Enabled(ctx, l)
}

func (h followDefault) Handle(ctx context.Context, r slog.Record) error {
	return h.current().Handle(ctx, r)
}

func (h followDefault) WithAttrs(attrs []slog.Attr) slog.Handler {
	return followDefault{ops: append(slices.Clip(h.ops), func(x slog.Handler) slog.Handler { return x.WithAttrs(attrs) })}
}

func (h followDefault) WithGroup(name string) slog.Handler {
	return followDefault{ops: append(slices.Clip(h.ops), func(x slog.Handler) slog.Handler { return x.WithGroup(name) })}
}

// serveKubernetes runs `serve --kubernetes`: the gateway replica of a
// Deployment. Each replica watches the cluster and serves on its own; it
// writes nothing to the API server and is ready once its first configuration
// is active. base carries the listener, admin and secret settings shared
// with file mode.
func serveKubernetes(ctx context.Context, kf kubeFlags, in inputFlags, base serveOptions) error {
	if len(in.files) > 0 {
		return errors.New("--kubernetes reads the cluster; drop -f")
	}
	if in.gateway == "" || strings.Count(in.gateway, "/") != 1 {
		return errors.New("--kubernetes needs --gateway NAMESPACE/NAME: the VirtualGateway this replica serves")
	}
	eps, err := parseResolve(in.resolve)
	if err != nil {
		return err
	}
	cfg, err := kf.restConfig()
	if err != nil {
		return fmt.Errorf("kubernetes client configuration: %w", err)
	}
	base.endpoints = eps
	base.gateway = in.gateway
	base.source = kubeSource(cfg, kube.Options{ClusterDomain: kf.clusterDomain})
	return serve(ctx, base)
}

// kubeSource adapts kube.Watch to serveOptions.source.
func kubeSource(cfg *rest.Config, opts kube.Options) func(context.Context, func(*resource.Set)) {
	return func(ctx context.Context, update func(*resource.Set)) {
		err := kube.Watch(ctx, cfg, opts, func(s *kube.Snapshot) { update(s.Set) })
		if err != nil && ctx.Err() == nil {
			slog.Error("kubernetes source stopped; the current configuration keeps serving without updates", "err", err)
		}
	}
}
