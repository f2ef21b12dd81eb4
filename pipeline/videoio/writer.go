package videoio

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"gocv.io/x/gocv"

	"github.com/referee-project/referee/pipeline/bgr"
)

// Writer encodes frames into a video file. It holds an OpenCV writer until
// Close, which finishes the file; it is not safe for concurrent use.
type Writer struct {
	vw            *gocv.VideoWriter
	path          string
	width, height int
	closed        bool
}

// defaultFourCC is the codec Create uses for each container when given no
// fourcc. All four were checked to write and read back with Debian 12's
// OpenCV 4.6.0 and FFmpeg 5.1 (TestFourCCForPathRoundTrip).
var defaultFourCC = map[string]string{
	".mp4":  "mp4v", // MPEG-4 Part 2: what the Python client wrote, plays everywhere
	".avi":  "MJPG", // Motion JPEG: every frame a JPEG, robust and seekable
	".mkv":  "mp4v",
	".webm": "VP80", // WebM only takes VP8, VP9 and AV1
}

// FourCCForPath returns the codec Create uses for path's extension (any
// case): mp4v for .mp4 and .mkv, MJPG for .avi and VP80 for .webm. Other
// extensions are an error naming the ones supported.
func FourCCForPath(path string) (string, error) {
	ext := strings.ToLower(filepath.Ext(path))
	if cc, ok := defaultFourCC[ext]; ok {
		return cc, nil
	}
	return "", fmt.Errorf("no default codec for %q files: use .mp4 (mp4v), .avi (MJPG), .mkv (mp4v) or .webm (VP80), or give a fourcc", ext)
}

// Create opens a video file for writing: fourcc is a four-character codec
// code ("" picks FourCCForPath's), fps the frame rate and width x height
// the frame size, both positive and even (FFmpeg's encoders work on 2x2
// colour blocks, and OpenCV would silently drop an odd last row and
// column). An existing file is replaced.
//
// Errors name the path: one that cannot be written says so and wraps the
// operating system's error; a fourcc OpenCV cannot write into the
// container wraps ErrCodec and names both. Note that for some pairs
// FFmpeg substitutes a compatible tag rather than fail (MJPG or XVID in
// .mp4 is written as mp4v, H264 as avc1): Probe the result to see what was
// written.
func Create(path, fourcc string, fps float64, width, height int) (*Writer, error) {
	if fourcc == "" {
		cc, err := FourCCForPath(path)
		if err != nil {
			return nil, fmt.Errorf("create video %s: %w", path, err)
		}
		fourcc = cc
	}
	if !validFourCC(fourcc) {
		return nil, fmt.Errorf("create video %s: %w: fourcc %q is not 4 printable ASCII characters", path, ErrCodec, fourcc)
	}
	if !(fps > 0) || math.IsInf(fps, 1) {
		return nil, fmt.Errorf("create video %s: frame rate %v is not a positive number", path, fps)
	}
	if width <= 0 || height <= 0 || width%2 != 0 || height%2 != 0 {
		return nil, fmt.Errorf("create video %s: frame size %dx%d must be positive and even", path, width, height)
	}
	ext := filepath.Ext(path)
	if ext == "" {
		return nil, fmt.Errorf("create video %s: the name has no extension, so OpenCV cannot choose a container: use .mp4, .avi, .mkv or .webm", path)
	}
	created, err := checkWritable(path)
	if err != nil {
		return nil, fmt.Errorf("create video %s: cannot write the file (check that the folder exists and is writable): %w", path, err)
	}
	vw, err := gocv.VideoWriterFile(path, fourcc, fps, width, height, true)
	if err != nil || !vw.IsOpened() {
		if vw != nil {
			vw.Close()
		}
		if created {
			os.Remove(path)
		}
		return nil, fmt.Errorf("create video %s: %w: OpenCV %s cannot write fourcc %q into a %s file", path, ErrCodec, gocv.OpenCVVersion(), fourcc, ext)
	}
	return &Writer{vw: vw, path: path, width: width, height: height}, nil
}

// checkWritable creates path, or opens it for writing if it exists, so that
// a bad folder or permission is reported as such: OpenCV only says that it
// failed. created says whether the file is new, and to be removed if
// OpenCV then rejects the codec.
func checkWritable(path string) (created bool, err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		f, err = os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return false, err
		}
		return false, f.Close()
	}
	if err != nil {
		return false, err
	}
	return true, f.Close()
}

func validFourCC(s string) bool {
	if len(s) != 4 {
		return false
	}
	for i := range len(s) {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// Write appends img, which must be Valid and of the size given to Create,
// as the next frame. OpenCV does not report encoding failures (a full disk
// shows only in the file), so Write's errors are about its arguments and
// ErrClosed after Close.
func (w *Writer) Write(img bgr.Image) error {
	if w.closed {
		return fmt.Errorf("write video %s: %w", w.path, ErrClosed)
	}
	if img.Valid() && (img.Width != w.width || img.Height != w.height) {
		return fmt.Errorf("write video %s: frame is %dx%d, the video is %dx%d", w.path, img.Width, img.Height, w.width, w.height)
	}
	m, err := matFromImage(img)
	if err != nil {
		return fmt.Errorf("write video %s: %w", w.path, err)
	}
	defer m.Close()
	err = w.vw.Write(m)
	runtime.KeepAlive(img.Pix)
	if err != nil {
		return fmt.Errorf("write video %s: %w", w.path, err)
	}
	return nil
}

// Close finishes the file (FFmpeg writes the index and trailer here: a
// file whose Writer was not closed is unreadable) and releases the writer.
// Closing twice is harmless.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	return w.vw.Close()
}
