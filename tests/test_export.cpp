// The dataset formats of `sam export` (apps/cli/export_formats.h, sa1b.h): outlines traced from
// masks rasterize back to the mask, masks with holes fall back to RLE, every format's files, and
// COCO import. The COCO files are also checked by pycocotools (tests/test_export_pycocotools.py).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "annotate/project.h"
#include "cli/export_formats.h"
#include "cli/sa1b.h"
#include "sam/image.h"
#include "test_util.h"

namespace sam {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::vector<uint8_t> disc(int h, int w, double cx, double cy, double r) {
    std::vector<uint8_t> m(size_t(h) * w);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) m[size_t(y) * w + x] = (x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r;
    return m;
}

// Random blobs: a few discs, with diagonal contacts and one-pixel lines.
std::vector<uint8_t> random_mask(std::mt19937& rng, int h, int w) {
    std::vector<uint8_t> m(size_t(h) * w, 0);
    std::uniform_real_distribution<double> u(0, 1);
    for (int k = 0; k < 3; ++k) {
        const auto d = disc(h, w, u(rng) * w, u(rng) * h, 2 + u(rng) * 8);
        for (size_t i = 0; i < m.size(); ++i) m[i] |= d[i];
    }
    const int y = static_cast<int>(u(rng) * h);
    for (int x = 0; x < w / 2; ++x) m[size_t(y) * w + x] = 1;  // a thin line
    for (int i = 0; i < 4 && i < h && i < w; ++i) m[size_t(i) * w + i] = 1;  // pixels touching by corners
    return m;
}

TEST(Export, OutlinesRasterizeBackToTheMask) {
    std::mt19937 rng(7);
    for (int t = 0; t < 200; ++t) {
        const int h = 5 + static_cast<int>(rng() % 40), w = 5 + static_cast<int>(rng() % 40);
        std::vector<uint8_t> m = random_mask(rng, h, w);
        // Fill holes so that outlines alone describe the mask: flood the background from the border.
        std::vector<uint8_t> outside(m.size(), 0);
        std::vector<std::pair<int, int>> stack;
        for (int y = 0; y < h; ++y)
            for (int x = 0; x < w; ++x)
                if ((x == 0 || y == 0 || x == w - 1 || y == h - 1) && !m[size_t(y) * w + x]) stack.push_back({x, y});
        while (!stack.empty()) {
            auto [x, y] = stack.back();
            stack.pop_back();
            if (x < 0 || y < 0 || x >= w || y >= h || m[size_t(y) * w + x] || outside[size_t(y) * w + x]) continue;
            outside[size_t(y) * w + x] = 1;
            // 8-connected background: the dual of the 4-connected parts the outlines follow.
            for (int dy = -1; dy <= 1; ++dy)
                for (int dx = -1; dx <= 1; ++dx) stack.push_back({x + dx, y + dy});
        }
        for (size_t i = 0; i < m.size(); ++i) m[i] = !outside[i];
        std::vector<std::vector<double>> polys;
        for (const auto& o : cli::trace_outlines(m.data(), h, w)) {
            std::vector<double> p;
            for (const auto& v : o) p.insert(p.end(), {double(v[0]), double(v[1])});
            polys.push_back(p);
        }
        ASSERT_EQ(cli::rasterize_polygons(polys, h, w), m) << "trial " << t << " (" << h << " x " << w << ")";
        EXPECT_TRUE(cli::coco_segmentation(rle_encode(m.data(), h, w), false).is_array());
    }
}

TEST(Export, OutlineOfOnePixelAndOfASquare) {
    const uint8_t one[9] = {0, 0, 0, 0, 1, 0, 0, 0, 0};
    const auto o = cli::trace_outlines(one, 3, 3);
    ASSERT_EQ(o.size(), 1u);
    EXPECT_EQ(o[0], (cli::Outline{{1, 1}, {2, 1}, {2, 2}, {1, 2}}));
    std::vector<uint8_t> sq(100, 0);
    for (int y = 2; y < 7; ++y)
        for (int x = 3; x < 9; ++x) sq[size_t(y) * 10 + x] = 1;
    EXPECT_EQ(cli::trace_outlines(sq.data(), 10, 10)[0], (cli::Outline{{3, 2}, {9, 2}, {9, 7}, {3, 7}}));
}

TEST(Export, MaskWithAHoleFallsBackToRle) {
    auto ring = disc(40, 40, 20, 20, 15);
    const auto hole = disc(40, 40, 20, 20, 6);
    for (size_t i = 0; i < ring.size(); ++i) ring[i] &= !hole[i];
    const Rle rle = rle_encode(ring.data(), 40, 40);
    const json seg = cli::coco_segmentation(rle, false);
    ASSERT_TRUE(seg.is_object());
    EXPECT_EQ(rle_from_coco_string(seg["counts"], 40, 40), rle);
    // And RLE throughout when asked, also for a mask that has polygons.
    const auto d = disc(40, 40, 10, 10, 5);
    EXPECT_TRUE(cli::coco_segmentation(rle_encode(d.data(), 40, 40), true).is_object());
    EXPECT_TRUE(cli::coco_segmentation(rle_encode(d.data(), 40, 40), false).is_array());
}

// A project of two images (only files with an image name are listed), one annotated.
struct ExportFixture {
    test::TempDir dir{"sam_test_export_"};
    std::string images, project_path;
    Rle a, b;
    ExportFixture() {
        images = dir.path + "/images";
        fs::create_directories(images);
        std::vector<uint8_t> rgb(size_t(30) * 40 * 3, 128);
        write_png(images + "/one.png", rgb.data(), 40, 30, 3);
        write_png(images + "/two.png", rgb.data(), 40, 30, 3);
        std::ofstream(images + "/notes.txt") << "not an image";
        project_path = dir.path + "/p.json";
        annotate::Project p(project_path, images, {"cat", "dog"});
        auto m1 = disc(30, 40, 10, 10, 6);
        auto m2 = disc(30, 40, 28, 18, 8);
        const auto hole = disc(30, 40, 28, 18, 3);
        for (size_t i = 0; i < m2.size(); ++i) m2[i] &= !hole[i];
        a = rle_encode(m1.data(), 30, 40);
        b = rle_encode(m2.data(), 30, 40);
        annotate::ImageAnnotations next;
        next.width = 40;
        next.height = 30;
        next.status = annotate::ImageStatus::Done;
        next.objects = {{0, "cat", a, false, "clicks", 0.9, 0.95, {}, {{10, 10}}, {1}},
                        {0, "dog", b, true, "box", 0.8, 0.9, {}, {}, {}}};
        p.save_image("one.png", 0, next);
    }
};

TEST(Export, CocoHasImagesCategoriesAndBothKindsOfSegmentation) {
    ExportFixture f;
    const annotate::Project p(f.project_path);
    ASSERT_EQ(p.image_names(), (std::vector<std::string>{"one.png", "two.png"}));
    const std::string out = f.dir.path + "/coco.json";
    cli::export_project(p, cli::ExportFormat::Coco, out);
    const json c = json::parse(test::read_file(out));
    ASSERT_EQ(c["images"].size(), 2u);
    EXPECT_EQ(c["images"][1]["width"], 40);  // never opened: read from the file
    EXPECT_EQ(c["categories"][1]["name"], "dog");
    ASSERT_EQ(c["annotations"].size(), 2u);
    EXPECT_TRUE(c["annotations"][0]["segmentation"].is_array());
    EXPECT_EQ(c["annotations"][0]["category_id"], 1);
    EXPECT_EQ(c["annotations"][0]["area"], rle_area(f.a));
    EXPECT_TRUE(c["annotations"][1]["segmentation"].is_object());  // the ring: RLE
    EXPECT_EQ(c["annotations"][1]["segmentation"]["counts"], rle_to_coco_string(f.b));
}

TEST(Export, ImportOfTheExportGivesTheSameMasks) {
    ExportFixture f;
    const std::string out = f.dir.path + "/coco.json";
    cli::export_project(annotate::Project(f.project_path), cli::ExportFormat::Coco, out);
    annotate::Project q(f.dir.path + "/q.json", f.images, {});
    EXPECT_EQ(cli::import_coco(q, out), 2);
    EXPECT_EQ(q.state().labels, (std::vector<std::string>{"cat", "dog"}));
    const auto r = q.image("one.png");
    ASSERT_EQ(r.objects.size(), 2u);
    EXPECT_EQ(r.objects[0].rle, f.a);  // the polygon, rasterized back
    EXPECT_EQ(r.objects[1].rle, f.b);
    EXPECT_EQ(r.objects[1].label, "dog");
    // A broken file names what is wrong.
    std::ofstream(f.dir.path + "/bad.json") << R"({"images": [], "categories": [], "annotations": 3})";
    try {
        cli::import_coco(q, f.dir.path + "/bad.json");
        FAIL();
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("annotations"), std::string::npos) << e.what();
    }
}

