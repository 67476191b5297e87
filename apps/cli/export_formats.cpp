#include "cli/export_formats.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include "cli/sa1b.h"
#include "io/atomic_file.h"
#include "sam/image.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace sam::cli {

std::vector<Outline> trace_outlines(const uint8_t* mask, int height, int width) {
    auto fg = [&](int x, int y) { return x >= 0 && y >= 0 && x < width && y < height && mask[size_t(y) * width + x] != 0; };
    // 4-connected parts, each traced from the top-left corner of its first pixel in raster order.
    std::vector<int32_t> part(size_t(height) * width, -1);
    std::vector<std::array<int, 2>> starts, stack;
    for (int y = 0; y < height; ++y)
        for (int x = 0; x < width; ++x) {
            if (!fg(x, y) || part[size_t(y) * width + x] >= 0) continue;
            const int id = static_cast<int>(starts.size());
            starts.push_back({x, y});
            part[size_t(y) * width + x] = id;
            stack.push_back({x, y});
            while (!stack.empty()) {
                const auto [px, py] = stack.back();
                stack.pop_back();
                const int nb[4][2] = {{px + 1, py}, {px - 1, py}, {px, py + 1}, {px, py - 1}};
                for (const auto& n : nb)
                    if (fg(n[0], n[1]) && part[size_t(n[1]) * width + n[0]] < 0) {
                        part[size_t(n[1]) * width + n[0]] = id;
                        stack.push_back({n[0], n[1]});
                    }
            }
        }
    // Crack following with the part on the right hand (directions E, S, W, N; y points down).
    // At each corner, of the two pixels ahead, R (right) and L (left): R set and L set: turn
    // left; R set, L clear: straight on; R clear: turn right (also when L is set: a diagonal
    // neighbour is another 4-connected part).
    const int dx[4] = {1, 0, -1, 0}, dy[4] = {0, 1, 0, -1};
    std::vector<Outline> outlines;
    for (const auto& [x0, y0] : starts) {
        Outline out;
        int vx = x0, vy = y0, d = 3;  // as if arriving at the start corner going north
        do {
            bool l = false, r = false;
            switch (d) {
                case 0: l = fg(vx, vy - 1), r = fg(vx, vy); break;
                case 1: l = fg(vx, vy), r = fg(vx - 1, vy); break;
                case 2: l = fg(vx - 1, vy), r = fg(vx - 1, vy - 1); break;
                default: l = fg(vx - 1, vy - 1), r = fg(vx, vy - 1); break;
            }
            const int nd = r ? (l ? (d + 3) % 4 : d) : (d + 1) % 4;
            if (nd != d) out.push_back({vx, vy});
            d = nd;
            vx += dx[d];
            vy += dy[d];
        } while (vx != x0 || vy != y0);
        outlines.push_back(std::move(out));
    }
    return outlines;
}

std::vector<uint8_t> rasterize_polygons(const std::vector<std::vector<double>>& polygons, int height, int width) {
    std::vector<uint8_t> mask(size_t(height) * width, 0);
    std::vector<double> xs;
    for (int y = 0; y < height; ++y) {
        const double yc = y + 0.5;
        xs.clear();
        for (const auto& p : polygons) {
            const size_t n = p.size() / 2;
            for (size_t i = 0; i < n; ++i) {
                const double x1 = p[2 * i], y1 = p[2 * i + 1], x2 = p[2 * ((i + 1) % n)], y2 = p[2 * ((i + 1) % n) + 1];
                if ((y1 <= yc) != (y2 <= yc)) xs.push_back(x1 + (yc - y1) * (x2 - x1) / (y2 - y1));
            }
        }
        std::sort(xs.begin(), xs.end());
        for (size_t k = 0; k + 1 < xs.size(); k += 2) {
            const int a = std::max(0, static_cast<int>(std::ceil(xs[k] - 0.5)));
            const int b = std::min(width, static_cast<int>(std::ceil(xs[k + 1] - 0.5)));
            for (int x = a; x < b; ++x) mask[size_t(y) * width + x] ^= 1;
        }
    }
    return mask;
}

