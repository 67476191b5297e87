// sam_cpp._core: the library's public API (include/sam/) as a Python extension (nanobind).
//
// This module is the thin layer: numpy arrays in and out, the GIL released while the model
// computes, sam::Error raised as sam_cpp.SamError (a ValueError) with the library's message.
// The official segment_anything names, defaults and argument checks live in the Python package
// on top of it (python/sam_cpp/).
//
// Arrays: inputs are read in place when they are C-contiguous of the right dtype (the Python
// layer converts others); outputs are numpy arrays that own the library's buffers (no copy).
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/array.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sam/automatic_mask_generator.h"
#include "sam/error.h"
#include "sam/execution.h"
#include "sam/image.h"
#include "sam/predictor.h"
#include "sam/rle.h"
#include "sam/sam.h"
#include "sam/sam2.h"
#include "sam/sam2_automatic_mask_generator.h"
#include "sam/sam2_video.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

using ImageIn = nb::ndarray<const uint8_t, nb::ndim<3>, nb::c_contig, nb::device::cpu>;
using FloatIn = nb::ndarray<const float, nb::c_contig, nb::device::cpu>;
using IntIn = nb::ndarray<const int32_t, nb::c_contig, nb::device::cpu>;
using MaskIn = nb::ndarray<const uint8_t, nb::ndim<2>, nb::c_contig, nb::device::cpu>;

// A numpy array that owns `value` (moved to the heap) and views `data` inside it.
template <class T, class Owner>
nb::ndarray<nb::numpy, T> owning_array(Owner&& value, T* (*data_of)(Owner&), std::vector<size_t> shape) {
    auto* heap = new Owner(std::forward<Owner>(value));
    nb::capsule owner(heap, [](void* p) noexcept { delete static_cast<Owner*>(p); });
    return nb::ndarray<nb::numpy, T>(data_of(*heap), shape.size(), shape.data(), owner);
}

std::vector<size_t> sizes(const sam::Shape& shape) { return {shape.begin(), shape.end()}; }

nb::ndarray<nb::numpy, float> tensor_array(sam::Tensor t) {
    std::vector<size_t> shape = sizes(t.shape());
    return owning_array<float, sam::Tensor>(std::move(t), [](sam::Tensor& x) { return x.data(); }, shape);
}

nb::ndarray<nb::numpy, bool> mask_array(std::vector<uint8_t> masks, std::vector<size_t> shape) {
    // The library's masks are 0/1 bytes: numpy's bool layout.
    return owning_array<bool, std::vector<uint8_t>>(
        std::move(masks), [](std::vector<uint8_t>& v) { return reinterpret_cast<bool*>(v.data()); }, shape);
}

template <class T>
nb::ndarray<nb::numpy, T> vector_array(std::vector<T> v) {
    std::vector<size_t> shape = {v.size()};
    return owning_array<T, std::vector<T>>(std::move(v), [](std::vector<T>& x) { return x.data(); }, shape);
}

// Copies an (H, W, 3) uint8 array into the library's image type (which owns its pixels).
sam::Image image_from(const ImageIn& a) {
    if (a.shape(2) != 3) throw sam::InputError("image", "expected H x W x 3, got " + std::to_string(a.shape(2)) + " channels");
    sam::Image img;
    img.height = static_cast<int>(a.shape(0));
    img.width = static_cast<int>(a.shape(1));
    img.rgb.assign(a.data(), a.data() + a.size());
    return img;
}

// A view of a float array for the duration of one call (the array outlives it).
sam::Tensor tensor_view(const FloatIn& a) {
    sam::Shape shape(a.ndim());
    for (size_t i = 0; i < a.ndim(); ++i) shape[i] = static_cast<int64_t>(a.shape(i));
    return sam::Tensor::view(shape, const_cast<float*>(a.data()), nullptr);
}

sam::Tensor tensor_copy(const FloatIn& a) { return tensor_view(a).clone(); }

nb::ndarray<nb::numpy, uint8_t> image_array(sam::Image img) {
    std::vector<size_t> shape = {static_cast<size_t>(img.height), static_cast<size_t>(img.width), 3};
    return owning_array<uint8_t, std::vector<uint8_t>>(std::move(img.rgb), [](std::vector<uint8_t>& v) { return v.data(); },
                                                       shape);
}

