package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// manOptions configures the hidden "referee man", which "make man" runs.
type manOptions struct {
	Dir  string
	Root *cobra.Command
	Out  io.Writer
}

func newManCmd(a *app) *cobra.Command {
	var opts manOptions
	return &cobra.Command{
		Use:    "man DIR",
		Short:  "Write the man pages of referee and its subcommands into DIR",
		Long:   `man writes referee.1 and one referee-<command>.1 per subcommand into DIR (created if missing), from the same text as --help.`,
		Hidden: true,
		Args:   exactArgs(1, "the directory to write the pages into"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Dir = args[0]
			opts.Root = cmd.Root()
			opts.Out = a.streams.Out
			return runMan(cmd.Context(), opts)
		},
	}
}

func runMan(_ context.Context, opts manOptions) error {
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return usageErrorf("create the man page directory: %w", err)
	}
	header := &doc.GenManHeader{Title: "REFEREE", Section: "1", Source: "referee " + version, Manual: "referee manual"}
	// The pages are generated, not run: "man" itself is hidden and so
	// has none.
	opts.Root.DisableAutoGenTag = true
	if err := doc.GenManTree(opts.Root, header, opts.Dir); err != nil {
		return fmt.Errorf("write the man pages into %s: %w (check that it is writable)", opts.Dir, err)
	}
	_, err := fmt.Fprintf(opts.Out, "Man pages written to %s\n", opts.Dir)
	return err
}
