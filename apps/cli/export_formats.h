// The dataset formats `sam export` writes from an annotation project (apps/annotate/project.h),
// and COCO import. Masks become:
//   coco  one JSON: images, categories (the labels, ids 1..N), annotations with polygons traced
//         from the masks (pixel outlines, exact), or COCO compressed RLE for a mask a set of
//         outlines cannot give (one with holes), or RLE throughout (rle_only)
//   yolo  labels/<stem>.txt: "class x1 y1 x2 y2 ..." (class index from 0, coordinates divided by
//         the width and height); one polygon per object: its largest part's outline; data.yaml
//   sa1b  <stem>.json per image (cli/sa1b.h)
//   png   <stem>.png per image: pixel = 1 + the object's index (0: none; later objects on top),
//         8-bit, at most 255 objects per image; index.json maps each image's indices to labels
// Hidden objects are exported (hiding is a display choice); proposals are not.
// Thread safety: no state; any thread.
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "annotate/project.h"
#include "sam/rle.h"

namespace sam::cli {

// Outlines of a row-major (height, width) mask, one per 4-connected part, as polygons whose
// vertices are pixel corners (pixel (x, y) covers [x, x+1] x [y, y+1]), clockwise on screen,
// with a vertex only where the outline turns. Holes are not traced.
using Outline = std::vector<std::array<int, 2>>;
std::vector<Outline> trace_outlines(const uint8_t* mask, int height, int width);

// Pixels whose centre lies inside the polygons (even-odd rule over all of them); polygons are
// flat [x0, y0, x1, y1, ...] lists. Row-major (height, width) 0/1.
std::vector<uint8_t> rasterize_polygons(const std::vector<std::vector<double>>& polygons, int height, int width);

// COCO "segmentation" of a mask: a list of flat polygons when the traced outlines rasterize back
// to exactly the mask (and rle_only is false), else {"size": [h, w], "counts": "..."}.
nlohmann::json coco_segmentation(const Rle& rle, bool rle_only);

enum class ExportFormat { Coco, Yolo, Sa1b, Png };
ExportFormat export_format_from_string(const std::string& s);  // throws InputError("--format", ...)

// Writes the project in `format` to `out` (a file for coco, a folder otherwise; created, files
// replaced atomically). Returns the files written. Images never opened are read for their size.
std::vector<std::string> export_project(const annotate::Project& project, ExportFormat format,
                                        const std::string& out, bool rle_only = false);

// Imports a COCO instance-segmentation file into the project: for each of its images whose
// file_name is one of the project's images, its annotations (polygons or RLE, crowd or not) become
// objects labelled by their category's name (labels added as needed), replacing that image's
// objects. Returns the number of objects imported. Throws InputError naming the field at fault.
int64_t import_coco(annotate::Project& project, const std::string& coco_path);

}  // namespace sam::cli
