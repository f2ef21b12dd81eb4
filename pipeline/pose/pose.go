// Package pose is the "pose" analyzer: an external pose estimator turns
// the phrase's frames into both fencers' keypoints (a referee-tracks/1
// file), and the project's right-of-way engine decides from them.
//
// The estimator is a command run the way the external analyzer runs its
// own (package external's Command: no shell, placeholders replaced inside
// each argument, its process group killed at the timeout, errors quoting
// the tail of its standard error). Its contract:
//
//   - {frames} is a directory holding the phrase's frames in order as
//     000000.jpg, 000001.jpg, ...: the JPEGs as the client sent them when
//     the video is a Motion-JPEG AVI (what the server rebuilds sessions
//     into), written without decoding; other videos' frames encoded once;
//   - {video} is the video itself, for tools that prefer it;
//   - {fps} is the frame rate;
//   - {out} is where the tool writes the tracks file. It may pose fewer
//     frames a second than the video has (every other frame of a 30 fps
//     phrase, say), and says so with the tracks' fps.
//
// The tool exits 0 having written {out}, or non-zero with its errors on
// standard error. The project's own estimator (pipeline/pose/movenet,
// installed by `make build` as referee-pose beside the referee binary) is
// the default command.
package pose

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/referee-project/referee/pipeline"
	"github.com/referee-project/referee/pipeline/external"
	"github.com/referee-project/referee/pipeline/tracked"
	"github.com/referee-project/referee/pipeline/tracks"
	"github.com/referee-project/referee/pipeline/videoio"
)

// Name is the analyzer's name in pipeline.Job.Analyzers and --analyzer.
const Name = "pose"

// Tool is the file name of the project's pose estimator, which `make
// build` installs beside the referee binary.
const Tool = "referee-pose"

// DefaultCommand is the command line of the project's pose estimator.
const DefaultCommand = Tool + " {frames} {fps} {out}"

// DefaultTimeout is the time the pose tool gets when none is given: the
// reference estimator poses a 10 s phrase in well under half of it on two
// cores.
const DefaultTimeout = 2 * time.Minute

// Artifact names of the Verdict's Artifacts map and their file names.
const (
	ArtifactTracks   = tracked.ArtifactTracks
	ArtifactTimeline = tracked.ArtifactTimeline
	ArtifactOverlay  = "overlay_video"

	TracksFile   = tracked.TracksFile
	TimelineFile = tracked.TimelineFile
	OverlayFile  = "overlay.avi"
	// FramesDir is the {frames} directory inside the artifact directory;
	// it is removed when the analysis ends, the frames being in the video.
	FramesDir = "pose_frames"
)

// Analyzer runs a pose tool per phrase and decides from its tracks.
type Analyzer struct {
	cmd external.Command
	// NoOverlay skips the overlay video, for callers that want the
	// verdict and the tracks only.
	NoOverlay bool
}

var _ pipeline.Analyzer = (*Analyzer)(nil)

// New returns the analyzer for commandLine (DefaultCommand, or a club's own
// estimator, e.g. "yolo-pose --frames {frames} --fps {fps} --out {out}"),
// run with timeout (0 means DefaultTimeout). The line must use {out} and
// one of {frames} and {video}. A program named without a directory is
// looked for beside the running executable first (where `make build`
// puts referee-pose), then on PATH.
func New(commandLine string, timeout time.Duration) (*Analyzer, error) {
	cmd, err := external.ParseCommand("pose analyzer", commandLine, "tracks file", timeout, DefaultTimeout)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(commandLine, "{frames}") && !strings.Contains(commandLine, "{video}") {
		return nil, fmt.Errorf("pose analyzer: the command line %q gives the tool neither {frames} nor {video}", commandLine)
	}
	// Once running, the failures are the tool's: "pose tool crash.sh failed".
	cmd.What = "pose tool"
	cmd.Args[0] = besideExecutable(cmd.Args[0])
	return &Analyzer{cmd: cmd}, nil
}

