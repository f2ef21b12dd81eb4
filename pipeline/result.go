package pipeline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/referee-project/referee/pipeline/atomicfile"
)

// resultFields and artifactFields marshal like Result and Artifacts without
// their methods, so that the methods can add the extra keys around them.
type (
	resultFields   Result
	artifactFields Artifacts
)

// MarshalJSON writes the fields of r and then those of r.Extra in key
// order. An Extra key that is also one of r's own keys is an error.
func (r Result) MarshalJSON() ([]byte, error) {
	base, err := json.Marshal(resultFields(r))
	if err != nil {
		return nil, err
	}
	return appendExtra(base, r.Extra, jsonKeys(reflect.TypeFor[Result]()))
}

// UnmarshalJSON reads r's own fields and puts every other key into Extra,
// decoded as encoding/json decodes into an any. A JSON null leaves r as it
// is.
func (r *Result) UnmarshalJSON(data []byte) error {
	if string(bytes.TrimSpace(data)) == "null" {
		return nil
	}
	var f resultFields
	if err := json.Unmarshal(data, &f); err != nil {
		return err
	}
	extra, err := extraKeys[any](data, jsonKeys(reflect.TypeFor[Result]()))
	if err != nil {
		return err
	}
	f.Extra = extra
	*r = Result(f)
	return nil
}

// MarshalJSON writes video, signal and result_json, then the Extra
// artifacts in name order.
func (a Artifacts) MarshalJSON() ([]byte, error) {
	base, err := json.Marshal(artifactFields(a))
	if err != nil {
		return nil, err
	}
	return appendExtra(base, a.Extra, jsonKeys(reflect.TypeFor[Artifacts]()))
}

// UnmarshalJSON reads the fixed keys and puts every other key into Extra.
// A JSON null leaves a as it is.
func (a *Artifacts) UnmarshalJSON(data []byte) error {
	if string(bytes.TrimSpace(data)) == "null" {
		return nil
	}
	var f artifactFields
	if err := json.Unmarshal(data, &f); err != nil {
		return err
	}
	extra, err := extraKeys[string](data, jsonKeys(reflect.TypeFor[Artifacts]()))
	if err != nil {
		return err
	}
	f.Extra = extra
	*a = Artifacts(f)
	return nil
}

// appendExtra adds the members of extra, in key order, to the JSON object
// base.
func appendExtra[V any](base []byte, extra map[string]V, fixed []string) ([]byte, error) {
	if len(extra) == 0 {
		return base, nil
	}
	out := bytes.TrimSuffix(base, []byte("}"))
	for _, k := range slices.Sorted(maps.Keys(extra)) {
		if slices.Contains(fixed, k) {
			return nil, fmt.Errorf("extra key %q is also a fixed key", k)
		}
		key, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		val, err := json.Marshal(extra[k])
		if err != nil {
			return nil, fmt.Errorf("extra key %q: %w", k, err)
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(append(append(out, key...), ':'), val...)
	}
	return append(out, '}'), nil
}

// extraKeys returns the members of the JSON object data whose keys are not
// in fixed, or nil if there are none.
func extraKeys[V any](data []byte, fixed []string) (map[string]V, error) {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(data, &all); err != nil {
		return nil, err
	}
	var extra map[string]V
	for k, raw := range all {
		if slices.Contains(fixed, k) {
			continue
		}
		var v V
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("key %q: %w", k, err)
		}
		if extra == nil {
			extra = make(map[string]V)
		}
		extra[k] = v
	}
	return extra, nil
}

// jsonKeys returns the JSON keys of the fields of struct type t, whether
// or not omitempty leaves them out.
func jsonKeys(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "-" && f.IsExported() {
			if name == "" {
				name = f.Name
			}
			keys = append(keys, name)
		}
	}
	return keys
}

// WriteResult makes the artifacts r names durable (fsynced) and then
// writes r as indented JSON to path with atomicfile.WriteFile: readers never
// see a partial result.json, and a result.json that survives a power cut
// names files that survived it whole.
func WriteResult(path string, r *Result) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the result: %w", err)
	}
	named := []string{r.Artifacts.Video, r.Artifacts.Signal}
	for _, k := range slices.Sorted(maps.Keys(r.Artifacts.Extra)) {
		named = append(named, r.Artifacts.Extra[k])
	}
	for _, p := range named {
		if p == "" {
			continue
		}
		if err := atomicfile.SyncFile(p); err != nil {
			return fmt.Errorf("write %s: the artifacts it names: %w", filepath.Base(path), err)
		}
	}
	// The result is read like the other artifacts, e.g. by a web server
	// showing it to referees: 0644.
	if err := atomicfile.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}

// Relocate points the paths of r, written in the artifact directory
// r.ArtifactDir, at the same files in dir: a worker's result once its serve
// node has fetched the artifacts. Paths outside the old directory are left.
func (r *Result) Relocate(dir string) {
	old := r.ArtifactDir
	move := func(p string) string {
		rel, err := filepath.Rel(old, p)
		if p == "" || err != nil || !filepath.IsLocal(rel) {
			return p
		}
		return filepath.Join(dir, rel)
	}
	r.Artifacts.Video = move(r.Artifacts.Video)
	r.Artifacts.Signal = move(r.Artifacts.Signal)
	r.Artifacts.ResultJSON = move(r.Artifacts.ResultJSON)
	for name, p := range r.Artifacts.Extra {
		r.Artifacts.Extra[name] = move(p)
	}
	r.ArtifactDir = dir
}
