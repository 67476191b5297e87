#include "annotate/project.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "io/atomic_file.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace sam::annotate {
namespace {

bool is_image_name(const std::string& name) {
    std::string ext = fs::path(name).extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    return !name.starts_with(".") && (ext == ".jpg" || ext == ".jpeg" || ext == ".png");
}

json read_json_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error(path + ": cannot be read");
    const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw Error(path + ": not a JSON object");
    return j;
}

void write_json_file(const std::string& path, const json& j) {
    const std::string text = j.dump() + "\n";
    write_file_atomic(path, [&](std::ostream& out) { out << text; });
}

template <class T>
T field(const json& j, const char* key, const std::string& where) {
    if (!j.contains(key)) throw InputError(where + "." + key, "missing");
    try {
        return j.at(key).get<T>();
    } catch (const json::exception&) {
        throw InputError(where + "." + key, "has the wrong type");
    }
}

}  // namespace

std::string to_string(ImageStatus s) {
    switch (s) {
        case ImageStatus::New: return "new";
        case ImageStatus::InProgress: return "in_progress";
        case ImageStatus::Done: return "done";
    }
    return "new";
}

ImageStatus image_status_from_string(const std::string& s) {
    if (s == "new") return ImageStatus::New;
    if (s == "in_progress") return ImageStatus::InProgress;
    if (s == "done") return ImageStatus::Done;
    throw InputError("status", "'" + s + "' is not new, in_progress or done");
}

json to_json(const AnnotationObject& o) {
    return {{"id", o.id},
            {"label", o.label},
            {"segmentation", {{"size", {o.rle.height, o.rle.width}}, {"counts", rle_to_coco_string(o.rle)}}},
            {"hidden", o.hidden},
            {"source", o.source},
            {"predicted_iou", o.predicted_iou},
            {"stability_score", o.stability_score},
            {"crop_box", o.crop_box},
            {"point_coords", o.point_coords},
            {"point_labels", o.point_labels}};
}

AnnotationObject object_from_json(const json& j, int height, int width, const std::string& where) {
    if (!j.is_object()) throw InputError(where, "not an object");
    AnnotationObject o;
    o.id = j.value("id", int64_t{0});
    o.label = j.contains("label") ? field<std::string>(j, "label", where) : "";
    o.hidden = j.contains("hidden") ? field<bool>(j, "hidden", where) : false;
    o.source = j.contains("source") ? field<std::string>(j, "source", where) : "";
    o.predicted_iou = j.contains("predicted_iou") ? field<double>(j, "predicted_iou", where) : 0.0;
    o.stability_score = j.contains("stability_score") ? field<double>(j, "stability_score", where) : 0.0;
    if (j.contains("crop_box")) o.crop_box = field<std::array<int, 4>>(j, "crop_box", where);
    if (j.contains("point_coords")) o.point_coords = field<std::vector<std::array<double, 2>>>(j, "point_coords", where);
    if (j.contains("point_labels")) o.point_labels = field<std::vector<int>>(j, "point_labels", where);
    if (!o.point_labels.empty() && o.point_labels.size() != o.point_coords.size())
        throw InputError(where + ".point_labels", "one label per point of point_coords");
    const json seg = field<json>(j, "segmentation", where);
    const auto size = field<std::array<int, 2>>(seg, "size", where + ".segmentation");
    if (size[0] != height || size[1] != width)
        throw InputError(where + ".segmentation.size", "[" + std::to_string(size[0]) + ", " + std::to_string(size[1]) +
                                                           "], the image is [" + std::to_string(height) + ", " +
                                                           std::to_string(width) + "]");
    try {
        o.rle = rle_from_coco_string(field<std::string>(seg, "counts", where + ".segmentation"), height, width);
    } catch (const InputError& e) {
        throw InputError(where + ".segmentation.counts", e.what());
    }
    return o;
}