// besideExecutable returns the path of the program name next to the
// running executable if it is there, else name unchanged for exec to
// look up on PATH: the binary and its pose tool are installed together.
func besideExecutable(name string) string {
	if strings.ContainsRune(name, filepath.Separator) {
		return name
	}
	exe, err := os.Executable()
	if err != nil {
		return name
	}
	p := filepath.Join(filepath.Dir(exe), name)
	if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
		return p
	}
	return name
}

// Command is the command line the analyzer runs, with its program
// resolved, for messages that say what runs.
func (a *Analyzer) Command() string { return strings.Join(a.cmd.Args, " ") }

// Installed checks that the analyzer's program exists and is executable,
// for a server to refuse to start without its pose stage rather than fail
// every phrase.
func (a *Analyzer) Installed() error {
	if _, err := exec.LookPath(a.cmd.Args[0]); err != nil {
		return fmt.Errorf("pose tool %s is not installed (make build installs the project's beside referee; or set --pose-cmd): %w", a.cmd.Name(), err)
	}
	return nil
}

// IsReference says whether the analyzer runs the project's own estimator
// (referee-pose, or its script pose.mjs), which has a --check mode.
func (a *Analyzer) IsReference() bool {
	name := a.cmd.Name()
	if target, err := filepath.EvalSymlinks(a.cmd.Args[0]); err == nil {
		name = filepath.Base(target)
	}
	return name == Tool || name == "pose.mjs"
}

// Analyze implements pipeline.Analyzer. It writes the frames for the tool,
// runs it, reads and checks its tracks, and decides with the right-of-way
// engine. The verdict's Winner is rightofway's call ("left", "right",
// "none", "simultaneous", or "undecided" when the tracks do not show the
// hit); Extra holds "timeline" (a rightofway.Timeline); the artifacts are
// tracks.json (the tool's tracks, normalised), timeline.png and, unless
// NoOverlay, overlay.avi with both skeletons drawn.
func (a *Analyzer) Analyze(ctx context.Context, in pipeline.AnalysisInput, progress func(float64, string)) (pipeline.Verdict, error) {
	if progress == nil {
		progress = func(float64, string) {}
	}
	if in.Phrase == nil {
		return pipeline.Verdict{}, errors.New("no parsed signal to analyse")
	}
	fps := in.FPS
	if !(fps > 0) {
		info, err := videoio.Probe(in.VideoPath)
		if err != nil {
			return pipeline.Verdict{}, fmt.Errorf("open the video to pose: %w", err)
		}
		fps = info.FPS
	}
	if !(fps > 0) {
		return pipeline.Verdict{}, fmt.Errorf("video %s declares no frame rate and none was given", in.VideoPath)
	}
	framesDir := filepath.Join(in.ArtifactDir, FramesDir)
	if err := os.RemoveAll(framesDir); err != nil {
		return pipeline.Verdict{}, fmt.Errorf("clear old pose frames: %w", err)
	}
	defer os.RemoveAll(framesDir)
	n, err := WriteFrames(ctx, in.VideoPath, framesDir)
	if err != nil {
		return pipeline.Verdict{}, err
	}
	progress(0.1, fmt.Sprintf("%d frames written for the pose tool", n))

	out := filepath.Join(in.ArtifactDir, TracksFile)
	if err := os.Remove(out); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return pipeline.Verdict{}, fmt.Errorf("clear the old tracks: %w", err)
	}
	t, err := a.Pose(ctx, in.ArtifactDir, framesDir, in.VideoPath, fps, out, progress)
	if err != nil {
		return pipeline.Verdict{}, err
	}
	if d, want := float64(t.Frames())/t.FPS, float64(n)/fps; math.Abs(d-want) > 1/t.FPS+1/fps {
		return pipeline.Verdict{}, fmt.Errorf("pose tool %s wrote tracks of %d frames at %g fps (%.2f s) for a video of %d frames at %g fps (%.2f s): they must cover the video",
			a.cmd.Name(), t.Frames(), t.FPS, d, n, fps, want)
	}
	// Decided from the tracks as saved (the project's rounding), so that
	// deciding tracks.json again gives this call.
	data, err := t.MarshalJSON()
	if err == nil {
		t, err = tracks.Parse(data)
	}
	if err != nil {
		return pipeline.Verdict{}, fmt.Errorf("pose tool %s's tracks: %w", a.cmd.Name(), err)
	}
	v, tl, err := tracked.Decide(t, in)
	if err != nil {
		return pipeline.Verdict{}, fmt.Errorf("decide from the pose tool's tracks: %w", err)
	}
	progress(0.9, "decided: "+v.Winner)
	if a.NoOverlay {
		return v, nil
	}
	ovPath := filepath.Join(in.ArtifactDir, OverlayFile)
	if err := writeOverlay(ctx, framesDir, n, fps, t, tl, ovPath); err != nil {
		return pipeline.Verdict{}, err
	}
	v.Artifacts[ArtifactOverlay] = ovPath
	return v, nil
}

