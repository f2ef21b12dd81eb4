package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/synth"
	"github.com/referee-project/referee/pipeline/videoio"
	"github.com/referee-project/referee/pipeline/videoio/videotest"
	"github.com/referee-project/referee/protocol"
)

// memSource yields pictures held in memory: frames[i] as frame i+1, since
// frame 0 is handed to the encoder by the preflight. err, when set, is
// returned instead of frame failAt.
type memSource struct {
	frames []bgr.Image
	next   int
	failAt int
	err    error
}

func (s *memSource) Read(dst *bgr.Image) error {
	s.next++
	if s.err != nil && s.next == s.failAt {
		return s.err
	}
	if s.next > len(s.frames) {
		return io.EOF
	}
	src := s.frames[s.next-1]
	if len(dst.Pix) != len(src.Pix) {
		dst.Pix = make([]byte, len(src.Pix))
	}
	dst.Width, dst.Height = src.Width, src.Height
	copy(dst.Pix, src.Pix)
	return nil
}

func drain(t *testing.T, e *encoder) []encodedFrame {
	t.Helper()
	var out []encodedFrame
	timeout := time.After(20 * time.Second)
	for {
		select {
		case f, ok := <-e.frames():
			if !ok {
				return out
			}
			out = append(out, f)
		case <-timeout:
			t.Fatal("the encoder did not finish within 20s")
		}
	}
}

func TestEncoderKeepsOrder(t *testing.T) {
	const n = 60
	frames := videotest.CounterFrames(n, 160, 120)
	start := time.Unix(1_700_000_000, 0)
	for _, tc := range []struct {
		encoding string
		v2       bool
	}{{protocol.EncodingJPEG, true}, {protocol.EncodingJPEG, false}, {protocol.EncodingPNG, true}, {protocol.EncodingRaw, true}, {protocol.EncodingRaw, false}} {
		name := tc.encoding + "/v1"
		if tc.v2 {
			name = tc.encoding + "/v2"
		}
		t.Run(name, func(t *testing.T) {
			// More workers than cores: results finish out of order, and
			// must still come out in order.
			e := startEncoder(context.Background(), &memSource{frames: frames[1:]}, frames[0], encodeConfig{
				encoding: tc.encoding, quality: 85, v2: tc.v2, fps: 25, start: start, workers: 4,
			})
			defer e.stop()
			got := drain(t, e)
			if len(got) != n {
				t.Fatalf("%d frames out, want %d", len(got), n)
			}
			for i, f := range got {
				if f.err != nil || f.number != i {
					t.Fatalf("frame %d: number %d, err %v", i, f.number, f.err)
				}
				if want := start.Add(time.Duration(i) * 40 * time.Millisecond); !f.captured.Equal(want) {
					t.Errorf("frame %d captured at %v, want %v (start + i/fps)", i, f.captured, want)
				}
				payload := f.data
				if tc.v2 {
					hdr, p, err := protocol.ParseFrame(f.data)
					if err != nil || hdr.FrameNumber != i || hdr.Encoding != tc.encoding || hdr.TimestampMicros != f.captured.UnixMicro() {
						t.Fatalf("frame %d: v2 header %+v, %v", i, hdr, err)
					}
					payload = p
				}
				if len(payload) != f.size {
					t.Errorf("frame %d: size %d, payload %d bytes", i, f.size, len(payload))
				}
				var img bgr.Image
				if tc.encoding == protocol.EncodingRaw {
					h, w, _, pix, err := protocol.ParseRaw(payload)
					if err != nil {
						t.Fatal(err)
					}
					img = bgr.Image{Width: w, Height: h, Pix: pix}
				} else if err := videoio.Decode(payload, &img); err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if c, err := synth.DecodeCounter(img); err != nil || c != i {
					t.Fatalf("frame %d decodes to counter %d (%v)", i, c, err)
				}
			}
		})
	}
}

