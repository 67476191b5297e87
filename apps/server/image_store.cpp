#include "server/image_store.h"

#include <chrono>

#include "io/content_hash.h"

namespace sam::server {

std::string LogitsCache::put(Tensor logits) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::string handle = "m";
    handle += std::to_string(++next_);
    items_.emplace_front(handle, std::move(logits));
    while (items_.size() > capacity_) items_.pop_back();
    return handle;
}

bool LogitsCache::get(const std::string& handle, Tensor& out) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = items_.begin(); it != items_.end(); ++it)
        if (it->first == handle) {
            items_.splice(items_.begin(), items_, it);
            out = it->second;
            return true;
        }
    return false;
}

std::shared_ptr<const ImageEntry> ImageStore::find_locked(const std::string& id) {
    auto it = index_.find(id);
    if (it == index_.end()) return nullptr;
    lru_.splice(lru_.begin(), lru_, it->second);  // now the most recent
    return *it->second;
}

std::shared_ptr<const ImageEntry> ImageStore::find(const std::string& id) {
    std::lock_guard<std::mutex> lock(mutex_);
    return find_locked(id);
}

size_t ImageStore::size() {
    std::lock_guard<std::mutex> lock(mutex_);
    return lru_.size();
}

ImageStore::Added ImageStore::add(const std::string& bytes) {
    const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
    const std::string id = sha256_hex(data, bytes.size()).substr(0, 16);
    if (auto e = find(id)) return {e, true, 0.0};

    // A decode slot, held until the image is encoded: it bounds the decoded images in memory
    // that are not yet in the cache.
    decode_slots_.acquire();
    struct Release {
        std::counting_semaphore<1024>& slots;
        ~Release() { slots.release(); }
    } release{decode_slots_};
    // Decode outside every lock; a bad upload fails here without holding anyone up.
    Image image = decode_image(data, bytes.size(), "upload", limits_);

    std::lock_guard<std::mutex> encoding(encode_mutex_);
    if (auto e = find(id)) return {e, true, 0.0};  // encoded by a request we waited for
    auto t0 = std::chrono::steady_clock::now();
    auto entry = std::make_shared<ImageEntry>(id, std::move(image));
    entry->predictor = model_->encode(entry->image);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

    std::lock_guard<std::mutex> lock(mutex_);
    lru_.push_front(entry);
    index_[id] = lru_.begin();
    while (lru_.size() > capacity_) {
        index_.erase(lru_.back()->id);
        lru_.pop_back();
    }
    return {entry, false, ms};
}

}  // namespace sam::server
