// h264.h: an H.264 MP4 writer on FFmpeg's libavcodec and libx264, for the
// browser videos, with the encoder's speed preset under our control
// (OpenCV's avc1 writer always encodes at x264's slow default).
#ifndef REFEREE_H264_H
#define REFEREE_H264_H

#include <stdint.h>

typedef struct referee_h264 referee_h264;

// referee_h264_open creates path; NULL with a message in err on failure.
referee_h264 *referee_h264_open(const char *path, int width, int height, int fps_num, int fps_den,
                                const char *preset, int crf, int gop, char *err, int errlen);
// referee_h264_write encodes one BGR24 picture; 0 or a message in err.
int referee_h264_write(referee_h264 *w, const uint8_t *bgr, int stride, char *err, int errlen);
// referee_h264_close flushes, finishes the file (moov first) and frees w;
// 0 or a message in err. w is freed either way.
int referee_h264_close(referee_h264 *w, char *err, int errlen);

#endif
