// Test videos written at test time with FFmpeg's own encoders (the way tests/test_video_file.cpp
// writes its own): frames of one size into a file whose container follows the name.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/log.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}

#include "sam/image.h"

namespace sam::test {

// Encodes RGB frames into `path` with the named encoder ("ffv1", "libx264", ...), converting
// to `pix` with libswscale; `options` are the encoder's private options. Fails the test (gtest
// ADD_FAILURE) and returns false when FFmpeg refuses. Sets FFmpeg's log level to errors only.
inline bool write_test_video(const std::string& path, const std::vector<Image>& frames, const char* encoder,
                             AVPixelFormat pix, const std::vector<std::pair<const char*, const char*>>& options = {}) {
    av_log_set_level(AV_LOG_ERROR);  // the encoders' statistics are not the test's output
    bool ok = true;
    auto check = [&](bool cond, const std::string& what) {
        if (!cond && ok) {
            ADD_FAILURE() << "writing " << path << ": " << what;
            ok = false;
        }
        return cond;
    };
    AVFormatContext* oc = nullptr;
    if (!check(avformat_alloc_output_context2(&oc, nullptr, nullptr, path.c_str()) >= 0, "no container")) return false;
    const AVCodec* codec = avcodec_find_encoder_by_name(encoder);
    AVStream* st = avformat_new_stream(oc, nullptr);
    AVCodecContext* c = codec ? avcodec_alloc_context3(codec) : nullptr;
    SwsContext* sws = nullptr;
    AVPacket* pkt = av_packet_alloc();
    const int W = frames.at(0).width, H = frames.at(0).height;
    if (check(codec && c && st && pkt, std::string("FFmpeg encoder ") + encoder + " missing")) {
        c->width = W;
        c->height = H;
        c->pix_fmt = pix;
        c->time_base = AVRational{1, 25};
        c->framerate = AVRational{25, 1};
        c->gop_size = 4;
        c->thread_count = 1;
        if (oc->oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
        for (const auto& [k, v] : options) check(av_opt_set(c, k, v, AV_OPT_SEARCH_CHILDREN) >= 0, k);
        if (check(avcodec_open2(c, codec, nullptr) >= 0, "cannot open the encoder") &&
            check(avcodec_parameters_from_context(st->codecpar, c) >= 0, "stream parameters") &&
            check(avio_open(&oc->pb, path.c_str(), AVIO_FLAG_WRITE) >= 0, "cannot open the file")) {
            st->time_base = c->time_base;
            check(avformat_write_header(oc, nullptr) >= 0, "header");
            sws = sws_getContext(W, H, AV_PIX_FMT_RGB24, W, H, pix, SWS_BICUBIC, nullptr, nullptr, nullptr);
            check(sws != nullptr, "no converter");
            auto drain = [&] {
                while (avcodec_receive_packet(c, pkt) == 0) {
                    pkt->duration = 1;  // one frame (mp4's edit list would otherwise drop the last frame)
                    av_packet_rescale_ts(pkt, c->time_base, st->time_base);
                    pkt->stream_index = st->index;
                    check(av_interleaved_write_frame(oc, pkt) >= 0, "packet");
                }
            };
            for (size_t i = 0; ok && i < frames.size(); ++i) {
                AVFrame* f = av_frame_alloc();
                f->format = pix;
                f->width = W;
                f->height = H;
                if (check(av_frame_get_buffer(f, 0) >= 0, "frame buffer")) {
                    const uint8_t* src[1] = {frames[i].rgb.data()};
                    const int src_stride[1] = {W * 3};
                    sws_scale(sws, src, src_stride, 0, H, f->data, f->linesize);
                    f->pts = static_cast<int64_t>(i);
                    check(avcodec_send_frame(c, f) >= 0, "frame");
                }
                av_frame_free(&f);
                drain();
            }
            if (ok) {
                check(avcodec_send_frame(c, nullptr) >= 0, "flush");
                drain();
                check(av_write_trailer(oc) >= 0, "trailer");
            }
            avio_closep(&oc->pb);
        }
    }
    av_packet_free(&pkt);
    sws_freeContext(sws);
    avcodec_free_context(&c);
    avformat_free_context(oc);
    return ok;
}

}  // namespace sam::test
