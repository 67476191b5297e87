// sam amg: segment everything in an image or a folder of images, writing what the reference
// script (scripts/amg.py) writes: per image a folder of 0.png, 1.png, ... with metadata.csv, or
// (--convert-to-rle) <image>.json with COCO RLE records; --overlay adds <image>_overlay.png.
// Over a folder it is a batch: see amg_batch.h for what makes it safe to kill and resume.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "cli/amg_batch.h"
#include "cli/model_loading.h"
#include "cli/progress.h"
#include "cli/sa1b.h"
#include "io/atomic_file.h"
#include "sam/automatic_mask_generator.h"
#include "sam/image.h"

namespace fs = std::filesystem;

namespace sam::cli {
namespace {

struct AmgCliOptions {
    ModelOptions model;
    std::string input, output;
    bool convert_to_rle = false, overlay = false, skip_existing = false;
    std::string shard;  // "K/N": this process takes every N-th image starting at K
    std::string output_mode = "png";  // png | coco_rle (= --convert-to-rle) | sa1b (cli/sa1b.h)
    AmgOptions amg;
};

// Parses "K/N" (0 <= K < N); throws naming the option otherwise.
std::pair<size_t, size_t> parse_shard(const std::string& s) {
    size_t k = 0, n = 0;
    char slash = 0;
    std::istringstream in(s);
    if (!(in >> k >> slash >> n) || slash != '/' || n == 0 || k >= n || !in.eof())
        throw InputError("--shard", "'" + s + "' is not K/N with 0 <= K < N");
    return {k, n};
}

// Python's str(float): the shortest repr, fixed notation for exponents in [-4, 16).
std::string py_float(double v) {
    if (std::isnan(v)) return "nan";  // e.g. the stability score of an empty mask (0 / 0)
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
    std::string s(buf, r.ptr);
    const size_t e = s.find('e');
    std::string digits = s.substr(0, e);
    const int exp = std::stoi(s.substr(e + 1));
    const bool neg = digits[0] == '-';
    if (neg) digits.erase(0, 1);
    digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
    std::string out;
    if (exp >= -4 && exp < 16) {
        if (exp < 0) {
            out = "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
        } else if (static_cast<int>(digits.size()) <= exp + 1) {
            out = digits + std::string(static_cast<size_t>(exp + 1 - static_cast<int>(digits.size())), '0') + ".0";
        } else {
            out = digits.substr(0, static_cast<size_t>(exp + 1)) + "." + digits.substr(static_cast<size_t>(exp + 1));
        }
    } else {
        out = digits.substr(0, 1) + (digits.size() > 1 ? "." + digits.substr(1) : "") + "e" + (exp < 0 ? "-" : "+") +
              (std::abs(exp) < 10 ? "0" : "") + std::to_string(std::abs(exp));
    }
    return (neg ? "-" : "") + out;
}

// Writes 0.png, 1.png, ... and metadata.csv into `dir`, a new folder of sam's own, each file
// fsynced; the caller syncs the folder and renames it into place.
void write_masks_to_folder(const std::vector<MaskRecord>& masks, const std::string& dir, int h, int w) {
    std::string csv =
        "id,area,bbox_x0,bbox_y0,bbox_w,bbox_h,point_input_x,point_input_y,predicted_iou,stability_score,"
        "crop_box_x0,crop_box_y0,crop_box_w,crop_box_h";
    for (size_t i = 0; i < masks.size(); ++i) {
        const MaskRecord& m = masks[i];
        std::vector<uint8_t> png = m.mask.empty() ? rle_decode(m.rle) : m.mask;
        for (uint8_t& v : png) v = v ? 255 : 0;
        write_new_file_durable(dir + "/" + std::to_string(i) + ".png", encode_png(png.data(), w, h, 1));
        csv += "\n" + std::to_string(i) + "," + std::to_string(m.area);
        for (int v : m.bbox) csv += "," + py_float(v);
        csv += "," + py_float(m.point[0]) + "," + py_float(m.point[1]) + "," + py_float(m.predicted_iou) + "," +
               py_float(m.stability_score);
        for (int v : m.crop_box) csv += "," + std::to_string(v);
    }
    write_new_file_durable(dir + "/metadata.csv", std::vector<uint8_t>(csv.begin(), csv.end()));
}

nlohmann::json records_json(const std::vector<MaskRecord>& masks) {
    nlohmann::json arr = nlohmann::json::array();
    for (const MaskRecord& m : masks) {
        arr.push_back({{"segmentation", {{"size", {m.rle.height, m.rle.width}}, {"counts", rle_to_coco_string(m.rle)}}},
                       {"area", m.area},
                       {"bbox", {double(m.bbox[0]), double(m.bbox[1]), double(m.bbox[2]), double(m.bbox[3])}},
                       {"predicted_iou", m.predicted_iou},
                       {"point_coords", {{m.point[0], m.point[1]}}},
                       {"stability_score", m.stability_score},
                       {"crop_box", m.crop_box}});
    }
    return arr;
}

// The classic show_anns picture: masks largest first, each a random colour at alpha 0.35.
void write_overlay(const std::string& path, const Image& img, const std::vector<MaskRecord>& masks) {
    std::vector<size_t> order(masks.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return masks[a].area > masks[b].area; });
    const size_t n = static_cast<size_t>(img.width) * img.height;
    std::vector<float> colour(n * 3);
    std::vector<uint8_t> covered(n, 0);
    std::mt19937 rng(0);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    for (size_t i : order) {
        const float c[3] = {u(rng), u(rng), u(rng)};
        std::vector<uint8_t> m = masks[i].mask.empty() ? rle_decode(masks[i].rle) : masks[i].mask;
        for (size_t p = 0; p < n; ++p)
            if (m[p]) {
                covered[p] = 1;
                for (int k = 0; k < 3; ++k) colour[p * 3 + static_cast<size_t>(k)] = c[k];
            }
    }
    std::vector<uint8_t> out = img.rgb;
    for (size_t p = 0; p < n; ++p)
        if (covered[p])
            for (size_t k = 0; k < 3; ++k)
                out[p * 3 + k] = static_cast<uint8_t>(0.65f * img.rgb[p * 3 + k] + 0.35f * 255.0f * colour[p * 3 + k] + 0.5f);
    write_png(path, out.data(), img.width, img.height, 3);
}

// One image's outputs, each atomic and fsynced, between the two markers: a kill at any moment
// leaves either a complete image or one that --skip-existing redoes.
void write_outputs(const ImageOutputs& io, bool rle, const Image& img, const std::vector<MaskRecord>& masks,
                   bool sa1b = false) {
    mark_started(io);
    if (rle) {
        const std::string text = sa1b ? sa1b_amg_record(io.image, img.width, img.height, masks).dump() : records_json(masks).dump();
        write_file_atomic(io.main_path(), [&](std::ostream& out) { out << text; });
    } else {
        // Built under a temporary name and renamed into place as a whole.
        const std::string tmp = make_temporary_dir(io.main_path());
        try {
            write_masks_to_folder(masks, tmp, img.height, img.width);
            sync_directory(tmp);
            rename_durable(tmp, io.main_path());
        } catch (...) {
            std::error_code ec;
            fs::remove_all(tmp, ec);
            throw;
        }
    }
    if (io.names.size() > 1) write_overlay(io.path(io.names[1]), img, masks);
    mark_complete(io);
}

// Prints each problem as an error line; true if there was any.
bool report_problems(const std::vector<std::string>& problems) {
    const size_t shown = std::min<size_t>(problems.size(), 20);
    for (size_t i = 0; i < shown; ++i) std::cerr << "error: " << problems[i] << "\n";
    if (problems.size() > shown) std::cerr << "error: ... and " << problems.size() - shown << " more\n";
    return !problems.empty();
}

// The reason an image failed, without the path its message may start with.
std::string failure_reason(const std::string& image, const std::string& what) {
    return what.starts_with(image + ": ") ? what.substr(image.size() + 2) : what;
}

// Checks everything that can refuse the run, before the model loads. Returns the images this run
// (or shard) takes; an empty list means stop with `code`.
std::vector<ImageOutputs> plan_batch(const AmgCliOptions& o, const InputListing& listing, int& code) {
    code = 1;
    const auto [k, n] = o.shard.empty() ? std::pair<size_t, size_t>{0, 1} : parse_shard(o.shard);
    for (const std::string& f : listing.not_regular) std::cerr << f << ": not a regular file, skipped\n";
    if (listing.images.empty()) {
        std::cerr << "error: no images in " << o.input << " (only regular, non-hidden files are read)\n";
        return {};
    }
    std::vector<ImageOutputs> all, mine;
    for (const std::string& image : listing.images)
        all.push_back(image_outputs(image, o.output, o.convert_to_rle, o.overlay));
    if (report_problems(check_output_folder(o.input, o.output)) || report_problems(find_name_collisions(all))) return {};
    // A batch job over many machines: every task runs the same command with its own K (e.g. a
    // Slurm array: --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT) and takes the images
    // K, K+N, K+2N, ... of the sorted list; their outputs, markers and temporaries never collide.
    for (size_t i = k; i < all.size(); i += n) mine.push_back(all[i]);
    if (mine.empty()) {
        std::cerr << "shard " << o.shard << ": no images to process\n";
        code = 0;
        return {};
    }
    std::vector<std::string> problems;
    for (const ImageOutputs& io : mine) {
        if (o.skip_existing && is_complete(io)) continue;
        for (std::string& p : check_ownership(io)) problems.push_back(std::move(p));
    }
    if (report_problems(problems)) return {};
    for (const ImageOutputs& io : mine) remove_stale_temporaries(io);
    return mine;
}

// Segments one image and writes its outputs; throws whatever stops it.
void process_image(SamAutomaticMaskGenerator& gen, const ImageOutputs& io, bool rle, bool sa1b) {
    const Image img = read_image(io.image);
    std::vector<MaskRecord> masks;
    {
        ProgressBar bar(fs::path(io.image).filename().string());
        masks = gen.generate(img, [&](int64_t done, int64_t total) { bar.update(done, total); });
    }
    write_outputs(io, rle, img, masks, sa1b);
    const AmgTimings& tm = gen.last_timings();
    std::fprintf(stderr, "%s: %zu masks in %.2f s (encoder %.2f s, decoder %.2f s, post-processing %.2f s)\n",
                 io.image.c_str(), masks.size(), tm.total, tm.encoder, tm.decoder, tm.postprocess);
}

int run_amg(AmgCliOptions& o) {
    if (o.output_mode != "png") o.convert_to_rle = true;  // coco_rle and sa1b: <stem>.json
    const InputListing listing = list_inputs(o.input);
    int code = 0;
    const std::vector<ImageOutputs> mine = plan_batch(o, listing, code);
    if (mine.empty()) return code;

    o.amg.output_mode = o.convert_to_rle ? OutputMode::CocoRle : OutputMode::BinaryMask;
    Sam sam = load_model(o.model);
    SamAutomaticMaskGenerator gen(sam, o.amg);
    size_t done = 0, skipped = listing.not_regular.size();
    std::vector<std::string> failed;  // "<image>: <reason>"
    for (const ImageOutputs& io : mine) {
        if (o.skip_existing && is_complete(io)) {
            std::cerr << io.image << ": output exists, skipped\n";
            ++skipped;
            continue;
        }
        // One image failing (corrupt, out of memory, a write error) does not stop the batch.
        try {
            process_image(gen, io, o.convert_to_rle, o.output_mode == "sa1b");
            ++done;
            continue;
        } catch (const std::bad_alloc&) {
            failed.push_back(io.image + ": out of memory");
        } catch (const std::exception& e) {
            failed.push_back(io.image + ": " + failure_reason(io.image, e.what()));
        }
        std::cerr << "error: " << failed.back() << "; continuing with the next image\n";
    }
    std::cerr << "amg: " << done << " done, " << skipped << " skipped, " << failed.size() << " failed\n";
    for (const std::string& f : failed) std::cerr << "  failed: " << f << "\n";
    return failed.empty() ? 0 : 1;
}

Registration reg("amg", "Segment everything: the automatic mask generator over an image or a folder",
                 [](CLI::App& cmd) {
                     auto o = std::make_shared<AmgCliOptions>();
                     add_model_options(cmd, o->model);
                     AmgOptions& a = o->amg;
                     cmd.add_option("--input,-i", o->input, "An image, or a folder of images")->required()->check(CLI::ExistingPath);
                     cmd.add_option("--output,-o", o->output, "Output folder")->required();
                     cmd.add_flag("--convert-to-rle", o->convert_to_rle,
                                  "Write <image>.json with COCO RLE records instead of PNG folders");
                     cmd.add_option("--output-mode", o->output_mode,
                                    "png (folders of PNGs) | coco_rle (as --convert-to-rle) | sa1b (SA-1B's per-image JSON)")
                         ->check(CLI::IsMember({"png", "coco_rle", "sa1b"}));
                     cmd.add_flag("--overlay", o->overlay, "Also write <image>_overlay.png (masks over the image)");
                     cmd.add_option("--shard", o->shard,
                                    "K/N: process only images K, K+N, ... of the sorted folder (one task of a batch job)");
                     cmd.add_flag("--skip-existing", o->skip_existing,
                                  "Skip images whose outputs are complete (resume an interrupted batch)");
                     cmd.add_option("--points-per-side", a.points_per_side, "Points sampled along one side of the image")->capture_default_str();
                     cmd.add_option("--points-per-batch", a.points_per_batch, "Points decoded together")->capture_default_str();
                     cmd.add_option("--pred-iou-thresh", a.pred_iou_thresh, "Keep masks with predicted IoU above this")->capture_default_str();
                     cmd.add_option("--stability-score-thresh", a.stability_score_thresh, "Keep masks at least this stable")->capture_default_str();
                     cmd.add_option("--stability-score-offset", a.stability_score_offset, "Logit offset of the stability score")->capture_default_str();
                     cmd.add_option("--box-nms-thresh", a.box_nms_thresh, "Box IoU above which duplicate masks are removed")->capture_default_str();
                     cmd.add_option("--crop-n-layers", a.crop_n_layers, "Layers of image crops")->capture_default_str();
                     cmd.add_option("--crop-nms-thresh", a.crop_nms_thresh, "Box IoU for duplicates between crops")->capture_default_str();
                     cmd.add_option("--crop-overlap-ratio", a.crop_overlap_ratio, "Overlap of crops, as a fraction of the image")->capture_default_str();
                     cmd.add_option("--crop-n-points-downscale-factor", a.crop_n_points_downscale_factor,
                                    "Points per side divided by this per crop layer")->capture_default_str();
                     cmd.add_option("--min-mask-region-area", a.min_mask_region_area,
                                    "Remove holes and islands smaller than this (pixels)")->capture_default_str();
                     return [o] { return run_amg(*o); };
                 });

}  // namespace
}  // namespace sam::cli
