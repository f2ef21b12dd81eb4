package bench

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteTable prints a streaming bench's report for people.
func WriteTable(w io.Writer, rep Report) error {
	fmt.Fprintf(w, "referee bench: %d CPUs (%s), relay RTT %.0f ms, frames scale %g, JPEG q%d, load average %.2f at the start, %.2f at the end\n\n",
		rep.CPUs, rep.CPUModel, rep.RTTms, rep.FramesScale, rep.JPEGQuality, rep.LoadAverage[0], rep.LoadAverage[1])
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "case\tprotocol\tlink\tframes\tframes/s\tMbps\tclient CPU s\tserver CPU s\tserver peak RSS MB\tanon MB\tend->done ms\tv2/v1\tverified\t")
	for _, r := range rep.Runs {
		link := r.Link
		if r.Link == LinkRelay {
			link = fmt.Sprintf("relay %.0fms", r.RTTms)
		}
		ratio := ""
		if r.V2OverV1 > 0 {
			ratio = fmt.Sprintf("%.1fx", r.V2OverV1)
		}
		verified := "ok"
		if !r.Verified {
			verified = "FAILED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.0f\t%.0f\t%.0f\t%s\t%s\t\n",
			r.Case, r.Protocol, link, r.Frames, r.FPS, r.Mbps, r.ClientCPUSecs, r.ServerCPUSecs,
			r.ServerPeakRSSMB, r.ServerPeakAnonMB, r.EndToCompleteMs, ratio, verified)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if rep.Repeat > 1 {
		fmt.Fprintf(w, "\nEach row is the run of median frames/s of %d; frames/s of every run:\n", rep.Repeat)
		for _, r := range rep.Runs {
			fmt.Fprintf(w, "  %s %s %s: %s\n", r.Case, r.Protocol, r.Link, floatList(r.FPSAll))
		}
	}
	fmt.Fprintln(w, "\nframes/s and Mbps: frames delivered, from the client's \"session started\" to its receipt of session_ended, all sessions together.")
	fmt.Fprintln(w, "end->done: client clock, sending session_end to receiving process_complete, worst session. Client CPU includes the relay.")
	fmt.Fprintln(w, "server peak RSS: VmHWM, shared libraries included; anon: the largest sampled RssAnon (heap, stacks).")
	if len(rep.Runs) > 0 {
		fmt.Fprintf(w, "An idle server's RSS here: %.0f MB.\n", rep.Runs[0].ServerIdleRSSMB)
	}
	for _, r := range rep.Runs {
		if r.Sessions > 1 && r.Verified {
			q := r.ServerRSSQuartersMB
			fmt.Fprintf(w, "server RSS MB by quarter of the stream, %s %s %s: %.0f %.0f %.0f %.0f\n", r.Case, r.Protocol, r.Link, q[0], q[1], q[2], q[3])
		}
	}
	if len(rep.Targets) > 0 {
		fmt.Fprintln(w, "\nTargets:")
		for _, t := range rep.Targets {
			status := "met"
			if !t.Met {
				status = "MISSED"
			}
			fmt.Fprintf(w, "  %-6s %s: %s\n", status, t.Target, t.Measured)
		}
	}
	for _, r := range rep.Runs {
		if r.Problem != "" {
			fmt.Fprintf(w, "\nFAILED %s %s %s: %s\n", r.Case, r.Protocol, r.Link, r.Problem)
		}
	}
	if rep.TempDir != "" {
		fmt.Fprintf(w, "\nData and server logs: %s\n", rep.TempDir)
	}
	return nil
}

// WriteClusterTable prints a cluster bench's report for people.
func WriteClusterTable(w io.Writer, rep ClusterReport) error {
	fmt.Fprintf(w, "Cluster: %d strips x %d frames (%dx%d JPEG) at once through %d serve nodes and an embedded JetStream;\n", rep.Strips, rep.Frames, clusterWidth, clusterHeight, rep.Nodes)
	fmt.Fprintf(w, "each worker analyses one phrase at a time, the analysis taking %.0f ms (a sleep standing for a slow model).\n", rep.DelayMs)
	fmt.Fprintf(w, "%d CPUs (%s), load average %.2f at the start, %.2f at the end.\n\n", rep.CPUs, rep.CPUModel, rep.LoadAverage[0], rep.LoadAverage[1])
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workers\twall s\tphrases/min\tframes/s\tend->result median ms\tend->result max ms\tverified\t")
	for _, r := range rep.Runs {
		fmt.Fprintf(tw, "%d\t%.1f\t%.1f\t%.0f\t%.0f\t%.0f\t%v\t\n", r.Workers, r.WallSeconds, r.PhrasesPerMinute, r.FramesPerSecond, r.EndToResultMedianMs, r.EndToResultMaxMs, r.Verified)
	}
	return tw.Flush()
}

func floatList(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = strconv.FormatFloat(x, 'f', 1, 64)
	}
	return strings.Join(parts, " ")
}
