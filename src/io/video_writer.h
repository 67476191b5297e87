// Video files written frame by frame from 8-bit RGB through FFmpeg's libraries (libavformat
// muxing, libavcodec encoding, libswscale conversion), atomically: the file is written under a
// temporary name beside the target (src/io/atomic_file.h) and renamed into place by finish(), so
// a run killed or failing midway never leaves a file under the final name.
//
// The container comes from the name's extension, the encoder from what the installed libavcodec
// has, first found first used:
//   .mp4 (.m4v, .mov)  libx264 (H.264, yuv420p, crf 18), else mpeg4 (MPEG-4 part 2, yuv420p, q 2)
//   .webm              libvpx-vp9 (VP9, yuv420p, crf 30), else libvpx (VP8, yuv420p)
//   .mkv               ffv1 (lossless, 8-bit RGB: decoding gives back the frames written, bit for bit)
// The 4:2:0 encoders need even sizes: an odd width or height is padded by repeating the last
// column or row (the file's size is then one larger, the padding a copy of the edge).
//
// Errors: sam::Error "<path>: <what>" for an unknown extension, no encoder available (naming the
// encoders tried), a folder that cannot be written, a frame of another size. Never a crash.
//
// Thread safety: one writer per thread; writers of different files may run on different threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "sam/image.h"

namespace sam {

class VideoFileWriter {
  public:
    // Opens a temporary beside `path` and the encoder; frames are width x height, shown at
    // fps_num / fps_den frames per second. `threads`: encoder threads (0: FFmpeg chooses).
    VideoFileWriter(const std::string& path, int width, int height, int fps_num = 25, int fps_den = 1, int threads = 0);
    // Without finish(): the temporary is removed and `path` left as it was.
    ~VideoFileWriter();
    VideoFileWriter(const VideoFileWriter&) = delete;
    VideoFileWriter& operator=(const VideoFileWriter&) = delete;

    // Encodes the next frame (width x height RGB).
    void write(const Image& frame);
    // Flushes the encoder, writes the container's trailer, fsyncs and renames the file into place.
    void finish();

    const std::string& encoder() const;  // the libavcodec encoder in use ("libx264", "ffv1", ...)
    int64_t frames_written() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// The encoder VideoFileWriter would use for `path` (as above); throws sam::Error naming `path`
// for an unknown extension or when the installed libavcodec has none of the candidates.
std::string video_encoder_for(const std::string& path);

}  // namespace sam
