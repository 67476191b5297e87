#include "cli/sa1b.h"

#include <cctype>
#include <filesystem>

#include "io/atomic_file.h"
#include "io/content_hash.h"

namespace sam::cli {

Sa1bAnnotation sa1b_annotation(const MaskRecord& m, int64_t id) {
    Sa1bAnnotation a;
    a.id = id;
    a.rle = m.rle;
    a.bbox = {double(m.bbox[0]), double(m.bbox[1]), double(m.bbox[2]), double(m.bbox[3])};
    a.predicted_iou = m.predicted_iou;
    a.stability_score = m.stability_score;
    a.crop_box = m.crop_box;
    a.point_coords = {m.point};
    return a;
}

Sa1bAnnotation sa1b_annotation(const Rle& rle, int64_t id, double predicted_iou, double stability_score,
                               const std::vector<std::array<double, 2>>& point_coords) {
    Sa1bAnnotation a;
    a.id = id;
    a.rle = rle;
    const auto b = rle_to_box_xyxy(rle);
    a.bbox = {double(b[0]), double(b[1]), double(b[2] - b[0]), double(b[3] - b[1])};
    a.predicted_iou = predicted_iou;
    a.stability_score = stability_score;
    a.crop_box = {0, 0, rle.width, rle.height};
    a.point_coords = point_coords;
    return a;
}

nlohmann::json sa1b_image_json(int64_t image_id, int width, int height, const std::string& file_name,
                               const std::vector<Sa1bAnnotation>& annotations) {
    nlohmann::json anns = nlohmann::json::array();
    for (const Sa1bAnnotation& a : annotations) {
        nlohmann::json points = nlohmann::json::array();
        for (const auto& p : a.point_coords) points.push_back({p[0], p[1]});
        anns.push_back({{"id", a.id},
                        {"segmentation", {{"size", {a.rle.height, a.rle.width}}, {"counts", rle_to_coco_string(a.rle)}}},
                        {"bbox", a.bbox},
                        {"area", rle_area(a.rle)},
                        {"predicted_iou", a.predicted_iou},
                        {"stability_score", a.stability_score},
                        {"crop_box", a.crop_box},
                        {"point_coords", points}});
    }
    return {{"image", {{"image_id", image_id}, {"width", width}, {"height", height}, {"file_name", file_name}}},
            {"annotations", anns}};
}

int64_t sa1b_image_id(const std::string& file_name) {
    const std::string stem = std::filesystem::path(file_name).stem().string();
    size_t i = stem.size();
    while (i > 0 && std::isdigit(static_cast<unsigned char>(stem[i - 1]))) --i;
    if (i < stem.size() && stem.size() - i <= 15) return std::stoll(stem.substr(i));
    return std::stoll(sha256_hex(file_name.data(), file_name.size()).substr(0, 7), nullptr, 16);
}

nlohmann::json sa1b_amg_record(const std::string& image_path, int width, int height,
                               const std::vector<MaskRecord>& masks) {
    const std::string name = std::filesystem::path(image_path).filename().string();
    std::vector<Sa1bAnnotation> anns;
    for (size_t i = 0; i < masks.size(); ++i) anns.push_back(sa1b_annotation(masks[i], int64_t(i)));
    return sa1b_image_json(sa1b_image_id(name), width, height, name, anns);
}

void write_sa1b_json(const std::string& path, const nlohmann::json& record) {
    const std::string text = record.dump();
    write_file_atomic(path, [&](std::ostream& out) { out << text; });
}

}  // namespace sam::cli
