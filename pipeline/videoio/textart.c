// textart.c: see textart.h.
#include "textart.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>

const char *referee_video_codec(const char *url) {
	AVFormatContext *ic = NULL;
	const char *name = "";
	if (avformat_open_input(&ic, url, NULL, NULL) < 0) return name;
	for (unsigned i = 0; i < ic->nb_streams; i++) {
		if (ic->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO) {
			name = avcodec_get_name(ic->streams[i]->codecpar->codec_id);
			break;
		}
	}
	avformat_close_input(&ic);
	return name;
}
