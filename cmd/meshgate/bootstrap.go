//go:build !standalone

package main

import (
	"fmt"

	"github.com/meshgate/meshgate/internal/xds"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"
)

func newBootstrapCommand() *cobra.Command {
	var o xds.BootstrapOptions
	var output string
	cmd := &cobra.Command{
		Use:   "bootstrap --node mesh/MESH/virtualGateway/NAME",
		Short: "Print an upstream Envoy bootstrap that takes its configuration from meshgate xds",
		Long: `Print the Envoy v3 bootstrap of an App Mesh VirtualGateway or VirtualNode Envoy
served by 'meshgate xds': state-of-the-world ADS over gRPC to --xds-address
(HOST:PORT or unix:///PATH), listeners and clusters over ADS. The
aws-appmesh-envoy image does not need it: set APPMESH_XDS_ENDPOINT instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := xds.Bootstrap(o)
			if err != nil {
				return err
			}
			out, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(b)
			if err != nil {
				return err
			}
			switch output {
			case "json":
			case "yaml":
				if out, err = yaml.JSONToYAML(out); err != nil {
					return err
				}
			default:
				return fmt.Errorf("--output %q: want yaml or json", output)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", out)
			return err
		},
	}
	cmd.Flags().StringVar(&o.NodeID, "node", "", "App Mesh node id: mesh/MESH/virtualGateway/NAME or mesh/MESH/virtualNode/NAME (NAME is NAME_NAMESPACE or NAMESPACE/NAME), or its ARN")
	cmd.Flags().StringVar(&o.Cluster, "cluster", "", "node.cluster (default: the node id)")
	cmd.Flags().StringVar(&o.XDSAddress, "xds-address", "127.0.0.1:18000", "meshgate xds address: HOST:PORT or unix:///PATH")
	cmd.Flags().StringVar(&o.AdminAddress, "envoy-admin-address", "127.0.0.1:9901", "Envoy admin HOST:PORT; empty disables it")
	cmd.Flags().StringVar(&o.SDSSocket, "sds-socket", "", "Unix socket of the local SDS server for sds.secretName (APPMESH_SDS_SOCKET_PATH)")
	cmd.Flags().StringVarP(&output, "output", "o", "yaml", "yaml or json")
	cmd.MarkFlagRequired("node")
	return cmd
}