nb::tuple prediction_tuple(sam::Prediction p, bool return_logits) {
    auto n = static_cast<size_t>(p.num_masks), h = static_cast<size_t>(p.height), w = static_cast<size_t>(p.width);
    nb::object masks = return_logits ? nb::cast(tensor_array(std::move(p.logits)))
                                     : nb::cast(mask_array(std::move(p.masks), {n, h, w}));
    return nb::make_tuple(masks, vector_array(std::move(p.iou_predictions)), tensor_array(std::move(p.low_res_logits)));
}

nb::tuple batch_tuple(sam::BatchPrediction p, bool return_logits) {
    auto b = static_cast<size_t>(p.batch), n = static_cast<size_t>(p.num_masks), h = static_cast<size_t>(p.height),
         w = static_cast<size_t>(p.width);
    nb::object masks = return_logits ? nb::cast(tensor_array(std::move(p.logits)))
                                     : nb::cast(mask_array(std::move(p.masks), {b, n, h, w}));
    return nb::make_tuple(masks, tensor_array(std::move(p.iou_predictions)), tensor_array(std::move(p.low_res_logits)));
}

nb::dict rle_dict(const sam::Rle& r) {
    nb::dict d;
    d["size"] = std::vector<int>{r.height, r.width};
    d["counts"] = std::vector<uint32_t>(r.counts);
    return d;
}

// One record as the reference's generate() returns it.
nb::dict record_dict(sam::MaskRecord& rec, sam::OutputMode mode) {
    nb::dict d;
    if (mode == sam::OutputMode::BinaryMask) {
        d["segmentation"] = mask_array(std::move(rec.mask), {static_cast<size_t>(rec.rle.height), static_cast<size_t>(rec.rle.width)});
    } else if (mode == sam::OutputMode::UncompressedRle) {
        d["segmentation"] = rle_dict(rec.rle);
    } else {
        nb::dict seg;
        seg["size"] = std::vector<int>{rec.rle.height, rec.rle.width};
        seg["counts"] = rec.coco_counts;
        d["segmentation"] = seg;
    }
    d["area"] = rec.area;
    d["bbox"] = std::vector<int>(rec.bbox.begin(), rec.bbox.end());
    d["predicted_iou"] = rec.predicted_iou;
    d["point_coords"] = std::vector<std::vector<double>>{{rec.point[0], rec.point[1]}};
    d["stability_score"] = rec.stability_score;
    d["crop_box"] = std::vector<int>(rec.crop_box.begin(), rec.crop_box.end());
    return d;
}

sam::Rle rle_from(int height, int width, const std::vector<uint32_t>& counts) {
    sam::Rle r;
    r.height = height;
    r.width = width;
    r.counts = counts;
    return r;
}

// f() with the GIL released (the library's computations and file reads), its result returned.
template <class F>
auto without_gil(F&& f) {
    nb::gil_scoped_release release;
    return f();
}

// ---- What the SAM and SAM 2 classes bind alike (the models, predictors and generators differ by type)

// A model class (sam::Sam or sam::Sam2) with what both have, under the same names: load() (the
// options' model type and JSON config), the execution settings and the config values.
template <class Model, class LoadOptions>
nb::class_<Model> bind_model(nb::module_& m, const char* name, const char* doc) {
    nb::class_<Model> c(m, name, doc);
    c.def_static(
        "load",
        [](const std::string& path, const std::string& model_type, const std::string& config_path) {
            LoadOptions o;
            o.model_type = model_type;
            o.config_path = config_path;
            return without_gil([&] { return Model::load(path, o); });
        },
        "checkpoint"_a, "model_type"_a = "auto", "config_path"_a = "");
    c.def(
        "with_execution",
        [](const Model& s, int threads, const std::string& precision) {
            return s.with_execution({threads, sam::precision_from_string(precision)});
        },
        "threads"_a, "precision"_a);
    c.def_prop_ro("threads", [](const Model& s) { return s.execution().threads; });
    c.def_prop_ro("precision", [](const Model& s) { return std::string(sam::to_string(s.execution().precision)); });
    c.def_prop_ro("model_type", [](const Model& s) { return s.config().model_type; });
    c.def_prop_ro("embedding_size", [](const Model& s) { return s.config().embedding_size(); });
    c.def_prop_ro("mask_threshold", [](const Model& s) { return s.config().mask_threshold; });
    c.def_prop_ro("checkpoint_path", &Model::checkpoint_path);
    c.def_prop_ro("parameter_count", &Model::parameter_count);
    return c;
}

