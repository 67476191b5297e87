// The server's state: uploaded images with their embeddings, named by content hash, in a bounded
// LRU cache; and, per image, the low-res logits of recent predictions under short handles so the
// next click can pass them back as the mask input.
//
// Thread safety: every method may be called from any request thread. The image encoder runs one
// image at a time (encode_mutex); predictions on a cached image run concurrently with another
// image's encoding, through a shared_ptr that keeps the entry alive after it is evicted. At most
// max_decodes uploads are decoded (and then encoded) at once, each taking up to max_pixels * 7
// bytes; others wait.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <semaphore>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sam/image.h"
#include "sam/tensor.h"
#include "server/segmenter.h"

namespace sam::server {

// A small thread-safe LRU map from short handles to (1, L, L) low-res logits.
class LogitsCache {
  public:
    explicit LogitsCache(size_t capacity) : capacity_(capacity) {}
    std::string put(Tensor logits);                 // a new handle, evicting the oldest
    bool get(const std::string& handle, Tensor& out);  // false when unknown or evicted

  private:
    size_t capacity_;
    uint64_t next_ = 0;
    std::mutex mutex_;
    std::list<std::pair<std::string, Tensor>> items_;  // most recent first
};

struct ImageEntry {
    std::string id;
    Image image;  // kept for "segment everything", which crops and re-encodes
    std::unique_ptr<const ImagePredictor> predictor;  // holds the embedding; const and thread-safe
    mutable LogitsCache logits{32};

    ImageEntry(std::string id_, Image image_) : id(std::move(id_)), image(std::move(image_)) {}
};

class ImageStore {
  public:
    ImageStore(std::shared_ptr<const Segmenter> model, size_t capacity, ImageLimits limits = {}, int max_decodes = 2)
        : model_(std::move(model)), capacity_(capacity), limits_(limits), decode_slots_(max_decodes) {}

    struct Added {
        std::shared_ptr<const ImageEntry> entry;
        bool cached = false;     // the same bytes were uploaded before
        double encode_ms = 0.0;  // time in the encoder (0 when cached)
    };
    // Decodes and encodes the image unless bytes with the same hash are cached. Throws
    // sam::ImageError for bytes that are not a supported image, sam::ImageTooLargeError for
    // an image over the limits (checked from its header, before decoding).
    Added add(const std::string& bytes);

    // The entry, or nullptr for an unknown (or evicted) id.
    std::shared_ptr<const ImageEntry> find(const std::string& id);

    // Runs f while holding the encoder (for the mask generator, which encodes crops itself).
    template <class F>
    auto with_encoder(F&& f) {
        std::lock_guard<std::mutex> lock(encode_mutex_);
        return f();
    }

    const Segmenter& model() const { return *model_; }
    size_t size();

  private:
    std::shared_ptr<const ImageEntry> find_locked(const std::string& id);

    std::shared_ptr<const Segmenter> model_;
    size_t capacity_;
    ImageLimits limits_;
    std::counting_semaphore<1024> decode_slots_;  // uploads being decoded
    std::mutex encode_mutex_;  // one image in the encoder at a time
    std::mutex mutex_;         // guards lru_ and index_
    std::list<std::shared_ptr<const ImageEntry>> lru_;  // most recent first
    std::unordered_map<std::string, std::list<std::shared_ptr<const ImageEntry>>::iterator> index_;
};

}  // namespace sam::server
