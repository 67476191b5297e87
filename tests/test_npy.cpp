#include <cstdio>
#include <fstream>

#include "sam/error.h"
#include "sam/npy.h"
#include "test_util.h"

namespace sam {
namespace {

TEST(Npy, ReadsFixtureArrays) {
    NpyArray a = read_npy(test::data_path("resized_synthetic.npy"));
    EXPECT_EQ(a.descr, "|u1");
    EXPECT_EQ(a.shape, (Shape{589, 1024, 3}));
    Tensor e = load_npy(test::data_path("embedding_dog.npy"));
    EXPECT_EQ(e.shape(), (Shape{1, 32, 64, 64}));
}

TEST(Npy, RoundTripsFloatTensors) {
    Tensor t({2, 3, 5});
    for (int64_t i = 0; i < t.numel(); ++i) t[i] = static_cast<float>(i) * 0.5f - 3.0f;
    std::string path = ::testing::TempDir() + "/roundtrip.npy";
    save_npy(path, t);
    Tensor u = load_npy(path);
    EXPECT_EQ(u.shape(), t.shape());
    EXPECT_EQ(test::max_abs_diff(t, u), 0.0f);
    Tensor scalar_like({7});
    save_npy(path, scalar_like);
    EXPECT_EQ(load_npy(path).shape(), (Shape{7}));
}

TEST(Npy, BadFilesGiveErrorsNamingTheFile) {
    std::string path = ::testing::TempDir() + "/bad.npy";
    {
        std::ofstream(path) << "not an npy file";
    }
    EXPECT_THROW(read_npy(path), Error);
    // Truncated data: a valid header claiming more bytes than present.
    Tensor t({4, 4});
    save_npy(path, t);
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(path, std::ios::binary) << bytes.substr(0, bytes.size() - 8);
    try {
        load_npy(path);
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("bad.npy"), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos);
    }
    EXPECT_THROW(load_npy(test::data_path("resized_synthetic.npy")), Error);  // uint8, not float
    EXPECT_THROW(read_npy(::testing::TempDir() + "/does_not_exist.npy"), Error);
}

}  // namespace
}  // namespace sam
