package main

import (
	"github.com/spf13/cobra"
)

// exactArgs is cobra.ExactArgs with a message that names the missing
// argument and an exit status of 2.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("%s takes %d argument(s), %s; got %d (see %s --help)", cmd.Name(), n, what, len(args), cmd.CommandPath())
		}
		return nil
	}
}