// Pose runs the pose tool in dir on the frames in framesDir ({frames}),
// the video at videoPath ({video}) and fps ({fps}), and returns the
// tracks it wrote to out ({out}), checked as tracks.Parse checks them.
// While it runs, progress creeps from 0.1 towards 0.85 so that a waiting
// client sees it alive: how long a tool takes is not known in advance.
func (a *Analyzer) Pose(ctx context.Context, dir, framesDir, videoPath string, fps float64, out string, progress func(float64, string)) (*tracks.Tracks, error) {
	if progress == nil {
		progress = func(float64, string) {}
	}
	name := a.cmd.Name()
	start := time.Now()
	done := make(chan struct{})
	ticked := make(chan struct{})
	go func() {
		defer close(ticked)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				s := time.Since(start).Seconds()
				progress(0.1+0.75*(1-math.Exp(-s/20)), fmt.Sprintf("%s posing for %.0f s", name, s))
			}
		}
	}()
	repl := strings.NewReplacer("{frames}", framesDir, "{video}", videoPath, "{fps}", strconv.FormatFloat(fps, 'f', -1, 64), "{out}", out)
	stderr, err := a.cmd.Run(ctx, dir, repl)
	close(done)
	<-ticked
	if err != nil {
		return nil, err
	}
	progress(0.85, fmt.Sprintf("%s finished in %.1f s", name, time.Since(start).Seconds()))
	t, err := tracks.ReadFile(out)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("pose tool %s exited 0 but wrote no tracks to {out}: %w%s", name, err, stderr)
	case err != nil:
		return nil, fmt.Errorf("pose tool %s wrote a bad tracks file: %w%s", name, err, stderr)
	}
	return t, nil
}

// CheckResult is what the project's pose estimator says of itself when
// run with --check: its runtime, and how long it takes here to load its
// models, to find the people in a 1280x720 frame (MultiPose) and to pose
// one 192x192 crop (Lightning).
type CheckResult struct {
	Tool       string  `json:"tool"`
	Node       string  `json:"node"`
	Backend    string  `json:"backend"`
	SIMD       bool    `json:"simd"`
	CPUs       int     `json:"cpus"`
	LoadS      float64 `json:"load_s"`
	MultiPoseS float64 `json:"multipose_s"`
	LightningS float64 `json:"lightning_s"`
}

// Check runs the analyzer's program with --check, which only the
// project's estimator (Tool) understands, and returns what it said.
func (a *Analyzer) Check(ctx context.Context) (CheckResult, error) {
	var out bytes.Buffer
	cmd := external.Command{What: "pose tool", Args: []string{a.cmd.Args[0], "--check"}, Timeout: time.Minute, Stdout: &out}
	if _, err := cmd.Run(ctx, "", strings.NewReplacer()); err != nil {
		return CheckResult{}, err
	}
	return parseCheck(out.Bytes())
}

func parseCheck(data []byte) (CheckResult, error) {
	var c CheckResult
	if err := json.Unmarshal(data, &c); err != nil {
		return CheckResult{}, fmt.Errorf("pose tool --check printed %q, not its JSON report: %w", bytes.TrimSpace(data), err)
	}
	if c.Tool != Tool {
		return CheckResult{}, fmt.Errorf("pose tool --check printed %q: not %s", bytes.TrimSpace(data), Tool)
	}
	return c, nil
}
