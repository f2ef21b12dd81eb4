package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/jpeg"
	"io"
	"iter"
	"os"
	"path/filepath"
	"runtime"

	"github.com/referee-project/referee/pipeline/avi"
	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/ordered"
	"github.com/referee-project/referee/pipeline/tracks"
	"github.com/referee-project/referee/pipeline/videoio"
	"github.com/referee-project/referee/protocol"
)

// FourCCs of the videos Run writes.
const (
	codecMJPEG = "MJPG"
	codecH264  = "avc1"
)

// progressUpdates is about how many progress reports reconstruction sends
// besides the first and the last: enough for a smooth bar, few enough not
// to crowd the connection to the client.
const progressUpdates = 20

// rebuiltJPEGQuality is the quality of the JPEG a PNG or raw frame becomes
// in an MJPEG video: high, since the frame was sent without loss.
const rebuiltJPEGQuality = 90

// checkVideoJob checks the fields of job that reconstruction uses.
func checkVideoJob(job Job) error {
	if job.TracksPath != "" {
		if job.Frames != nil || job.VideoPath != "" {
			return errors.New("the job has tracks and a video; give one")
		}
		return nil
	}
	if job.VideoPath != "" {
		if job.Frames != nil {
			return errors.New("the job has both frames and a video path; give one")
		}
		return nil
	}
	if job.Frames == nil {
		return errors.New("the job has neither frames nor a video path")
	}
	switch job.VideoFormat {
	case "", VideoFormatMJPEG, VideoFormatH264:
	default:
		return fmt.Errorf("unknown video format %q: use %q or %q", job.VideoFormat, VideoFormatMJPEG, VideoFormatH264)
	}
	if !(job.FPS >= avi.MinFPS && job.FPS <= avi.MaxFPS) {
		return fmt.Errorf("frame rate %v out of range: it must be %v to %v frames per second", job.FPS, avi.MinFPS, avi.MaxFPS)
	}
	if job.Width < 1 || job.Height < 1 || job.Width > avi.MaxDimension || job.Height > avi.MaxDimension {
		return fmt.Errorf("frame size %dx%d out of range: width and height must be 1 to %d", job.Width, job.Height, avi.MaxDimension)
	}
	if job.Frames.Count() == 0 {
		return errors.New("no frames to rebuild: the session received none")
	}
	return nil
}

// reconstruct puts the job's video into dir and returns its absolute path
// and summary.
func reconstruct(ctx context.Context, job Job, dir string, progress func(float64, string)) (string, VideoSummary, error) {
	if job.VideoPath != "" {
		return copyVideo(job.VideoPath, dir, progress)
	}
	return rebuild(ctx, job, dir, progress)
}

