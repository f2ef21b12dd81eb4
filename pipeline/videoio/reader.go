package videoio

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"slices"
	"strings"

	"gocv.io/x/gocv"

	"github.com/referee-project/referee/pipeline/bgr"
)

// Info describes a video source as OpenCV sees it. It is what
// `referee probe-video` prints and what the old Python check printed
// (opened, read frame, frame shape), plus the header's figures.
type Info struct {
	// Path is the file name, or "camera:N" for camera N.
	Path string `json:"path"`
	// Opened says whether OpenCV opened the source.
	Opened bool `json:"opened"`
	// ReadFrame says whether the first frame decoded.
	ReadFrame bool `json:"read_frame"`
	// Width, Height and Channels are those of the first frame (the frame
	// shape), zero when it did not decode.
	Width    int `json:"width"`
	Height   int `json:"height"`
	Channels int `json:"channels"`
	// FPS is the frame rate the container declares.
	FPS float64 `json:"fps"`
	// FrameCount is the container's frame count. It can be wrong (a
	// truncated file keeps its header), zero or negative (cameras, some
	// streams): read to io.EOF to count frames.
	FrameCount int `json:"frame_count"`
	// Codec is the stream's FOURCC as four characters, non-printable bytes
	// shown as '?', or "" when the container gives none (Matroska and WebM
	// report 0 for VP8, VP9 and AV1).
	Codec string `json:"codec"`
	// DurationS is FrameCount / FPS, or 0 when either is not positive.
	DurationS float64 `json:"duration_s"`
	// Backend is the OpenCV video backend that opened the source, such as
	// "FFMPEG" for files or "V4L2" for a camera on Linux.
	Backend string `json:"backend"`
}

// Reader reads the frames of a video file or a camera in order. It holds
// OpenCV resources until Close and is not safe for concurrent use.
type Reader struct {
	capture *gocv.VideoCapture
	frame   gocv.Mat
	// pending says frame holds the first frame, read by the opener to
	// check the source, not yet returned by Read.
	pending bool
	closed  bool
	info    Info
}

// Probe opens the video file at path, reads its first frame and closes it,
// returning what it learnt. On error the Info is filled as far as Probe got
// and the error, which names the path, says what failed: a missing file
// wraps fs.ErrNotExist, a file OpenCV cannot open (empty, a folder, not a
// video, an unsupported codec) wraps ErrCannotOpen, a text file that
// FFmpeg would play as text art (a phrase log) wraps ErrCannotOpen and a
// *TextError, and a video whose first frame does not decode wraps
// ErrNoFrames.
func Probe(path string) (Info, error) {
	r, info, err := openFile(path)
	if err != nil {
		return info, err
	}
	return info, r.Close()
}

// OpenFile opens the video file at path for reading and decodes its first
// frame, so that a file that cannot be played fails here, before anything
// is sent anywhere, with the errors Probe describes. The first Read returns
// that frame.
//
// Files are opened with OpenCV's FFmpeg backend only: it reads every
// format this package writes, while letting OpenCV fall back to GStreamer
// and the image-sequence reader on a bad file only adds noise on stderr
// and, for names with digits, an attempt to read a numbered image series.
func OpenFile(path string) (*Reader, error) {
	r, _, err := openFile(path)
	return r, err
}

func openFile(path string) (*Reader, Info, error) {
	info := Info{Path: path}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, info, fmt.Errorf("video %s: %w (check the path)", path, fs.ErrNotExist)
	}
	if err != nil {
		return nil, info, fmt.Errorf("video %s: cannot read the file (check its permissions): %w", path, err)
	}
	st, err := f.Stat()
	f.Close()
	switch {
	case err != nil:
		return nil, info, fmt.Errorf("video %s: cannot read the file: %w", path, err)
	case st.IsDir():
		return nil, info, fmt.Errorf("video %s: %w: it is a folder, not a file", path, ErrCannotOpen)
	case st.Size() == 0:
		return nil, info, fmt.Errorf("video %s: %w: the file is empty (0 bytes)", path, ErrCannotOpen)
	}
	capture, err := gocv.VideoCaptureFileWithAPI(path, gocv.VideoCaptureFFmpeg)
	if err != nil {
		capture.Close()
		return nil, info, fmt.Errorf("video %s: %w: not a video in a container and codec this OpenCV (%s, FFmpeg backend) can read", path, ErrCannotOpen, gocv.OpenCVVersion())
	}
	// Asked only once OpenCV has opened the file: a file it cannot open
	// needs no second look, and OpenCV has by then set FFmpeg's log level.
	if codec := textArtCodec(path); codec != "" {
		capture.Close()
		return nil, info, fmt.Errorf("video %s: %w: it is %w", path, ErrCannotOpen, &TextError{Codec: codec})
	}
	return start(capture, info)
}

// urlSchemes are the network sources OpenURL opens: what IP cameras serve
// (RTSP, MJPEG over HTTP) and video files over HTTP.
var urlSchemes = []string{"rtsp", "rtsps", "http", "https"}

// IsURL reports whether source names a network video source for OpenURL
// rather than a file.
func IsURL(source string) bool {
	u, err := url.Parse(source)
	return err == nil && u.Host != "" && slices.Contains(urlSchemes, strings.ToLower(u.Scheme))
}

