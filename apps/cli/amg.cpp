// sam amg: segment everything in an image or a folder of images, writing what the reference
// script (scripts/amg.py) writes: per image a folder of 0.png, 1.png, ... with metadata.csv, or
// (--convert-to-rle) <image>.json with COCO RLE records; --overlay adds <image>_overlay.png.
// Over a folder, tar shards or a list of them it is a batch: see amg_batch.h for what makes it
// safe to kill and resume, amg_inputs.h for the inputs and how --shard splits them.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <type_traits>

#include "cli/amg_batch.h"
#include "cli/model_loading.h"
#include "cli/progress.h"
#include "cli/sa1b.h"
#include "io/atomic_file.h"
#include "sam/automatic_mask_generator.h"
#include "sam/sam2_automatic_mask_generator.h"
#include "sam/image.h"

namespace fs = std::filesystem;

namespace sam::cli {
namespace {

struct AmgCliOptions {
    ModelOptions model;
    std::string input, input_list, output;
    bool convert_to_rle = false, overlay = false, skip_existing = false;
    bool folder_per_shard = false;  // outputs of a tar shard's images in <output>/<shard name>/
    std::string shard;      // "K/N": this process takes the images whose name hashes to K mod N
    std::string summarize;  // write the run summary here instead of segmenting
    std::string output_mode = "png";  // png | coco_rle (= --convert-to-rle) | sa1b (cli/sa1b.h)
    AmgOptions amg;
    // SAM 2 only
    bool use_m2m = false, single_mask = false, fill_holes = false;
    bool pred_iou_given = false;  // else SAM 2's default (0.8) replaces SAM's (0.88)
};

// An image in a tar shard may be at most this large (SA-1B's are a few MB).
constexpr size_t kMaxTarMemberBytes = size_t{1} << 30;

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
                   std::chrono::steady_clock::time_point start, bool sa1b = false) {
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
    mark_complete(io, masks.size(), std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
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

// The images of --input or --input-list; of tar shards, only those of `shard`.
InputListing list_all(const AmgCliOptions& o, const ShardFilter& shard) {
    if (o.input.empty() == o.input_list.empty())
        throw InputError("--input", "give exactly one of --input and --input-list");
    if (!o.input_list.empty()) return list_input_file(o.input_list, shard);
    InputListing l;
    list_input(o.input, "--input", shard, l);
    return l;
}

// Where an image's outputs go: --output, or with --output-folder-per-shard, for an image of a
// tar shard, the folder <output>/<the shard's name without .tar...>.
std::string output_folder_of(const AmgCliOptions& o, const InputImage& image) {
    if (!o.folder_per_shard || !image.in_tar()) return o.output;
    return (fs::path(o.output) / tar_stem(image.path)).string();
}

std::vector<ImageOutputs> outputs_of(const AmgCliOptions& o, const InputListing& listing) {
    std::vector<ImageOutputs> all;
    for (const InputImage& image : listing.images)
        all.push_back(image_outputs(image, output_folder_of(o, image), o.convert_to_rle, o.overlay));
    return all;
}

// Prints each damaged tar shard as an error; the failures a run reports for them.
std::vector<std::string> damaged_tar_failures(const InputListing& listing) {
    std::vector<std::string> failed;
    for (const auto& [tar, reason] : listing.damaged_tars) {
        failed.push_back(tar + ": " + failure_reason(tar, reason));
        std::cerr << "error: " << failed.back() << "\n";
    }
    return failed;
}

// Checks everything that can refuse the run, before the model loads. Returns the images this run
// (or shard) takes; an empty list means stop with `code`.
std::vector<ImageOutputs> plan_batch(const AmgCliOptions& o, const InputListing& listing, const ShardFilter& shard,
                                     int& code) {
    code = 1;
    const auto [k, n] = shard;
    for (const std::string& f : listing.not_regular) std::cerr << f << ": not a regular file, skipped\n";
    if (listing.tar_members_skipped > 0)
        std::cerr << "amg: " << listing.tar_members_skipped << " tar members that are not images skipped\n";
    const std::string source = o.input.empty() ? o.input_list : o.input;
    if (listing.images.empty() && !listing.damaged_tars.empty()) return {};  // reported
    if (listing.images.empty() && listing.other_tasks_tars > 0) {
        std::cerr << "shard " << o.shard << ": no images to process\n";
        code = 0;
        return {};
    }
    if (listing.images.empty()) {
        std::cerr << "error: no images in " << source
                  << " (only regular, non-hidden files are read; from tar shards, .jpg, .jpeg and .png members)\n";
        return {};
    }
    std::vector<ImageOutputs> all = outputs_of(o, listing), mine;
    std::set<std::string> folders{o.output};
    for (const ImageOutputs& io : all) folders.insert(io.folder);
    for (const std::string& folder : folders)
        if (report_problems(check_output_folder(o.input, folder))) return {};
    if (report_problems(find_name_collisions(all))) return {};
    // A batch job over many machines: every task runs the same command with its own K (e.g. a
    // Slurm array: --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT) and takes the images
    // whose name hashes to K (amg_inputs.h); their outputs, markers and temporaries never collide.
    for (const ImageOutputs& io : all)
        if (in_shard(io.input, k, n)) mine.push_back(io);
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

// Reads the images of a plan in order, keeping one tar shard open while its members come (a
// shard's members are listed, and so planned, in the order they are stored).
class ImageSource {
  public:
    Image read(const InputImage& in) {
        if (!in.in_tar()) return read_image(in.path);
        std::vector<uint8_t> data;
        try {
            if (!tar_ || tar_->path() != in.path || !seek(in.member)) {
                tar_ = std::make_unique<TarReader>(in.path);
                if (!seek(in.member)) throw InputError(in.display(), "no longer in the tar shard");
            }
            data = tar_->read(in.member, kMaxTarMemberBytes);
        } catch (...) {
            tar_.reset();  // the next image reopens the shard
            throw;
        }
        return decode_image(data.data(), data.size(), in.display());
    }

  private:
    // Advances the open tar to `member`; false if it is not ahead.
    bool seek(const std::string& member) {
        std::string name;
        while (tar_->next(name))
            if (name == member) return true;
        return false;
    }
    std::unique_ptr<TarReader> tar_;
};

// Segments one image with SAM's or SAM 2's generator and writes its outputs; throws whatever
// stops it.
template <class Generator>
void process_image(Generator& gen, ImageSource& source, const ImageOutputs& io, bool rle, bool sa1b) {
    const auto start = std::chrono::steady_clock::now();
    const Image img = source.read(io.input);
    std::vector<MaskRecord> masks;
    {
        ProgressBar bar(io.input.name);
        masks = gen.generate(img, [&](int64_t done, int64_t total) { bar.update(done, total); });
    }
    write_outputs(io, rle, img, masks, start, sa1b);
    if constexpr (std::is_same_v<Generator, SamAutomaticMaskGenerator>) {
        const AmgTimings& tm = gen.last_timings();
        std::fprintf(stderr, "%s: %zu masks in %.2f s (encoder %.2f s, decoder %.2f s, post-processing %.2f s)\n",
                     io.image.c_str(), masks.size(), tm.total, tm.encoder, tm.decoder, tm.postprocess);
    } else {
        std::fprintf(stderr, "%s: %zu masks in %.2f s\n", io.image.c_str(), masks.size(),
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
}

// --summarize FILE: the merged index of a job over every shard, from the markers; no model.
int run_summary(const AmgCliOptions& o, const InputListing& listing) {
    const std::vector<std::string> damaged = damaged_tar_failures(listing);
    nlohmann::json index = nlohmann::json::array(), failures = nlohmann::json::array(),
                   missing = nlohmann::json::array();
    size_t done = 0, timed = 0;
    long long total_masks = 0;
    double total_seconds = 0;
    const std::vector<ImageOutputs> all = outputs_of(o, listing);
    if (report_problems(find_name_collisions(all))) return 1;
    for (const auto& [tar, reason] : listing.damaged_tars)
        failures.push_back({{"image", tar}, {"reason", failure_reason(tar, reason)}});
    for (const ImageOutputs& io : all) {
        const ImageStatus st = image_status(io);
        switch (st.state) {
            case ImageStatus::Done:
                ++done;
                index.push_back({{"image", io.image},
                                 {"output", fs::path(io.main_path()).lexically_relative(o.output).string()},
                                 {"masks", st.masks},
                                 {"seconds", st.seconds}});
                if (st.masks >= 0) total_masks += st.masks;
                if (st.seconds >= 0) total_seconds += st.seconds, ++timed;
                break;
            case ImageStatus::Failed:
                failures.push_back({{"image", io.image}, {"reason", st.error}});
                break;
            case ImageStatus::Incomplete:
                missing.push_back({{"image", io.image}, {"reason", "started but not finished (killed?)"}});
                break;
            case ImageStatus::Missing:
                missing.push_back({{"image", io.image}, {"reason", "no output"}});
                break;
        }
    }
    const nlohmann::json summary = {
        {"sam_amg_summary", 1},
        {"output", o.output},
        {"images", all.size()},
        {"done", done},
        {"failed", failures.size()},
        {"missing", missing.size()},
        {"masks", total_masks},
        {"seconds", std::round(total_seconds * 1000) / 1000},
        {"seconds_per_image", timed ? std::round(total_seconds / static_cast<double>(timed) * 1000) / 1000 : 0.0},
        {"failures", failures},
        {"missing_images", missing},
        {"index", index}};
    const std::string text = summary.dump(1) + "\n";
    write_file_atomic(o.summarize, [&](std::ostream& out) { out << text; });
    std::fprintf(stderr, "summary: %zu images, %zu done, %zu failed, %zu missing; %lld masks, %.2f s per image; written to %s\n",
                 all.size(), done, failures.size(), missing.size(), total_masks,
                 timed ? total_seconds / static_cast<double>(timed) : 0.0, o.summarize.c_str());
    const size_t shown = 20;
    for (size_t i = 0; i < failures.size() && i < shown; ++i)
        std::cerr << "  failed: " << failures[i]["image"].get<std::string>() << ": " << failures[i]["reason"].get<std::string>() << "\n";
    for (size_t i = 0; i < missing.size() && i < shown; ++i)
        std::cerr << "  missing: " << missing[i]["image"].get<std::string>() << ": " << missing[i]["reason"].get<std::string>() << "\n";
    return done == all.size() && damaged.empty() ? 0 : 1;
}

int run_amg(AmgCliOptions& o) {
    if (o.output_mode != "png") o.convert_to_rle = true;  // coco_rle and sa1b: <stem>.json
    if (!o.summarize.empty()) return run_summary(o, list_all(o, {}));
    ShardFilter shard;
    if (!o.shard.empty()) std::tie(shard.k, shard.n) = parse_shard(o.shard);
    const InputListing listing = list_all(o, shard);
    std::vector<std::string> failed = damaged_tar_failures(listing);  // "<image or tar>: <reason>"
    int code = 0;
    const std::vector<ImageOutputs> mine = plan_batch(o, listing, shard, code);
    if (mine.empty()) return failed.empty() ? code : 1;

    o.amg.output_mode = o.convert_to_rle ? OutputMode::CocoRle : OutputMode::BinaryMask;
    ImageSource source;
    std::optional<SamAutomaticMaskGenerator> gen;
    std::optional<Sam2AutomaticMaskGenerator> gen2;
    if (is_sam2(o.model)) {
        Sam2AmgOptions a;
        static_cast<AmgOptions&>(a) = o.amg;
        if (!o.pred_iou_given) a.pred_iou_thresh = Sam2AmgOptions().pred_iou_thresh;
        a.use_m2m = o.use_m2m;
        a.multimask_output = !o.single_mask;
        a.fill_holes = o.fill_holes;
        gen2.emplace(load_sam2_model(o.model), a);
    } else {
        if (o.use_m2m || o.single_mask || o.fill_holes)
            throw InputError("--use-m2m/--single-mask/--fill-holes", "SAM 2 options; this is a SAM model");
        gen.emplace(load_model(o.model), o.amg);
    }
    size_t done = 0, skipped = listing.not_regular.size();
    for (const ImageOutputs& io : mine) {
        if (o.skip_existing && is_complete(io)) {
            std::cerr << io.image << ": output exists, skipped\n";
            ++skipped;
            continue;
        }
        // One image failing (corrupt, out of memory, a write error) does not stop the batch; its
        // marker records why, for the run summary.
        std::string reason;
        try {
            if (gen2)
                process_image(*gen2, source, io, o.convert_to_rle, o.output_mode == "sa1b");
            else
                process_image(*gen, source, io, o.convert_to_rle, o.output_mode == "sa1b");
            ++done;
            continue;
        } catch (const std::bad_alloc&) {
            reason = "out of memory";
        } catch (const std::exception& e) {
            reason = failure_reason(io.image, e.what());
        }
        failed.push_back(io.image + ": " + reason);
        std::cerr << "error: " << failed.back() << "; continuing with the next image\n";
        try {
            mark_failed(io, reason);
        } catch (const std::exception& e) {
            std::cerr << "error: " << io.image << ": the failure could not be recorded (" << e.what() << ")\n";
        }
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
                     auto* input = cmd.add_option("--input,-i", o->input,
                                                  "An image, a tar shard (.tar, .tar.gz, ...: its .jpg/.png members, read in "
                                                  "place), or a folder of images and tar shards")
                                       ->check(CLI::ExistingPath);
                     auto* list = cmd.add_option("--input-list", o->input_list,
                                                 "A file listing images and tar shards, one path a line ('#' comments)")
                                      ->check(CLI::ExistingFile);
                     input->excludes(list);
                     cmd.add_option("--output,-o", o->output, "Output folder")->required();
                     cmd.add_flag("--convert-to-rle", o->convert_to_rle,
                                  "Write <image>.json with COCO RLE records instead of PNG folders");
                     cmd.add_option("--output-mode", o->output_mode,
                                    "png (folders of PNGs) | coco_rle (as --convert-to-rle) | sa1b (SA-1B's per-image JSON)")
                         ->check(CLI::IsMember({"png", "coco_rle", "sa1b"}));
                     cmd.add_flag("--overlay", o->overlay, "Also write <image>_overlay.png (masks over the image)");
                     cmd.add_flag("--output-folder-per-shard", o->folder_per_shard,
                                  "Write the outputs of a tar shard's images into <output>/<shard name>/ (e.g. "
                                  "masks/sa_000000/), one folder per shard; other images into <output>");
                     cmd.add_option("--shard", o->shard,
                                    "K/N: process only the images whose file name (for a tar member: the tar's name) "
                                    "hashes to K mod N (one task of a batch job; stable as the inputs grow)");
                     cmd.add_option("--summarize", o->summarize,
                                    "Segment nothing: write the merged index of the job's outputs (every shard) to this "
                                    "JSON file, listing failures and missing images; exit 1 unless all are done");
                     cmd.add_flag("--skip-existing", o->skip_existing,
                                  "Skip images whose outputs are complete (resume an interrupted batch)");
                     cmd.add_option("--points-per-side", a.points_per_side, "Points sampled along one side of the image")->capture_default_str();
                     cmd.add_option("--points-per-batch", a.points_per_batch, "Points decoded together")->capture_default_str();
                     auto* piou = cmd.add_option("--pred-iou-thresh", a.pred_iou_thresh,
                                                 "Keep masks with predicted IoU above this (SAM 2 default: 0.8)")
                                      ->capture_default_str();
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
                     cmd.add_flag("--use-m2m", o->use_m2m, "SAM 2: refine each mask once with itself as mask input");
                     cmd.add_flag("--single-mask", o->single_mask, "SAM 2: one mask per point (multimask_output=False)");
                     cmd.add_flag("--fill-holes", o->fill_holes,
                                  "SAM 2: apply --min-mask-region-area to the low-res masks as the official GPU "
                                  "post-processing does (the official CPU path skips it; so does the default)");
                     return [o, piou] {
                         o->pred_iou_given = piou->count() > 0;
                         return run_amg(*o);
                     };
                 });

}  // namespace
}  // namespace sam::cli