namespace {

std::vector<double> flat(const Outline& o) {
    std::vector<double> p;
    for (const auto& v : o) p.insert(p.end(), {double(v[0]), double(v[1])});
    return p;
}

json rle_json(const Rle& rle) { return {{"size", {rle.height, rle.width}}, {"counts", rle_to_coco_string(rle)}}; }

double outline_area(const Outline& o) {
    double a = 0;
    for (size_t i = 0; i < o.size(); ++i) {
        const auto& p = o[i];
        const auto& q = o[(i + 1) % o.size()];
        a += double(p[0]) * q[1] - double(q[0]) * p[1];
    }
    return std::abs(a) / 2;
}

std::string stem(const std::string& name) { return fs::path(name).stem().string(); }

void write_text(const std::string& path, const std::string& text) {
    write_file_atomic(path, [&](std::ostream& out) { out << text; });
}

// The image's record, with its size read from the file when it was never opened.
annotate::ImageAnnotations sized_record(const annotate::Project& project, const std::string& name) {
    annotate::ImageAnnotations a = project.image(name);
    if (a.width <= 0 || a.height <= 0) {
        const Image img = read_image(project.image_path(name));
        a.width = img.width;
        a.height = img.height;
    }
    return a;
}

int label_index(const std::vector<std::string>& labels, const std::string& label) {
    const auto it = std::find(labels.begin(), labels.end(), label);
    if (it == labels.end()) throw InputError("label", "'" + label + "' is not one of the project's labels");
    return static_cast<int>(it - labels.begin());
}

std::vector<std::string> write_coco(const annotate::Project& project, const std::string& out, bool rle_only) {
    const auto labels = project.state().labels;
    json images = json::array(), categories = json::array(), annotations = json::array();
    for (size_t i = 0; i < labels.size(); ++i) categories.push_back({{"id", i + 1}, {"name", labels[i]}, {"supercategory", ""}});
    int64_t ann_id = 1;
    const auto& names = project.image_names();
    for (size_t i = 0; i < names.size(); ++i) {
        const annotate::ImageAnnotations a = sized_record(project, names[i]);
        images.push_back({{"id", i + 1}, {"file_name", names[i]}, {"width", a.width}, {"height", a.height}});
        for (const auto& o : a.objects) {
            const auto b = rle_to_box_xyxy(o.rle);
            const int64_t area = rle_area(o.rle);
            annotations.push_back({{"id", ann_id++},
                                   {"image_id", i + 1},
                                   {"category_id", label_index(labels, o.label) + 1},
                                   {"segmentation", coco_segmentation(o.rle, rle_only)},
                                   {"area", area},
                                   {"bbox", area ? json{b[0], b[1], b[2] - b[0] + 1, b[3] - b[1] + 1} : json{0, 0, 0, 0}},
                                   {"iscrowd", 0}});
        }
    }
    const json coco = {{"info", {{"description", "exported by sam export"}}},
                       {"images", images},
                       {"annotations", annotations},
                       {"categories", categories}};
    write_text(out, coco.dump());
    return {out};
}

std::vector<std::string> write_yolo(const annotate::Project& project, const std::string& out) {
    const auto state = project.state();
    fs::create_directories(out + "/labels");
    std::vector<std::string> files;
    std::string yaml = "path: " + state.images_dir + "\ntrain: .\nval: .\nnames:\n";
    for (size_t i = 0; i < state.labels.size(); ++i) yaml += "  " + std::to_string(i) + ": " + json(state.labels[i]).dump() + "\n";
    write_text(out + "/data.yaml", yaml);
    files.push_back(out + "/data.yaml");
    for (const std::string& name : project.image_names()) {
        const annotate::ImageAnnotations a = project.image(name);
        std::string text;
        for (const auto& o : a.objects) {
            const std::vector<uint8_t> m = rle_decode(o.rle);
            const std::vector<Outline> parts = trace_outlines(m.data(), o.rle.height, o.rle.width);
            if (parts.empty()) continue;
            const Outline& largest = *std::max_element(parts.begin(), parts.end(), [](const Outline& p, const Outline& q) {
                return outline_area(p) < outline_area(q);
            });
            char buf[48];
            text += std::to_string(label_index(state.labels, o.label));
            for (const auto& v : largest) {
                std::snprintf(buf, sizeof(buf), " %.6f %.6f", double(v[0]) / a.width, double(v[1]) / a.height);
                text += buf;
            }
            text += "\n";
        }
        const std::string path = out + "/labels/" + stem(name) + ".txt";
        write_text(path, text);
        files.push_back(path);
    }
    return files;
}

std::vector<std::string> write_sa1b(const annotate::Project& project, const std::string& out) {
    fs::create_directories(out);
    std::vector<std::string> files;
    const auto& names = project.image_names();
    for (size_t i = 0; i < names.size(); ++i) {
        const annotate::ImageAnnotations a = sized_record(project, names[i]);
        std::vector<Sa1bAnnotation> anns;
        for (const auto& o : a.objects)
            anns.push_back(sa1b_annotation(o.rle, o.id, o.predicted_iou, o.stability_score, o.point_coords));
        const std::string path = out + "/" + stem(names[i]) + ".json";
        write_sa1b_json(path, sa1b_image_json(int64_t(i + 1), a.width, a.height, names[i], anns));
        files.push_back(path);
    }
    return files;
}

std::vector<std::string> write_index_pngs(const annotate::Project& project, const std::string& out) {
    fs::create_directories(out);
    std::vector<std::string> files;
    json index = json::object();
    for (const std::string& name : project.image_names()) {
        const annotate::ImageAnnotations a = sized_record(project, name);
        if (a.objects.size() > 255)
            throw InputError(name, std::to_string(a.objects.size()) + " objects; a PNG index mask holds at most 255");
        std::vector<uint8_t> pixels(size_t(a.width) * a.height, 0);
        json labels = json::array();
        for (size_t k = 0; k < a.objects.size(); ++k) {
            const std::vector<uint8_t> m = rle_decode(a.objects[k].rle);
            for (size_t p = 0; p < m.size(); ++p)
                if (m[p]) pixels[p] = static_cast<uint8_t>(k + 1);
            labels.push_back({{"index", k + 1}, {"label", a.objects[k].label}, {"id", a.objects[k].id}});
        }
        const std::string path = out + "/" + stem(name) + ".png";
        write_png(path, pixels.data(), a.width, a.height, 1);
        files.push_back(path);
        index[name] = {{"mask", stem(name) + ".png"}, {"objects", labels}};
    }
    write_text(out + "/index.json", index.dump(1));
    files.push_back(out + "/index.json");
    return files;
}

json read_json(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw InputError(path, "cannot be read");
    const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw InputError(path, "not a JSON object");
    return j;
}

// A COCO segmentation (polygons, compressed or uncompressed RLE) as an RLE of h x w.
Rle coco_to_rle(const json& seg, int h, int w, const std::string& where) {
    if (seg.is_array()) {
        std::vector<std::vector<double>> polys;
        for (const auto& p : seg) {
            if (!p.is_array() || p.size() < 6 || p.size() % 2) throw InputError(where, "a polygon needs 3 or more x, y pairs");
            std::vector<double> v;
            for (const auto& c : p) {
                if (!c.is_number()) throw InputError(where, "a polygon coordinate is not a number");
                v.push_back(c.get<double>());
            }
            polys.push_back(std::move(v));
        }
        // Parts of one object may overlap: the union of each polygon's pixels.
        std::vector<uint8_t> m(size_t(h) * w, 0);
        for (const auto& p : polys) {
            const auto one = rasterize_polygons({p}, h, w);
            for (size_t i = 0; i < m.size(); ++i) m[i] |= one[i];
        }
        return rle_encode(m.data(), h, w);
    }
    if (!seg.is_object() || !seg.contains("counts") || !seg.contains("size")) throw InputError(where, "neither polygons nor RLE");
    const auto size = seg["size"];
    if (!size.is_array() || size.size() != 2 || size[0] != h || size[1] != w)
        throw InputError(where + ".size", "does not match the image's height and width");
    if (seg["counts"].is_string()) {
        try {
            return rle_from_coco_string(seg["counts"].get<std::string>(), h, w);
        } catch (const InputError& e) {
            throw InputError(where + ".counts", e.what());
        }
    }
    Rle r{h, w, {}};
    try {
        r.counts = seg["counts"].get<std::vector<uint32_t>>();
    } catch (const json::exception&) {
        throw InputError(where + ".counts", "neither a string nor a list of counts");
    }
    int64_t total = 0;
    for (uint32_t c : r.counts) total += c;
    if (total != int64_t(h) * w) throw InputError(where + ".counts", "do not sum to height x width");
    return r;
}

}  // namespace

