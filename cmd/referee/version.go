package main

import (
	"context"
	"fmt"
	"io"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/referee-project/referee/pipeline/videoio"
)

// versionOptions configures "referee version".
type versionOptions struct {
	Out io.Writer
}

func newVersionCmd(a *app) *cobra.Command {
	var opts versionOptions
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of referee, of Go and of OpenCV it was built with",
		Long: `version prints the release of this referee binary, the Go release it was
built with and the OpenCV library it runs on: the line a bug report needs.
"referee --version" prints the same line.`,
		Args: exactArgs(0, "none"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Out = a.streams.Out
			return runVersion(cmd.Context(), opts)
		},
	}
}

func runVersion(_ context.Context, opts versionOptions) error {
	_, err := io.WriteString(opts.Out, versionLine())
	return err
}

// versionLine is what "referee version" and "referee --version" print.
func versionLine() string {
	return fmt.Sprintf("referee %s (%s %s/%s, OpenCV %s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH, videoio.OpenCVVersion())
}
