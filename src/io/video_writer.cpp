// Video files written through FFmpeg's libraries; see video_writer.h.
#include "io/video_writer.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <utility>
#include <vector>

#include "io/atomic_file.h"
#include "io/av_error.h"
#include "sam/error.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/error.h>
#include <libavutil/log.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}

namespace sam {
namespace {

struct Candidate {
    const char* encoder;
    AVPixelFormat pix;
    std::vector<std::pair<const char*, const char*>> options;  // private options of the encoder
};

std::string extension_of(const std::string& path) {
    std::string e = std::filesystem::path(path).extension().string();
    std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return e;
}

// The encoders for a container, in order of preference; throws for an unknown extension.
std::vector<Candidate> candidates_for(const std::string& path) {
    const std::string e = extension_of(path);
    if (e == ".mp4" || e == ".m4v" || e == ".mov")
        return {{"libx264", AV_PIX_FMT_YUV420P, {{"crf", "18"}, {"preset", "veryfast"}}}, {"mpeg4", AV_PIX_FMT_YUV420P, {}}};
    if (e == ".webm")
        return {{"libvpx-vp9", AV_PIX_FMT_YUV420P, {{"crf", "30"}, {"deadline", "realtime"}, {"cpu-used", "8"}}},
                {"libvpx", AV_PIX_FMT_YUV420P, {{"crf", "10"}, {"deadline", "realtime"}}}};
    if (e == ".mkv") return {{"ffv1", AV_PIX_FMT_0RGB32, {}}};
    throw Error(path + ": unsupported video extension \"" + e + "\" (use .mp4, .mkv or .webm)");
}

// The first candidate the installed libavcodec has; throws naming those tried.
std::pair<const AVCodec*, Candidate> choose(const std::string& path) {
    std::string tried;
    for (Candidate& c : candidates_for(path)) {
        if (const AVCodec* codec = avcodec_find_encoder_by_name(c.encoder)) return {codec, std::move(c)};
        tried += (tried.empty() ? "" : ", ") + std::string(c.encoder);
    }
    throw Error(path + ": no video encoder for this container in the installed FFmpeg (tried " + tried + ")");
}

}  // namespace

std::string video_encoder_for(const std::string& path) { return choose(path).second.encoder; }

struct VideoFileWriter::Impl {
    std::string path, tmp, encoder;
    AVFormatContext* oc = nullptr;
    AVCodecContext* enc = nullptr;
    AVStream* st = nullptr;
    SwsContext* sws = nullptr;
    AVFrame* frame = nullptr;
    AVPacket* packet = nullptr;
    int width = 0, height = 0;          // the frames given
    int enc_width = 0, enc_height = 0;  // the frames encoded (even for 4:2:0)
    std::vector<uint8_t> padded;
    int64_t written = 0;
    bool header_written = false, finished = false;

    [[noreturn]] void fail(const std::string& what, int err) const { throw Error(path + ": " + what + " (" + av_error(err) + ")"); }

    // Sends `f` (nullptr: flush) and writes every packet the encoder has ready.
    void encode(const AVFrame* f) {
        int err = avcodec_send_frame(enc, f);
        if (err < 0) fail("cannot encode a frame", err);
        for (;;) {
            err = avcodec_receive_packet(enc, packet);
            if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return;
            if (err < 0) fail("cannot encode a frame", err);
            packet->duration = 1;  // one frame in the encoder's time base (mp4 keeps the last frame)
            av_packet_rescale_ts(packet, enc->time_base, st->time_base);
            packet->stream_index = st->index;
            err = av_interleaved_write_frame(oc, packet);  // takes the packet's reference
            if (err < 0) fail("cannot write", err);
        }
    }

