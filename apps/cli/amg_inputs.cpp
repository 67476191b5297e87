#include "cli/amg_inputs.h"

#include <archive_entry.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>

#include "sam/error.h"

namespace fs = std::filesystem;

namespace sam::cli {
namespace {

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string last_part(const std::string& path) {
    const size_t slash = path.find_last_of('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string archive_message(archive* a) {
    const char* m = archive_error_string(a);
    return m ? m : "unknown error";
}

void list_tar(const std::string& path, const ShardFilter& shard, InputListing& out) {
    if (fnv1a64(last_part(path)) % shard.n != shard.k) {  // another task's shard: not opened
        ++out.other_tasks_tars;
        return;
    }
    std::unique_ptr<TarReader> opened;
    try {
        opened = std::make_unique<TarReader>(path);
    } catch (const Error& e) {
        out.damaged_tars.emplace_back(path, e.what());
        return;
    }
    TarReader& tar = *opened;
    try {
        std::string member;
        while (tar.next(member)) {
            if (is_image_member(member))
                out.images.push_back({path, member, last_part(member)});
            else
                ++out.tar_members_skipped;
        }
    } catch (const Error& e) {
        out.damaged_tars.emplace_back(path, std::string(e.what()) + "; the members after the damage were not read");
    }
}

}  // namespace

std::string InputImage::shard_key() const { return in_tar() ? last_part(path) : name; }

bool is_tar_name(const std::string& path) {
    const std::string n = lower(last_part(path));
    for (const char* ext : {".tar", ".tar.gz", ".tgz", ".tar.zst", ".tar.xz", ".tar.bz2"})
        if (n.size() > std::char_traits<char>::length(ext) && n.ends_with(ext)) return true;
    return false;
}

std::string tar_stem(const std::string& path) {
    const std::string name = last_part(path), n = lower(name);
    for (const char* ext : {".tar", ".tar.gz", ".tgz", ".tar.zst", ".tar.xz", ".tar.bz2"})
        if (n.size() > std::char_traits<char>::length(ext) && n.ends_with(ext))
            return name.substr(0, name.size() - std::char_traits<char>::length(ext));
    return name;
}

bool is_image_member(const std::string& member) {
    const std::string n = lower(last_part(member));
    if (n.empty() || n.starts_with(".")) return false;
    return n.ends_with(".jpg") || n.ends_with(".jpeg") || n.ends_with(".png");
}

void list_input(const std::string& input, const std::string& field, const ShardFilter& shard, InputListing& out) {
    std::error_code ec;
    if (fs::is_directory(input, ec)) {
        std::vector<std::string> files, not_regular;
        for (const auto& e : fs::directory_iterator(input)) {
            if (e.path().filename().string().starts_with(".")) continue;  // hidden: editor files, sam's own
            const fs::file_status s = e.status(ec);                       // follows symlinks
            if (fs::is_regular_file(s))
                files.push_back(e.path().string());
            else if (!fs::is_directory(s))
                not_regular.push_back(e.path().string());
        }
        std::sort(files.begin(), files.end());
        std::sort(not_regular.begin(), not_regular.end());
        for (const std::string& f : files) {
            if (is_tar_name(f))
                list_tar(f, shard, out);
            else
                out.images.push_back({f, "", last_part(f)});
        }
        out.not_regular.insert(out.not_regular.end(), not_regular.begin(), not_regular.end());
    } else if (fs::is_regular_file(input, ec)) {
        if (is_tar_name(input))
            list_tar(input, shard, out);
        else
            out.images.push_back({input, "", last_part(input)});
    } else {
        throw InputError(field, input + " is neither a regular file nor a folder");
    }
}

InputListing list_input_file(const std::string& list_path, const ShardFilter& shard) {
    std::ifstream in(list_path);
    if (!in) throw InputError("--input-list", list_path + ": cannot be read");
    InputListing out;
    std::string line;
    for (size_t number = 1; std::getline(in, line); ++number) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || line[0] == '#') continue;
        list_input(line, "--input-list " + list_path + " line " + std::to_string(number), shard, out);
    }
    if (in.bad()) throw InputError("--input-list", list_path + ": read error");
    return out;
}

uint64_t fnv1a64(const std::string& s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (unsigned char c : s) {
        h ^= c;
        h *= 0x100000001b3ULL;
    }
    return h;
}

bool in_shard(const InputImage& image, size_t k, size_t n) { return fnv1a64(image.shard_key()) % n == k; }

TarReader::TarReader(const std::string& path) : path_(path), a_(archive_read_new()) {
    if (!a_) throw InputError(path, "cannot start reading (out of memory)");
    archive_read_support_filter_all(a_);
    archive_read_support_format_tar(a_);
    archive_read_support_format_gnutar(a_);
    if (archive_read_open_filename(a_, path.c_str(), 1 << 20) != ARCHIVE_OK) {
        const std::string m = archive_message(a_);
        archive_read_free(a_);
        throw InputError(path, "not a readable tar shard (" + m + ")");
    }
}

TarReader::~TarReader() { archive_read_free(a_); }

bool TarReader::next(std::string& member) {
    for (;;) {
        const int r = archive_read_next_header(a_, &entry_);
        if (r == ARCHIVE_EOF) return false;
        if (r < ARCHIVE_WARN) throw InputError(path_, "damaged tar shard (" + archive_message(a_) + ")");
        if (archive_entry_filetype(entry_) != AE_IFREG) continue;
        const char* name = archive_entry_pathname(entry_);
        if (!name) continue;
        member = name;
        if (member.starts_with("./")) member.erase(0, 2);
        return true;
    }
}

std::vector<uint8_t> TarReader::read(const std::string& member, size_t max_bytes) {
    const la_int64_t size = archive_entry_size(entry_);
    if (size < 0 || static_cast<uint64_t>(size) > max_bytes)
        throw InputError(path_ + ":" + member, "member of " + std::to_string(size) + " bytes, more than the " +
                                                   std::to_string(max_bytes) + " an image may have");
    std::vector<uint8_t> data(static_cast<size_t>(size));
    size_t got = 0;
    while (got < data.size()) {
        const la_ssize_t n = archive_read_data(a_, data.data() + got, data.size() - got);
        if (n < 0) throw InputError(path_ + ":" + member, "cannot read from the tar (" + archive_message(a_) + ")");
        if (n == 0) throw InputError(path_ + ":" + member, "tar ends inside this member");
        got += static_cast<size_t>(n);
    }
    return data;
}

}  // namespace sam::cli
