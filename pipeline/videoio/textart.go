package videoio

/*
#cgo pkg-config: libavcodec libavformat libavutil
#include <stdlib.h>
#include "textart.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// textArt names what each of FFmpeg's text-art decoders draws. FFmpeg's
// tty demuxer takes text files (by their name: .txt, .asc, .nfo, ...; a
// phrase log is one) and hands them to the ansi decoder, which renders
// the characters as 640x400 frames; the bin, adf, xbin and idf demuxers
// feed the others. A camera never gives any of them.
var textArt = map[string]string{
	"ansi":    "ANSI art",
	"bintext": "binary text art",
	"xbin":    "XBIN text art",
	"idf":     "iCEDraw text art",
}

// TextError is why OpenFile and Probe refuse a file that FFmpeg reads
// with a text-art decoder: it is text (a phrase log given as the video,
// notes), not a video, though OpenCV would open it and decode its
// characters as frames. Their error wraps both ErrCannotOpen and the
// *TextError.
type TextError struct {
	// Codec is FFmpeg's name of the decoder: ansi, bintext, xbin or idf.
	Codec string
}

func (e *TextError) Error() string {
	return fmt.Sprintf("text, not a video: FFmpeg reads it as %s (codec %s)", textArt[e.Codec], e.Codec)
}

// textArtCodec returns the codec of the first video stream of the file at
// path when it is one of FFmpeg's text-art decoders, "" otherwise. The
// file is named with FFmpeg's file: protocol so that a path holding a
// colon is never taken for a URL.
func textArtCodec(path string) string {
	cpath := C.CString("file:" + path)
	defer C.free(unsafe.Pointer(cpath))
	codec := C.GoString(C.referee_video_codec(cpath))
	if _, ok := textArt[codec]; ok {
		return codec
	}
	return ""
}
