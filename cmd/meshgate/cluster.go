//go:build !standalone

package main

import "github.com/spf13/cobra"

// clusterCommands are the commands that need the Kubernetes client or the
// xDS server, which a standalone build (standalone.go) leaves out.
func clusterCommands() []*cobra.Command {
	return []*cobra.Command{newControllerCommand(), newXDSCommand(), newBootstrapCommand()}
}
