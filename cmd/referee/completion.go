package main

import (
	"github.com/spf13/cobra"

	"github.com/referee-project/referee/pipeline"
	"github.com/referee-project/referee/pipeline/synth"
	"github.com/referee-project/referee/protocol"
)

// flagValues are the values the shell completes for the enum flags, by
// flag name, whichever subcommand has the flag.
func flagValues() map[string][]string {
	scenarios := make([]string, 0, 8)
	for _, s := range synth.Scenarios() {
		// "name<TAB>description": shells that show descriptions show
		// the call the phrase should get.
		scenarios = append(scenarios, s.Name+"\tcall: "+s.Call)
	}
	return map[string][]string{
		"analyzer":     analyzerNames(),
		"protocol":     {protocol.V2, protocol.V1},
		"pattern":      {patternNoise, patternCounter, patternFencers},
		"scenario":     scenarios,
		"encoding":     protocol.Encodings(),
		"video-format": {pipeline.VideoFormatMJPEG, pipeline.VideoFormatH264},
		"log-level":    {"debug", "info", "warn", "error"},
		"log-format":   {"text", "json"},
		"cv":           {"day", "none"},
	}
}

// fileFlags are the flags that name a file, with the extensions the shell
// offers first (none: any file); dirFlags those that name a directory.
var (
	fileFlags = map[string][]string{
		"video":             nil, // any container OpenCV reads, or a URL
		"signal":            {"txt"},
		"tracks":            {"json"},
		"output":            {"json"},
		"config":            {"yaml", "yml"},
		"ca":                {"pem", "crt"},
		"tls-cert":          {"pem", "crt"},
		"tls-key":           {"pem", "key"},
		"nats-creds":        {"creds"},
		"nats-tls-ca":       {"pem", "crt"},
		"nats-tls-cert":     {"pem", "crt"},
		"nats-tls-key":      {"pem", "key"},
		"cpuprofile":        nil,
		"cpuprofile-client": nil,
		"cpuprofile-server": nil,
	}
	dirFlags = []string{"data-dir", "output-dir", "out"}
)

// registerCompletions gives every enum flag of every command under root
// its values, and every file or directory flag file completion.
func registerCompletions(root *cobra.Command) {
	values := flagValues()
	walk(root, func(c *cobra.Command) {
		flags := c.LocalNonPersistentFlags()
		if c == root {
			flags = c.PersistentFlags()
		}
		for name, vals := range values {
			if flags.Lookup(name) != nil {
				_ = c.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(vals, cobra.ShellCompDirectiveNoFileComp))
			}
		}
		for name, exts := range fileFlags {
			if flags.Lookup(name) != nil {
				_ = flags.SetAnnotation(name, cobra.BashCompFilenameExt, exts)
			}
		}
		for _, name := range dirFlags {
			if flags.Lookup(name) != nil {
				_ = flags.SetAnnotation(name, cobra.BashCompSubdirsInDir, []string{})
			}
		}
	})
}

// walk calls fn for cmd and every command under it.
func walk(cmd *cobra.Command, fn func(*cobra.Command)) {
	fn(cmd)
	for _, c := range cmd.Commands() {
		walk(c, fn)
	}
}
