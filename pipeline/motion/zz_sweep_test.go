package motion

import (
	"context"
	"fmt"
	"testing"

	"github.com/referee-project/referee/pipeline/synth"
)

func TestDebugSweep(t *testing.T) {
	for _, v := range []variant{
		{".mp4", 30, 1280, 720, 20}, {".avi", 15, 320, 240, 0}, {".avi", 25, 960, 540, 30}, {".mp4", 15, 640, 480, 40}, {".avi", 30, 1920, 1080, 10},
	} {
		dir := t.TempDir()
		for _, sc := range synth.Scenarios() {
			in := film(t, dir, sc, v)
			r, err := (&Analyzer{NoArtifacts: true}).Analyze(context.Background(), in, nil)
			if err != nil {
				t.Fatal(err)
			}
			ok := "ok  "
			if r.Winner != sc.Call {
				ok = "FAIL"
			}
			fmt.Printf("%s %s %-32s %-12s conf %.2f %s\n", ok, v, sc.Name, r.Winner, r.Confidence, r.Reason)
		}
	}
}
