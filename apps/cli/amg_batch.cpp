#include "cli/amg_batch.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "io/atomic_file.h"
#include "sam/error.h"

namespace fs = std::filesystem;

namespace sam::cli {
namespace {

struct Marker {
    std::string input;                 // the image's file name
    std::vector<std::string> outputs;  // names in the output folder
    bool complete = false;
    long long masks = -1;  // complete: how many masks (-1: not recorded)
    double seconds = -1;   // complete: the image's wall-clock seconds (-1: not recorded)
    std::string error;     // not complete: why the last attempt failed ("": none recorded)
};

enum class MarkerState { Absent, Foreign, Valid };

bool exists_no_follow(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

std::string file_name(const std::string& path) { return fs::path(path).filename().string(); }

// Reads a marker without following a symlink or opening anything but a small regular file.
MarkerState read_marker(const std::string& path, Marker& m) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return MarkerState::Absent;
    if (!S_ISREG(st.st_mode) || st.st_size > (1 << 20)) return MarkerState::Foreign;
    const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return MarkerState::Foreign;
    std::string text(static_cast<size_t>(st.st_size), '\0');
    const ssize_t n = ::read(fd, text.data(), text.size());
    ::close(fd);
    if (n != static_cast<ssize_t>(text.size())) return MarkerState::Foreign;
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_object() || j.value("sam_amg_output", 0) != 1 || !j.contains("input") || !j["input"].is_string() ||
        !j.contains("outputs") || !j["outputs"].is_array() || !j.contains("complete") || !j["complete"].is_boolean())
        return MarkerState::Foreign;
    m.input = j["input"].get<std::string>();
    m.outputs.clear();
    for (const auto& o : j["outputs"]) {
        if (!o.is_string()) return MarkerState::Foreign;
        m.outputs.push_back(o.get<std::string>());
    }
    m.complete = j["complete"].get<bool>();
    m.masks = j.contains("masks") && j["masks"].is_number_integer() ? j["masks"].get<long long>() : -1;
    m.seconds = j.contains("seconds") && j["seconds"].is_number() ? j["seconds"].get<double>() : -1;
    m.error = j.contains("error") && j["error"].is_string() ? j["error"].get<std::string>() : "";
    return MarkerState::Valid;
}

void write_marker(const ImageOutputs& io, const Marker& m) {
    nlohmann::json j = {{"sam_amg_output", 1}, {"input", m.input}, {"outputs", m.outputs}, {"complete", m.complete}};
    if (m.complete && m.masks >= 0) j["masks"] = m.masks;
    if (m.complete && m.seconds >= 0) j["seconds"] = std::round(m.seconds * 1000) / 1000;
    if (!m.complete && !m.error.empty()) j["error"] = m.error;
    const std::string text = j.dump() + "\n";
    write_file_atomic(io.path(io.marker_name), [&](std::ostream& out) { out << text; });
}

bool lists(const Marker& m, const std::string& name) {
    return std::find(m.outputs.begin(), m.outputs.end(), name) != m.outputs.end();
}

const char* kMoveAway = "; move it away or choose another --output";

// A per-image folder holds only what sam writes there: 0.png, 1.png, ... and metadata.csv.
// Returns the first other entry, or "" (also for a plain file).
std::string foreign_entry_in_folder(const std::string& dir) {
    std::error_code ec;
    if (!fs::is_directory(fs::symlink_status(dir, ec))) return "";
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        const std::string name = file_name(e.path().string());
        const std::string digits = name.ends_with(".png") ? name.substr(0, name.size() - 4) : "";
        const bool mask_png = !digits.empty() && std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (!mask_png && name != "metadata.csv") return e.path().string();
    }
    return "";
}

}  // namespace

std::string ImageOutputs::path(const std::string& name) const { return (fs::path(folder) / name).string(); }

ImageOutputs image_outputs(const InputImage& input, const std::string& folder, bool rle, bool overlay) {
    const std::string stem = fs::path(input.name).stem().string();
    ImageOutputs io{input, input.display(), folder, {rle ? stem + ".json" : stem}, "." + stem + ".sam-output"};
    if (overlay) io.names.push_back(stem + "_overlay.png");
    return io;
}

std::vector<std::string> find_name_collisions(const std::vector<ImageOutputs>& all) {
    std::vector<std::string> problems;
    std::map<std::string, const ImageOutputs*> writer;  // output path -> the image writing it
    std::set<std::pair<const ImageOutputs*, const ImageOutputs*>> reported;
    for (const ImageOutputs& io : all) {
        std::vector<std::string> names = io.names;
        names.push_back(io.marker_name);
        for (const std::string& name : names) {
            auto [it, inserted] = writer.emplace(io.path(name), &io);
            if (inserted || it->second == &io || !reported.insert({it->second, &io}).second) continue;
            problems.push_back(it->second->image + " and " + io.image + " would both write " + io.path(name) +
                               "; rename one of them");
        }
    }
    return problems;
}

