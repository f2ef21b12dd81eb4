package videoio

/*
#cgo !windows pkg-config: opencv4
#cgo CXXFLAGS: --std=c++11
#include "quiet.h"
*/
import "C"

import "os"

// Quiet keeps OpenCV's and FFmpeg's own messages ("moov atom not found",
// GStreamer warnings, exceptions OpenCV catches itself) off stderr, where
// they would bury the one line a command prints to say what failed. Errors
// are still returned as usual. It affects the whole process; an
// OPENCV_FFMPEG_LOGLEVEL already set in the environment is kept, so that a
// user chasing a codec problem can still see FFmpeg.
func Quiet() {
	C.referee_opencv_silence()
	if _, set := os.LookupEnv("OPENCV_FFMPEG_LOGLEVEL"); !set {
		// FFmpeg reads this when OpenCV first initialises it; -8 is
		// AV_LOG_QUIET.
		_ = os.Setenv("OPENCV_FFMPEG_LOGLEVEL", "-8")
	}
}
