// Package tracks reads and writes "referee-tracks/1": both fencers' body
// keypoints, frame by frame, as a tracker or pose estimator saw them in a
// phrase's video (shared/docs/tracks-format.md in the project's design
// documents).
//
// A tracks file is what the right-of-way decision works on. The motion
// analyzer writes one from the video, an external pose estimator writes
// one from the frames, and "referee analyze --tracks" decides a phrase
// from one without any video.
package tracks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/referee-project/referee/pipeline/atomicfile"
	"github.com/referee-project/referee/pipeline/avi"
)

// Format is the value of the "format" field.
const Format = "referee-tracks/1"

// Units of Tracks.Units.
const (
	// UnitsMetres: x in metres along the strip, growing from the left
	// fencer's end towards the right fencer's; y in metres, downwards.
	UnitsMetres = "m"
	// UnitsPixels: image pixels, x right and y down.
	UnitsPixels = "px"
)

// KeypointsCOCO17 is the only keypoint layout of format 1.
const KeypointsCOCO17 = "coco17"

// NumKeypoints is the number of keypoints of a pose.
const NumKeypoints = 17

// The COCO-17 keypoints by index.
const (
	Nose = iota
	LeftEye
	RightEye
	LeftEar
	RightEar
	LeftShoulder
	RightShoulder
	LeftElbow
	RightElbow
	LeftWrist
	RightWrist
	LeftHip
	RightHip
	LeftKnee
	RightKnee
	LeftAnkle
	RightAnkle
)

// MaxCoord bounds the coordinates a tracks file may hold: a strip's
// metres or a picture's pixels, with room to spare. Its frame rate is
// bounded as every video's in referee, avi.MinFPS to avi.MaxFPS.
const MaxCoord = 1e6

// MaxSize is the largest tracks file read: a minute of 60 fps video with
// two full poses a frame is under 10 MB.
const MaxSize = 64 << 20

// ErrNotTracks means the data is JSON but not a tracks file: it has no
// "format" field, or another format. ErrMalformed means it claims to be a
// tracks file but breaks the format. Read's errors wrap one of them.
var (
	ErrNotTracks = errors.New("not a referee-tracks/1 file")
	ErrMalformed = errors.New("malformed tracks file")
)

// Keypoint is one body point. Seen is false for a keypoint the estimator
// did not find (JSON null); X and Y are then zero. Score is the
// estimator's confidence from 0 to 1, or NaN when the file gives none
// (an [x, y] entry).
type Keypoint struct {
	X, Y  float64
	Score float64
	Seen  bool
}

// Pose is one fencer in one frame: the 17 COCO keypoints. A nil *Pose
// means the fencer was not found in that frame.
type Pose [NumKeypoints]Keypoint

// Tracks is a tracks file.
type Tracks struct {
	// FPS is the frame rate: frame i is at i / FPS seconds, the scoring
	// box's clock.
	FPS float64
	// Units is UnitsMetres or UnitsPixels.
	Units string
	// MetresPerPixel is the scale of pixel tracks when known, else 0.
	MetresPerPixel float64
	// Source says which tracker or estimator made the tracks.
	Source string
	// Left and Right have one entry per frame, frame 0 first; nil where
	// that fencer was not found. Both have the same length.
	Left, Right []*Pose
}

// Frames returns the number of frames.
func (t *Tracks) Frames() int { return len(t.Left) }

// ToMetres returns the factor that turns the tracks' x and y into metres,
// and false for pixel tracks of unknown scale.
func (t *Tracks) ToMetres() (float64, bool) {
	switch {
	case t.Units == UnitsMetres:
		return 1, true
	case t.MetresPerPixel > 0:
		return t.MetresPerPixel, true
	}
	return 0, false
}

