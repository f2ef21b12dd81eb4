package main

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// configSource says which configuration file a run uses and why.
type configSource struct {
	// Path is the file, "" when there is none.
	Path string
	// From is how it was chosen: "--config", "REFEREE_CONFIG" or
	// "found"; Searched lists the places looked at when none was given.
	From     string
	Searched []string
}

// configSearchPath lists, in order, where a configuration file is looked
// for when neither --config nor REFEREE_CONFIG names one: the working
// directory, the user's ($XDG_CONFIG_HOME, else ~/.config), the system's.
func configSearchPath(getenv func(string) string) []string {
	paths := []string{"./referee.yaml"}
	if dir := getenv("XDG_CONFIG_HOME"); dir != "" {
		paths = append(paths, filepath.Join(dir, "referee", "config.yaml"))
	} else if home := getenv("HOME"); home != "" {
		paths = append(paths, filepath.Join(home, ".config", "referee", "config.yaml"))
	}
	return append(paths, "/etc/referee/config.yaml")
}

// findConfig chooses the configuration file: --config (flag), else
// REFEREE_CONFIG, else the first file of the search path that exists. A
// file named by the flag or the variable must exist; none found is no
// error.
func findConfig(flag string, getenv func(string) string) (configSource, error) {
	switch {
	case flag != "":
		return configSource{Path: flag, From: "--config"}, nil
	case getenv("REFEREE_CONFIG") != "":
		return configSource{Path: getenv("REFEREE_CONFIG"), From: "REFEREE_CONFIG"}, nil
	}
	search := configSearchPath(getenv)
	for _, p := range search {
		st, err := os.Stat(p)
		switch {
		case err == nil && !st.IsDir():
			return configSource{Path: p, From: "found", Searched: search}, nil
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return configSource{Searched: search}, usageErrorf("configuration file %s: %w (fix its permissions, or name another with --config or REFEREE_CONFIG)", p, err)
		}
	}
	return configSource{Searched: search}, nil
}

// String is the line "--help" ends with.
func (s configSource) String() string {
	switch s.From {
	case "":
		return "Configuration file: none (looked for " + strings.Join(s.Searched, ", ") + ")"
	case "found":
		return "Configuration file: " + s.Path + " (the first found of " + strings.Join(s.Searched, ", ") + ")"
	}
	return "Configuration file: " + s.Path + " (from " + s.From + ")"
}

// checkConfigKeys refuses every key of the configuration file that no flag
// reads, naming the nearest known key: a typo must not silently leave a
// default in place. The top level takes the global flags and one section
// per subcommand; a section takes its subcommand's flags.
func checkConfigKeys(root *cobra.Command, file *viper.Viper, path string) error {
	sections := map[string]*cobra.Command{}
	for _, c := range root.Commands() {
		if c.Name() != "help" && c.Name() != "completion" {
			sections[c.Name()] = c
		}
	}
	global := configFlagNames(root.PersistentFlags())
	top := slices.Concat(global, slices.Sorted(maps.Keys(sections)))
	var errs []error
	for _, key := range slices.Sorted(slices.Values(file.AllKeys())) {
		head, rest, nested := strings.Cut(key, ".")
		sec, isSection := sections[head]
		switch {
		case !nested && slices.Contains(top, key):
		case isSection && nested:
			known := append(configFlagNames(sec.LocalFlags()), configFlagNames(sec.InheritedFlags())...)
			if !slices.Contains(known, rest) {
				errs = append(errs, fmt.Errorf("unknown key %q in %s: %s has no flag --%s; did you mean %s?", key, path, head, rest, nearest(rest, head+".", known)))
			}
		case !nested:
			// A subcommand's flag at the top level is named with its
			// section; a typo of a global flag or a section, alone.
			cands := map[string]string{}
			for _, k := range top {
				cands[k] = k
			}
			for name, c := range sections {
				for _, f := range configFlagNames(c.LocalFlags()) {
					cands[name+"."+f] = f
				}
			}
			errs = append(errs, fmt.Errorf("unknown key %q at the top level of %s, which takes the global flags and a section per subcommand; did you mean %s?", key, path, nearestOf(key, cands)))
		default:
			errs = append(errs, fmt.Errorf("unknown key %q in %s: %s is neither a global flag nor a subcommand's section; did you mean %s?", key, path, head, nearest(head, "", top)))
		}
	}
	if len(errs) > 0 {
		// One line, as every failure ends with.
		msgs := make([]string, len(errs))
		for i, err := range errs {
			msgs[i] = err.Error()
		}
		return usageErrorf("%s", strings.Join(msgs, "; "))
	}
	return nil
}

// configFlagNames lists the flags a configuration file may set.
func configFlagNames(fs *pflag.FlagSet) []string {
	var names []string
	fs.VisitAll(func(f *pflag.Flag) {
		switch f.Name {
		case "config", "help", "version":
		default:
			names = append(names, f.Name)
		}
	})
	return names
}

// nearest names the entries of known closest to s in edit distance,
// quoted, with prefix before each: one, or the equals joined by "or".
func nearest(s, prefix string, known []string) string {
	cands := make(map[string]string, len(known))
	for _, k := range known {
		cands[prefix+k] = k
	}
	return nearestOf(s, cands)
}

// nearestOf names the keys of cands whose values are closest to s in edit
// distance, quoted, in sorted order, joined by "or".
func nearestOf(s string, cands map[string]string) string {
	var best []string
	bestD := -1
	for _, k := range slices.Sorted(maps.Keys(cands)) {
		switch d := editDistance(s, cands[k]); {
		case bestD < 0 || d < bestD:
			best, bestD = []string{strconv.Quote(k)}, d
		case d == bestD:
			best = append(best, strconv.Quote(k))
		}
	}
	return strings.Join(best, " or ")
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and swaps of neighbours each count
// one, so the typo "prot" is 1 from "port".
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
