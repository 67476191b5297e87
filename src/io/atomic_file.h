// Atomic output: write to a temporary file beside the target, then rename over it, so that a
// crash never leaves a half-written file under the final name.
#pragma once

#include <functional>
#include <ostream>
#include <string>

namespace sam {

// Calls `write` with a stream on "<path>.tmp-<pid>"; renames it to `path` only if the callback
// returns normally and the stream is good. Throws sam::Error naming `path` otherwise.
void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write);

// Same for a file produced by a library that writes to a path itself (e.g. libpng).
void write_path_atomic(const std::string& path, const std::function<void(const std::string& tmp)>& write);

}  // namespace sam
