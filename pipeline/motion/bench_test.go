package motion

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/referee-project/referee/pipeline/synth"
)

// BenchmarkAnalyze1280x720 analyses a 300-frame 1280x720 phrase (10 s at
// 30 fps, the scenario held after its end) and reports seconds per phrase,
// wall and CPU (the process's user and system time), with the artifacts
// and without.
func BenchmarkAnalyze1280x720(b *testing.B) {
	sc, err := synth.ScenarioByName("both-pause-left-resumes")
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	v := variant{".avi", 30, 1280, 720, 8}
	// 300 frames at 30 fps: the scenario's 2.79 s and then both fencers
	// standing still, as a long recording would show.
	sc.Duration = 299 / v.fps
	in := film(b, dir, sc, v)
	if in.Frames != 300 {
		b.Fatalf("filmed %d frames, want 300", in.Frames)
	}
	for _, c := range []struct {
		name string
		a    *Analyzer
	}{{"verdict", &Analyzer{NoArtifacts: true}}, {"artifacts", &Analyzer{}}} {
		b.Run(c.name, func(b *testing.B) {
			before := cpuSeconds(b)
			for b.Loop() {
				if _, err := c.a.Analyze(context.Background(), in, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/phrase")
			// CPU time varies less than wall time on a shared machine.
			b.ReportMetric((cpuSeconds(b)-before)/float64(b.N), "cpu-s/phrase")
		})
	}
}

// cpuSeconds is the CPU time the process has used so far.
func cpuSeconds(b *testing.B) float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
