#include "server/video_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>

#include "io/jpeg_encode.h"
#include "io/video_file.h"
#include "sam/error.h"
#include "sam/rle.h"
#include "server/request_parsing.h"

namespace sam::server {
namespace {

namespace fs = std::filesystem;

// The upload's bytes in a private temporary file (FFmpeg reads files), removed with this object.
class TempVideo {
  public:
    TempVideo(const std::string& bytes, uint64_t n) {
        std::random_device rd;
        path_ = (fs::temp_directory_path() /
                 ("sam-serve-video-" + std::to_string(::getpid()) + "-" + std::to_string(n) + "-" + std::to_string(rd())))
                    .string();
        const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) throw HttpError(500, "cannot write the upload to a temporary file");
        size_t done = 0;
        while (done < bytes.size()) {
            const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
            if (w <= 0) {
                ::close(fd);
                ::unlink(path_.c_str());
                throw HttpError(500, "cannot write the upload to a temporary file");
            }
            done += static_cast<size_t>(w);
        }
        ::close(fd);
    }
    ~TempVideo() { ::unlink(path_.c_str()); }
    TempVideo(const TempVideo&) = delete;
    TempVideo& operator=(const TempVideo&) = delete;
    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

// The reader's message, with the temporary file's name replaced by "upload".
std::string about_upload(const std::string& message, const std::string& path) {
    std::string m = message;
    for (size_t at; (at = m.find(path)) != std::string::npos;) m.replace(at, path.size(), "upload");
    return m;
}

std::string new_session_id() {
    static std::mutex m;
    static std::mt19937_64 rng{std::random_device{}()};
    std::lock_guard<std::mutex> lock(m);
    char id[24];
    std::snprintf(id, sizeof id, "v%016llx", static_cast<unsigned long long>(rng()));
    return id;
}

// `frames`: "12000", "more than 300".
std::string frames_limit(const std::string& frames, int64_t limit) {
    return "the video has " + frames + " frames, the limit is " + std::to_string(limit) + " (the server's --max-video-frames)";
}

}  // namespace

void VideoSession::begin_propagation(int total) {
    bool expected = false;
    if (!running_.compare_exchange_strong(expected, true))
        throw HttpError(409, "video " + id + " is being propagated: wait until it has finished");
    done_ = 0;
    total_ = total;
}

void VideoSession::end_propagation() { running_ = false; }

void VideoSession::check_not_propagating() const {
    if (running_.load())
        throw HttpError(409, "video " + id + " is being propagated: prompts and changes wait until it has finished");
}

void VideoSession::set_masks(int frame, std::vector<ObjectMask> masks) {
    std::lock_guard<std::mutex> lock(results_mutex_);
    results_[frame] = std::move(masks);
}

std::optional<std::vector<ObjectMask>> VideoSession::masks(int frame) const {
    std::lock_guard<std::mutex> lock(results_mutex_);
    const auto it = results_.find(frame);
    if (it == results_.end()) return std::nullopt;
    return it->second;
}

void VideoSession::drop_object(int obj_id) {
    std::lock_guard<std::mutex> lock(results_mutex_);
    for (auto& [frame, masks] : results_)
        masks.erase(std::remove_if(masks.begin(), masks.end(), [&](const ObjectMask& m) { return m.obj_id == obj_id; }),
                    masks.end());
}

void VideoSession::clear_masks() {
    std::lock_guard<std::mutex> lock(results_mutex_);
    results_.clear();
}

int VideoSession::tracked_frames() const {
    std::lock_guard<std::mutex> lock(results_mutex_);
    return static_cast<int>(results_.size());
}

std::vector<ObjectMask> frame_masks(const Sam2VideoFrame& f) {
    std::vector<ObjectMask> out;
    const int H = static_cast<int>(f.logits.dim(1)), W = static_cast<int>(f.logits.dim(2));
    const size_t HW = static_cast<size_t>(H) * static_cast<size_t>(W);
    std::vector<uint8_t> bits(HW);
    for (size_t k = 0; k < f.obj_ids.size(); ++k) {
        const float* l = f.logits.data() + k * HW;
        for (size_t i = 0; i < HW; ++i) bits[i] = l[i] > 0.0f ? 1 : 0;
        out.push_back({f.obj_ids[k], rle_to_coco_string(rle_encode(bits.data(), H, W)), f.object_scores[k]});
    }
    return out;
}

std::shared_ptr<VideoSession> VideoStore::add(const std::string& bytes) {
    if (bytes.empty()) throw HttpError(400, "empty upload: send the video file's bytes as the body");
    uint64_t n;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        n = ++counter_;
    }
    std::lock_guard<std::mutex> decode_lock(decode_mutex_);
    const TempVideo file(bytes, n);
    const std::string& path = file.path();
    const int threads = model_.image_model().execution().threads;
    const int S = model_.image_model().config().image_size;
    const int64_t max_frames = limits_.max_frames;
    try {
        // Before decoding: the frame count (packets) and the declared size.
        const int64_t count = count_video_frames(path, kVideoFormats);
        if (count == 0) throw HttpError(415, "not a supported video: upload: no video frames");
        if (count > max_frames) throw HttpError(413, frames_limit(std::to_string(count), max_frames));
        VideoFileReader reader(path, threads, kVideoFormats);
        auto check_pixels = [&](int w, int h) {
            if (int64_t{w} * h > limits_.max_pixels)
                throw HttpError(413, "video frames of " + std::to_string(w) + "x" + std::to_string(h) + " are over the " +
                                         std::to_string(limits_.max_pixels) + " pixels a frame may have (the server's --max-pixels)");
        };
        check_pixels(reader.width(), reader.height());
        // The frames at their own size (the first frame's: later frames of another size are resized
        // to it), as JPEG for the page.
        std::vector<std::string> jpegs;
        Image img;
        int W = 0, H = 0;
        while (reader.next(img, W, H)) {
            if (jpegs.empty()) {
                check_pixels(img.width, img.height);
                W = img.width;
                H = img.height;
            }
            if (static_cast<int64_t>(jpegs.size()) >= max_frames) throw HttpError(413, frames_limit("more than " + std::to_string(max_frames), max_frames));
            const std::vector<uint8_t> jpeg = encode_jpeg(img, limits_.jpeg_quality);
            jpegs.emplace_back(jpeg.begin(), jpeg.end());
        }
        if (jpegs.empty()) throw HttpError(415, "not a supported video: upload: no decodable video frames");
        const double fps = reader.fps();
        // The frames for the model, resized by libswscale from the decoded frames as the official
        // decord loader does (init_state of a video file does the same).
        std::vector<Image> resized;
        VideoFileReader again(path, threads, kVideoFormats);
        while (resized.size() < jpegs.size() && again.next(img, S, S)) resized.push_back(std::move(img));
        if (resized.size() != jpegs.size())
            throw HttpError(415, "not a supported video: upload: decoding it twice gave different frame counts");
        Sam2VideoPredictor predictor(model_);
        predictor.init_state_resized(std::move(resized), W, H);
        auto session = std::make_shared<VideoSession>(new_session_id(), W, H, fps, std::move(jpegs), std::move(predictor));
        std::lock_guard<std::mutex> lock(mutex_);
        sessions_.push_front(session);
        while (sessions_.size() > limits_.max_sessions) sessions_.pop_back();
        return session;
    } catch (const ImageError& e) {
        throw HttpError(415, "not a supported video (Matroska/WebM, MP4/MOV or AVI, in a codec FFmpeg decodes): " +
                                 about_upload(e.what(), path));
    }
}

std::shared_ptr<VideoSession> VideoStore::find(const std::string& id) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = sessions_.begin(); it != sessions_.end(); ++it)
        if ((*it)->id == id) {
            auto s = *it;
            sessions_.splice(sessions_.begin(), sessions_, it);
            return s;
        }
    return nullptr;
}

size_t VideoStore::size() {
    std::lock_guard<std::mutex> lock(mutex_);
    return sessions_.size();
}

}  // namespace sam::server
