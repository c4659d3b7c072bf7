package main

import (
	"fmt"

	"github.com/meshgate/meshgate/internal/compile"
	"github.com/spf13/cobra"
)

func newCheckCommand() *cobra.Command {
	var in inputFlags
	var sdsDir string
	cmd := &cobra.Command{
		Use:   "check -f PATH...",
		Short: "Validate manifests; exit 0 when clean, 1 with errors",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			set, _, err := in.load()
			if err != nil {
				return err
			}
			for _, s := range set.Skipped {
				fmt.Fprintln(cmd.ErrOrStderr(), "info:", s)
			}
			cfg, problems := compile.Compile(set)
			problems = append(problems, compile.CheckFiles(set, cfg, sdsDir)...)
			for _, p := range problems {
				fmt.Fprintln(cmd.OutOrStdout(), p.String())
			}
			for _, st := range cfg.Statuses {
				if st.Active && st.Message != "" {
					fmt.Fprintf(cmd.ErrOrStderr(), "note: %s:%d: %s %s: %s\n", st.File, st.Line, st.Kind, qualified(st.Namespace, st.Name), st.Message)
				}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%d objects, %d problems\n", len(cfg.Statuses), len(problems))
			if len(problems) > 0 {
				return exitError{1}
			}
			return nil
		},
	}
	in.register(cmd)
	cmd.Flags().StringVar(&sdsDir, "sds-dir", "", "directory of the secrets sds.secretName names (NAME/cert.pem, NAME/key.pem, NAME/ca.pem); without it they are not checked")
	return cmd
}

func qualified(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}
