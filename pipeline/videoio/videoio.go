// Package videoio is the project's only door to OpenCV (through gocv
// v0.31.0 and Debian 12's OpenCV 4.6.0): it opens and probes video files
// and cameras, writes videos, encodes and decodes JPEG and PNG and resizes
// pictures, always exchanging pixels as bgr.Image so that no other package
// needs cgo.
//
// Every gocv.Mat made here is closed before the call returns. Readers and
// Writers hold OpenCV objects and must be closed; they are not safe for
// concurrent use. EncodeJPEG, EncodePNG, Decode and Resize are.
package videoio

import (
	"errors"
	"fmt"
	"image"
	"runtime"

	"gocv.io/x/gocv"

	"github.com/referee-project/referee/pipeline/bgr"
)

// Errors returned, wrapped with the path and what to check, by this
// package. Missing files wrap fs.ErrNotExist instead.
var (
	// ErrCannotOpen means OpenCV cannot open the source: a file that is
	// empty, a folder, not a video (text that FFmpeg would draw as text
	// art is refused with a *TextError too), or in a format or codec this
	// OpenCV build cannot read, or a camera that is absent, busy or
	// forbidden.
	ErrCannotOpen = errors.New("cannot open video")
	// ErrNoFrames means the video opened but its first frame does not
	// decode: it has no frames, or is truncated or corrupt.
	ErrNoFrames = errors.New("video has no readable frame")
	// ErrCodec means OpenCV cannot write this fourcc into this container.
	ErrCodec = errors.New("codec not available")
	// ErrClosed is returned by Read and Write after Close.
	ErrClosed = errors.New("video already closed")
)

// matFromImage wraps img's pixels in a Mat without copying them.
// NewMatFromBytes hands OpenCV a pointer into img.Pix (v0.31.0 keeps the
// slice in the Mat so the garbage collector sees it); Go's collector does
// not move heap objects, and every caller closes the Mat and keeps img.Pix
// alive until OpenCV is done with it.
func matFromImage(img bgr.Image) (gocv.Mat, error) {
	if !img.Valid() {
		return gocv.Mat{}, fmt.Errorf("picture %dx%d with %d bytes is not a valid BGR image", img.Width, img.Height, len(img.Pix))
	}
	return gocv.NewMatFromBytes(img.Height, img.Width, gocv.MatTypeCV8UC3, img.Pix)
}

// copyMat copies a BGR Mat into dst, reusing dst.Pix when it is large
// enough: one copy from OpenCV's memory into Go's, where Mat.ToBytes would
// allocate a fresh slice on every frame.
func copyMat(m gocv.Mat, dst *bgr.Image) error {
	if m.Type() != gocv.MatTypeCV8UC3 {
		return fmt.Errorf("OpenCV returned a %d-channel picture of type %v, not 8-bit BGR", m.Channels(), m.Type())
	}
	src, err := m.DataPtrUint8()
	if err != nil {
		return fmt.Errorf("reading OpenCV's pixels: %w", err)
	}
	n := len(src)
	if cap(dst.Pix) >= n {
		dst.Pix = dst.Pix[:n]
	} else {
		dst.Pix = make([]byte, n)
	}
	copy(dst.Pix, src)
	dst.Width, dst.Height = m.Cols(), m.Rows()
	return nil
}

// EncodeJPEG compresses img as a baseline JPEG of the given quality
// (0..100, OpenCV's scale; 85 is a good default for streaming). It is safe
// for concurrent use.
func EncodeJPEG(img bgr.Image, quality int) ([]byte, error) {
	if quality < 0 || quality > 100 {
		return nil, fmt.Errorf("encode JPEG: quality %d is outside 0..100", quality)
	}
	return encode(img, gocv.JPEGFileExt, []int{gocv.IMWriteJpegQuality, quality})
}

// EncodePNG compresses img losslessly as PNG with OpenCV's default (fast)
// compression. It is safe for concurrent use.
func EncodePNG(img bgr.Image) ([]byte, error) {
	return encode(img, gocv.PNGFileExt, nil)
}

func encode(img bgr.Image, ext gocv.FileExt, params []int) ([]byte, error) {
	m, err := matFromImage(img)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", ext, err)
	}
	defer m.Close()
	var buf *gocv.NativeByteBuffer
	if params == nil {
		buf, err = gocv.IMEncode(ext, m)
	} else {
		buf, err = gocv.IMEncodeWithParams(ext, m, params)
	}
	runtime.KeepAlive(img.Pix)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", ext, err)
	}
	defer buf.Close()
	if buf.Len() == 0 {
		return nil, fmt.Errorf("encode %s: OpenCV produced no bytes for a %dx%d picture", ext, img.Width, img.Height)
	}
	// GetBytes points into C++ memory freed by Close: copy it out.
	return append([]byte(nil), buf.GetBytes()...), nil
}

// Decode decompresses JPEG or PNG bytes into dst as BGR (grey and alpha
// pictures are converted, EXIF orientation is ignored), reusing dst.Pix
// when it is large enough. On error dst is unchanged. It is safe for
// concurrent use (with different dst).
func Decode(data []byte, dst *bgr.Image) error {
	return decode(data, gocv.IMReadColor, dst)
}

// decode is Decode and DecodeReduced with the read flag chosen.
func decode(data []byte, flag gocv.IMReadFlag, dst *bgr.Image) error {
	if len(data) == 0 {
		return errors.New("decode picture: no data (0 bytes)")
	}
	// Ignoring EXIF orientation makes OpenCV 4.6 decode a 640x480 JPEG 2.5
	// times faster (it otherwise scans the stream for the tag); frames
	// from video and from EncodeJPEG carry no orientation anyway.
	m, err := gocv.IMDecode(data, flag|gocv.IMReadIgnoreOrientation)
	if err != nil {
		return fmt.Errorf("decode picture: %w", err)
	}
	defer m.Close()
	if m.Empty() {
		return fmt.Errorf("decode picture: %d bytes are not a JPEG or PNG picture OpenCV can read", len(data))
	}
	if err := copyMat(m, dst); err != nil {
		return fmt.Errorf("decode picture: %w", err)
	}
	return nil
}

// Resize scales src to w x h into dst with area interpolation, the right
// filter for shrinking frames before analysis (it averages instead of
// skipping pixels), reusing dst.Pix when it is large enough. dst may not
// share pixels with src. It is safe for concurrent use.
//
// Resize panics if src is not Valid or w or h is not positive: OpenCV would
// abort the whole process on such input, and a panic at least names the
// mistake.
func Resize(src bgr.Image, w, h int, dst *bgr.Image) {
	if w <= 0 || h <= 0 {
		panic(fmt.Sprintf("videoio.Resize: target size %dx%d is not positive", w, h))
	}
	in, err := matFromImage(src)
	if err != nil {
		panic("videoio.Resize: " + err.Error())
	}
	defer in.Close()
	out := gocv.NewMat()
	defer out.Close()
	gocv.Resize(in, &out, image.Pt(w, h), 0, 0, gocv.InterpolationArea)
	runtime.KeepAlive(src.Pix)
	if err := copyMat(out, dst); err != nil {
		panic("videoio.Resize: " + err.Error())
	}
}

// OpenCVVersion is the version of the OpenCV library linked in, such as
// "4.6.0", for version reports.
func OpenCVVersion() string { return gocv.OpenCVVersion() }