// rebuild writes the job's frames, in order, into a video in dir, and reads
// it back to make sure it holds them all. On error it removes the video.
//
// An MJPEG video is written by package avi: JPEG frames go in as received,
// other frames are decoded and encoded as JPEG. An H.264 video is encoded
// by libx264 (videoio.CreateH264) from decoded frames. Unless the frames can go in as received,
// as the first frame tells, frames are decoded (and encoded) on one
// goroutine per CPU, a few frames ahead of the writer.
func rebuild(ctx context.Context, job Job, dir string, progress func(float64, string)) (_ string, _ VideoSummary, err error) {
	total := job.Frames.Count()
	out, err := createVideo(job, dir)
	if err != nil {
		return "", VideoSummary{}, err
	}
	name := filepath.Base(out.path)
	defer func() {
		if err != nil {
			out.close()
			os.Remove(out.path)
		}
	}()
	progress(0, fmt.Sprintf("rebuilding %d frames into %s", total, name))

	step := max(1, (total+progressUpdates-1)/progressUpdates)
	written := 0
	emit := func(p prepared) error {
		if err := out.write(p); err != nil {
			return fmt.Errorf("frame %d: %w", p.number, err)
		}
		written++
		if written%step == 0 && written < total {
			progress(float64(written)/float64(total), fmt.Sprintf("frame %d/%d", written, total))
		}
		return nil
	}
	frames := pullFrames(ctx, job.Frames)
	defer frames.stop()
	first, ok := frames.next()
	workers := runtime.GOMAXPROCS(0)
	if ok && out.codec == codecMJPEG && first.Encoding == protocol.EncodingJPEG {
		// Frames that go in as received cost less than handing them to
		// another goroutine.
		workers = 0
	}
	last := -1
	err = ordered.Run(ctx, workers, rebuildWindow(workers), func(put func(EncodedFrame) error) error {
		for f := first; ok; f, ok = frames.next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			if f.Number <= last {
				return fmt.Errorf("frame %d came after frame %d: the frame source must yield frames in order, each once", f.Number, last)
			}
			last = f.Number
			if workers > 0 {
				// The source may reuse Data once the next frame is pulled.
				f.Data = bytes.Clone(f.Data)
			}
			if err := put(f); err != nil {
				return err
			}
		}
		return frames.err
	}, func(f EncodedFrame, _ *struct{}) (prepared, error) {
		p := out.prepare(f)
		return p, p.err
	}, emit)
	if cerr := ctx.Err(); cerr != nil {
		return "", VideoSummary{}, fmt.Errorf("canceled after %d of %d frames: %w", written, total, cerr)
	}
	if err != nil {
		return "", VideoSummary{}, err
	}
	if written != total {
		return "", VideoSummary{}, fmt.Errorf("the frame source announced %d frames but gave %d", total, written)
	}
	if err := out.close(); err != nil {
		return "", VideoSummary{}, fmt.Errorf("finish %s: %w", name, err)
	}

	info, err := videoio.Probe(out.path)
	if err != nil {
		return "", VideoSummary{}, fmt.Errorf("read back: %w", err)
	}
	if info.FrameCount != written {
		return "", VideoSummary{}, fmt.Errorf("%s reads back with %d frames, %d were written", name, info.FrameCount, written)
	}
	progress(1, fmt.Sprintf("%d frames in %s (%s)", written, name, out.describe()))
	return out.path, VideoSummary{Frames: written, FPS: job.FPS, Width: job.Width, Height: job.Height, Codec: out.codec}, nil
}

// framePuller yields the frames of a FrameSource one at a time, so that
// the first frame can decide how the others are prepared.
type framePuller struct {
	// next returns the next frame, whose Data is valid until the
	// following call, or false after the last frame or a failure.
	next func() (EncodedFrame, bool)
	// stop ends the source's Each early; it must be called in any case.
	stop func()
	// err is the error of the source's Each, set once next returns false.
	err error
}

func pullFrames(ctx context.Context, src FrameSource) *framePuller {
	p := &framePuller{}
	p.next, p.stop = iter.Pull(func(yield func(EncodedFrame) bool) {
		p.err = src.Each(ctx, func(f EncodedFrame) error {
			if !yield(f) {
				return errStopped
			}
			return nil
		})
	})
	return p
}

// errStopped ends a frame source's Each when its frames are no longer
// pulled.
var errStopped = errors.New("stopped")

// copyVideo checks that OpenCV reads the video at src and copies it into dir
// as "video" with src's extension.
func copyVideo(src, dir string, progress func(float64, string)) (string, VideoSummary, error) {
	info, err := videoio.Probe(src)
	if err != nil {
		return "", VideoSummary{}, err
	}
	dst := filepath.Join(dir, "video"+filepath.Ext(src))
	if err := copyFile(src, dst); err != nil {
		return "", VideoSummary{}, err
	}
	progress(1, fmt.Sprintf("copied %s into %s (%d frames)", filepath.Base(src), filepath.Base(dst), info.FrameCount))
	return dst, VideoSummary{Frames: info.FrameCount, FPS: info.FPS, Width: info.Width, Height: info.Height, Codec: info.Codec}, nil
}

// copyFile copies src to dst, unless they are the same file. On error it
// leaves no dst behind.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy the video: %w", err)
	}
	defer in.Close()
	if si, err := in.Stat(); err == nil {
		if di, err := os.Stat(dst); err == nil && os.SameFile(si, di) {
			return nil
		}
	}
	out, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("copy the video: %w", err)
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
		return fmt.Errorf("copy the video to %s: %w", dst, err)
	}
	return nil
}

// video is the file being rebuilt: either an MJPEG AVI written by package
// avi, or an H.264 MP4.
type video struct {
	path  string
	codec string
	mjpeg *avi.Writer
	h264  *videoio.H264Writer
	conv  *converter
}