// Validate checks what Read checks: a positive finite FPS, known units,
// a non-negative finite scale, and Left and Right of equal length.
func (t *Tracks) Validate() error {
	if !(t.FPS > 0) || math.IsInf(t.FPS, 0) {
		return fmt.Errorf("%w: fps %v is not a positive number", ErrMalformed, t.FPS)
	}
	if t.FPS < avi.MinFPS || t.FPS > avi.MaxFPS {
		return fmt.Errorf("%w: fps %v is out of range: a frame rate is %v to %v", ErrMalformed, t.FPS, avi.MinFPS, avi.MaxFPS)
	}
	if t.Units != UnitsMetres && t.Units != UnitsPixels {
		return fmt.Errorf("%w: units %q: want %q or %q", ErrMalformed, t.Units, UnitsMetres, UnitsPixels)
	}
	if !(t.MetresPerPixel >= 0) || math.IsInf(t.MetresPerPixel, 0) {
		return fmt.Errorf("%w: m_per_px %v is not a non-negative number", ErrMalformed, t.MetresPerPixel)
	}
	if len(t.Left) != len(t.Right) {
		return fmt.Errorf("%w: left has %d frames and right %d; both need one entry per frame", ErrMalformed, len(t.Left), len(t.Right))
	}
	for i, p := range append(append([]*Pose{}, t.Left...), t.Right...) {
		if p == nil {
			continue
		}
		for k, kp := range p {
			if kp.Seen && !(math.Abs(kp.X) <= MaxCoord && math.Abs(kp.Y) <= MaxCoord && (math.IsNaN(kp.Score) || kp.Score >= 0 && kp.Score <= 1)) {
				side, f := "left", i
				if i >= len(t.Left) {
					side, f = "right", i-len(t.Left)
				}
				return fmt.Errorf("%w: %s frame %d keypoint %d: coordinates must be numbers within ±%g and the score within 0..1", ErrMalformed, side, f, k, float64(MaxCoord))
			}
		}
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// fileJSON is the file's JSON object. Frames stay raw so that each can be
// checked with its side and number in the error.
type fileJSON struct {
	Format    *string           `json:"format"`
	FPS       *float64          `json:"fps"`
	Units     string            `json:"units"`
	MPerPx    float64           `json:"m_per_px,omitempty"`
	Keypoints string            `json:"keypoints"`
	Source    string            `json:"source,omitempty"`
	Left      []json.RawMessage `json:"left"`
	Right     []json.RawMessage `json:"right"`
}

// Parse reads a tracks file from data. Its errors are one line, wrap
// ErrNotTracks or ErrMalformed, and name the side and frame at fault.
func Parse(data []byte) (*Tracks, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes is over the %d MiB limit", ErrMalformed, len(data), MaxSize>>20)
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		if bytes.Contains(data, []byte(`"`+Format+`"`)) {
			// It says it is tracks: cut short or hand-edited.
			return nil, fmt.Errorf("%w: invalid JSON (%v)", ErrMalformed, oneLine(err))
		}
		return nil, fmt.Errorf("%w: not a JSON object (%v)", ErrNotTracks, oneLine(err))
	}
	var f fileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		if f.Format == nil || *f.Format != Format {
			return nil, fmt.Errorf("%w: %v", ErrNotTracks, oneLine(err))
		}
		return nil, fmt.Errorf("%w: %v", ErrMalformed, oneLine(err))
	}
	switch {
	case f.Format == nil:
		return nil, fmt.Errorf("%w: it has no \"format\" field", ErrNotTracks)
	case *f.Format != Format:
		return nil, fmt.Errorf("%w: its format is %q", ErrNotTracks, *f.Format)
	case f.FPS == nil:
		return nil, fmt.Errorf("%w: it has no \"fps\" field", ErrMalformed)
	case f.Keypoints != "" && f.Keypoints != KeypointsCOCO17:
		return nil, fmt.Errorf("%w: keypoints %q: only %q is known", ErrMalformed, f.Keypoints, KeypointsCOCO17)
	case probe["left"] == nil || probe["right"] == nil:
		return nil, fmt.Errorf("%w: it needs both a \"left\" and a \"right\" array", ErrMalformed)
	}
	t := &Tracks{FPS: *f.FPS, Units: f.Units, MetresPerPixel: f.MPerPx, Source: f.Source}
	if len(f.Left) != len(f.Right) {
		return nil, fmt.Errorf("%w: left has %d frames and right %d; both need one entry per frame", ErrMalformed, len(f.Left), len(f.Right))
	}
	var err error
	if t.Left, err = parseSide("left", f.Left); err != nil {
		return nil, err
	}
	if t.Right, err = parseSide("right", f.Right); err != nil {
		return nil, err
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return t, nil
}

func parseSide(side string, frames []json.RawMessage) ([]*Pose, error) {
	out := make([]*Pose, len(frames))
	for i, raw := range frames {
		p, err := parsePose(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: %s frame %d: %v", ErrMalformed, side, i, err)
		}
		out[i] = p
	}
	return out, nil
}

func parsePose(raw json.RawMessage) (*Pose, error) {
	if isNull(raw) {
		return nil, nil
	}
	var kps []json.RawMessage
	if err := json.Unmarshal(raw, &kps); err != nil {
		return nil, errors.New("a frame must be null or an array of 17 keypoints")
	}
	if len(kps) != NumKeypoints {
		return nil, fmt.Errorf("%d keypoints: want %d (COCO order)", len(kps), NumKeypoints)
	}
	var p Pose
	for k, kr := range kps {
		if isNull(kr) {
			continue
		}
		var v []float64
		if err := json.Unmarshal(kr, &v); err != nil || len(v) < 2 || len(v) > 3 {
			return nil, fmt.Errorf("keypoint %d: want null, [x, y] or [x, y, score]", k)
		}
		p[k] = Keypoint{X: v[0], Y: v[1], Score: math.NaN(), Seen: true}
		if len(v) == 3 {
			if !(v[2] >= 0 && v[2] <= 1) {
				return nil, fmt.Errorf("keypoint %d: score %v is not within 0..1", k, v[2])
			}
			p[k].Score = v[2]
		}
	}
	return &p, nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

func oneLine(err error) string {
	return string(bytes.ReplaceAll([]byte(err.Error()), []byte("\n"), []byte(" ")))
}

// ReadFile reads and parses the tracks file at path.
func ReadFile(path string) (*Tracks, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return Parse(data)
}

// MarshalJSON writes t in format 1: coordinates to 0.1 mm (or 0.01 px),
// scores to 0.001, a keypoint without a score as [x, y].
func (t *Tracks) MarshalJSON() ([]byte, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(`{"format":"` + Format + `","fps":`)
	b.WriteString(num(t.FPS, -1))
	b.WriteString(`,"units":`)
	writeString(&b, t.Units)
	if t.MetresPerPixel > 0 {
		b.WriteString(`,"m_per_px":`)
		b.WriteString(num(t.MetresPerPixel, -1))
	}
	b.WriteString(`,"keypoints":"` + KeypointsCOCO17 + `"`)
	if t.Source != "" {
		b.WriteString(`,"source":`)
		writeString(&b, t.Source)
	}
	prec := 4
	if t.Units == UnitsPixels {
		prec = 2
	}
	for _, side := range []struct {
		name  string
		poses []*Pose
	}{{"left", t.Left}, {"right", t.Right}} {
		b.WriteString(`,"` + side.name + `":[`)
		for i, p := range side.poses {
			if i > 0 {
				b.WriteByte(',')
			}
			writePose(&b, p, prec)
		}
		b.WriteByte(']')
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func writePose(b *bytes.Buffer, p *Pose, prec int) {
	if p == nil {
		b.WriteString("null")
		return
	}
	b.WriteByte('[')
	for k, kp := range p {
		if k > 0 {
			b.WriteByte(',')
		}
		if !kp.Seen {
			b.WriteString("null")
			continue
		}
		b.WriteByte('[')
		b.WriteString(num(kp.X, prec))
		b.WriteByte(',')
		b.WriteString(num(kp.Y, prec))
		if !math.IsNaN(kp.Score) {
			b.WriteByte(',')
			b.WriteString(num(kp.Score, 3))
		}
		b.WriteByte(']')
	}
	b.WriteByte(']')
}

func writeString(b *bytes.Buffer, s string) {
	q, _ := json.Marshal(s)
	b.Write(q)
}

// num formats v with at most prec decimals (all it needs when prec < 0).
func num(v float64, prec int) string {
	if prec >= 0 {
		p := math.Pow10(prec)
		if r := math.Round(v*p) / p; finite(r) {
			v = r
		}
	}
	q, _ := json.Marshal(v)
	return string(q)
}

// UnmarshalJSON parses data as Parse does.
func (t *Tracks) UnmarshalJSON(data []byte) error {
	p, err := Parse(data)
	if err != nil {
		return err
	}
	*t = *p
	return nil
}

// WriteFile writes t to path with atomicfile.WriteFile: a reader never
// sees half a file, and once it returns nil the file survives a crash.
func WriteFile(path string, t *Tracks) error {
	data, err := t.MarshalJSON()
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
