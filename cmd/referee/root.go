package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/referee-project/referee/pipeline/videoio"
)

// version is the release this binary reports; the Makefile may override it
// with -ldflags "-X main.version=...".
var version = "0.1.0"

// app holds what every subcommand shares: the streams, the global flags and
// the logger built from them once the configuration is resolved.
type app struct {
	streams    streams
	configFile string
	logLevel   string
	logFormat  string
	verbose    bool
	logger     *slog.Logger
	// getenv reads the environment (os.Getenv; a map in tests).
	getenv func(string) string
}

// execute runs the referee command line with args and returns the process's
// exit status. It is the one place where errors become statuses.
func execute(args []string, s streams) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a := &app{streams: s, getenv: os.Getenv}
	root := newRootCmd(a)
	root.SetArgs(args)
	root.SetIn(s.In)
	root.SetOut(s.Out)
	root.SetErr(s.Err)
	err := root.ExecuteContext(ctx)
	if err != nil {
		fmt.Fprintf(s.Err, "referee: %v\n", err)
	}
	return exitCode(err)
}

func newRootCmd(a *app) *cobra.Command {
	if a.getenv == nil {
		a.getenv = os.Getenv
	}
	root := &cobra.Command{
		Use:   "referee",
		Short: "Stream fencing phrases to a referee service and get the verdict back",
		Long: `referee carries fencing phrases from the strip to a referee service.

A capture box records each phrase (one exchange, from "fence!" to the touch)
with a camera while the electric scoring box writes a log of lights, blade
contacts and lockout: the signal. "referee stream" sends the frames live to
"referee serve" and the signal when the phrase ends; the server rebuilds the
video, analyses the phrase and answers with who scored and why.

Every flag can also be set in the environment as REFEREE_<FLAG> (dashes
become underscores, e.g. REFEREE_LOG_LEVEL=debug) or in a YAML
configuration file: the global flags at its top level, a subcommand's flags
under the subcommand's name (serve: {port: 8080}). The file is --config
FILE, else $REFEREE_CONFIG, else the first of ./referee.yaml,
$XDG_CONFIG_HOME/referee/config.yaml (~/.config/referee/config.yaml) and
/etc/referee/config.yaml that exists; the end of every --help says which.
A key no flag reads is refused, with the nearest known one. A flag on the
command line wins over the environment, which wins over the file.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			src, err := findConfig(a.configFile, a.getenv)
			if err != nil {
				return err
			}
			if err := resolveConfig(cmd, src.Path); err != nil {
				return err
			}
			logger, err := newLogger(a.streams.Err, a.logLevel, a.logFormat, a.verbose)
			if err != nil {
				return err
			}
			a.logger = logger
			if !a.verbose {
				// OpenCV's and FFmpeg's own warnings would bury the one
				// line that says what failed; --verbose keeps them.
				videoio.Quiet()
			}
			return nil
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.configFile, "config", "", "YAML configuration file (default: $REFEREE_CONFIG, else the first of ./referee.yaml, $XDG_CONFIG_HOME/referee/config.yaml, /etc/referee/config.yaml)")
	pf.StringVar(&a.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	pf.StringVar(&a.logFormat, "log-format", "text", "log format: text (key=value lines) or json (one object per line)")
	pf.BoolVarP(&a.verbose, "verbose", "v", false, "debug logs, and log lines instead of progress bars")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		if !c.HasParent() && len(c.Flags().Args()) > 0 {
			// "referee serv --port 1": the command is what is wrong,
			// not the flag it does not have.
			return unknownCommand(c, c.Flags().Args())
		}
		return withExit(exitUsage, err)
	})
	root.Version = version
	root.SetVersionTemplate(versionLine())
	// Runnable, so that an unknown command reaches unknownCommand instead
	// of cobra's plain error; alone, "referee" shows the help.
	root.Args = unknownCommand
	defaultHelp := root.HelpFunc()
	root.SetHelpFunc(func(c *cobra.Command, args []string) {
		defaultHelp(c, args)
		src, err := findConfig(a.configFile, a.getenv)
		if err != nil {
			fmt.Fprintf(c.OutOrStdout(), "\nConfiguration file: %v\n", err)
			return
		}
		fmt.Fprintf(c.OutOrStdout(), "\n%s\n", src)
	})
	root.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	root.AddCommand(
		newAnalyzeCmd(a),
		newEvalCmd(a),
		newGenTestVideoCmd(a),
		newProbeVideoCmd(a),
		newProbeSignalCmd(a),
		newProbePoseCmd(a),
		newServeCmd(a),
		newWorkerCmd(a),
		newStreamCmd(a),
		newBenchCmd(a),
		newVersionCmd(a),
		newManCmd(a),
	)
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	usageArgs(root)
	registerCompletions(root)
	return root
}

// resolveConfig fills every flag of cmd that was not given on the command
// line from the environment (REFEREE_<FLAG>), then from the
// configuration file (key "<command>.<flag>", then "<flag>" for the global
// flags), after refusing the file's unknown keys. Flags keep
// their defaults when neither has a value, so after this the options structs
// the flags are bound to hold the resolved configuration.
func resolveConfig(cmd *cobra.Command, configFile string) error {
	env := viper.New()
	env.SetEnvPrefix("REFEREE")
	env.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	env.AutomaticEnv()
	file := viper.New()
	if configFile != "" {
		file.SetConfigFile(configFile)
		file.SetConfigType("yaml")
		if err := file.ReadInConfig(); err != nil {
			return usageErrorf("read config file %s: %w (check the path and that it is YAML)", configFile, err)
		}
		if err := checkConfigKeys(cmd.Root(), file, configFile); err != nil {
			return err
		}
	}
	var errs []error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "config" || f.Name == "help" {
			return
		}
		var value any
		var from string
		switch {
		case env.IsSet(f.Name):
			value, from = env.Get(f.Name), "environment variable REFEREE_"+strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		case file.IsSet(cmd.Name() + "." + f.Name):
			value, from = file.Get(cmd.Name()+"."+f.Name), configFile
		case file.IsSet(f.Name):
			value, from = file.Get(f.Name), configFile
		default:
			return
		}
		s := fmt.Sprint(value)
		if list, ok := value.([]any); ok {
			// A YAML list for a list flag such as --allowed-origins.
			parts := make([]string, len(list))
			for i, v := range list {
				parts[i] = fmt.Sprint(v)
			}
			s = strings.Join(parts, ",")
		}
		if f.Value.Type() == "duration" && isNumber(s) {
			s += "s" // the Python service's timeouts are plain seconds
		}
		if err := f.Value.Set(s); err != nil {
			errs = append(errs, badValue(f, from, s, err))
		}
	})
	if len(errs) > 0 {
		return withExit(exitUsage, errors.Join(errs...))
	}
	return nil
}

// badValue words the error of a flag's value s taken from an environment
// variable or the config file (from) for a person: what the flag wants, not
// strconv's words.
func badValue(f *pflag.Flag, from, s string, err error) error {
	want := map[string]string{
		"int": "a whole number", "int64": "a whole number", "uint": "a whole number", "uint64": "a whole number",
		"float64": "a number", "bool": "true or false", "duration": "a duration such as 90, 30s or 5m",
	}[f.Value.Type()]
	if want == "" {
		return fmt.Errorf("--%s from %s: %q: %w", f.Name, from, s, err)
	}
	return &hinted{fmt.Sprintf("--%s from %s: %q is not %s", f.Name, from, s, want), err}
}

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

// newLogger returns a logger on w at the given level in the given format
// (text or json); verbose forces debug.
func newLogger(w io.Writer, level, format string, verbose bool) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageErrorf("log level %q: want debug, info, warn or error", level)
	}
	if verbose {
		l = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageErrorf("log format %q: want text or json", format)
}