// The encoding of VideoFormatH264: the phrase's archive, so x264's
// veryfast preset at its default quality rather than the browser clips'
// ultrafast; about 3 times quicker than OpenCV's avc1 writer, whose
// preset is x264's slower default, for 2.5 times less CPU
// (BenchmarkReconstructH264).
var rebuiltH264 = videoio.H264Options{Preset: "veryfast", CRF: 23}

// createVideo creates the video file for the job's format.
func createVideo(job Job, dir string) (*video, error) {
	conv := newConverter(job.Width, job.Height)
	if job.VideoFormat == VideoFormatH264 {
		path := filepath.Join(dir, "video.mp4")
		w, err := videoio.CreateH264(path, job.FPS, job.Width, job.Height, rebuiltH264)
		if err != nil {
			return nil, err
		}
		return &video{path: path, codec: codecH264, h264: w, conv: conv}, nil
	}
	path := filepath.Join(dir, "video.avi")
	w, err := avi.Create(path, avi.Config{Width: job.Width, Height: job.Height, FPS: job.FPS})
	if err != nil {
		return nil, err
	}
	return &video{path: path, codec: codecMJPEG, mjpeg: w, conv: conv}, nil
}

// prepare makes f ready for the video; it may run on any goroutine.
func (v *video) prepare(f EncodedFrame) prepared {
	p := prepared{number: f.Number}
	if v.mjpeg != nil {
		p.jpeg, p.encoded, p.err = v.conv.jpeg(f)
	} else {
		p.img, p.owned, p.err = v.conv.decode(f)
	}
	return p
}

// write appends a prepared frame.
func (v *video) write(p prepared) error {
	if v.mjpeg != nil {
		if p.encoded {
			v.conv.encoded++
		}
		return v.mjpeg.WriteFrame(p.jpeg)
	}
	err := v.h264.Write(p.img)
	if p.owned {
		v.conv.release(p.img.Pix)
	}
	return err
}

func (v *video) close() error {
	if v.mjpeg != nil {
		return v.mjpeg.Close()
	}
	return v.h264.Close()
}

// describe says how the frames were written, for the progress message.
func (v *video) describe() string {
	c := v.conv
	switch {
	case v.mjpeg == nil:
		return "decoded and encoded as " + v.codec
	case c.encoded == 0:
		return "JPEG frames stored as received"
	case c.encoded == v.mjpeg.Frames():
		return "frames encoded as JPEG"
	}
	return fmt.Sprintf("JPEG frames stored as received, %d others encoded as JPEG", c.encoded)
}

// prepared is a frame ready for the video: JPEG bytes for an MJPEG AVI,
// a picture for the H.264 encoder.
type prepared struct {
	number  int
	jpeg    []byte
	encoded bool // jpeg was encoded here, not received
	img     bgr.Image
	owned   bool // img.Pix is the converter's to reuse
	err     error
}

// rebuildWindow is the number of frames in flight while rebuilding with
// the given number of workers: enough that no worker waits while the
// writer works. Each holds a copy of its data and its prepared form, so
// memory stays bounded whatever the session's length.
func rebuildWindow(workers int) int { return 2 * workers }

// converter turns encoded frames into JPEG bytes or BGR pictures of the
// session's size. Its methods are safe for concurrent use, except that
// encoded is counted by the writer alone.
type converter struct {
	width, height int
	// free holds pixel buffers to reuse, as many as there can be frames
	// in flight.
	free    chan []byte
	encoded int
}

func newConverter(width, height int) *converter {
	inFlight := rebuildWindow(runtime.GOMAXPROCS(0)) + 1
	return &converter{width: width, height: height, free: make(chan []byte, inFlight)}
}

