// Video files through FFmpeg's libraries (libavformat demuxing, libavcodec decoding, libswscale
// conversion and resizing); see video_file.h for what matches the official loader.
#include "io/video_file.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "io/av_error.h"
#include "sam/error.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avstring.h>
#include <libavutil/error.h>
#include <libavutil/log.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

namespace sam {
namespace {

struct FormatCloser {
    void operator()(AVFormatContext* f) const { avformat_close_input(&f); }
};
struct CodecCloser {
    void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameCloser {
    void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketCloser {
    void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwsCloser {
    void operator()(SwsContext* s) const { sws_freeContext(s); }
};
using FormatPtr = std::unique_ptr<AVFormatContext, FormatCloser>;

// Opens the container and finds its best video stream; throws ImageError naming the file.
FormatPtr open_input(const std::string& path, int& stream, const AVCodec*& codec, const std::string& formats) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) throw ImageError(path, "no such file");
    if (std::filesystem::is_directory(path, ec)) throw ImageError(path, "is a folder, not a video file");
    // FFmpeg logs its own complaints about hostile input on stderr; the errors thrown here say
    // what went wrong.
    av_log_set_level(AV_LOG_FATAL);
    AVFormatContext* raw = nullptr;
    AVDictionary* options = nullptr;
    if (!formats.empty()) {
        av_dict_set(&options, "format_whitelist", formats.c_str(), 0);
        av_dict_set(&options, "protocol_whitelist", "file", 0);
    }
    const int opened = avformat_open_input(&raw, path.c_str(), nullptr, &options);
    av_dict_free(&options);
    if (opened < 0) {
        // A format off the list fails with EINVAL after probing: say which one was found.
        if (!formats.empty()) {
            AVProbeData pd{};
            std::string head(4096, '\0');
            if (FILE* f = std::fopen(path.c_str(), "rb")) {
                head.resize(std::fread(head.data(), 1, head.size(), f));
                std::fclose(f);
            }
            head.append(AVPROBE_PADDING_SIZE, '\0');
            pd.filename = "";
            pd.buf = reinterpret_cast<unsigned char*>(head.data());
            pd.buf_size = static_cast<int>(head.size() - AVPROBE_PADDING_SIZE);
            const AVInputFormat* found = av_probe_input_format(&pd, 1);
            if (found && av_match_list(found->name, formats.c_str(), ',') <= 0)
                throw ImageError(path, std::string("video container '") + found->name + "' is not accepted (accepted: " +
                                           formats + ")");
        }
        throw ImageError(path, "not a readable video file (" + av_error(opened) + ")");
    }
    FormatPtr fmt(raw);
    if (int err = avformat_find_stream_info(fmt.get(), nullptr); err < 0)
        throw ImageError(path, "cannot read the video's streams (" + av_error(err) + ")");
    codec = nullptr;
    stream = av_find_best_stream(fmt.get(), AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (stream == AVERROR_STREAM_NOT_FOUND) throw ImageError(path, "no video stream");
    if (stream == AVERROR_DECODER_NOT_FOUND || (stream >= 0 && !codec)) {
        const AVCodecDescriptor* d = avcodec_descriptor_get(fmt->streams[std::max(stream, 0)]->codecpar->codec_id);
        throw ImageError(path, std::string("unsupported video codec ") + (d ? d->name : "(unknown)"));
    }
    if (stream < 0) throw ImageError(path, "no usable video stream (" + av_error(stream) + ")");
    return fmt;
}

void check_size(const std::string& path, int w, int h) {
    if (w <= 0 || h <= 0 || int64_t{w} * h > kMaxImagePixels)
        throw ImageError(path, "video frame size " + std::to_string(w) + "x" + std::to_string(h) + " out of range");
}

}  // namespace

struct VideoFileReader::Impl {
    std::string path;
    FormatPtr fmt;
    std::unique_ptr<AVCodecContext, CodecCloser> dec;
    std::unique_ptr<AVFrame, FrameCloser> frame{av_frame_alloc()};
    std::unique_ptr<AVPacket, PacketCloser> packet{av_packet_alloc()};
    std::unique_ptr<SwsContext, SwsCloser> sws;
    std::vector<uint8_t> line_buf;  // swscale's destination, padded (its SIMD may write past a row)
    int stream = -1;
    int width = 0, height = 0;
    int64_t read = 0;
    bool flushed = false;