json coco_segmentation(const Rle& rle, bool rle_only) {
    if (!rle_only && rle_area(rle) > 0) {
        const std::vector<uint8_t> m = rle_decode(rle);
        std::vector<std::vector<double>> polys;
        for (const Outline& o : trace_outlines(m.data(), rle.height, rle.width)) polys.push_back(flat(o));
        if (rasterize_polygons(polys, rle.height, rle.width) == m) return polys;
    }
    return rle_json(rle);
}

ExportFormat export_format_from_string(const std::string& s) {
    if (s == "coco") return ExportFormat::Coco;
    if (s == "yolo") return ExportFormat::Yolo;
    if (s == "sa1b") return ExportFormat::Sa1b;
    if (s == "png") return ExportFormat::Png;
    throw InputError("--format", "'" + s + "' is not coco, yolo, sa1b or png");
}

std::vector<std::string> export_project(const annotate::Project& project, ExportFormat format, const std::string& out,
                                        bool rle_only) {
    switch (format) {
        case ExportFormat::Coco: return write_coco(project, out, rle_only);
        case ExportFormat::Yolo: return write_yolo(project, out);
        case ExportFormat::Sa1b: return write_sa1b(project, out);
        case ExportFormat::Png: return write_index_pngs(project, out);
    }
    return {};
}