std::vector<std::string> check_output_folder(const std::string& input, const std::string& folder) {
    std::error_code ec;
    if (fs::is_directory(input) && fs::exists(folder) && fs::equivalent(input, folder, ec))
        return {"--output " + folder +
                " is the input folder: outputs would be mixed with the images (and read as images by the next run); "
                "choose another folder"};
    fs::create_directories(folder, ec);
    if (ec || !fs::is_directory(folder))
        return {"--output " + folder + ": cannot create this folder (" +
                (ec ? ec.message() : std::string("a file of that name exists")) + ")"};
    const std::string probe = (fs::path(folder) / ".sam-write-check").string();
    sam::remove_stale_temporaries(probe);
    try {
        fs::remove(make_temporary_dir(probe), ec);
    } catch (const Error& e) {
        return {"--output " + folder + ": cannot write there (" + e.what() + ")"};
    }
    return {};
}

std::vector<std::string> check_ownership(const ImageOutputs& io) {
    std::vector<std::string> problems;
    Marker m;
    const std::string marker = io.path(io.marker_name);
    const MarkerState state = read_marker(marker, m);
    if (state == MarkerState::Foreign)
        return {marker + " exists and is not a marker sam amg wrote" + kMoveAway};
    if (state == MarkerState::Valid && m.input != io.input.name)
        return {marker + ": the outputs it lists were written for " + m.input + ", not for " + io.image + kMoveAway};
    for (const std::string& name : io.names) {
        const std::string p = io.path(name);
        if (!exists_no_follow(p)) continue;
        std::error_code ec;
        if (!io.input.in_tar() && fs::equivalent(p, io.input.path, ec))
            problems.push_back(p + " is the input image itself; choose another --output");
        else if (state != MarkerState::Valid || !lists(m, name))
            problems.push_back(p + " exists and was not written by sam amg for " + io.image + " (" + marker +
                               (state == MarkerState::Valid ? " does not list it)" : " is missing)") + kMoveAway);
        else if (const std::string other = foreign_entry_in_folder(p); !other.empty())
            problems.push_back(other + " was not written by sam amg, and replacing " + p + " would delete it" + kMoveAway);
    }
    return problems;
}

bool is_complete(const ImageOutputs& io) {
    Marker m;
    if (read_marker(io.path(io.marker_name), m) != MarkerState::Valid || !m.complete || m.input != io.input.name)
        return false;
    for (const std::string& name : io.names)
        if (!lists(m, name) || !exists_no_follow(io.path(name))) return false;
    return true;
}

void remove_stale_temporaries(const ImageOutputs& io) {
    for (const std::string& name : io.names) sam::remove_stale_temporaries(io.path(name));
    sam::remove_stale_temporaries(io.path(io.marker_name));
}

void mark_started(const ImageOutputs& io) {
    Marker m, old;
    m.input = io.input.name;
    m.outputs = io.names;
    // Keep earlier outputs of this image that still exist (e.g. an overlay from a previous run):
    // they stay sam's to replace.
    if (read_marker(io.path(io.marker_name), old) == MarkerState::Valid && old.input == m.input)
        for (const std::string& name : old.outputs)
            if (!lists(m, name) && exists_no_follow(io.path(name))) m.outputs.push_back(name);
    std::sort(m.outputs.begin(), m.outputs.end());
    write_marker(io, m);
}

void mark_complete(const ImageOutputs& io, size_t masks, double seconds) {
    Marker m;
    if (read_marker(io.path(io.marker_name), m) != MarkerState::Valid)
        throw Error(io.path(io.marker_name) + ": marker vanished while writing the outputs");
    m.complete = true;
    m.masks = static_cast<long long>(masks);
    m.seconds = seconds;
    m.error.clear();
    write_marker(io, m);
}

void mark_failed(const ImageOutputs& io, const std::string& reason) {
    Marker m;
    if (read_marker(io.path(io.marker_name), m) != MarkerState::Valid || m.input != io.input.name) {
        // Only reached for an image whose ownership check passed: no output of it exists yet.
        m = Marker{};
        m.input = io.input.name;
    }
    m.complete = false;
    m.error = reason.empty() ? "unknown error" : reason;
    write_marker(io, m);
}

ImageStatus image_status(const ImageOutputs& io) {
    ImageStatus s;
    Marker m;
    if (read_marker(io.path(io.marker_name), m) != MarkerState::Valid || m.input != io.input.name) return s;
    if (is_complete(io)) {
        s.state = ImageStatus::Done;
        s.masks = m.masks;
        s.seconds = m.seconds;
    } else if (!m.error.empty()) {
        s.state = ImageStatus::Failed;
        s.error = m.error;
    } else {
        s.state = ImageStatus::Incomplete;
    }
    return s;
}

}  // namespace sam::cli
