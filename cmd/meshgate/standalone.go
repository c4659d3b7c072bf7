//go:build standalone

package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

// A standalone build (go build -tags standalone) serves from manifest files
// only. It leaves out the Kubernetes client, controller-runtime and the xDS
// server, whose packages are most of the binary and of its resident memory,
// and answers for the commands and the flag that need them with
// errNotBuiltIn.

var errNotBuiltIn = errors.New("this meshgate is a standalone build (-tags standalone), which serves from manifest files only; build it without the tag for Kubernetes and xDS")

func clusterCommands() []*cobra.Command {
	var cmds []*cobra.Command
	for _, name := range []string{"controller", "xds", "bootstrap"} {
		cmds = append(cmds, &cobra.Command{
			Use:                name,
			Short:              "not in a standalone build",
			Hidden:             true,
			DisableFlagParsing: true,
			RunE: func(cmd *cobra.Command, args []string) error {
				return fmt.Errorf("%s: %w", name, errNotBuiltIn)
			},
		})
	}
	return cmds
}

func serveKubernetes(context.Context, kubeFlags, inputFlags, serveOptions) error {
	return fmt.Errorf("--kubernetes: %w", errNotBuiltIn)
}
