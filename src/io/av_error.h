// FFmpeg's text for one of its error codes, for the messages of the video reader and writer.
#pragma once

#include <string>

extern "C" {
#include <libavutil/error.h>
}

namespace sam {

inline std::string av_error(int err) {
    char buf[AV_ERROR_MAX_STRING_SIZE] = {};
    av_strerror(err, buf, sizeof buf);
    return buf;
}

}  // namespace sam