json to_json(const ImageAnnotations& a) {
    json objects = json::array(), proposals = json::array();
    for (const auto& o : a.objects) objects.push_back(to_json(o));
    for (const auto& o : a.proposals) proposals.push_back(to_json(o));
    return {{"sam_annotate_image", 1}, {"image", a.name},     {"width", a.width},     {"height", a.height},
            {"status", to_string(a.status)}, {"version", a.version}, {"objects", objects}, {"proposals", proposals}};
}

ImageAnnotations image_from_json(const json& j, const std::string& where) {
    ImageAnnotations a;
    a.name = field<std::string>(j, "image", where);
    a.width = field<int>(j, "width", where);
    a.height = field<int>(j, "height", where);
    if (a.width < 0 || a.height < 0) throw InputError(where + ".width", "negative size");
    a.status = image_status_from_string(field<std::string>(j, "status", where));
    a.version = field<int64_t>(j, "version", where);
    for (const char* key : {"objects", "proposals"}) {
        const json list = field<json>(j, key, where);
        if (!list.is_array()) throw InputError(where + "." + key, "not an array");
        auto& out = std::string(key) == "objects" ? a.objects : a.proposals;
        for (size_t i = 0; i < list.size(); ++i)
            out.push_back(object_from_json(list[i], a.height, a.width, where + "." + key + "[" + std::to_string(i) + "]"));
    }
    return a;
}

Project::Project(const std::string& path, const std::string& images_dir, const std::vector<std::string>& labels)
    : path_(path) {
    base_ = path.ends_with(".json") ? path.substr(0, path.size() - 5) : path;
    if (fs::exists(path)) {
        const json j = read_json_file(path);
        if (j.value("sam_annotate_project", 0) != 1) throw Error(path + ": not a sam annotate project");
        state_.images_dir = field<std::string>(j, "images_dir", path);
        state_.labels = field<std::vector<std::string>>(j, "labels", path);
        state_.labels_version = field<int64_t>(j, "labels_version", path);
        state_.current = j.value("current", "");
        std::error_code ec;
        if (!images_dir.empty() && !fs::equivalent(images_dir, state_.images_dir, ec))
            throw Error(path + ": the project is for " + state_.images_dir + ", not " + images_dir);
    } else {
        if (images_dir.empty()) throw Error(path + ": no such project (give --images to create one)");
        state_.images_dir = fs::absolute(images_dir).lexically_normal().string();
    }
    if (!fs::is_directory(state_.images_dir)) throw Error(state_.images_dir + ": not a folder of images");
    bool changed = !fs::exists(path);
    for (const std::string& l : labels) {
        if (l.empty()) throw InputError("--labels", "an empty label");
        if (std::find(state_.labels.begin(), state_.labels.end(), l) == state_.labels.end()) {
            state_.labels.push_back(l);
            changed = true;
        }
    }
    for (const auto& e : fs::directory_iterator(state_.images_dir)) {
        const std::string name = e.path().filename().string();
        if (e.is_regular_file() && is_image_name(name)) names_.push_back(name);
    }
    std::sort(names_.begin(), names_.end());
    fs::create_directories(base_ + ".images");
    fs::create_directories(cache_dir());
    remove_stale_temporaries(path);
    for (const std::string& name : names_) {
        const std::string file = image_file(name);
        remove_stale_temporaries(file);
        if (!fs::exists(file)) continue;
        ImageAnnotations a = image_from_json(read_json_file(file), file);
        for (const auto* list : {&a.objects, &a.proposals})
            for (const auto& o : *list) next_id_ = std::max(next_id_, o.id + 1);
        images_[name] = std::move(a);
    }
    if (changed) {
        if (fs::exists(path)) ++state_.labels_version;
        save_project_locked();
    }
}

std::string Project::image_file(const std::string& name) const { return base_ + ".images/" + name + ".json"; }

ProjectState Project::state() const {
    std::lock_guard lock(mutex_);
    return state_;
}

std::string Project::image_path(const std::string& name) const {
    if (!std::binary_search(names_.begin(), names_.end(), name))
        throw UnknownImageError("image '" + name + "' is not in " + state_.images_dir);
    return state_.images_dir + "/" + name;
}

