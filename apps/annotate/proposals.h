// "Propose": segment-everything over one image or many, as background jobs run one after the
// other on one thread. Each image's masks replace its proposals in the project (unlabelled,
// source "proposal"); accepted objects are left alone.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "annotate/embeddings.h"
#include "annotate/project.h"
#include "sam/automatic_mask_generator.h"

namespace sam::annotate {

struct JobStatus {
    std::string state = "queued";  // queued | running | done | failed
    int64_t images_done = 0, images_total = 0, prompts_done = 0, prompts_total = 0;
    std::string image;             // the image being segmented
    std::string error;             // the first image that failed, and why
};
nlohmann::json to_json(const JobStatus& s);

class ProposalJobs {
  public:
    ProposalJobs(Project& project, EmbeddingCache& embeddings);
    ~ProposalJobs();  // stops after the image in progress

    // Queues a job; returns its id.
    int64_t start(std::vector<std::string> images, AmgOptions options);
    // false for an unknown id.
    bool status(int64_t id, JobStatus& out);

  private:
    struct Job {
        int64_t id;
        std::vector<std::string> images;
        AmgOptions options;
    };
    void run(const Job& job);
    void loop();
    void propose_image(const Job& job, const std::string& name);

    Project& project_;
    EmbeddingCache& embeddings_;
    std::mutex mutex_;
    std::map<int64_t, JobStatus> status_;
    std::deque<Job> queue_;
    int64_t next_ = 1;
    bool stop_ = false;
    std::condition_variable wake_;
    std::thread worker_;
};

}  // namespace sam::annotate
