// The annotation project of `sam annotate`: a folder of images, the class labels, and per image
// its accepted objects and its proposals, every change saved at once, atomically.
//
// On disk, for --project P (e.g. "work/cats.json"):
//   P                       {"sam_annotate_project": 1, "images_dir", "labels", "labels_version", "current"}
//   <P without .json>.images/<image file name>.json
//                           {"sam_annotate_image": 1, "image", "width", "height", "status", "version",
//                            "objects": [...], "proposals": [...]}
//   <P without .json>.cache/<sha256 of the image bytes>.npy (+ .npy.json): embeddings
// Every file is replaced atomically (src/io/atomic_file.h): a kill at any moment leaves each file
// either as it was or as it was meant to be, so at most the change in flight is lost.
//
// Versions: every image file and the label list carry a version, incremented by each save. A
// save names the version it started from; when another save came first (two tabs on one
// project) it is refused with a ConflictError instead of overwriting the other change.
//
// Thread safety: every method may be called from any thread; saves are serialised.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sam/error.h"
#include "sam/rle.h"

namespace sam::annotate {

// One object: an accepted annotation or a proposal of segment-everything.
struct AnnotationObject {
    int64_t id = 0;
    std::string label;            // one of the project's labels ("" for an unlabelled proposal)
    Rle rle;                      // the mask, height x width of the image
    bool hidden = false;          // kept, but not drawn (and still exported)
    std::string source;           // "clicks", "box", "proposal", "import"
    double predicted_iou = 0.0;   // the model's own estimate (0 when unknown)
    double stability_score = 0.0;
    std::array<int, 4> crop_box{};                    // XYWH, the generator's crop (proposals)
    std::vector<std::array<double, 2>> point_coords;  // the prompt points (x, y)
    std::vector<int> point_labels;                    // 1 on the object, 0 off it (empty: all 1)
};

enum class ImageStatus { New, InProgress, Done };
std::string to_string(ImageStatus s);
ImageStatus image_status_from_string(const std::string& s);  // throws InputError("status", ...)

struct ImageAnnotations {
    std::string name;  // the image's file name inside the images folder
    int width = 0, height = 0;  // 0 until the image was first opened
    ImageStatus status = ImageStatus::New;
    int64_t version = 0;  // 0: never saved
    std::vector<AnnotationObject> objects, proposals;
};

// JSON forms (as on disk and in the HTTP API). The segmentation is COCO's compressed RLE
// {"size": [h, w], "counts": "..."}. The parsers throw InputError naming `where` and the field.
nlohmann::json to_json(const AnnotationObject& o);
AnnotationObject object_from_json(const nlohmann::json& j, int height, int width, const std::string& where);
nlohmann::json to_json(const ImageAnnotations& a);
ImageAnnotations image_from_json(const nlohmann::json& j, const std::string& where);

// A save refused because the file changed since the version it started from.
class ConflictError : public Error {
  public:
    using Error::Error;
};
// An image name that is not one of the project's images.
class UnknownImageError : public Error {
  public:
    using Error::Error;
};

struct ProjectState {
    std::string images_dir;
    std::vector<std::string> labels;
    int64_t labels_version = 0;
    std::string current;  // the image the annotator was on ("" at first)
};

class Project {
  public:
    // Opens the project at `path`, creating it when absent (then images_dir is required; labels
    // may be empty). When it exists, a non-empty images_dir must name the same folder, and
    // labels not yet in the project are added. Throws sam::Error naming the file at fault.
    Project(const std::string& path, const std::string& images_dir, const std::vector<std::string>& labels);
    // Opens an existing project (for `sam export`).
    explicit Project(const std::string& path) : Project(path, "", {}) {}

    ProjectState state() const;
    const std::string& path() const { return path_; }
    std::string cache_dir() const { return base_ + ".cache"; }
    std::string image_path(const std::string& name) const;  // throws UnknownImageError
    // The images of the folder (regular .jpg/.jpeg/.png files, not hidden), sorted.
    const std::vector<std::string>& image_names() const { return names_; }

    // The image's annotations (version 0 and no objects when never saved).
    ImageAnnotations image(const std::string& name) const;
    // Replaces the image's status, objects and proposals if its version is still base_version;
    // returns the saved record (version + 1). Objects without an id get a new one. Throws
    // ConflictError, UnknownImageError, or InputError for a mask of the wrong size or a label
    // not in the project.
    ImageAnnotations save_image(const std::string& name, int64_t base_version, ImageAnnotations next);
    // Records the image's size (when first opened); saves nothing if already known.
    void set_image_size(const std::string& name, int width, int height);

    // Replaces the labels if their version is still base_version; returns the new version. A
    // label in use by an object cannot be removed (InputError naming it).
    int64_t set_labels(const std::vector<std::string>& labels, int64_t base_version);
    void set_current(const std::string& name);

  private:
    void save_project_locked() const;
    void save_image_locked(const ImageAnnotations& a) const;
    std::string image_file(const std::string& name) const;
    const ImageAnnotations* find_locked(const std::string& name) const;

    std::string path_, base_;
    std::vector<std::string> names_;
    mutable std::mutex mutex_;
    ProjectState state_;
    std::map<std::string, ImageAnnotations> images_;  // every image with a file on disk
    int64_t next_id_ = 1;
};

}  // namespace sam::annotate
