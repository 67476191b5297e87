// The embeddings of a project's images: kept in memory for the last few images (LRU) and on
// disk in the project's cache folder, named by the SHA-256 of the image file's bytes, so that
// reopening a project (or an image) costs no encoder run. A prefetch thread computes the next
// images' embeddings while the annotator works on the current one.
//
// Thread safety: every method may be called from any thread. One image is encoded at a time
// (the encoder uses every core); two requests for the same image wait for one encoding.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "sam/image.h"
#include "sam/predictor.h"
#include "sam/sam.h"
#include "server/image_store.h"

namespace sam::annotate {

struct EmbeddedImage {
    std::string name, hash;
    Image image;
    SamPredictor predictor;  // embedding set; predict() is const and thread-safe
    mutable server::LogitsCache logits{32};
    std::string source;      // where the embedding came from: "encoded" or "disk"
    double ms = 0.0;         // time to decode the image and encode (or load) the embedding

    EmbeddedImage(const Sam& model) : predictor(model) {}
};

class EmbeddingCache {
  public:
    EmbeddingCache(Sam model, std::string cache_dir, size_t capacity);
    ~EmbeddingCache();  // stops the prefetch thread (after the image it is on)

    // The image with its embedding: from memory, else the disk cache, else the encoder. `path`
    // is the image file. Throws sam::ImageError for an unreadable image. `hit` tells whether
    // the image was already in memory.
    std::shared_ptr<const EmbeddedImage> get(const std::string& name, const std::string& path, bool* hit = nullptr);
    // Queues images for the prefetch thread (ahead of what it had queued); errors are dropped
    // (the request that needs the image will report them).
    void prefetch(const std::vector<std::pair<std::string, std::string>>& name_and_path);
    // Runs f while holding the encoder (the mask generator encodes crops itself).
    template <class F>
    auto with_encoder(F&& f) {
        std::lock_guard lock(encode_mutex_);
        return f();
    }
    const Sam& model() const { return model_; }
    bool in_memory(const std::string& name);

  private:
    std::shared_ptr<const EmbeddedImage> load(const std::string& name, const std::string& path);
    void prefetch_loop();

    Sam model_;
    std::string dir_;
    size_t capacity_;
    std::mutex mutex_;  // guards lru_, loading_, queue_, stop_
    std::list<std::shared_ptr<const EmbeddedImage>> lru_;  // most recent first
    std::map<std::string, std::shared_future<std::shared_ptr<const EmbeddedImage>>> loading_;
    std::mutex encode_mutex_;
    std::deque<std::pair<std::string, std::string>> queue_;
    std::condition_variable wake_;
    bool stop_ = false;
    std::thread worker_;
};

}  // namespace sam::annotate
