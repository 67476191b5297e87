#include "annotate/proposals.h"

namespace sam::annotate {

nlohmann::json to_json(const JobStatus& s) {
    return {{"state", s.state},           {"images_done", s.images_done},   {"images_total", s.images_total},
            {"prompts_done", s.prompts_done}, {"prompts_total", s.prompts_total}, {"image", s.image},
            {"error", s.error}};
}

ProposalJobs::ProposalJobs(Project& project, EmbeddingCache& embeddings)
    : project_(project), embeddings_(embeddings), worker_([this] { loop(); }) {}

ProposalJobs::~ProposalJobs() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    wake_.notify_all();
    worker_.join();
}

int64_t ProposalJobs::start(std::vector<std::string> images, AmgOptions options) {
    std::lock_guard lock(mutex_);
    const int64_t id = next_++;
    JobStatus s;
    s.images_total = static_cast<int64_t>(images.size());
    status_[id] = s;
    queue_.push_back({id, std::move(images), std::move(options)});
    wake_.notify_all();
    return id;
}

bool ProposalJobs::status(int64_t id, JobStatus& out) {
    std::lock_guard lock(mutex_);
    auto it = status_.find(id);
    if (it == status_.end()) return false;
    out = it->second;
    return true;
}

void ProposalJobs::loop() {
    for (;;) {
        Job job;
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [&] { return stop_ || !queue_.empty(); });
            if (stop_) return;
            job = std::move(queue_.front());
            queue_.pop_front();
            status_[job.id].state = "running";
        }
        run(job);
    }
}

void ProposalJobs::run(const Job& job) {
    for (const std::string& name : job.images) {
        {
            std::lock_guard lock(mutex_);
            if (stop_) return;
            status_[job.id].image = name;
        }
        try {
            propose_image(job, name);
        } catch (const std::exception& e) {
            std::lock_guard lock(mutex_);
            JobStatus& s = status_[job.id];
            if (s.error.empty()) s.error = name + ": " + e.what();
        }
        std::lock_guard lock(mutex_);
        ++status_[job.id].images_done;
    }
    std::lock_guard lock(mutex_);
    JobStatus& s = status_[job.id];
    s.state = s.error.empty() ? "done" : "failed";
    s.image.clear();
}

void ProposalJobs::propose_image(const Job& job, const std::string& name) {
    const auto entry = embeddings_.get(name, project_.image_path(name));
    project_.set_image_size(name, entry->image.width, entry->image.height);
    SamAutomaticMaskGenerator generator(embeddings_.model(), job.options);
    const auto progress = [&](int64_t done, int64_t total) {
        std::lock_guard lock(mutex_);
        JobStatus& s = status_[job.id];
        s.prompts_done = done;
        s.prompts_total = total;
    };
    const std::vector<MaskRecord> records = embeddings_.with_encoder(
        [&] { return generator.generate(entry->image, progress, entry->predictor.embedding()); });
    std::vector<AnnotationObject> proposals;
    for (const MaskRecord& r : records) {
        AnnotationObject o;
        o.rle = r.rle;
        o.source = "proposal";
        o.predicted_iou = r.predicted_iou;
        o.stability_score = r.stability_score;
        o.crop_box = r.crop_box;
        o.point_coords = {r.point};
        proposals.push_back(std::move(o));
    }
    // The annotator may save the image meanwhile: retry on the version that won.
    for (int attempt = 0;; ++attempt) {
        ImageAnnotations next = project_.image(name);
        next.proposals = proposals;
        if (next.status == ImageStatus::New) next.status = ImageStatus::InProgress;
        try {
            project_.save_image(name, next.version, std::move(next));
            return;
        } catch (const ConflictError&) {
            if (attempt == 10) throw;
        }
    }
}

}  // namespace sam::annotate
