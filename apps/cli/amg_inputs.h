// The images of a `sam amg` run at data-set scale: a file, a folder, tar shards read in place
// (as SA-1B is distributed) and lists of them (--input-list), and how --shard K/N splits them.
//
// Sharding is by name hash, so that it stays stable as a list grows: an item goes to task
// fnv1a64(key) mod N, where the key is the image's file name, or for an image inside a tar
// shard the tar's file name (a tar is read by one task, front to back, never by all of them).
// Adding images or shards to a list never moves an existing one to another task; changing N
// does. FNV-1a (64 bits, offset basis 0xcbf29ce484222325, prime 0x100000001b3) over the name's
// bytes, so any tool can compute the same assignment.
#pragma once

#include <archive.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sam::cli {

// One image to segment: a file, or a member of a tar shard.
struct InputImage {
    std::string path;    // the image file, or the tar shard holding it
    std::string member;  // the member's name inside the tar; empty for a plain file
    std::string name;    // the image's file name (the last part of its path or member name)

    bool in_tar() const { return !member.empty(); }
    // How messages name it: "photos/a.jpg" or "sa_000000.tar:sa_1.jpg".
    std::string display() const { return in_tar() ? path + ":" + member : path; }
    // What --shard hashes: the file name, or the tar's file name for a member of a tar.
    std::string shard_key() const;
};

struct InputListing {
    std::vector<InputImage> images;
    std::vector<std::string> not_regular;  // FIFOs, sockets, devices in a folder: never opened
    size_t tar_members_skipped = 0;        // members of tar shards that are not images (e.g. SA-1B's .json)
    // Tar shards that could not be read to the end, with the reason: the members before the
    // damage are in `images`; the run goes on and fails at the end.
    std::vector<std::pair<std::string, std::string>> damaged_tars;
    size_t other_tasks_tars = 0;  // tar shards left unopened: another task's (ShardFilter)
};

// Which tar shards a listing opens: those of task K of N (a tar's members all go to the task its
// file name hashes to, so the others are never read). {0, 1}: all.
struct ShardFilter {
    size_t k = 0, n = 1;
};

// True for a name that ends in .tar, .tar.gz, .tgz, .tar.zst, .tar.xz or .tar.bz2 (any case).
bool is_tar_name(const std::string& path);
// A tar shard's file name without its extension: "a/sa_000000.tar.gz" -> "sa_000000".
std::string tar_stem(const std::string& path);
// True for the image types sam reads from a tar: .jpg, .jpeg, .png (any case), not hidden.
bool is_image_member(const std::string& member);

// The images of `input`: an image file; a tar shard (its image members, in stored order); a
// folder (its regular, non-hidden files, sorted, or its tar shards when a file is one).
// Throws sam::InputError naming `field` if `input` is none of these.
void list_input(const std::string& input, const std::string& field, const ShardFilter& shard, InputListing& out);
// --input-list FILE: one image or tar shard a line, relative to the working directory; blank
// lines and lines starting with '#' are ignored. Throws naming the file and line.
InputListing list_input_file(const std::string& list_path, const ShardFilter& shard);

// 64-bit FNV-1a of the bytes of `s`.
uint64_t fnv1a64(const std::string& s);
// Whether task K of N takes the image.
bool in_shard(const InputImage& image, size_t k, size_t n);

// Reads the members of one tar shard front to back, without unpacking it to disk. Not
// thread-safe; one reader per thread.
class TarReader {
  public:
    explicit TarReader(const std::string& path);  // throws sam::InputError naming the file
    ~TarReader();
    TarReader(const TarReader&) = delete;
    TarReader& operator=(const TarReader&) = delete;

    const std::string& path() const { return path_; }
    // Advances to the next regular member; false at the end. Throws on a damaged archive.
    bool next(std::string& member);
    // The current member's bytes (at most `max_bytes`, else throws naming the member).
    std::vector<uint8_t> read(const std::string& member, size_t max_bytes);

  private:
    std::string path_;
    archive* a_ = nullptr;
    archive_entry* entry_ = nullptr;
};

}  // namespace sam::cli