// A read-only numpy view of a tensor a predictor keeps (shared storage, no copy).
nb::ndarray<nb::numpy, const float> readonly_array(sam::Tensor t) {
    std::vector<size_t> shape = sizes(t.shape());
    return owning_array<const float, sam::Tensor>(std::move(t), [](sam::Tensor& x) -> const float* { return x.data(); },
                                                  shape);
}

template <class Predictor>
void set_image(Predictor& p, const ImageIn& image) {
    sam::Image img = image_from(image);
    nb::gil_scoped_release release;
    p.set_image(img);
}

// One prompt (points N x 2, labels N, box 4, mask input 1 x L x L) decoded against the image set.
template <class Predictor>
nb::tuple predict(const Predictor& p, std::optional<FloatIn> points, std::optional<IntIn> labels,
                  std::optional<FloatIn> box, std::optional<FloatIn> mask_input, bool multimask, bool return_logits) {
    sam::Prompt prompt;
    if (points) {
        if (points->ndim() != 2 || points->shape(1) != 2) throw sam::InputError("point_coords", "expected N x 2");
        for (size_t i = 0; i < points->shape(0); ++i)
            prompt.point_coords.push_back({points->data()[2 * i], points->data()[2 * i + 1]});
    }
    if (labels) {
        if (labels->ndim() != 1) throw sam::InputError("point_labels", "expected N labels");
        prompt.point_labels.assign(labels->data(), labels->data() + labels->size());
    }
    if (box) {
        if (box->size() != 4) throw sam::InputError("box", "expected 4 values x0, y0, x1, y1");
        prompt.box = std::array<float, 4>{box->data()[0], box->data()[1], box->data()[2], box->data()[3]};
    }
    if (mask_input) prompt.mask_input = tensor_view(*mask_input);
    prompt.multimask_output = multimask;
    prompt.return_logits = return_logits;
    sam::Prediction r = without_gil([&] { return p.predict(prompt); });
    return prediction_tuple(std::move(r), return_logits);
}

// generate(image, progress, extra...) as the reference's list of records; Ctrl-C in Python
// stops the run between decoder batches.
template <class Generator, class... Extra>
nb::list generate_records(Generator& g, const ImageIn& image, const Extra&... extra) {
    sam::Image img = image_from(image);
    typename Generator::Progress progress = [](int64_t, int64_t) {
        nb::gil_scoped_acquire acquire;
        if (PyErr_CheckSignals() != 0) throw nb::python_error();
    };
    std::vector<sam::MaskRecord> records = without_gil([&] { return g.generate(img, progress, extra...); });
    nb::list out;
    for (sam::MaskRecord& r : records) out.append(record_dict(r, g.options().output_mode));
    return out;
}

// A video frame's masks as the official predictor returns them: (frame_idx, obj_ids,
// video_res_masks (objects, 1, H, W) float32 logits, low_res_masks (objects, 1, L, L),
// object_scores (objects,)). The frame is copied (the library reuses its buffers).
nb::tuple video_frame_tuple(const sam::Sam2VideoFrame& f) {
    const int64_t n = static_cast<int64_t>(f.obj_ids.size());
    sam::Tensor logits = f.logits.numel() > 0 ? f.logits.clone().reshape({n, 1, f.logits.dim(1), f.logits.dim(2)})
                                              : sam::Tensor::empty({n, 1, 0, 0});
    sam::Tensor low = f.low_res.numel() > 0 ? f.low_res.clone().reshape({n, 1, f.low_res.dim(1), f.low_res.dim(2)})
                                            : sam::Tensor::empty({n, 1, 0, 0});
    return nb::make_tuple(f.frame, std::vector<int>(f.obj_ids), tensor_array(std::move(logits)), tensor_array(std::move(low)),
                          vector_array(std::vector<float>(f.object_scores)));
}

}  // namespace