// OpenURL opens a network video source with OpenCV's FFmpeg backend (an
// rtsp:// camera, an http(s):// MJPEG stream as IP cameras serve it, or a
// video file over HTTP) and reads a first frame, which the first Read
// returns. OpenCV bounds the wait to open the source and each read with its
// own 30 s timeouts, so a source that goes silent ends in io.EOF. Errors
// wrap ErrCannotOpen (not reachable, or not a video) or ErrNoFrames.
func OpenURL(source string) (*Reader, error) {
	if !IsURL(source) {
		return nil, fmt.Errorf("video %s: %w: not a URL with a host and one of the schemes %s", source, ErrCannotOpen, strings.Join(urlSchemes, ", "))
	}
	capture, err := gocv.VideoCaptureFileWithAPI(source, gocv.VideoCaptureFFmpeg)
	if err != nil {
		capture.Close()
		return nil, fmt.Errorf("video %s: %w: nothing answered there, or it is not a video stream this OpenCV (%s, FFmpeg backend) can read", source, ErrCannotOpen, gocv.OpenCVVersion())
	}
	r, _, err := start(capture, Info{Path: source})
	return r, err
}

// OpenCamera opens camera index (0 is the first, /dev/video0 on Linux)
// with whichever backend OpenCV picks and reads a first frame, which the
// first Read returns. Its Info has Path "camera:N"; FrameCount is
// meaningless for a camera.
func OpenCamera(index int) (*Reader, error) {
	info := Info{Path: fmt.Sprintf("camera:%d", index)}
	if index < 0 {
		return nil, fmt.Errorf("camera %d: %w: a camera index is 0 or more", index, ErrCannotOpen)
	}
	capture, err := gocv.VideoCaptureDeviceWithAPI(index, gocv.VideoCaptureAny)
	if err != nil {
		capture.Close()
		return nil, fmt.Errorf("camera %d: %w: no such camera, or it is busy or not permitted (on Linux check that /dev/video%d exists and is readable)", index, ErrCannotOpen, index)
	}
	r, _, err := start(capture, info)
	return r, err
}

// start fills info from an opened capture and reads the first frame; it
// owns capture and closes it on error.
func start(capture *gocv.VideoCapture, info Info) (*Reader, Info, error) {
	info.Opened = true
	info.FPS = capture.Get(gocv.VideoCaptureFPS)
	info.FrameCount = int(capture.Get(gocv.VideoCaptureFrameCount))
	info.Codec = fourccString(uint32(int64(capture.Get(gocv.VideoCaptureFOURCC))))
	info.Backend = backendName(gocv.VideoCaptureAPI(capture.Get(gocv.VideoCaptureBackend)))
	if info.FrameCount > 0 && info.FPS > 0 {
		info.DurationS = float64(info.FrameCount) / info.FPS
	}
	r := &Reader{capture: capture, frame: gocv.NewMat(), info: info}
	if !capture.Read(&r.frame) || r.frame.Empty() {
		r.Close()
		return nil, info, fmt.Errorf("video %s: %w: opened, but the first frame does not decode (no frames, or a truncated or corrupt file)", info.Path, ErrNoFrames)
	}
	info.ReadFrame = true
	info.Width, info.Height, info.Channels = r.frame.Cols(), r.frame.Rows(), r.frame.Channels()
	r.info = info
	r.pending = true
	return r, info, nil
}

// Info returns what the opener learnt about the source; it does not change
// while reading.
func (r *Reader) Info() Info { return r.info }

// Read decodes the next frame into dst, reusing dst.Pix when it is large
// enough (so a loop over one dst allocates once). It returns io.EOF after
// the last frame (for a camera, when it stops delivering), ErrClosed after
// Close.
func (r *Reader) Read(dst *bgr.Image) error {
	if r.closed {
		return fmt.Errorf("video %s: %w", r.info.Path, ErrClosed)
	}
	if r.pending {
		r.pending = false
	} else if !r.capture.Read(&r.frame) || r.frame.Empty() {
		return io.EOF
	}
	if err := copyMat(r.frame, dst); err != nil {
		return fmt.Errorf("video %s: %w", r.info.Path, err)
	}
	return nil
}

// Close releases the OpenCV capture and frame. Closing twice is harmless.
func (r *Reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.frame.Close()
	return r.capture.Close()
}

// fourccString spells a FOURCC code, lowest byte first as OpenCV packs it.
func fourccString(v uint32) string {
	if v == 0 {
		return ""
	}
	b := make([]byte, 4)
	for i := range b {
		c := byte(v >> (8 * i))
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		b[i] = c
	}
	return string(b)
}

// backendName gives OpenCV's own names (videoio_registry) for the backends
// a Linux build has; gocv v0.31.0 only has its own kebab-case names.
func backendName(api gocv.VideoCaptureAPI) string {
	switch api {
	case gocv.VideoCaptureFFmpeg:
		return "FFMPEG"
	case gocv.VideoCaptureGstreamer:
		return "GSTREAMER"
	case gocv.VideoCaptureV4L2:
		return "V4L2"
	case gocv.VideoCaptureImages:
		return "CV_IMAGES"
	case gocv.VideoCaptureOpencvMjpeg:
		return "CV_MJPEG"
	}
	return api.String()
}
