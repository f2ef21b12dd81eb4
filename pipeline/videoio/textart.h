// textart.h: asks FFmpeg's demuxers which codec a file's video stream has,
// to tell text that FFmpeg would play as pictures from a video.
#ifndef REFEREE_TEXTART_H
#define REFEREE_TEXTART_H

// referee_video_codec returns FFmpeg's name of the codec of the first
// video stream of url as its demuxer declares it, without decoding a
// frame, or "" when FFmpeg cannot open url or it has no video stream. The
// string is FFmpeg's own and never freed.
const char *referee_video_codec(const char *url);

#endif
