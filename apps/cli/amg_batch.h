// The bookkeeping that makes `sam amg` over a folder safe to kill, resume and share among shards.
//
// Each image's outputs ("<stem>" folder of PNGs or "<stem>.json", and "<stem>_overlay.png") are
// recorded in a marker ".<stem>.sam-output" beside them:
//   {"sam_amg_output": 1, "input": "dog.jpg", "outputs": ["dog", "dog_overlay.png"], "complete": false}
// written (atomically, fsynced) before the first output, and again with "complete": true after
// the last one. So sam only ever replaces files its marker lists, and --skip-existing only skips
// an image whose marker says complete. A shard touches only its own images' names.
// A complete marker also records "masks" (how many) and "seconds" (the image's wall-clock time);
// an image that failed gets "error": the reason (its marker stays not complete). The run
// summary (--summarize) is made from these markers.
#pragma once

#include <string>
#include <vector>

#include "cli/amg_inputs.h"

namespace sam::cli {

// One image and the names it writes in the output folder.
struct ImageOutputs {
    InputImage input;                // the image file, or the tar member
    std::string image;               // how messages name it (input.display())
    std::string folder;              // --output
    std::vector<std::string> names;  // "<stem>" or "<stem>.json", then "<stem>_overlay.png" with --overlay
    std::string marker_name;         // ".<stem>.sam-output"

    std::string path(const std::string& name) const;
    std::string main_path() const { return path(names[0]); }
};
ImageOutputs image_outputs(const InputImage& input, const std::string& folder, bool rle, bool overlay);

// Problems that stop a run before the model loads, one message each.
// Two images of the batch writing the same name (a.jpg and a.png both write "a").
std::vector<std::string> find_name_collisions(const std::vector<ImageOutputs>& all);
// --output is the input folder, or cannot be created or written (checked with a probe).
std::vector<std::string> check_output_folder(const std::string& input, const std::string& folder);
// An output that exists but was not written by sam for this image, or that is the image itself.
std::vector<std::string> check_ownership(const ImageOutputs& io);

// True when the marker says complete, for this image, listing every name, each present.
bool is_complete(const ImageOutputs& io);

// Removes temporaries a killed run left for this image's names. Only for images of this shard.
void remove_stale_temporaries(const ImageOutputs& io);

// The marker before the first output (not complete) and after the last one (complete, with the
// number of masks and the image's seconds).
void mark_started(const ImageOutputs& io);
void mark_complete(const ImageOutputs& io, size_t masks, double seconds);
// Records why the image failed in its marker (not complete); outputs it already lists stay listed.
void mark_failed(const ImageOutputs& io, const std::string& reason);

// What the markers say of one image, for the run summary.
struct ImageStatus {
    enum State { Done, Failed, Incomplete, Missing } state = Missing;
    long long masks = -1;  // Done: as recorded (-1 for markers of sam versions without it)
    double seconds = -1;
    std::string error;     // Failed: the reason
};
ImageStatus image_status(const ImageOutputs& io);

}  // namespace sam::cli
