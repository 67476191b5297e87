#include <cstdio>
#include <fstream>

#include "sam/error.h"
#include "sam/npy.h"
#include "test_util.h"

namespace sam {
namespace {

// A version 1.0 .npy file: magic, header dict padded with spaces to 64 bytes, then `payload`.
std::string npy_bytes(const std::string& dict, const std::string& payload) {
    std::string header = dict;
    header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
    header += '\n';
    std::string out("\x93NUMPY\x01\x00", 8);
    out += static_cast<char>(header.size() & 0xff);
    out += static_cast<char>(header.size() >> 8);
    return out + header + payload;
}

std::string write_npy(const std::string& name, const std::string& dict, const std::string& payload) {
    const std::string path = ::testing::TempDir() + "/" + name;
    std::ofstream(path, std::ios::binary) << npy_bytes(dict, payload);
    return path;
}

// Expects load_npy(path) to throw sam::Error whose message names the file and contains `part`.
void expect_load_error(const std::string& path, const std::string& part) {
    try {
        load_npy(path);
        ADD_FAILURE() << path << ": no error; expected one mentioning '" << part << "'";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
}

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

// numel * 8 wraps to 8 in 64 bits: the reader must not size the buffer from the wrapped product.
TEST(Npy, ShapeWhoseByteCountOverflowsIsRefused) {
    const std::string path = write_npy("overflow.npy",
                                       "{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387905,), }",
                                       std::string(8, '\0'));
    expect_load_error(path, "shape (4611686018427387905,) of <f8 overflows 64 bits");
    // Dimensions whose product overflows, and one that does not fit 64 bits at all.
    expect_load_error(write_npy("product.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", ""),
                      "overflows 64 bits");
    // Found by fuzz_npy (UBSan: signed overflow in shape_numel): an empty array whose other
    // dimensions multiply past 2^63.
    expect_load_error(write_npy("empty_overflow.npy",
                                "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 4611686018427387905, 0), }", ""),
                      "shape (2, 4611686018427387905, 0) of |u1 overflows 64 bits");
    expect_load_error(write_npy("huge.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", ""),
                      "field 'shape': dimension 0 does not fit 64 bits");
}

TEST(Npy, NegativeAndMalformedDimensionsAreRefused) {
    expect_load_error(write_npy("negative.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1), }", ""),
                      "field 'shape': dimension 1 is negative");
    expect_load_error(write_npy("float_dim.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2.5,), }", ""),
                      "field 'shape'");
    expect_load_error(write_npy("no_shape.npy", "{'descr': '<f4', 'fortran_order': False, }", ""), "no field 'shape'");
    expect_load_error(write_npy("extra.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1, }",
                                std::string(4, '\0')),
                      "unexpected field 'x'");
    std::string many;
    for (int i = 0; i < 65; ++i) many += "1, ";
    expect_load_error(write_npy("ndim.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (" + many + "), }", ""),
                      "more than 64 dimensions");
    expect_load_error(write_npy("big_endian.npy", "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }",
                                std::string(4, '\0')),
                      "unsupported npy dtype '>f4'");
    expect_load_error(write_npy("unicode.npy", "{'descr': '<U8', 'fortran_order': False, 'shape': (1,), }",
                                std::string(32, '\0')),
                      "unsupported npy dtype '<U8'");
}

// The data must be exactly shape x item size: no fewer bytes and no more.
TEST(Npy, DataSizeMustMatchTheShapeExactly) {
    const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    expect_load_error(write_npy("short.npy", dict, std::string(20, '\0')), "truncated npy data");
    expect_load_error(write_npy("long.npy", dict, std::string(28, '\0')), "npy data is 28 bytes, but shape (2, 3) of <f4 holds 24");
    // (0, 0) with 8 stray bytes; the exact-size empty array itself is valid.
    expect_load_error(write_npy("empty_extra.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 0), }",
                                std::string(8, '\0')),
                      "holds 0");
    EXPECT_EQ(load_npy(write_npy("empty.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 0), }", ""))
                  .shape(),
              (Shape{0, 0}));
    // A 0-d array holds one element.
    Tensor scalar = load_npy(write_npy("scalar.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (), }",
                                       std::string("\0\0\0\0\0\0\xf0\x3f", 8)));
    EXPECT_EQ(scalar.shape(), Shape{});
    EXPECT_EQ(scalar[0], 1.0f);
}

TEST(Npy, DecodesFromMemoryAndAcceptsNumpyHeaderVariants) {
    // Double quotes, no trailing comma, Python 2 long dimensions, version 2.0 header length.
    const std::string a = npy_bytes("{\"descr\": \"<f2\", \"shape\": (2L,), \"fortran_order\": False}",
                                    std::string("\x00\x3c\x00\xc0", 4));
    Tensor t = decode_npy_float(reinterpret_cast<const uint8_t*>(a.data()), a.size(), "mem.npy");
    EXPECT_EQ(t.shape(), (Shape{2}));
    EXPECT_EQ(t[0], 1.0f);
    EXPECT_EQ(t[1], -2.0f);
    std::string v2 = a;
    v2[6] = 2;
    v2.insert(10, 2, '\0');
    EXPECT_EQ(decode_npy(reinterpret_cast<const uint8_t*>(v2.data()), v2.size(), "v2.npy").shape, (Shape{2}));
    try {
        decode_npy(reinterpret_cast<const uint8_t*>(a.data()), 9, "cut.npy");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("cut.npy"), std::string::npos);
    }
}

}  // namespace
}  // namespace sam