const ImageAnnotations* Project::find_locked(const std::string& name) const {
    auto it = images_.find(name);
    return it == images_.end() ? nullptr : &it->second;
}

ImageAnnotations Project::image(const std::string& name) const {
    image_path(name);
    std::lock_guard lock(mutex_);
    if (const ImageAnnotations* a = find_locked(name)) return *a;
    ImageAnnotations a;
    a.name = name;
    return a;
}

void Project::save_project_locked() const {
    write_json_file(path_, {{"sam_annotate_project", 1},
                            {"images_dir", state_.images_dir},
                            {"labels", state_.labels},
                            {"labels_version", state_.labels_version},
                            {"current", state_.current}});
}

void Project::save_image_locked(const ImageAnnotations& a) const { write_json_file(image_file(a.name), to_json(a)); }

ImageAnnotations Project::save_image(const std::string& name, int64_t base_version, ImageAnnotations next) {
    image_path(name);
    std::lock_guard lock(mutex_);
    const ImageAnnotations* old = find_locked(name);
    const int64_t version = old ? old->version : 0;
    if (base_version != version)
        throw ConflictError("image '" + name + "' was changed elsewhere (another tab?): it is at version " +
                            std::to_string(version) + ", this change was made on version " +
                            std::to_string(base_version) + "; reload the image to see the other change");
    if (old && old->width > 0 && (next.width != old->width || next.height != old->height))
        throw InputError("width", "the image is " + std::to_string(old->width) + " x " + std::to_string(old->height));
    std::set<int64_t> ids;
    for (auto* list : {&next.objects, &next.proposals})
        for (auto& o : *list) {
            if (o.rle.height != next.height || o.rle.width != next.width)
                throw InputError("segmentation.size", "does not match the image");
            if (list == &next.objects && std::find(state_.labels.begin(), state_.labels.end(), o.label) == state_.labels.end())
                throw InputError("label", "'" + o.label + "' is not one of the project's labels");
            if (o.id <= 0 || ids.count(o.id)) o.id = next_id_++;
            next_id_ = std::max(next_id_, o.id + 1);
            ids.insert(o.id);
        }
    next.name = name;
    next.version = version + 1;
    save_image_locked(next);
    images_[name] = next;
    return next;
}

void Project::set_image_size(const std::string& name, int width, int height) {
    image_path(name);
    std::lock_guard lock(mutex_);
    ImageAnnotations& a = images_[name];
    if (a.width == width && a.height == height) return;
    if (!a.objects.empty() || !a.proposals.empty())
        throw Error(image_file(name) + ": records a size of " + std::to_string(a.width) + " x " +
                    std::to_string(a.height) + ", the image is " + std::to_string(width) + " x " + std::to_string(height));
    a.name = name;
    a.width = width;
    a.height = height;
    ++a.version;
    save_image_locked(a);
}

int64_t Project::set_labels(const std::vector<std::string>& labels, int64_t base_version) {
    std::lock_guard lock(mutex_);
    if (base_version != state_.labels_version)
        throw ConflictError("the labels were changed elsewhere (another tab?): they are at version " +
                            std::to_string(state_.labels_version) + ", this change was made on version " +
                            std::to_string(base_version) + "; reload the page");
    std::set<std::string> seen;
    for (const auto& l : labels) {
        if (l.empty()) throw InputError("labels", "an empty label");
        if (!seen.insert(l).second) throw InputError("labels", "'" + l + "' is given twice");
    }
    for (const auto& [name, a] : images_)
        for (const auto& o : a.objects)
            if (!seen.count(o.label))
                throw InputError("labels", "'" + o.label + "' is in use (an object of " + name + "); relabel it first");
    state_.labels = labels;
    ++state_.labels_version;
    save_project_locked();
    return state_.labels_version;
}

void Project::set_current(const std::string& name) {
    image_path(name);
    std::lock_guard lock(mutex_);
    if (state_.current == name) return;
    state_.current = name;
    save_project_locked();
}

}  // namespace sam::annotate