    [[noreturn]] void fail(const std::string& what) const {
        throw ImageError(path, what + " at frame " + std::to_string(read));
    }

    // The next decoded frame in `frame`; false at the end.
    bool decode() {
        for (;;) {
            int err = avcodec_receive_frame(dec.get(), frame.get());
            if (err == 0) return true;
            if (err == AVERROR_EOF) return false;
            if (err != AVERROR(EAGAIN)) fail("corrupt video data (" + av_error(err) + ")");
            if (flushed) return false;
            err = av_read_frame(fmt.get(), packet.get());
            if (err == AVERROR_EOF) {
                flushed = true;
                if ((err = avcodec_send_packet(dec.get(), nullptr)) < 0 && err != AVERROR_EOF)
                    fail("corrupt video data (" + av_error(err) + ")");
                continue;
            }
            if (err < 0) fail("cannot read the video (" + av_error(err) + ")");
            if (packet->stream_index == stream) {
                err = avcodec_send_packet(dec.get(), packet.get());
                av_packet_unref(packet.get());
                if (err < 0 && err != AVERROR(EAGAIN)) fail("corrupt video data (" + av_error(err) + ")");
            } else {
                av_packet_unref(packet.get());
            }
        }
    }
};

VideoFileReader::VideoFileReader(const std::string& path, int threads) : VideoFileReader(path, threads, "") {}

VideoFileReader::VideoFileReader(const std::string& path, int threads, const std::string& allowed_formats)
    : impl_(std::make_unique<Impl>()) {
    Impl& m = *impl_;
    m.path = path;
    if (!m.frame || !m.packet) throw ImageError(path, "out of memory");
    const AVCodec* codec = nullptr;
    m.fmt = open_input(path, m.stream, codec, allowed_formats);
    const AVCodecParameters* par = m.fmt->streams[m.stream]->codecpar;
    check_size(path, par->width, par->height);
    m.width = par->width;
    m.height = par->height;
    m.dec.reset(avcodec_alloc_context3(codec));
    if (!m.dec) throw ImageError(path, "out of memory");
    if (int err = avcodec_parameters_to_context(m.dec.get(), par); err < 0)
        throw ImageError(path, "bad video stream parameters (" + av_error(err) + ")");
    m.dec->thread_count = std::max(threads, 0);
    if (int err = avcodec_open2(m.dec.get(), codec, nullptr); err < 0)
        throw ImageError(path, std::string("cannot decode ") + codec->name + " video (" + av_error(err) + ")");
}

VideoFileReader::~VideoFileReader() = default;
VideoFileReader::VideoFileReader(VideoFileReader&&) noexcept = default;
VideoFileReader& VideoFileReader::operator=(VideoFileReader&&) noexcept = default;

const std::string& VideoFileReader::path() const { return impl_->path; }
int VideoFileReader::width() const { return impl_->width; }
int VideoFileReader::height() const { return impl_->height; }
int64_t VideoFileReader::frames_read() const { return impl_->read; }

std::pair<int, int> VideoFileReader::frame_rate() const {
    const AVStream* st = impl_->fmt->streams[impl_->stream];
    for (const AVRational r : {st->avg_frame_rate, st->r_frame_rate})
        if (r.num > 0 && r.den > 0) return {r.num, r.den};
    return {0, 1};
}

bool VideoFileReader::next(Image& out, int out_w, int out_h) {
    Impl& m = *impl_;
    if (!m.decode()) return false;
    AVFrame* f = m.frame.get();
    check_size(m.path, f->width, f->height);
    if (f->format < 0) m.fail("frame without a pixel format");
    m.width = f->width;
    m.height = f->height;
    if (out_w <= 0 || out_h <= 0) {
        out_w = f->width;
        out_h = f->height;
    }
    check_size(m.path, out_w, out_h);
    const auto fmt = static_cast<AVPixelFormat>(f->format);
    SwsContext* s = sws_getCachedContext(m.sws.release(), f->width, f->height, fmt, out_w, out_h, AV_PIX_FMT_RGB24,
                                         SWS_BICUBIC, nullptr, nullptr, nullptr);
    m.sws.reset(s);
    if (!s) m.fail(std::string("unsupported pixel format ") + (av_get_pix_fmt_name(fmt) ? av_get_pix_fmt_name(fmt) : "?"));
    // The frame's colour matrix and range, as FFmpeg's scale filter uses them ("auto").
    const int cs = f->colorspace == AVCOL_SPC_UNSPECIFIED ? SWS_CS_DEFAULT : static_cast<int>(f->colorspace);
    int* inv_table = nullptr;
    int* table = nullptr;
    int src_range = 0, dst_range = 0, brightness = 0, contrast = 0, saturation = 0;
    if (sws_getColorspaceDetails(s, &inv_table, &src_range, &table, &dst_range, &brightness, &contrast, &saturation) >= 0) {
        if (f->color_range == AVCOL_RANGE_JPEG) src_range = 1;
        else if (f->color_range == AVCOL_RANGE_MPEG) src_range = 0;
        sws_setColorspaceDetails(s, sws_getCoefficients(cs), src_range, table, 1, brightness, contrast, saturation);
    }
    const int stride = (out_w * 3 + 63) / 64 * 64;
    m.line_buf.assign(static_cast<size_t>(stride) * static_cast<size_t>(out_h) + 64, 0);
    uint8_t* dst[4] = {m.line_buf.data(), nullptr, nullptr, nullptr};
    int dst_stride[4] = {stride, 0, 0, 0};
    if (sws_scale(s, f->data, f->linesize, 0, f->height, dst, dst_stride) != out_h) m.fail("cannot convert the frame");
    out.width = out_w;
    out.height = out_h;
    out.rgb.resize(static_cast<size_t>(out_w) * static_cast<size_t>(out_h) * 3);
    for (int y = 0; y < out_h; ++y)
        std::memcpy(out.rgb.data() + static_cast<size_t>(y) * out_w * 3, m.line_buf.data() + static_cast<size_t>(y) * stride,
                    static_cast<size_t>(out_w) * 3);
    av_frame_unref(f);
    ++m.read;
    return true;
}

int64_t count_video_frames(const std::string& path, const std::string& allowed_formats) {
    int stream = -1;
    const AVCodec* codec = nullptr;
    FormatPtr fmt = open_input(path, stream, codec, allowed_formats);
    std::unique_ptr<AVPacket, PacketCloser> packet(av_packet_alloc());
    if (!packet) throw ImageError(path, "out of memory");
    int64_t n = 0;
    for (;;) {
        const int err = av_read_frame(fmt.get(), packet.get());
        if (err == AVERROR_EOF) break;
        if (err < 0) throw ImageError(path, "cannot read the video (" + av_error(err) + ") after " + std::to_string(n) + " frames");
        if (packet->stream_index == stream) ++n;
        av_packet_unref(packet.get());
    }
    return n;
}

VideoFileFrames read_video_file(const std::string& path, int out_w, int out_h, int threads) {
    VideoFileReader reader(path, threads);
    VideoFileFrames v;
    Image img;
    while (reader.next(img, out_w, out_h)) {
        if (v.frames.empty()) {
            v.width = reader.width();
            v.height = reader.height();
        }
        v.frames.push_back(std::move(img));
        img = Image();
    }
    if (v.frames.empty()) throw ImageError(path, "no video frames");
    return v;
}

}  // namespace sam