NB_MODULE(_core, m) {
    m.doc() = "sam (Segment Anything in C++): the library's API for the sam_cpp package";

    // sam::Error and its subclasses: a ValueError subclass carrying the library's message.
    static nb::object sam_error = nb::steal(PyErr_NewExceptionWithDoc(
        "sam_cpp.SamError", "Input the sam library rejects (file, key, shape or field named in the message).",
        PyExc_ValueError, nullptr));
    m.attr("SamError") = sam_error;
    nb::register_exception_translator([](const std::exception_ptr& p, void*) {
        try {
            std::rethrow_exception(p);
        } catch (const sam::Error& e) {
            PyErr_SetString(sam_error.ptr(), e.what());
        }
    });

    m.def("available_cores", &sam::available_cores, "The cores this process may run on (the default thread count).");
    m.def("precision_supported", [](const std::string& p) { return sam::precision_supported(sam::precision_from_string(p)); },
          "precision"_a, "Whether this CPU has fast instructions for 'f32' | 'bf16' | 'int8'.");

    bind_model<sam::Sam, sam::LoadOptions>(m, "Model",
                                           "An immutable handle on loaded weights; share it freely between threads.")
        .def_prop_ro("img_size", [](const sam::Sam& s) { return s.config().encoder.img_size; })
        .def_prop_ro("patch_size", [](const sam::Sam& s) { return s.config().encoder.patch_size; })
        .def_prop_ro("encoder_embed_dim", [](const sam::Sam& s) { return s.config().encoder.embed_dim; })
        .def_prop_ro("encoder_depth", [](const sam::Sam& s) { return s.config().encoder.depth; })
        .def_prop_ro("out_chans", [](const sam::Sam& s) { return s.config().encoder.out_chans; })
        .def_prop_ro("pixel_mean", [](const sam::Sam& s) { return s.config().pixel_mean; })
        .def_prop_ro("pixel_std", [](const sam::Sam& s) { return s.config().pixel_std; })
        .def_prop_ro("checkpoint_dtype", &sam::Sam::checkpoint_dtype)
        .def(
            "embed",
            [](const sam::Sam& s, const ImageIn& image) {
                sam::Image img = image_from(image);
                sam::Tensor t = without_gil([&] { return s.embed(img); });
                return tensor_array(std::move(t));
            },
            "image"_a);

    nb::class_<sam::SamPredictor>(m, "Predictor")
        .def(nb::init<sam::Sam>(), "model"_a)
        .def("set_image", &set_image<sam::SamPredictor>, "image"_a)
        .def(
            "set_embedding",
            [](sam::SamPredictor& p, const FloatIn& embedding, int orig_h, int orig_w) {
                sam::Tensor t = tensor_copy(embedding);  // the predictor keeps it
                nb::gil_scoped_release release;
                p.set_embedding(t, orig_h, orig_w);
            },
            "embedding"_a, "orig_h"_a, "orig_w"_a)
        .def("is_image_set", &sam::SamPredictor::is_image_set)
        .def("reset_image", &sam::SamPredictor::reset_image)
        .def("embedding", [](const sam::SamPredictor& p) { return readonly_array(p.embedding()); })
        .def("geometry",
             [](const sam::SamPredictor& p) {
                 sam::ImageGeometry g = p.geometry();
                 return nb::make_tuple(g.orig_h, g.orig_w, g.input_h, g.input_w);
             })
        .def(
            "save_embedding",
            [](const sam::SamPredictor& p, const std::string& path) {
                nb::gil_scoped_release release;
                p.save_embedding(path);
            },
            "path"_a)
        .def(
            "load_embedding",
            [](sam::SamPredictor& p, const std::string& path, int orig_h, int orig_w) {
                nb::gil_scoped_release release;
                p.load_embedding(path, orig_h, orig_w);
            },
            "path"_a, "orig_h"_a = 0, "orig_w"_a = 0)
        .def("predict", &predict<sam::SamPredictor>, "point_coords"_a.none(), "point_labels"_a.none(), "box"_a.none(),
             "mask_input"_a.none(), "multimask_output"_a, "return_logits"_a)
        .def(
            "predict_batch",
            [](const sam::SamPredictor& p, int64_t batch, std::optional<FloatIn> points, std::optional<IntIn> labels,
               std::optional<FloatIn> boxes, std::optional<FloatIn> mask_input, bool multimask, bool return_logits) {
                sam::BatchPrompt b;
                b.batch = batch;
                if (points) {
                    if (points->ndim() != 3 || points->shape(2) != 2 || static_cast<int64_t>(points->shape(0)) != batch)
                        throw sam::InputError("point_coords", "expected B x N x 2");
                    b.points_per_prompt = static_cast<int64_t>(points->shape(1));
                    b.point_coords.assign(points->data(), points->data() + points->size());
                }
                if (labels) b.point_labels.assign(labels->data(), labels->data() + labels->size());
                if (boxes) {
                    if (boxes->ndim() != 2 || boxes->shape(1) != 4) throw sam::InputError("boxes", "expected B x 4");
                    for (size_t i = 0; i < boxes->shape(0); ++i) {
                        const float* q = boxes->data() + 4 * i;
                        b.boxes.push_back({q[0], q[1], q[2], q[3]});
                    }
                }
                if (mask_input) b.mask_input = tensor_view(*mask_input);
                b.multimask_output = multimask;
                b.return_logits = return_logits;
                sam::BatchPrediction r = without_gil([&] { return p.predict_batch(b); });
                return batch_tuple(std::move(r), return_logits);
            },
            "batch"_a, "point_coords"_a.none(), "point_labels"_a.none(), "boxes"_a.none(), "mask_input"_a.none(),
            "multimask_output"_a, "return_logits"_a);

    nb::class_<sam::AmgOptions>(m, "AmgOptions")
        .def(nb::init<>())
        .def_rw("points_per_side", &sam::AmgOptions::points_per_side)
        .def_rw("points_per_batch", &sam::AmgOptions::points_per_batch)
        .def_rw("pred_iou_thresh", &sam::AmgOptions::pred_iou_thresh)
        .def_rw("stability_score_thresh", &sam::AmgOptions::stability_score_thresh)
        .def_rw("stability_score_offset", &sam::AmgOptions::stability_score_offset)
        .def_rw("box_nms_thresh", &sam::AmgOptions::box_nms_thresh)
        .def_rw("crop_n_layers", &sam::AmgOptions::crop_n_layers)
        .def_rw("crop_nms_thresh", &sam::AmgOptions::crop_nms_thresh)
        .def_rw("crop_overlap_ratio", &sam::AmgOptions::crop_overlap_ratio)
        .def_rw("crop_n_points_downscale_factor", &sam::AmgOptions::crop_n_points_downscale_factor)
        .def_rw("point_grids", &sam::AmgOptions::point_grids)
        .def_rw("min_mask_region_area", &sam::AmgOptions::min_mask_region_area)
        .def_prop_rw(
            "output_mode",
            [](const sam::AmgOptions& o) {
                switch (o.output_mode) {
                    case sam::OutputMode::BinaryMask: return std::string("binary_mask");
                    case sam::OutputMode::UncompressedRle: return std::string("uncompressed_rle");
                    case sam::OutputMode::CocoRle: return std::string("coco_rle");
                }
                return std::string();
            },
            [](sam::AmgOptions& o, const std::string& s) { o.output_mode = sam::output_mode_from_string(s); });

    nb::class_<sam::SamAutomaticMaskGenerator>(m, "MaskGenerator")
        .def(nb::init<sam::Sam, sam::AmgOptions>(), "model"_a, "options"_a)
        .def(
            "generate",
            [](sam::SamAutomaticMaskGenerator& g, const ImageIn& image, std::optional<FloatIn> embedding) {
                return generate_records(g, image, embedding ? tensor_view(*embedding) : sam::Tensor());
            },
            "image"_a, "embedding"_a.none() = nb::none())
        .def("last_timings", [](const sam::SamAutomaticMaskGenerator& g) {
            const sam::AmgTimings& t = g.last_timings();
            nb::dict d;
            d["encoder"] = t.encoder;
            d["decoder"] = t.decoder;
            d["postprocess"] = t.postprocess;
            d["total"] = t.total;
            d["crops"] = t.crops;
            d["prompts"] = t.prompts;
            d["masks_decoded"] = t.masks_decoded;
            d["masks_upsampled"] = t.masks_upsampled;
            return d;
        });

    // ---- SAM 2 (sam/sam2.h): the model, its image predictor and its mask generator ----------
    bind_model<sam::Sam2, sam::Sam2LoadOptions>(
        m, "Sam2Model", "An immutable handle on loaded SAM 2 weights; share it freely between threads.")
        .def_static(
            "detect",
            [](const std::string& path) {
                sam::Sam2Config c = without_gil([&] { return sam::Sam2::detect_config(path); });
                return nb::make_tuple(c.model_type, c.version);
            },
            "checkpoint"_a, "(model_type, version) read off a checkpoint's shapes and keys.")
        .def_prop_ro("version", [](const sam::Sam2& s) { return s.config().version; })
        .def_prop_ro("image_size", [](const sam::Sam2& s) { return s.config().image_size; })
        .def_prop_ro("low_res_size", [](const sam::Sam2& s) { return s.config().low_res_size(); })
        .def_prop_ro("d_model", [](const sam::Sam2& s) { return s.config().d_model; })
        .def_prop_ro("embed_dim", [](const sam::Sam2& s) { return s.config().trunk.embed_dim; })
        .def_prop_ro("stages", [](const sam::Sam2& s) { return s.config().trunk.stages; });

    nb::class_<sam::Sam2ImagePredictor>(m, "Sam2Predictor")
        .def(
            "__init__",
            [](sam::Sam2ImagePredictor* self, const sam::Sam2& model, double max_hole_area, double max_sprinkle_area) {
                new (self) sam::Sam2ImagePredictor(model, sam::Sam2PostprocessOptions{max_hole_area, max_sprinkle_area});
            },
            "model"_a, "max_hole_area"_a = 0.0, "max_sprinkle_area"_a = 0.0)
        .def("set_image", &set_image<sam::Sam2ImagePredictor>, "image"_a)
        .def(
            "set_features",
            [](sam::Sam2ImagePredictor& p, const FloatIn& image_embed, const FloatIn& high_res0, const FloatIn& high_res1,
               int orig_h, int orig_w) {
                sam::Sam2Features f;
                f.image_embed = tensor_copy(image_embed);  // the predictor keeps them
                f.high_res = {tensor_copy(high_res0), tensor_copy(high_res1)};
                nb::gil_scoped_release release;
                p.set_features(std::move(f), orig_h, orig_w);
            },
            "image_embed"_a, "high_res0"_a, "high_res1"_a, "orig_h"_a, "orig_w"_a)
        .def("is_image_set", &sam::Sam2ImagePredictor::is_image_set)
        .def("reset_image", &sam::Sam2ImagePredictor::reset_image)
        .def("orig_hw", [](const sam::Sam2ImagePredictor& p) { return nb::make_tuple(p.orig_h(), p.orig_w()); })
        .def("features",
             [](const sam::Sam2ImagePredictor& p) {
                 const sam::Sam2Features& f = p.features();
                 return nb::make_tuple(readonly_array(f.image_embed), readonly_array(f.high_res[0]),
                                       readonly_array(f.high_res[1]));
             })
        .def("predict", &predict<sam::Sam2ImagePredictor>, "point_coords"_a.none(), "point_labels"_a.none(),
             "box"_a.none(), "mask_input"_a.none(), "multimask_output"_a, "return_logits"_a);

    nb::class_<sam::Sam2AmgOptions, sam::AmgOptions>(m, "Sam2AmgOptions")
        .def(nb::init<>())
        .def_rw("use_m2m", &sam::Sam2AmgOptions::use_m2m)
        .def_rw("multimask_output", &sam::Sam2AmgOptions::multimask_output)
        .def_rw("mask_threshold", &sam::Sam2AmgOptions::mask_threshold)
        .def_rw("fill_holes", &sam::Sam2AmgOptions::fill_holes);

    nb::class_<sam::Sam2AutomaticMaskGenerator>(m, "Sam2MaskGenerator")
        .def(nb::init<sam::Sam2, sam::Sam2AmgOptions>(), "model"_a, "options"_a)
        .def(
            "generate",
            [](sam::Sam2AutomaticMaskGenerator& g, const ImageIn& image) { return generate_records(g, image); },
            "image"_a);


    // ---- SAM 2 video (sam/sam2_video.h): the video model and its predictor --------------------
    nb::class_<sam::Sam2Video>(m, "Sam2VideoModel",
                               "An immutable handle on SAM 2 weights with the video weights; share it freely.")
        .def_static(
            "load",
            [](const std::string& path, const std::string& model_type, const std::string& config_path) {
                sam::Sam2LoadOptions o;
                o.model_type = model_type;
                o.config_path = config_path;
                return without_gil([&] { return sam::Sam2Video::load(path, o); });
            },
            "checkpoint"_a, "model_type"_a = "auto", "config_path"_a = "")
        .def(
            "with_execution",
            [](const sam::Sam2Video& v, int threads, const std::string& precision) {
                return v.with_execution({threads, sam::precision_from_string(precision)});
            },
            "threads"_a, "precision"_a)
        .def_prop_ro("image_size", [](const sam::Sam2Video& v) { return v.image_model().config().image_size; })
        .def_prop_ro("model_type", [](const sam::Sam2Video& v) { return v.image_model().config().model_type; })
        .def_prop_ro("version", [](const sam::Sam2Video& v) { return v.image_model().config().version; })
        .def_prop_ro("checkpoint_path", [](const sam::Sam2Video& v) { return v.image_model().checkpoint_path(); })
        .def_prop_ro("threads", [](const sam::Sam2Video& v) { return v.image_model().execution().threads; })
        .def_prop_ro("precision",
                     [](const sam::Sam2Video& v) { return std::string(sam::to_string(v.image_model().execution().precision)); })
        .def_prop_ro("num_maskmem", &sam::Sam2Video::num_maskmem)
        .def_prop_ro("mem_dim", &sam::Sam2Video::mem_dim);

    nb::class_<sam::Sam2VideoPredictor>(m, "Sam2VideoPredictor")
        .def(
            "__init__",
            [](sam::Sam2VideoPredictor* self, const sam::Sam2Video& model, int fill_hole_area) {
                new (self) sam::Sam2VideoPredictor(model, sam::Sam2VideoOptions{fill_hole_area});
            },
            "model"_a, "fill_hole_area"_a = 0)
        .def(
            "init_state",
            [](sam::Sam2VideoPredictor& p, const std::string& folder) {
                nb::gil_scoped_release release;
                p.init_state(folder);
            },
            "jpeg_folder"_a)
        .def_prop_ro("num_frames", &sam::Sam2VideoPredictor::num_frames)
        .def_prop_ro("video_height", &sam::Sam2VideoPredictor::video_height)
        .def_prop_ro("video_width", &sam::Sam2VideoPredictor::video_width)
        .def_prop_ro("obj_ids", [](const sam::Sam2VideoPredictor& p) { return std::vector<int>(p.obj_ids()); })
        .def(
            "add_new_points_or_box",
            [](sam::Sam2VideoPredictor& p, int frame_idx, int obj_id, std::optional<FloatIn> points,
               std::optional<IntIn> labels, std::optional<FloatIn> box, bool clear_old_points) {
                std::vector<std::array<float, 2>> pts;
                std::vector<int> lab;
                std::optional<std::array<float, 4>> b;
                if (points) {
                    if (points->ndim() != 2 || points->shape(1) != 2) throw sam::InputError("points", "expected N x 2");
                    for (size_t i = 0; i < points->shape(0); ++i) pts.push_back({points->data()[2 * i], points->data()[2 * i + 1]});
                }
                if (labels) {
                    if (labels->ndim() != 1) throw sam::InputError("labels", "expected N labels");
                    lab.assign(labels->data(), labels->data() + labels->size());
                }
                if (box) {
                    if (box->size() != 4) throw sam::InputError("box", "expected 4 values x0, y0, x1, y1");
                    b = std::array<float, 4>{box->data()[0], box->data()[1], box->data()[2], box->data()[3]};
                }
                sam::Sam2VideoFrame f = without_gil([&] { return p.add_new_points_or_box(frame_idx, obj_id, pts, lab, b, clear_old_points); });
                return video_frame_tuple(f);
            },
            "frame_idx"_a, "obj_id"_a, "points"_a.none(), "labels"_a.none(), "box"_a.none(), "clear_old_points"_a)
        .def(
            "add_new_mask",
            [](sam::Sam2VideoPredictor& p, int frame_idx, int obj_id, const MaskIn& mask) {
                std::vector<uint8_t> v(mask.data(), mask.data() + mask.size());
                const int h = static_cast<int>(mask.shape(0)), w = static_cast<int>(mask.shape(1));
                sam::Sam2VideoFrame f = without_gil([&] { return p.add_new_mask(frame_idx, obj_id, v, h, w); });
                return video_frame_tuple(f);
            },
            "frame_idx"_a, "obj_id"_a, "mask"_a)
        .def(
            "propagate_in_video",
            // on_frame(frame tuple) -> bool (False stops) is called with the GIL held; the
            // tracking itself runs with the GIL released.
            [](sam::Sam2VideoPredictor& p, nb::callable on_frame, std::optional<int> start, std::optional<int> max_frames,
               bool reverse) {
                auto cb = [&](const sam::Sam2VideoFrame& f) {
                    nb::gil_scoped_acquire acquire;
                    return nb::cast<bool>(on_frame(video_frame_tuple(f)));
                };
                nb::gil_scoped_release release;
                p.propagate_in_video(cb, start, max_frames, reverse);
            },
            "on_frame"_a, "start_frame_idx"_a.none(), "max_frame_num_to_track"_a.none(), "reverse"_a)
        .def(
            "remove_object",
            [](sam::Sam2VideoPredictor& p, int obj_id, bool strict) {
                std::vector<sam::Sam2VideoFrame> frames = without_gil([&] { return p.remove_object(obj_id, strict); });
                nb::list out;
                for (const sam::Sam2VideoFrame& f : frames) out.append(video_frame_tuple(f));
                return out;
            },
            "obj_id"_a, "strict"_a)
        .def("reset_state", &sam::Sam2VideoPredictor::reset_state, nb::call_guard<nb::gil_scoped_release>());

    // Run-length encoding (uncompressed COCO RLE: column-major counts starting with zeros).
    m.def(
        "rle_encode",
        [](const MaskIn& mask) {
            sam::Rle r = sam::rle_encode(mask.data(), static_cast<int>(mask.shape(0)), static_cast<int>(mask.shape(1)));
            return rle_dict(r);
        },
        "mask"_a, "Uncompressed RLE {'size': [h, w], 'counts': [...]} of an (H, W) uint8/bool mask.");
    m.def(
        "rle_decode",
        [](int height, int width, const std::vector<uint32_t>& counts) {
            std::vector<uint8_t> mask = sam::rle_decode(rle_from(height, width, counts));
            return mask_array(std::move(mask), {static_cast<size_t>(height), static_cast<size_t>(width)});
        },
        "height"_a, "width"_a, "counts"_a);
    m.def(
        "rle_area", [](int height, int width, const std::vector<uint32_t>& counts) { return sam::rle_area(rle_from(height, width, counts)); },
        "height"_a, "width"_a, "counts"_a);
    m.def(
        "rle_to_coco_string",
        [](int height, int width, const std::vector<uint32_t>& counts) {
            return sam::rle_to_coco_string(rle_from(height, width, counts));
        },
        "height"_a, "width"_a, "counts"_a);
    m.def(
        "rle_from_coco_string",
        [](const std::string& s, int height, int width) { return sam::rle_from_coco_string(s, height, width).counts; },
        "counts"_a, "height"_a, "width"_a);

    m.def(
        "read_image",
        [](const std::string& path) {
            sam::Image img = without_gil([&] { return sam::read_image(path); });
            return image_array(std::move(img));
        },
        "path"_a, "An (H, W, 3) uint8 RGB array from a JPEG or PNG file (as cv2.imread + BGR->RGB, EXIF applied).");
}