int64_t import_coco(annotate::Project& project, const std::string& coco_path) {
    const json coco = read_json(coco_path);
    for (const char* key : {"images", "annotations", "categories"})
        if (!coco.contains(key) || !coco[key].is_array()) throw InputError(coco_path + ": " + key, "missing or not a list");
    std::map<int64_t, std::string> category;
    for (const auto& c : coco["categories"]) {
        if (!c.is_object() || !c.contains("id") || !c["id"].is_number_integer() || !c.contains("name") || !c["name"].is_string())
            throw InputError(coco_path + ": categories", "every category needs an integer id and a name");
        category[c["id"].get<int64_t>()] = c["name"].get<std::string>();
    }
    struct Target {
        std::string name;
        int width = 0, height = 0;
        std::vector<annotate::AnnotationObject> objects;
    };
    std::map<int64_t, Target> targets;
    const auto& names = project.image_names();
    for (const auto& im : coco["images"]) {
        if (!im.is_object() || !im.contains("id") || !im["id"].is_number_integer() || !im.contains("file_name") ||
            !im["file_name"].is_string() || !im.contains("width") || !im["width"].is_number_integer() ||
            !im.contains("height") || !im["height"].is_number_integer())
            throw InputError(coco_path + ": images", "every image needs an integer id, file_name, width and height");
        const std::string name = fs::path(im["file_name"].get<std::string>()).filename().string();
        if (!std::binary_search(names.begin(), names.end(), name)) continue;
        targets[im["id"].get<int64_t>()] = {name, im["width"].get<int>(), im["height"].get<int>(), {}};
    }
    std::vector<std::string> labels = project.state().labels;
    const size_t labels_before = labels.size();
    int64_t count = 0;
    for (size_t i = 0; i < coco["annotations"].size(); ++i) {
        const json& a = coco["annotations"][i];
        const std::string where = coco_path + ": annotations[" + std::to_string(i) + "]";
        if (!a.is_object() || !a.contains("image_id") || !a.contains("category_id") || !a.contains("segmentation"))
            throw InputError(where, "needs image_id, category_id and segmentation");
        const auto t = targets.find(a["image_id"].get<int64_t>());
        if (t == targets.end()) continue;
        const auto c = category.find(a["category_id"].get<int64_t>());
        if (c == category.end()) throw InputError(where + ".category_id", "not one of the categories");
        annotate::AnnotationObject o;
        o.label = c->second;
        o.source = "import";
        o.rle = coco_to_rle(a["segmentation"], t->second.height, t->second.width, where + ".segmentation");
        if (std::find(labels.begin(), labels.end(), o.label) == labels.end()) labels.push_back(o.label);
        t->second.objects.push_back(std::move(o));
        ++count;
    }
    if (labels.size() != labels_before) project.set_labels(labels, project.state().labels_version);
    for (auto& [id, t] : targets) {
        annotate::ImageAnnotations next = project.image(t.name);
        next.width = t.width;
        next.height = t.height;
        next.objects = std::move(t.objects);
        next.status = annotate::ImageStatus::InProgress;
        project.save_image(t.name, next.version, std::move(next));
    }
    return count;
}

}  // namespace sam::cli
