// h264.c: see h264.h.
#include "h264.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>

struct referee_h264 {
	AVFormatContext *oc;
	AVCodecContext *c;
	AVStream *st;
	struct SwsContext *sws;
	AVFrame *frame;
	AVPacket *pkt;
	int64_t next_pts;
	int header_written;
};

static void say(char *err, int errlen, const char *what, int code) {
	char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
	if (code != 0) {
		av_strerror(code, buf, sizeof buf);
		snprintf(err, errlen, "%s: %s", what, buf);
	} else {
		snprintf(err, errlen, "%s", what);
	}
}

static void release(referee_h264 *w) {
	if (!w) return;
	if (w->oc && w->oc->pb) avio_closep(&w->oc->pb);
	if (w->oc) avformat_free_context(w->oc);
	if (w->c) avcodec_free_context(&w->c);
	if (w->sws) sws_freeContext(w->sws);
	if (w->frame) av_frame_free(&w->frame);
	if (w->pkt) av_packet_free(&w->pkt);
	free(w);
}

referee_h264 *referee_h264_open(const char *path, int width, int height, int fps_num, int fps_den,
                                const char *preset, int crf, int gop, char *err, int errlen) {
	referee_h264 *w = calloc(1, sizeof *w);
	if (!w) {
		say(err, errlen, "out of memory", 0);
		return NULL;
	}
	int rc = avformat_alloc_output_context2(&w->oc, NULL, "mp4", path);
	if (rc < 0 || !w->oc) {
		say(err, errlen, "no MP4 muxer in FFmpeg", rc);
		release(w);
		return NULL;
	}
	const AVCodec *codec = avcodec_find_encoder_by_name("libx264");
	if (!codec) {
		say(err, errlen, "no libx264 encoder in FFmpeg", 0);
		release(w);
		return NULL;
	}
	w->st = avformat_new_stream(w->oc, NULL);
	w->c = avcodec_alloc_context3(codec);
	w->frame = av_frame_alloc();
	w->pkt = av_packet_alloc();
	if (!w->st || !w->c || !w->frame || !w->pkt) {
		say(err, errlen, "out of memory", 0);
		release(w);
		return NULL;
	}
	w->c->width = width;
	w->c->height = height;
	w->c->time_base = (AVRational){fps_den, fps_num};
	w->c->framerate = (AVRational){fps_num, fps_den};
	w->c->pix_fmt = AV_PIX_FMT_YUV420P;
	w->c->gop_size = gop;
	// No B-frames: frames decode in the order they show, so that a
	// browser stepping back and forth frame by frame decodes little.
	w->c->max_b_frames = 0;
	w->c->thread_count = 0;
	// x264's statistics at the end are information lines on stderr, which
	// a server's log does not want: shift them below FFmpeg's default
	// level. Warnings and errors still show.
	w->c->log_level_offset = AV_LOG_VERBOSE - AV_LOG_INFO;
	if (w->oc->oformat->flags & AVFMT_GLOBALHEADER) w->c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
	av_opt_set(w->c->priv_data, "preset", preset, 0);
	av_opt_set_int(w->c->priv_data, "crf", crf, 0);
	if ((rc = avcodec_open2(w->c, codec, NULL)) < 0) {
		say(err, errlen, "open the libx264 encoder", rc);
		release(w);
		return NULL;
	}
	if ((rc = avcodec_parameters_from_context(w->st->codecpar, w->c)) < 0) {
		say(err, errlen, "set the stream parameters", rc);
		release(w);
		return NULL;
	}
	w->st->time_base = w->c->time_base;
	w->frame->format = AV_PIX_FMT_YUV420P;
	w->frame->width = width;
	w->frame->height = height;
	if ((rc = av_frame_get_buffer(w->frame, 0)) < 0) {
		say(err, errlen, "allocate a frame", rc);
		release(w);
		return NULL;
	}
	w->sws = sws_getContext(width, height, AV_PIX_FMT_BGR24, width, height, AV_PIX_FMT_YUV420P, SWS_BILINEAR, NULL, NULL, NULL);
	if (!w->sws) {
		say(err, errlen, "create the colour converter", 0);
		release(w);
		return NULL;
	}
	if ((rc = avio_open(&w->oc->pb, path, AVIO_FLAG_WRITE)) < 0) {
		say(err, errlen, "create the file", rc);
		release(w);
		return NULL;
	}
	// The index stays at the end (no faststart, which rewrites the file
	// and logs that it does): browsers fetch it with a Range request.
	rc = avformat_write_header(w->oc, NULL);
	if (rc < 0) {
		say(err, errlen, "write the MP4 header", rc);
		release(w);
		return NULL;
	}
	w->header_written = 1;
	return w;
}

// drain writes every packet the encoder has ready.
static int drain(referee_h264 *w, char *err, int errlen) {
	for (;;) {
		int rc = avcodec_receive_packet(w->c, w->pkt);
		if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return 0;
		if (rc < 0) {
			say(err, errlen, "encode a frame", rc);
			return rc;
		}
		// One frame per packet: the last frame then counts in the
		// duration, and players compute the right rate.
		if (w->pkt->duration == 0) w->pkt->duration = 1;
		av_packet_rescale_ts(w->pkt, w->c->time_base, w->st->time_base);
		w->pkt->stream_index = w->st->index;
		rc = av_interleaved_write_frame(w->oc, w->pkt);
		if (rc < 0) {
			say(err, errlen, "write a frame", rc);
			return rc;
		}
	}
}

int referee_h264_write(referee_h264 *w, const uint8_t *bgr, int stride, char *err, int errlen) {
	int rc = av_frame_make_writable(w->frame);
	if (rc < 0) {
		say(err, errlen, "make the frame writable", rc);
		return rc;
	}
	const uint8_t *src[1] = {bgr};
	const int srcStride[1] = {stride};
	sws_scale(w->sws, src, srcStride, 0, w->c->height, w->frame->data, w->frame->linesize);
	w->frame->pts = w->next_pts++;
	if ((rc = avcodec_send_frame(w->c, w->frame)) < 0) {
		say(err, errlen, "encode a frame", rc);
		return rc;
	}
	return drain(w, err, errlen);
}

int referee_h264_close(referee_h264 *w, char *err, int errlen) {
	int rc = avcodec_send_frame(w->c, NULL);
	if (rc >= 0) rc = drain(w, err, errlen);
	else say(err, errlen, "flush the encoder", rc);
	if (rc >= 0 && w->header_written) {
		rc = av_write_trailer(w->oc);
		if (rc < 0) say(err, errlen, "finish the MP4 file", rc);
	}
	release(w);
	return rc < 0 ? rc : 0;
}
