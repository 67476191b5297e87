// Atomic, durable output: write to a fresh temporary beside the target, fsync it, rename it over
// the target and fsync the directory, so that neither a crash nor a power loss ever leaves a
// partial or empty file under the final name.
//
// Temporaries are named "<dir>/.<name>.sam-tmp-XXXXXX" (six random letters or digits), created
// with O_EXCL|O_NOFOLLOW: never an existing file, never through a symlink. A process killed
// mid-write leaves such a file behind; remove_stale_temporaries() finds them by that name.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

namespace sam {

// Calls `write` with a stream on a new temporary beside `path`; if the callback returns normally
// and every byte reached the disk, renames it to `path`. Throws sam::Error naming `path`
// otherwise, and leaves neither the temporary nor a changed `path`.
void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write);

// Writes `bytes` to `path`, which must not exist yet (O_EXCL|O_NOFOLLOW), and fsyncs it. For
// files inside a folder built under a temporary name and renamed into place as a whole.
void write_new_file_durable(const std::string& path, const std::vector<uint8_t>& bytes);

// "<dir>/.<name>.sam-tmp-" for `path` = "<dir>/<name>": what every temporary for it starts with.
std::string temporary_prefix(const std::string& path);

// Creates a new, empty directory "<dir>/.<name>.sam-tmp-XXXXXX" beside `path`; returns its path.
std::string make_temporary_dir(const std::string& path);

// Creates a new, empty file "<dir>/.<name>.sam-tmp-XXXXXX" beside `path` (O_EXCL|O_NOFOLLOW);
// returns its path. For writers that need a file name (FFmpeg's muxers, a file written over a
// long run): write it, sync_file() it, rename_durable() it to `path`; unlink it on failure.
std::string make_temporary_file(const std::string& path);

// fsyncs a file's data (opened read-only by name); throws sam::Error naming it.
void sync_file(const std::string& path);

// Renames `from` to `to` (a file or a folder) and fsyncs the parent of `to`. If `to` exists it
// is first renamed to a temporary name and removed after the swap, so a crash never leaves a
// mix of both; a folder's content must already be fsynced.
void rename_durable(const std::string& from, const std::string& to);

// fsyncs a directory, so that the creations, renames and removals in it survive a power loss.
void sync_directory(const std::string& dir);

// Removes temporaries (files or folders) left beside `path` by a killed process; returns how
// many. Only call it while no other process writes `path`.
int remove_stale_temporaries(const std::string& path);

}  // namespace sam