TEST(Export, YoloLinesAreClassAndNormalisedPolygon) {
    ExportFixture f;
    cli::export_project(annotate::Project(f.project_path), cli::ExportFormat::Yolo, f.dir.path + "/yolo");
    EXPECT_NE(test::read_file(f.dir.path + "/yolo/data.yaml").find("1: \"dog\""), std::string::npos);
    EXPECT_EQ(test::read_file(f.dir.path + "/yolo/labels/two.txt"), "");
    std::istringstream lines(test::read_file(f.dir.path + "/yolo/labels/one.txt"));
    std::string line;
    int n = 0;
    while (std::getline(lines, line)) {
        std::istringstream in(line);
        int cls = -1;
        in >> cls;
        EXPECT_EQ(cls, n);
        double v;
        int coords = 0;
        while (in >> v) {
            EXPECT_GE(v, 0.0);
            EXPECT_LE(v, 1.0);
            ++coords;
        }
        EXPECT_TRUE(in.eof());
        EXPECT_GE(coords, 6);
        EXPECT_EQ(coords % 2, 0);
        ++n;
    }
    EXPECT_EQ(n, 2);
}

TEST(Export, Sa1bRecordsFollowTheSchema) {
    ExportFixture f;
    cli::export_project(annotate::Project(f.project_path), cli::ExportFormat::Sa1b, f.dir.path + "/sa1b");
    const json j = json::parse(test::read_file(f.dir.path + "/sa1b/one.json"));
    EXPECT_EQ(j["image"], (json{{"image_id", 1}, {"width", 40}, {"height", 30}, {"file_name", "one.png"}}));
    ASSERT_EQ(j["annotations"].size(), 2u);
    for (const auto& a : j["annotations"]) {
        for (const char* k : {"id", "segmentation", "bbox", "area", "predicted_iou", "stability_score", "crop_box", "point_coords"})
            EXPECT_TRUE(a.contains(k)) << k;
        EXPECT_EQ(a["crop_box"], (json{0, 0, 40, 30}));
    }
    EXPECT_EQ(j["annotations"][0]["segmentation"]["counts"], rle_to_coco_string(f.a));
    EXPECT_EQ(j["annotations"][0]["point_coords"], (json{{10.0, 10.0}}));
    EXPECT_EQ(json::parse(test::read_file(f.dir.path + "/sa1b/two.json"))["annotations"].size(), 0u);
}

TEST(Export, PngIndexMasksHoldOnePlusTheObjectIndex) {
    ExportFixture f;
    cli::export_project(annotate::Project(f.project_path), cli::ExportFormat::Png, f.dir.path + "/png");
    const Image img = read_image(f.dir.path + "/png/one.png");
    const auto ma = rle_decode(f.a), mb = rle_decode(f.b);
    for (size_t i = 0; i < ma.size(); ++i) ASSERT_EQ(img.rgb[i * 3], mb[i] ? 2 : ma[i] ? 1 : 0) << i;
    const json index = json::parse(test::read_file(f.dir.path + "/png/index.json"));
    EXPECT_EQ(index["one.png"]["objects"][1]["label"], "dog");
}

TEST(Export, UnknownFormatIsNamed) {
    EXPECT_THROW(cli::export_format_from_string("voc"), InputError);
}

}  // namespace
}  // namespace sam
