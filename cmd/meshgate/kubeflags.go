package main

import "github.com/spf13/cobra"

// kubeFlags are the flags of the commands that read a cluster.
type kubeFlags struct {
	enabled       bool
	kubeconfig    string
	clusterDomain string
}

func (f *kubeFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.enabled, "kubernetes", false, "read the App Mesh objects, Services and EndpointSlices from the cluster instead of -f (needs --gateway NAMESPACE/NAME)")
	f.registerClient(cmd)
}

func (f *kubeFlags) registerClient(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file; default: in-cluster config, then $KUBECONFIG, then ~/.kube/config")
	cmd.Flags().StringVar(&f.clusterDomain, "cluster-domain", "cluster.local", "DNS domain of the cluster: a VirtualNode hostname <svc>.<ns>.svc.DOMAIN is served from that Service's EndpointSlices")
}
