package videoio

/*
#cgo pkg-config: libavcodec libavformat libavutil libswscale
#include <stdlib.h>
#include "h264.h"
*/
import "C"

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/referee-project/referee/pipeline/bgr"
)

// H264Options choose the speed and quality of an H.264 video.
type H264Options struct {
	// Preset is libx264's speed preset: "ultrafast" ... "veryslow".
	Preset string
	// CRF is libx264's constant rate factor, 0 to 51: lower is better
	// and larger; 23 is its default.
	CRF int
}

// H264Writer writes an H.264 MP4 file that browsers play (Chromium's
// proprietary-codec builds, Firefox, Safari), with a key frame every
// second for quick seeks and no B-frames. It encodes through FFmpeg's
// libx264 directly, unlike Create's avc1 writer, whose speed preset
// OpenCV fixes at x264's default, several times slower.
type H264Writer struct {
	w             *C.referee_h264
	path          string
	width, height int
	frames        int
}

const errLen = 256

// CreateH264 opens path for an H.264 MP4 video of width x height (both
// even: 4:2:0 colour halves them) at fps frames per second. A missing
// libx264 encoder is an error wrapping ErrCodec.
func CreateH264(path string, fps float64, width, height int, opts H264Options) (*H264Writer, error) {
	if width < 2 || height < 2 || width%2 != 0 || height%2 != 0 {
		return nil, fmt.Errorf("create video %s: %dx%d: H.264 wants even sides of 2 pixels or more", path, width, height)
	}
	if !(fps > 0 && fps <= 1000) {
		return nil, fmt.Errorf("create video %s: frame rate %v out of range", path, fps)
	}
	if opts.Preset == "" {
		opts.Preset = "veryfast"
	}
	// The rate as a fraction in thousandths: 29.97 is 29970/1000.
	num, den := int(math.Round(fps*1000)), 1000
	cpath, cpreset := C.CString(path), C.CString(opts.Preset)
	defer C.free(unsafe.Pointer(cpath))
	defer C.free(unsafe.Pointer(cpreset))
	var msg [errLen]C.char
	w := C.referee_h264_open(cpath, C.int(width), C.int(height), C.int(num), C.int(den), cpreset, C.int(opts.CRF), C.int(max(1, int(math.Round(fps)))), &msg[0], errLen)
	if w == nil {
		text := C.GoString(&msg[0])
		if text == "no libx264 encoder in FFmpeg" {
			return nil, fmt.Errorf("create video %s: %w: %s (install FFmpeg's libavcodec with libx264)", path, ErrCodec, text)
		}
		return nil, fmt.Errorf("create video %s: %s", path, text)
	}
	return &H264Writer{w: w, path: path, width: width, height: height}, nil
}

// Write encodes img, which must be the writer's size.
func (w *H264Writer) Write(img bgr.Image) error {
	if w.w == nil {
		return fmt.Errorf("write to video %s: the writer is closed", w.path)
	}
	if img.Width != w.width || img.Height != w.height || !img.Valid() {
		return fmt.Errorf("write to video %s: a %dx%d picture into a %dx%d video", w.path, img.Width, img.Height, w.width, w.height)
	}
	var msg [errLen]C.char
	if C.referee_h264_write(w.w, (*C.uint8_t)(unsafe.Pointer(&img.Pix[0])), C.int(img.Width*3), &msg[0], errLen) != 0 {
		return fmt.Errorf("write frame %d to video %s: %s", w.frames, w.path, C.GoString(&msg[0]))
	}
	w.frames++
	return nil
}

// Close flushes the encoder and finishes the file. It may be called more
// than once.
func (w *H264Writer) Close() error {
	if w.w == nil {
		return nil
	}
	var msg [errLen]C.char
	rc := C.referee_h264_close(w.w, &msg[0], errLen)
	w.w = nil
	if rc != 0 {
		return fmt.Errorf("finish video %s: %s", w.path, C.GoString(&msg[0]))
	}
	return nil
}
