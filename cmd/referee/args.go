package main

import (
	"errors"
	"strings"

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

// noArgs is cobra.NoArgs with a message that shows the arguments given
// and an exit status of 2.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("%s takes no arguments, got %q (see %s --help)", cmd.Name(), args, cmd.CommandPath())
	}
	return nil
}

// maxArgs is cobra.MaximumNArgs with a message that names the arguments
// taken and an exit status of 2.
func maxArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return usageErrorf("%s takes at most %d argument(s), %s; got %d: %s (see %s --help)", cmd.Name(), n, what, len(args), strings.Join(args, " "), cmd.CommandPath())
		}
		return nil
	}
}

// unknownCommand is the root's argument check: anything left once cobra
// has looked for a subcommand is a command that does not exist.
func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	hint := ""
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		hint = "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return usageErrorf("unknown command %q%s (see %s --help for the commands)", args[0], hint, cmd.CommandPath())
}

// usageArgs makes every argument check under cmd, cobra's own included
// (help, completion), exit with status 2, as the exit-status table says of
// every usage error.
func usageArgs(cmd *cobra.Command) {
	if check := cmd.Args; check != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			err := check(c, args)
			var e *exitError
			if err == nil || errors.As(err, &e) {
				return err
			}
			return withExit(exitUsage, err)
		}
	}
	for _, c := range cmd.Commands() {
		usageArgs(c)
	}
}
