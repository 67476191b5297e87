#include "annotate/embeddings.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "io/content_hash.h"
#include "sam/error.h"

namespace sam::annotate {

EmbeddingCache::EmbeddingCache(Sam model, std::string cache_dir, size_t capacity)
    : model_(std::move(model)), dir_(std::move(cache_dir)), capacity_(capacity), worker_([this] { prefetch_loop(); }) {}

EmbeddingCache::~EmbeddingCache() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    wake_.notify_all();
    worker_.join();
}

bool EmbeddingCache::in_memory(const std::string& name) {
    std::lock_guard lock(mutex_);
    for (const auto& e : lru_)
        if (e->name == name) return true;
    return false;
}

std::shared_ptr<const EmbeddedImage> EmbeddingCache::get(const std::string& name, const std::string& path, bool* hit) {
    std::shared_future<std::shared_ptr<const EmbeddedImage>> future;
    std::promise<std::shared_ptr<const EmbeddedImage>> promise;
    bool mine = false;
    {
        std::lock_guard lock(mutex_);
        for (auto it = lru_.begin(); it != lru_.end(); ++it)
            if ((*it)->name == name) {
                auto e = *it;
                lru_.splice(lru_.begin(), lru_, it);
                if (hit) *hit = true;
                return e;
            }
        auto it = loading_.find(name);
        if (it == loading_.end()) {
            future = promise.get_future().share();
            loading_[name] = future;
            mine = true;
        } else {
            future = it->second;
        }
    }
    if (hit) *hit = false;
    if (!mine) return future.get();
    try {
        auto e = load(name, path);
        {
            std::lock_guard lock(mutex_);
            lru_.push_front(e);
            while (lru_.size() > capacity_) lru_.pop_back();
            loading_.erase(name);
        }
        promise.set_value(e);
        return e;
    } catch (...) {
        {
            std::lock_guard lock(mutex_);
            loading_.erase(name);
        }
        promise.set_exception(std::current_exception());
        throw;
    }
}

std::shared_ptr<const EmbeddedImage> EmbeddingCache::load(const std::string& name, const std::string& path) {
    const auto t0 = std::chrono::steady_clock::now();
    std::ifstream f(path, std::ios::binary);
    if (!f) throw ImageError(path, "cannot be read");
    const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    auto e = std::make_shared<EmbeddedImage>(model_);
    e->name = name;
    e->hash = sha256_hex(bytes.data(), bytes.size());
    e->image = decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), path);
    const std::string file = dir_ + "/" + e->hash + ".npy";
    bool loaded = false;
    if (std::filesystem::exists(file) && std::filesystem::exists(file + ".json")) {
        try {
            e->predictor.load_embedding(file);
            loaded = e->predictor.geometry().orig_h == e->image.height && e->predictor.geometry().orig_w == e->image.width;
        } catch (const Error&) {
            loaded = false;  // a damaged or foreign cache file: encode again and replace it
        }
    }
    if (loaded) {
        e->source = "disk";
    } else {
        std::lock_guard lock(encode_mutex_);
        e->predictor.set_image(e->image);
        e->predictor.save_embedding(file);
        e->source = "encoded";
    }
    e->ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return e;
}

void EmbeddingCache::prefetch(const std::vector<std::pair<std::string, std::string>>& items) {
    {
        std::lock_guard lock(mutex_);
        for (auto it = items.rbegin(); it != items.rend(); ++it) queue_.push_front(*it);
        while (queue_.size() > 16) queue_.pop_back();
    }
    wake_.notify_all();
}

void EmbeddingCache::prefetch_loop() {
    for (;;) {
        std::pair<std::string, std::string> item;
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [&] { return stop_ || !queue_.empty(); });
            if (stop_) return;
            item = queue_.front();
            queue_.pop_front();
        }
        try {
            get(item.first, item.second);
        } catch (const std::exception&) {
            // reported to the request that needs this image
        }
    }
}

}  // namespace sam::annotate