func TestEncoderStopsAtFirstFailure(t *testing.T) {
	frames := videotest.CounterFrames(20, 96, 64)
	errBad := errors.New("bad sector")
	resized := append([]bgr.Image(nil), frames...)
	resized[5] = bgr.New(64, 48)
	for _, tc := range []struct {
		name string
		src  *memSource
		n    int
		want string
	}{
		{"read error", &memSource{frames: frames[1:], failAt: 9, err: errBad}, 9, "Failed to read frame 9: bad sector"},
		{"size change", &memSource{frames: resized[1:]}, 5, "Failed to read frame 5: it is 64x48 but the video started at 96x64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startEncoder(context.Background(), tc.src, frames[0], encodeConfig{encoding: protocol.EncodingJPEG, quality: 85, fps: 25, workers: 2})
			defer e.stop()
			got := drain(t, e)
			if len(got) != tc.n+1 {
				t.Fatalf("%d values out, want %d frames and the failure", len(got), tc.n)
			}
			for i, f := range got[:tc.n] {
				if f.err != nil || f.number != i {
					t.Fatalf("frame %d: number %d, err %v", i, f.number, f.err)
				}
			}
			if last := got[tc.n]; last.err == nil || last.err.Error() != tc.want {
				t.Errorf("last value's error %v, want %q", last.err, tc.want)
			}
			if tc.src.err != nil && !errors.Is(got[tc.n].err, tc.src.err) {
				t.Errorf("the failure does not wrap the read error")
			}
		})
	}
}

func TestEncoderStopsEarly(t *testing.T) {
	frames := videotest.CounterFrames(200, 160, 120)
	src := &memSource{frames: frames[1:]}
	e := startEncoder(context.Background(), src, frames[0], encodeConfig{encoding: protocol.EncodingPNG, fps: 25, workers: 2})
	for range 3 {
		if f := <-e.frames(); f.err != nil {
			t.Fatal(f.err)
		}
	}
	stopped := make(chan struct{})
	go func() {
		e.stop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("stop did not return within 10s")
	}
	drain(t, e)
	// Three frames taken, then stop: the reader may be ahead by what the
	// workers and channels hold (as in TestEncoderMemoryIsBounded), not
	// through the rest of the source.
	if read, bound := src.next, 3+3*2+4; read > bound {
		t.Errorf("the reader read %d of %d frames though the encoder was stopped after 3, want at most %d", read, len(src.frames), bound)
	}
}

func TestEncoderMemoryIsBounded(t *testing.T) {
	// A consumer that takes nothing: the reader must stop after a few
	// frames instead of decoding the whole source into memory.
	src := &memSource{frames: videotest.CounterFrames(500, 64, 48)[1:]}
	e := startEncoder(context.Background(), src, bgr.New(64, 48), encodeConfig{encoding: protocol.EncodingRaw, fps: 25, workers: 2})
	time.Sleep(200 * time.Millisecond)
	e.stop()
	if read, bound := src.next, 3*2+4; read > bound {
		t.Errorf("the reader read %d frames ahead of a stalled sender, want at most %d", read, bound)
	}
}

// BenchmarkEncodeParallel measures the client's encode stage: frames/s
// read, encoded as JPEG (q85) on the ordered pool and handed out in order,
// for a 640x480 fencing scene, with one worker and with one per CPU.
func BenchmarkEncodeParallel(b *testing.B) {
	sc := synth.Scenarios()[0]
	img := bgr.New(640, 480)
	sc.Render(img, sc.Duration/2)
	for _, workers := range []int{1, runtime.NumCPU()} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			src := &repeatSource{img: img, n: b.N}
			b.ResetTimer()
			e := startEncoder(context.Background(), src, img, encodeConfig{encoding: protocol.EncodingJPEG, quality: 85, v2: true, fps: 30, workers: workers})
			var bytes int64
			for f := range e.frames() {
				if f.err != nil {
					b.Fatal(f.err)
				}
				bytes += int64(len(f.data))
			}
			e.stop()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
			b.ReportMetric(float64(bytes)/float64(b.N), "B/frame")
		})
	}
}

// repeatSource yields the same picture n-1 times after the first.
type repeatSource struct {
	img bgr.Image
	n   int
	i   int
}

func (s *repeatSource) Read(dst *bgr.Image) error {
	s.i++
	if s.i >= s.n {
		return io.EOF
	}
	if len(dst.Pix) != len(s.img.Pix) {
		dst.Pix = make([]byte, len(s.img.Pix))
	}
	dst.Width, dst.Height = s.img.Width, s.img.Height
	copy(dst.Pix, s.img.Pix)
	return nil
}
