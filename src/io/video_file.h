// Video files (mp4, mkv, webm, ... anything Debian's FFmpeg libraries demux and decode) read
// frame by frame as 8-bit RGB.
//
// The official SAM 2 package reads a video file with decord (sam2/utils/misc.py,
// load_video_frames_from_video_file): the video's size from its first frame, then every frame
// decoded by FFmpeg and resized inside decord's FFmpeg filter graph ("scale" to
// image_size x image_size, output rgb24), i.e. by libswscale with the scale filter's default
// flags (bicubic), converting the pixel format and resizing in one pass, with the frame's colour
// matrix and range. This reader does the same with libswscale directly (SWS_BICUBIC, colour
// matrix and range from the frame). What cannot be matched exactly: decord's wheels bundle their
// own FFmpeg build, and libswscale's output can differ by a level or so between FFmpeg versions
// and CPU code paths (its SIMD paths round differently); decord is not packaged for this
// platform, so the difference is not measured. Like decord, rotation metadata is not applied
// (frames are returned as stored). The JPEG-folder source is resized with Pillow's bicubic
// instead (src/sam2/video_frames.cpp): the two sources are resized differently, as officially. On the
// test frames (320x240 -> 256x256) the two resizes differ by 0.29 levels on average, 6 at most
// (tests/test_video_file.cpp, VideoFile.SwscaleBicubicNearPillowBicubic).
//
// Errors: sam::ImageError "<path>: <what>" for a missing file, one FFmpeg cannot open (random
// bytes, truncated container), no video stream, an unsupported codec, corrupt frame data or a
// frame size over kMaxImagePixels. Never a crash. As in FFmpeg's tools (and decord), damage
// the decoder can conceal is concealed, and a file cut between frames gives the frames before
// the cut. FFmpeg's own log is silenced below fatal messages (av_log_set_level, process-wide)
// when a file is opened: the errors thrown say what went wrong.
//
// Thread safety: one reader per thread; readers of different (or the same) files may run on
// different threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sam/image.h"

namespace sam {

class VideoFileReader {
  public:
    // Opens the file and its best video stream. `threads`: decoder threads (0: FFmpeg chooses,
    // the cores available).
    explicit VideoFileReader(const std::string& path, int threads = 0);
    // The same, accepting only the named demuxers (FFmpeg's format_whitelist, comma-separated:
    // "matroska,mov,avi") and local files (protocol_whitelist "file"), for files from untrusted
    // hands: a playlist or concat script that would open other files or URLs is refused (ImageError
    // naming the file and the format found). Empty: any demuxer, as above.
    VideoFileReader(const std::string& path, int threads, const std::string& allowed_formats);
    ~VideoFileReader();
    VideoFileReader(VideoFileReader&&) noexcept;
    VideoFileReader& operator=(VideoFileReader&&) noexcept;

    const std::string& path() const;
    // The video's size: the last decoded frame's own size (before resizing), or the stream's
    // declared size before the first frame.
    int width() const;
    int height() const;

    // The stream's average frame rate as num / den (its declared rate when the container gives
    // no average; 0 / 1 when it gives neither), and the same as a number.
    std::pair<int, int> frame_rate() const;
    double fps() const { return static_cast<double>(frame_rate().first) / frame_rate().second; }

    // Decodes the next frame into `out` as RGB, resized to out_w x out_h (bicubic, as above;
    // 0 x 0: the frame's own size, converted only). Returns false at the end of the video.
    bool next(Image& out, int out_w = 0, int out_h = 0);

    // Frames decoded so far.
    int64_t frames_read() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Counts a video file's frames by demuxing the video stream's packets, without decoding (one
// packet per frame in mp4, mkv and webm). Throws as VideoFileReader.
int64_t count_video_frames(const std::string& path, const std::string& allowed_formats = "");

// Every frame of a video file, resized to out_w x out_h (0 x 0: each frame's own size); `width`
// and `height` are the first frame's own size (the video's size, as the official loader
// reports it). Throws ImageError for a file without a single decodable frame.
struct VideoFileFrames {
    std::vector<Image> frames;
    int width = 0, height = 0;
};
VideoFileFrames read_video_file(const std::string& path, int out_w = 0, int out_h = 0, int threads = 0);

}  // namespace sam
