// The bookkeeping that makes `sam amg` over a folder safe to kill, resume and share among shards.
//
// Each image's outputs ("<stem>" folder of PNGs or "<stem>.json", and "<stem>_overlay.png") are
// recorded in a marker ".<stem>.sam-output" beside them:
//   {"sam_amg_output": 1, "input": "dog.jpg", "outputs": ["dog", "dog_overlay.png"], "complete": false}
// written (atomically, fsynced) before the first output, and again with "complete": true after
// the last one. So sam only ever replaces files its marker lists, and --skip-existing only skips
// an image whose marker says complete. A shard touches only its own images' names.
#pragma once

#include <string>
#include <vector>

namespace sam::cli {

// One image and the names it writes in the output folder.
struct ImageOutputs {
    std::string image;               // the input file, as listed
    std::string folder;              // --output
    std::vector<std::string> names;  // "<stem>" or "<stem>.json", then "<stem>_overlay.png" with --overlay
    std::string marker_name;         // ".<stem>.sam-output"

    std::string path(const std::string& name) const;
    std::string main_path() const { return path(names[0]); }
};
ImageOutputs image_outputs(const std::string& image, const std::string& folder, bool rle, bool overlay);

// The images of `input`: the file itself, or the folder's regular, non-hidden files, sorted.
// Other entries of the folder (FIFOs, sockets, devices: reading them could block) are returned
// in `not_regular`. Throws sam::InputError if `input` is neither a regular file nor a folder.
struct InputListing {
    std::vector<std::string> images, not_regular;
};
InputListing list_inputs(const std::string& input);

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

// The marker before the first output (not complete) and after the last one (complete).
void mark_started(const ImageOutputs& io);
void mark_complete(const ImageOutputs& io);

}  // namespace sam::cli
