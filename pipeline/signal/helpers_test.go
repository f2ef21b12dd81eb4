package signal

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// Samples copied from the shared real logs into the repository, so that the
// table tests run without shared/.
const (
	sampleSingle    = "20260204_213217_phrase119.txt" // right light only; hit text names Left
	sampleDouble    = "20251020_210329_phrase09.txt"  // double, "Manual selection winner", upload lines
	sampleAbstain   = "20251106_211350_phrase107.txt" // abstain, no final newline: the head of a glued file
	sampleNoStart   = "20260127_194321_phrase02.txt"  // no "Recording started" lines, times of 10 s and more
	sampleOldFormat = "20251017_205243_phrase34.txt"  // no decision, "Winner: Left", contacts after the end
)

var sampleNames = []string{sampleSingle, sampleDouble, sampleAbstain, sampleNoStart, sampleOldFormat}

func readSample(tb testing.TB, name string) []byte {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "signal", name))
	if err != nil {
		tb.Fatalf("read sample: %v", err)
	}
	return data
}

// glued imitates the quirk of a second log appended without a newline:
// sampleAbstain ends in "...winner: Abstain" and sampleDouble follows.
func glued(tb testing.TB) []byte {
	tb.Helper()
	return append(readSample(tb, sampleAbstain), readSample(tb, sampleDouble)...)
}

// phrasesDir finds shared/testdata/phrases by walking up from the package
// directory: the repository sits beside shared/ here and in CI.
func phrasesDir(tb testing.TB) string {
	tb.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		tb.Fatal(err)
	}
	for {
		candidate := filepath.Join(dir, "shared", "testdata", "phrases")
		if info, err := os.Stat(candidate); err == nil && info.IsDir() {
			return candidate
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("shared/testdata/phrases not found in any parent of the package directory; the repository must sit beside shared/")
		}
		dir = parent
	}
}

func mustJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		tb.Fatalf("marshal: %v", err)
	}
	return string(b)
}

func ptr[T any](v T) *T { return &v }
