// Concurrency, tested with real threads against serial results (docs/ARCHITECTURE.md, "Threads"):
//   * one Sam (one set of weights) used by several std::threads at once: encoders, predictors
//     sharing one image, predictors of their own, generators of their own;
//   * the batched decoder on 1-4 threads against the same prompts decoded one by one;
//   * a model's thread count applies on whichever thread computes.
// A oneDNN primitive run by two threads at once with a shared scratchpad gave logits off by
// 16-50 on AVX-512 CPUs (and nothing on AVX2 ones): these tests compare exactly, so any such
// race shows on every CPU whose kernels have one. ctest runs this suite once per instruction
// set level the CPU offers (tests/CMakeLists.txt).
#include <gtest/gtest.h>
#include <omp.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ops/threads.h"
#include "sam/automatic_mask_generator.h"
#include "sam/image.h"
#include "sam/predictor.h"
#include "sam/sam.h"
#include "test_util.h"

namespace sam {
namespace {

Sam tiny_model(int threads = 0) {
    LoadOptions o;
    o.config_path = test::data_path("config.json");
    return Sam::load(test::data_path("sam_tiny.pth"), o).with_execution({threads, Precision::F32});
}

Image image(const std::string& name) { return read_image(test::data_path("images/" + name + ".png")); }

// A spread of prompts over an image: points (with a negative one), boxes, box + point.
std::vector<Prompt> prompts(int width, int height) {
    std::vector<Prompt> out;
    for (int i = 0; i < 6; ++i) {
        Prompt p;
        const float x = static_cast<float>(width) * (0.15f + 0.13f * static_cast<float>(i));
        const float y = static_cast<float>(height) * (0.8f - 0.1f * static_cast<float>(i));
        p.point_coords = {{x, y}};
        p.point_labels = {1};
        if (i % 3 == 1) p.point_coords.push_back({y * 0.5f, x * 0.4f}), p.point_labels.push_back(0);
        if (i % 3 == 2) p.box = std::array<float, 4>{x * 0.5f, y * 0.5f, x, y};
        p.multimask_output = i % 2 == 0;
        out.push_back(p);
    }
    return out;
}

::testing::AssertionResult same_prediction(const Prediction& a, const Prediction& b) {
    if (a.iou_predictions != b.iou_predictions) return ::testing::AssertionFailure() << "iou predictions differ";
    if (a.masks != b.masks) return ::testing::AssertionFailure() << "masks differ";
    const float d = test::max_abs_diff(a.low_res_logits, b.low_res_logits);
    if (d != 0.0f) return ::testing::AssertionFailure() << "low-res logits differ by up to " << d;
    return ::testing::AssertionSuccess();
}

// Runs f(t) on n threads at once (started together), and returns once all are done.
template <class F>
void on_threads(int n, F&& f) {
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < n; ++t)
        threads.emplace_back([&, t] {
            ++ready;
            while (ready.load() < n) std::this_thread::yield();
            f(t);
        });
    for (std::thread& th : threads) th.join();
}

TEST(Concurrency, PredictorsSharingOneImageMatchSerial) {
    const Sam model = tiny_model(2);
    const Image img = image("truck");
    SamPredictor shared(model);
    shared.set_image(img);
    const std::vector<Prompt> ps = prompts(img.width, img.height);
    std::vector<Prediction> serial;
    for (const Prompt& p : ps) serial.push_back(shared.predict(p));

    constexpr int kThreads = 4, kRounds = 3;
    std::vector<std::vector<Prediction>> got(kThreads);
    on_threads(kThreads, [&](int t) {
        for (int r = 0; r < kRounds; ++r)
            for (size_t i = 0; i < ps.size(); ++i) got[t].push_back(shared.predict(ps[(i + t) % ps.size()]));
    });
    for (int t = 0; t < kThreads; ++t)
        for (size_t k = 0; k < got[t].size(); ++k)
            EXPECT_TRUE(same_prediction(got[t][k], serial[(k % ps.size() + t) % ps.size()])) << "thread " << t << ", call " << k;
}

TEST(Concurrency, EncodersAndPredictorsOfTheirOwnMatchSerial) {
    const Sam model = tiny_model(2);
    const std::vector<std::string> names = {"truck", "dog", "groceries", "synthetic"};
    std::vector<Tensor> serial_emb;
    std::vector<std::vector<Prediction>> serial(names.size());
    for (size_t i = 0; i < names.size(); ++i) {
        const Image img = image(names[i]);
        SamPredictor p(model);
        p.set_image(img);
        serial_emb.push_back(p.embedding().clone());
        for (const Prompt& pr : prompts(img.width, img.height)) serial[i].push_back(p.predict(pr));
    }
    std::vector<Tensor> emb(names.size());
    std::vector<std::vector<Prediction>> got(names.size());
    on_threads(static_cast<int>(names.size()), [&](int t) {
        const Image img = image(names[static_cast<size_t>(t)]);
        SamPredictor p(model);
        p.set_image(img);
        emb[static_cast<size_t>(t)] = p.embedding().clone();
        for (const Prompt& pr : prompts(img.width, img.height)) got[static_cast<size_t>(t)].push_back(p.predict(pr));
    });
    for (size_t i = 0; i < names.size(); ++i) {
        EXPECT_EQ(test::max_abs_diff(emb[i], serial_emb[i]), 0.0f) << names[i];
        for (size_t k = 0; k < got[i].size(); ++k) EXPECT_TRUE(same_prediction(got[i][k], serial[i][k])) << names[i] << " prompt " << k;
    }
}

// The batched decoder (prompts split over the threads) on 1-4 threads: each prompt's result is
// the one it gets alone.
TEST(Concurrency, BatchedDecoderOnOneToFourThreadsMatchesSinglePrompts) {
    const Image img = image("groceries");
    const std::vector<Prompt> ps = prompts(img.width, img.height);
    BatchPrompt b;
    b.batch = 16;
    b.points_per_prompt = 1;
    b.multimask_output = true;
    for (int64_t i = 0; i < b.batch; ++i) {
        b.point_coords.push_back(static_cast<float>(img.width) * (0.05f + 0.06f * static_cast<float>(i)));
        b.point_coords.push_back(static_cast<float>(img.height) * (0.9f - 0.05f * static_cast<float>(i)));
        b.point_labels.push_back(1);
    }
    for (int threads = 1; threads <= 4; ++threads) {
        SamPredictor p(tiny_model(threads));
        p.set_image(img);
        const BatchPrediction r = p.predict_batch(b);
        const int64_t plane = r.low_res_logits.numel() / (r.batch * r.num_masks);
        for (int64_t i = 0; i < b.batch; ++i) {
            Prompt one;
            one.point_coords = {{b.point_coords[static_cast<size_t>(2 * i)], b.point_coords[static_cast<size_t>(2 * i + 1)]}};
            one.point_labels = {1};
            const Prediction s = p.predict(one);
            float d = 0.0f;
            for (int64_t k = 0; k < r.num_masks * plane; ++k)
                d = std::max(d, std::fabs(s.low_res_logits[k] - r.low_res_logits[i * r.num_masks * plane + k]));
            // Within a batch the GEMMs see other row counts and may sum in another order: the
            // same bound as the single-versus-batch check against the reference (kLowResMaxTol).
            EXPECT_LE(d, 0.1f) << threads << " threads, prompt " << i;
            for (int m = 0; m < r.num_masks; ++m)
                EXPECT_NEAR(s.iou_predictions[static_cast<size_t>(m)], r.iou_predictions[i * r.num_masks + m], 1e-4f);
        }
    }
}

TEST(Concurrency, GeneratorsOfTheirOwnMatchSerial) {
    const Sam model = tiny_model(2);
    AmgOptions o;
    o.points_per_side = 8;
    o.pred_iou_thresh = 0.0;
    o.stability_score_thresh = 0.0;
    const std::vector<std::string> names = {"dog", "groceries"};
    std::vector<std::vector<MaskRecord>> serial, got(names.size());
    for (const std::string& n : names) serial.push_back(SamAutomaticMaskGenerator(model, o).generate(image(n)));
    on_threads(2, [&](int t) {
        SamAutomaticMaskGenerator gen(model, o);
        got[static_cast<size_t>(t)] = gen.generate(image(names[static_cast<size_t>(t)]));
    });
    for (size_t i = 0; i < names.size(); ++i) {
        ASSERT_EQ(got[i].size(), serial[i].size()) << names[i];
        ASSERT_FALSE(serial[i].empty()) << names[i];
        for (size_t k = 0; k < got[i].size(); ++k) {
            EXPECT_EQ(got[i][k].rle.counts, serial[i][k].rle.counts) << names[i] << " record " << k;
            // Bit for bit, NaN included (a random model's empty masks have a NaN stability).
            EXPECT_EQ(std::memcmp(&got[i][k].predicted_iou, &serial[i][k].predicted_iou, sizeof(double)), 0);
            EXPECT_EQ(std::memcmp(&got[i][k].stability_score, &serial[i][k].stability_score, sizeof(double)), 0);
        }
    }
}

// OpenMP's thread count is per calling thread: a scope opened on a std::thread sets it there,
// and only there, and is undone on exit.
TEST(Concurrency, ThreadScopeAppliesOnTheThreadThatComputes) {
    const int outside = ops::current_threads();
    std::thread([] {
        {
            ops::ThreadScope three(3);
            EXPECT_EQ(ops::current_threads(), 3);
            {
                ops::ThreadScope one(1);
                EXPECT_EQ(ops::current_threads(), 1);
            }
            EXPECT_EQ(ops::current_threads(), 3);
        }
        ops::ThreadScope all(0);
        EXPECT_EQ(ops::current_threads(), available_cores());
    }).join();
    EXPECT_EQ(ops::current_threads(), outside);
}

// A single item (one prompt) must run outside any parallel construct: regions it opens are
// then top-level ones, which reuse libgomp's thread pool, where regions nested in an inactive
// one start fresh threads every time (~0.8 ms each on a 2-core VM: a click's ~20 regions cost
// more than its arithmetic).
TEST(Concurrency, ForEachItemRunsOneItemAtTopLevelAndManyOnePerThread) {
    ops::ThreadScope two(2);
    int level = -1, team = 0;
    ops::for_each_item(1, [&](int64_t i) {
        EXPECT_EQ(i, 0);
        level = omp_get_level();
#pragma omp parallel
#pragma omp single
        team = omp_get_num_threads();
    });
    EXPECT_EQ(level, 0);
    EXPECT_EQ(team, 2);

    std::vector<std::atomic<int>> runs(7);
    std::atomic<int> nested_teams{0};
    ops::for_each_item(7, [&](int64_t i) {
        runs[static_cast<size_t>(i)]++;
#pragma omp parallel
#pragma omp single
        nested_teams += omp_get_num_threads();  // nested in an active region: 1 thread each
    });
    for (const auto& r : runs) EXPECT_EQ(r.load(), 1);
    EXPECT_EQ(nested_teams.load(), 7);

    EXPECT_THROW(ops::for_each_item(5, [](int64_t i) {
                     if (i == 3) throw std::runtime_error("item 3");
                 }),
                 std::runtime_error);
    EXPECT_THROW(ops::for_each_item(1, [](int64_t) { throw std::runtime_error("item 0"); }), std::runtime_error);
}

TEST(Concurrency, ModelHandlesCarryTheirOwnExecutionOptions) {
    const Sam a = tiny_model(1);
    const Sam b = a.with_execution({3, Precision::INT8});
    EXPECT_EQ(a.execution().threads, 1);
    EXPECT_EQ(a.execution().precision, Precision::F32);
    EXPECT_EQ(b.execution().threads, 3);
    EXPECT_EQ(b.execution().precision, precision_supported(Precision::INT8) ? Precision::INT8 : Precision::F32);
    // The same weights, the same fp32 results whatever the thread count.
    const Image img = image("dog");
    const Tensor e1 = a.embed(img), e3 = a.with_execution({3, Precision::F32}).embed(img);
    EXPECT_LE(test::max_abs_diff(e1, e3), 1e-5f * test::max_abs(e1));
}

}  // namespace
}  // namespace sam