    void release() {
        if (oc && oc->pb) avio_closep(&oc->pb);
        avformat_free_context(oc);
        oc = nullptr;
        avcodec_free_context(&enc);
        sws_freeContext(sws);
        sws = nullptr;
        av_frame_free(&frame);
        av_packet_free(&packet);
    }
};

VideoFileWriter::VideoFileWriter(const std::string& path, int width, int height, int fps_num, int fps_den, int threads)
    : impl_(std::make_unique<Impl>()) {
    Impl& m = *impl_;
    m.path = path;
    if (width <= 0 || height <= 0 || int64_t{width} * height > kMaxImagePixels)
        throw Error(path + ": video frame size " + std::to_string(width) + "x" + std::to_string(height) + " out of range");
    if (fps_num <= 0 || fps_den <= 0) throw Error(path + ": frame rate must be positive");
    auto [codec, cand] = choose(path);
    m.encoder = cand.encoder;
    m.width = width;
    m.height = height;
    const bool subsampled = cand.pix == AV_PIX_FMT_YUV420P;
    m.enc_width = subsampled ? (width + 1) / 2 * 2 : width;
    m.enc_height = subsampled ? (height + 1) / 2 * 2 : height;
    av_log_set_level(AV_LOG_FATAL);
    try {
        if (int err = avformat_alloc_output_context2(&m.oc, nullptr, nullptr, path.c_str()); err < 0 || !m.oc)
            m.fail("no muxer for this file name", err);
        m.tmp = make_temporary_file(path);  // throws naming `path` when its folder cannot be written
        m.st = avformat_new_stream(m.oc, nullptr);
        m.enc = avcodec_alloc_context3(codec);
        m.frame = av_frame_alloc();
        m.packet = av_packet_alloc();
        if (!m.st || !m.enc || !m.frame || !m.packet) throw Error(path + ": out of memory");
        m.enc->width = m.enc_width;
        m.enc->height = m.enc_height;
        m.enc->pix_fmt = cand.pix;
        m.enc->time_base = AVRational{fps_den, fps_num};
        m.enc->framerate = AVRational{fps_num, fps_den};
        m.enc->gop_size = 12;
        m.enc->thread_count = std::max(threads, 0);
        if (cand.pix == AV_PIX_FMT_YUV420P) {  // what libswscale converts to by default: BT.601, limited range
            m.enc->colorspace = AVCOL_SPC_SMPTE170M;
            m.enc->color_range = AVCOL_RANGE_MPEG;
        }
        if (m.encoder == "mpeg4") {
            m.enc->flags |= AV_CODEC_FLAG_QSCALE;
            m.enc->global_quality = FF_QP2LAMBDA * 2;
        }
        if (m.oc->oformat->flags & AVFMT_GLOBALHEADER) m.enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
        for (const auto& [k, v] : cand.options) av_opt_set(m.enc->priv_data, k, v, 0);
        if (int err = avcodec_open2(m.enc, codec, nullptr); err < 0) m.fail(std::string("cannot open the ") + m.encoder + " encoder", err);
        if (int err = avcodec_parameters_from_context(m.st->codecpar, m.enc); err < 0) m.fail("bad stream parameters", err);
        m.st->time_base = m.enc->time_base;
        m.st->avg_frame_rate = m.enc->framerate;
        if (int err = avio_open(&m.oc->pb, m.tmp.c_str(), AVIO_FLAG_WRITE); err < 0) m.fail("cannot write", err);
        if (int err = avformat_write_header(m.oc, nullptr); err < 0) m.fail("cannot write the header", err);
        m.header_written = true;
        m.sws = sws_getContext(m.enc_width, m.enc_height, AV_PIX_FMT_RGB24, m.enc_width, m.enc_height, cand.pix,
                               SWS_BICUBIC | SWS_ACCURATE_RND, nullptr, nullptr, nullptr);
        if (!m.sws) throw Error(path + ": cannot convert RGB frames for the " + m.encoder + " encoder");
    } catch (...) {
        m.release();
        if (!m.tmp.empty()) std::remove(m.tmp.c_str());
        throw;
    }
}

VideoFileWriter::~VideoFileWriter() {
    if (!impl_) return;
    impl_->release();
    if (!impl_->finished && !impl_->tmp.empty()) std::remove(impl_->tmp.c_str());
}

const std::string& VideoFileWriter::encoder() const { return impl_->encoder; }
int64_t VideoFileWriter::frames_written() const { return impl_->written; }

void VideoFileWriter::write(const Image& img) {
    Impl& m = *impl_;
    if (m.finished) throw Error(m.path + ": write after finish");
    if (img.width != m.width || img.height != m.height || img.rgb.size() != size_t(img.width) * size_t(img.height) * 3)
        throw Error(m.path + ": frame " + std::to_string(m.written) + " is " + std::to_string(img.width) + "x" +
                    std::to_string(img.height) + ", the video " + std::to_string(m.width) + "x" + std::to_string(m.height));
    const uint8_t* src = img.rgb.data();
    if (m.enc_width != m.width || m.enc_height != m.height) {
        // Pad to even by repeating the last column and row.
        const size_t W = static_cast<size_t>(m.enc_width);
        m.padded.resize(W * static_cast<size_t>(m.enc_height) * 3);
        for (int y = 0; y < m.enc_height; ++y) {
            const uint8_t* row = img.rgb.data() + static_cast<size_t>(std::min(y, m.height - 1)) * size_t(m.width) * 3;
            uint8_t* out = m.padded.data() + static_cast<size_t>(y) * W * 3;
            std::memcpy(out, row, size_t(m.width) * 3);
            for (int x = m.width; x < m.enc_width; ++x) std::memcpy(out + size_t(x) * 3, row + size_t(m.width - 1) * 3, 3);
        }
        src = m.padded.data();
    }
    av_frame_unref(m.frame);
    m.frame->format = m.enc->pix_fmt;
    m.frame->width = m.enc_width;
    m.frame->height = m.enc_height;
    if (int err = av_frame_get_buffer(m.frame, 0); err < 0) m.fail("out of memory", err);
    const uint8_t* planes[1] = {src};
    const int strides[1] = {m.enc_width * 3};
    sws_scale(m.sws, planes, strides, 0, m.enc_height, m.frame->data, m.frame->linesize);
    m.frame->pts = m.written;
    m.encode(m.frame);
    ++m.written;
}

void VideoFileWriter::finish() {
    Impl& m = *impl_;
    if (m.finished) return;
    m.encode(nullptr);
    if (int err = av_write_trailer(m.oc); err < 0) m.fail("cannot write the trailer", err);
    if (int err = avio_closep(&m.oc->pb); err < 0) m.fail("cannot write", err);
    sync_file(m.tmp);
    rename_durable(m.tmp, m.path);
    m.finished = true;
}

}  // namespace sam