// jpeg returns f as JPEG bytes: a JPEG frame as it is, once its header
// shows the session's size and it ends like a whole JPEG; any other frame
// decoded and encoded (encoded true).
func (c *converter) jpeg(f EncodedFrame) (data []byte, encoded bool, err error) {
	if f.Encoding != protocol.EncodingJPEG {
		img, owned, err := c.decode(f)
		if err != nil {
			return nil, false, err
		}
		data, err = videoio.EncodeJPEG(img, rebuiltJPEGQuality)
		if owned {
			c.release(img.Pix)
		}
		if err != nil {
			return nil, false, fmt.Errorf("frame %d: %w", f.Number, err)
		}
		return data, true, nil
	}
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(f.Data))
	if err != nil {
		return nil, false, fmt.Errorf("frame %d: unreadable JPEG header: %w", f.Number, err)
	}
	if err := c.checkSize(f.Number, cfg.Width, cfg.Height); err != nil {
		return nil, false, err
	}
	// A JPEG cut short still has a good header; its end-of-image marker
	// (FF D9, possibly followed by zero padding) shows it is whole.
	if !bytes.HasSuffix(bytes.TrimRight(f.Data, "\x00"), []byte{0xFF, 0xD9}) {
		return nil, false, fmt.Errorf("frame %d: JPEG is truncated: no end-of-image marker (FF D9)", f.Number)
	}
	return f.Data, false, nil
}

// decode returns the picture of f. When owned, its pixels are a buffer of
// the converter's, to be handed back with release once written; otherwise
// they share f.Data.
func (c *converter) decode(f EncodedFrame) (img bgr.Image, owned bool, err error) {
	switch f.Encoding {
	case protocol.EncodingJPEG, protocol.EncodingPNG:
		img.Pix = c.take()
		if err := videoio.Decode(f.Data, &img); err != nil {
			c.release(img.Pix)
			return bgr.Image{}, false, fmt.Errorf("frame %d: %w", f.Number, err)
		}
		if err := c.checkSize(f.Number, img.Width, img.Height); err != nil {
			c.release(img.Pix)
			return bgr.Image{}, false, err
		}
		return img, true, nil
	case protocol.EncodingRaw:
		h, w, ch, pix, err := protocol.ParseRaw(f.Data)
		if err != nil {
			return bgr.Image{}, false, fmt.Errorf("frame %d: %w", f.Number, err)
		}
		if err := c.checkSize(f.Number, w, h); err != nil {
			return bgr.Image{}, false, err
		}
		if ch == 3 {
			return bgr.Image{Width: w, Height: h, Pix: pix}, false, nil
		}
		return toBGR(c.take(), w, h, ch, pix), true, nil
	}
	return bgr.Image{}, false, fmt.Errorf("frame %d: unknown encoding %q: want %q, %q or %q", f.Number, f.Encoding, protocol.EncodingJPEG, protocol.EncodingPNG, protocol.EncodingRaw)
}

// checkSize refuses a picture whose size is not the session's: the video
// has one size, and resizing would hide a client's mistake.
func (c *converter) checkSize(number, w, h int) error {
	if w != c.width || h != c.height {
		return fmt.Errorf("frame %d: picture is %dx%d, the session's frames are %dx%d", number, w, h, c.width, c.height)
	}
	return nil
}

// take returns a pixel buffer to reuse, or nil.
func (c *converter) take() []byte {
	select {
	case b := <-c.free:
		return b
	default:
		return nil
	}
}

// release hands back a pixel buffer from take or decode.
func (c *converter) release(b []byte) {
	if b == nil {
		return
	}
	select {
	case c.free <- b:
	default:
	}
}

// toBGR converts pix, w x h pixels of 1 (grey) or 4 (BGRA) channels, into
// BGR, in buf when it is large enough.
func toBGR(buf []byte, w, h, c int, pix []byte) bgr.Image {
	n := w * h * 3
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	dst := bgr.Image{Width: w, Height: h, Pix: buf[:n]}
	for i, j := 0, 0; i < n; i, j = i+3, j+c {
		if c == 1 {
			dst.Pix[i], dst.Pix[i+1], dst.Pix[i+2] = pix[j], pix[j], pix[j]
		} else {
			dst.Pix[i], dst.Pix[i+1], dst.Pix[i+2] = pix[j], pix[j+1], pix[j+2]
		}
	}
	return dst
}

// copyTracks checks the tracks file at path and copies it into dir as
// TracksFileName, returning the copy's path and a summary of the frames it
// covers.
func copyTracks(path, dir string) (string, VideoSummary, error) {
	t, err := tracks.ReadFile(path)
	if err != nil {
		return "", VideoSummary{}, fmt.Errorf("tracks %s: %w", path, err)
	}
	dst := filepath.Join(dir, TracksFileName)
	if err := tracks.WriteFile(dst, t); err != nil {
		return "", VideoSummary{}, err
	}
	return dst, VideoSummary{Frames: t.Frames(), FPS: t.FPS}, nil
}
