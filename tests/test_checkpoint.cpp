// Checkpoint reading and writing: the tiny fixtures saved by torch.save, round trips through
// write_checkpoint, and one crafted file per error the reader must name.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "io/checkpoint.h"
#include "io/pickle.h"
#include "io/zip_reader.h"
#include "sam/error.h"
#include "test_util.h"

namespace checkpoint_test {
using namespace sam;  // the fixture below is named Checkpoint; the class is sam::Checkpoint

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

const std::string kTiny = test::data_path("sam_tiny.pth");
const std::string kTinyFp16 = test::data_path("sam_tiny_fp16.pth");

Bytes read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const Bytes& b) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

// A fresh directory per test, removed afterwards.
class Checkpoint : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string templ = (fs::temp_directory_path() / "sam_ckpt_XXXXXX").string();
        ASSERT_NE(::mkdtemp(templ.data()), nullptr);
        dir_ = templ;
    }
    void TearDown() override { fs::remove_all(dir_); }
    std::string file(const std::string& name) const { return (dir_ / name).string(); }
    fs::path dir_;
};

// Runs `f`, expecting a CheckpointError whose message contains every one of `parts`.
template <class F>
void expect_error(F&& f, const std::vector<std::string>& parts) {
    try {
        f();
        ADD_FAILURE() << "no error; expected one mentioning '" << parts.front() << "'";
    } catch (const CheckpointError& e) {
        for (const std::string& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
    }
}

// ---- crafting archives and pickles ----

// A zip holding `entries` in order, laid out as torch.save does.
Bytes make_zip(const std::vector<std::pair<std::string, Bytes>>& entries, bool force_zip64 = false) {
    std::ostringstream out;
    ZipWriter zip(out, force_zip64);
    for (const auto& [name, data] : entries) {
        zip.begin_entry(name, data.size());
        zip.write(data.data(), data.size());
        zip.end_entry();
    }
    zip.finish();
    const std::string s = out.str();
    return Bytes(s.begin(), s.end());
}

// Pickle opcodes written by hand, protocol 2 (GLOBAL, BINUNICODE) or 4 (FRAME, STACK_GLOBAL,
// SHORT_BINUNICODE, MEMOIZE).
struct PickleBuilder {
    Bytes b;
    int protocol = 2;
    explicit PickleBuilder(int proto) : protocol(proto) { b = {0x80, static_cast<uint8_t>(proto)}; }
    PickleBuilder& raw(std::initializer_list<uint8_t> ops) {
        b.insert(b.end(), ops);
        return *this;
    }
    PickleBuilder& str(const std::string& s) {
        if (protocol >= 4) {
            b.push_back(0x8c);
            b.push_back(static_cast<uint8_t>(s.size()));
        } else {
            b.push_back('X');
            for (int k = 0; k < 4; ++k) b.push_back(static_cast<uint8_t>(s.size() >> (8 * k)));
        }
        b.insert(b.end(), s.begin(), s.end());
        if (protocol >= 4) b.push_back(0x94);  // MEMOIZE
        return *this;
    }
    PickleBuilder& global(const std::string& module, const std::string& name) {
        if (protocol >= 4) return str(module).str(name).raw({0x93});
        std::string s = "c" + module + "\n" + name + "\n";
        b.insert(b.end(), s.begin(), s.end());
        return *this;
    }
    PickleBuilder& integer(int64_t v) {
        b.push_back('J');
        for (int k = 0; k < 4; ++k) b.push_back(static_cast<uint8_t>(static_cast<uint64_t>(v) >> (8 * k)));
        return *this;
    }
    PickleBuilder& ints(const std::vector<int64_t>& v) {
        raw({'('});
        for (int64_t x : v) integer(x);
        return raw({'t'});
    }
    // `key -> _rebuild_tensor_v2(('storage', torch.<type>, name, 'cpu', numel), offset, shape, stride, ...)`
    PickleBuilder& tensor(const std::string& key, const std::string& type, const std::string& storage,
                          int64_t numel, int64_t offset, const Shape& shape, const std::vector<int64_t>& stride) {
        str(key).global("torch._utils", "_rebuild_tensor_v2").raw({'(', '('});
        str("storage").global("torch", type).str(storage).str("cpu").integer(numel).raw({'t', 'Q'});
        integer(offset).ints(shape).ints(stride).raw({0x89}).global("collections", "OrderedDict");
        return raw({')', 'R', 't', 'R'});
    }
    Bytes dict_of(const std::function<void(PickleBuilder&)>& items) {
        global("collections", "OrderedDict").raw({')', 'R', '('});
        items(*this);
        raw({'u', '.'});
        if (protocol >= 4) {  // one frame holding everything after PROTO
            Bytes framed = {0x80, static_cast<uint8_t>(protocol), 0x95};
            uint64_t n = b.size() - 2;
            for (int k = 0; k < 8; ++k) framed.push_back(static_cast<uint8_t>(n >> (8 * k)));
            framed.insert(framed.end(), b.begin() + 2, b.end());
            return framed;
        }
        return b;
    }
};

Bytes floats_le(const std::vector<float>& v) {
    Bytes out(v.size() * 4);
    std::memcpy(out.data(), v.data(), out.size());
    return out;
}

// An archive with one tensor "w" over storage data/0.
Bytes one_tensor_zip(const std::string& type, const Bytes& storage, int64_t numel, int64_t offset,
                     const Shape& shape, const std::vector<int64_t>& stride, int protocol = 2) {
    Bytes pkl = PickleBuilder(protocol).dict_of(
        [&](PickleBuilder& p) { p.tensor("w", type, "0", numel, offset, shape, stride); });
    return make_zip({{"a/data.pkl", pkl}, {"a/data/0", storage}, {"a/version", {'3', '\n'}}});
}

Bytes zip_with_pickle(const Bytes& pkl) { return make_zip({{"a/data.pkl", pkl}, {"a/version", {'3', '\n'}}}); }

sam::Checkpoint from_bytes(const Bytes& b, const std::string& name = "mem.pth") {
    return sam::Checkpoint::from_memory(std::make_shared<Bytes>(b), name);
}

std::vector<float> values(const Tensor& t) { return std::vector<float>(t.data(), t.data() + t.numel()); }

// ---- reading the fixtures ----

TEST_F(Checkpoint, ReadsTinyFp32AsViews) {
    sam::Checkpoint c = sam::Checkpoint::open(kTiny);
    EXPECT_EQ(c.records().size(), 174u);
    EXPECT_EQ(c.records().front().key, "image_encoder.pos_embed");
    EXPECT_EQ(c.dominant_dtype(), DType::F32);
    const TensorRecord& r = c.record("image_encoder.pos_embed");
    EXPECT_EQ(r.dtype, DType::F32);
    EXPECT_EQ(r.shape, (Shape{1, 64, 64, 32}));
    EXPECT_EQ(r.stride, (std::vector<int64_t>{131072, 2048, 32, 1}));
    EXPECT_EQ(r.storage_numel, 131072);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(r.storage_data) % 64, 0u);  // torch aligns payloads

    Tensor t = c.tensor("image_encoder.pos_embed", {1, 64, 64, 32});
    EXPECT_EQ(t.data(), reinterpret_cast<const float*>(r.storage_data));  // a view, not a copy
    EXPECT_EQ(c.tensor("image_encoder.patch_embed.proj.weight").shape(), (Shape{32, 3, 16, 16}));
    EXPECT_TRUE(c.contains("mask_decoder.iou_token.weight"));
    EXPECT_FALSE(c.contains("pixel_mean"));

    int64_t params = 0;
    for (const TensorRecord& rec : c.records()) params += shape_numel(rec.shape);
    EXPECT_EQ(c.parameter_count(), params);
    EXPECT_EQ(params * 4, 984038 - 31668 - 2);  // every storage byte is a parameter
}

TEST_F(Checkpoint, Fp16MatchesFp32WithinRounding) {
    sam::Checkpoint f32 = sam::Checkpoint::open(kTiny), f16 = sam::Checkpoint::open(kTinyFp16);
    EXPECT_EQ(f16.dominant_dtype(), DType::F16);
    ASSERT_EQ(f16.records().size(), f32.records().size());
    for (size_t i = 0; i < f32.records().size(); ++i) {
        const std::string& key = f32.records()[i].key;
        ASSERT_EQ(f16.records()[i].key, key);
        Tensor a = f32.tensor(key), b = f16.tensor(key, a.shape());
        for (int64_t k = 0; k < a.numel(); ++k)
            ASSERT_LE(std::fabs(a[k] - b[k]), 1e-3f * std::fabs(a[k]) + 6e-8f) << key << "[" << k << "]";
    }
}

// ---- writing ----

TEST_F(Checkpoint, RoundTripsInEveryDtype) {
    sam::Checkpoint src = sam::Checkpoint::open(kTiny), ref16 = sam::Checkpoint::open(kTinyFp16);
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (const TensorRecord& r : src.records()) tensors.emplace_back(r.key, src.tensor(r.key));

    for (DType dtype : {DType::F32, DType::F16, DType::BF16}) {
        SCOPED_TRACE(dtype_name(dtype));
        std::string path = file(std::string("rt_") + dtype_name(dtype) + ".pth");
        write_checkpoint(path, tensors, dtype, "rt");
        sam::Checkpoint c = sam::Checkpoint::open(path);
        ASSERT_EQ(c.records().size(), tensors.size());
        EXPECT_EQ(c.dominant_dtype(), dtype);
        for (size_t i = 0; i < tensors.size(); ++i) {
            const auto& [key, want] = tensors[i];
            const TensorRecord& r = c.records()[i];
            ASSERT_EQ(r.key, key);
            EXPECT_EQ(reinterpret_cast<uintptr_t>(r.storage_data) % 64, 0u) << key;
            Tensor got = c.tensor(key, want.shape());
            if (dtype == DType::F32) {
                EXPECT_EQ(got.data(), reinterpret_cast<const float*>(r.storage_data));
                ASSERT_EQ(values(got), values(want)) << key;
            } else if (dtype == DType::F16) {
                // Same rounding as torch's .half(): bit-identical to the fp16 fixture.
                ASSERT_EQ(values(got), values(ref16.tensor(key))) << key;
            } else {
                for (int64_t k = 0; k < got.numel(); ++k)
                    ASSERT_LE(std::fabs(got[k] - want[k]), std::ldexp(std::fabs(want[k]), -8)) << key;
            }
        }
    }
}

TEST_F(Checkpoint, WritesTheTorchLayout) {
    Tensor t({2, 3});
    for (int i = 0; i < 6; ++i) t[i] = static_cast<float>(i);
    std::string path = file("layout.pth");
    write_checkpoint(path, {{"a.weight", t}, {"b", Tensor({5})}}, DType::F32, "layout");
    Bytes b = read_bytes(path);
    ZipReader zip(b, path);
    std::vector<std::string> names;
    for (const ZipEntry& e : zip.entries()) {
        names.push_back(e.name);
        EXPECT_EQ(e.data_offset % 64, 0u) << e.name;
        auto p = zip.payload(e);
        EXPECT_EQ(crc32_update(0, p.data(), p.size()), e.crc32) << e.name;
    }
    EXPECT_EQ(names, (std::vector<std::string>{"layout/data.pkl", "layout/data/0", "layout/data/1", "layout/version"}));
    EXPECT_EQ(b[0], 'P');
    EXPECT_EQ(crc32_update(0, "123456789", 9), 0xCBF43926u);  // the standard check value
}

TEST_F(Checkpoint, ReadsZip64Fields) {
    StateDictPickler p;
    p.add("x", "FloatStorage", "0", 3, {3});
    Bytes zip = make_zip({{"z/data.pkl", p.finish()}, {"z/data/0", floats_le({1, 2, 3})}}, /*force_zip64=*/true);
    sam::Checkpoint c = from_bytes(zip);
    EXPECT_EQ(values(c.tensor("x", {3})), (std::vector<float>{1, 2, 3}));
}

// More than 4 GiB: offsets past 2^32 must use ZIP64, not wrap. Writes a 4.5 GB file (~40 s), so it
// is built only with -DSAM_LARGE_TESTS=ON; ReadsZip64Fields covers the same code on a small file.
#ifdef SAM_LARGE_TESTS
TEST_F(Checkpoint, LargeFileOver4GiB) {
    Tensor big = Tensor::empty({3, 1 << 27});  // 1.5 GiB
    for (int64_t i = 0; i < big.numel(); i += 4096) big[i] = static_cast<float>(i % 977);
    std::vector<std::pair<std::string, Tensor>> tensors = {{"a", big}, {"b", big}, {"c", big}, {"tail", Tensor({4})}};
    tensors[3].second[3] = 42.0f;
    std::string path = file("large.pth");
    write_checkpoint(path, tensors);
    sam::Checkpoint c = sam::Checkpoint::open(path);
    Tensor tail = c.tensor("tail", {4});
    EXPECT_EQ(tail[3], 42.0f);
    for (const char* key : {"a", "b", "c"}) {
        Tensor t = c.tensor(key, big.shape());
        for (int64_t i = 0; i < t.numel(); i += 4096) ASSERT_EQ(t[i], big[i]) << key << "[" << i << "]";
    }
}
#endif  // SAM_LARGE_TESTS

// ---- pickle dialects and layouts ----

TEST_F(Checkpoint, ReadsProtocol4AndStridedTensors) {
    // Storage 0..5 viewed as the transpose of a (3, 2) matrix: shape (2, 3), stride (1, 2).
    for (int protocol : {2, 4}) {
        Bytes zip = one_tensor_zip("FloatStorage", floats_le({0, 1, 2, 3, 4, 5}), 6, 0, {2, 3}, {1, 2}, protocol);
        sam::Checkpoint c = from_bytes(zip);
        EXPECT_EQ(values(c.tensor("w", {2, 3})), (std::vector<float>{0, 2, 4, 1, 3, 5})) << protocol;
    }
    // Half storage with an offset: elements 1.0, 2.0, -0.5, 65504 start at offset 1.
    Bytes halves = {0, 0, 0x00, 0x3c, 0x00, 0x40, 0x00, 0xb8, 0xff, 0x7b};
    sam::Checkpoint c = from_bytes(one_tensor_zip("HalfStorage", halves, 5, 1, {4}, {1}));
    EXPECT_EQ(values(c.tensor("w", {4})), (std::vector<float>{1.0f, 2.0f, -0.5f, 65504.0f}));
    Bytes bf = {0x80, 0x3f, 0xc0, 0xbf};  // 1.0, -1.5
    EXPECT_EQ(values(from_bytes(one_tensor_zip("BFloat16Storage", bf, 2, 0, {2}, {1})).tensor("w")),
              (std::vector<float>{1.0f, -1.5f}));
}

TEST_F(Checkpoint, UnusedKeys) {
    sam::Checkpoint c = sam::Checkpoint::open(kTiny);
    EXPECT_EQ(c.unused_keys().size(), c.records().size());
    c.tensor("image_encoder.pos_embed", {1, 64, 64, 32});
    c.tensor("mask_decoder.iou_token.weight");
    std::vector<std::string> unused = c.unused_keys();
    EXPECT_EQ(unused.size(), c.records().size() - 2);
    EXPECT_EQ(std::count(unused.begin(), unused.end(), "image_encoder.pos_embed"), 0);
    EXPECT_EQ(unused.front(), "image_encoder.patch_embed.proj.weight");
}

// ---- errors: each names the file and what is wrong ----

TEST_F(Checkpoint, ErrorNotAZip) {
    Bytes noise(4096);
    std::mt19937 rng(7);
    for (auto& x : noise) x = static_cast<uint8_t>(rng());
    write_bytes(file("noise.pth"), noise);
    expect_error([&] { sam::Checkpoint::open(file("noise.pth")); }, {file("noise.pth"), "not a zip archive"});
    std::string text = "this is a text file, not a checkpoint\n";
    write_bytes(file("text.pth"), Bytes(text.begin(), text.end()));
    expect_error([&] { sam::Checkpoint::open(file("text.pth")); }, {file("text.pth"), "not a zip archive"});
    write_bytes(file("empty.pth"), {});
    expect_error([&] { sam::Checkpoint::open(file("empty.pth")); }, {file("empty.pth"), "empty file"});
    expect_error([&] { sam::Checkpoint::open(file("absent.pth")); }, {file("absent.pth"), "cannot open"});
}

TEST_F(Checkpoint, ErrorLegacyFormat) {
    // Protocol-2 pickle of the magic number 0x1950a86a20f9469cfc6c, then more pickle.
    const uint8_t magic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
    Bytes legacy(1000, 0x2e);
    std::copy(std::begin(magic), std::end(magic), legacy.begin());
    write_bytes(file("legacy.pth"), legacy);
    expect_error([&] { sam::Checkpoint::open(file("legacy.pth")); },
                 {file("legacy.pth"), "legacy (pre-1.6) torch format",
                  "torch.save(..., _use_new_zipfile_serialization=True)"});
}

TEST_F(Checkpoint, ErrorTruncatedNeverCrashes) {
    Bytes full = read_bytes(kTiny);
    std::vector<size_t> cuts = {1, 10, 29, 64, 1000, 31700, 500000, full.size() / 2};
    for (size_t tail = 1; tail < 200; tail += 7) cuts.push_back(full.size() - tail);
    for (size_t cut : cuts) {
        std::string path = file("cut_" + std::to_string(cut) + ".pth");
        write_bytes(path, Bytes(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(cut)));
        expect_error([&] { sam::Checkpoint::open(path); }, {path});
    }
    std::string path = file("cut_1000.pth");
    expect_error([&] { sam::Checkpoint::open(path); }, {path, "truncated zip archive"});
}

TEST_F(Checkpoint, ErrorCompressedEntry) {
    // Mark sam_tiny/data/0 as deflated in its central directory entry (method at offset 10).
    Bytes b = read_bytes(kTiny);
    const std::string name = "sam_tiny/data/0";
    bool patched = false;
    for (size_t i = 0; i + 46 + name.size() <= b.size(); ++i) {
        if (b[i] == 'P' && b[i + 1] == 'K' && b[i + 2] == 1 && b[i + 3] == 2 && b[i + 28] == name.size() &&
            std::memcmp(&b[i + 46], name.data(), name.size()) == 0) {
            b[i + 10] = 8;
            patched = true;
        }
    }
    ASSERT_TRUE(patched);
    write_bytes(file("deflated.pth"), b);
    expect_error([&] { sam::Checkpoint::open(file("deflated.pth")); },
                 {file("deflated.pth"), name, "compressed zip entry (method 8, deflate)"});
}

TEST_F(Checkpoint, ErrorUnknownOpcode) {
    Bytes pkl = {0x80, 0x02, '}', 0xff, '.'};
    write_bytes(file("opcode.pth"), zip_with_pickle(pkl));
    expect_error([&] { sam::Checkpoint::open(file("opcode.pth")); },
                 {file("opcode.pth"), "a/data.pkl", "unknown pickle opcode 0xff at offset 3"});
}

TEST_F(Checkpoint, ErrorUnknownGlobal) {
    for (int protocol : {2, 4}) {
        Bytes pkl = PickleBuilder(protocol).global("os", "system").str("echo hi").raw({0x85, 'R', '.'}).b;
        write_bytes(file("global.pth"), zip_with_pickle(pkl));
        expect_error([&] { sam::Checkpoint::open(file("global.pth")); }, {file("global.pth"), "unknown global 'os.system'"});
    }
}

TEST_F(Checkpoint, ErrorMissingKey) {
    sam::Checkpoint c = sam::Checkpoint::open(kTiny);
    expect_error([&] { c.record("image_encoder.no_such.weight"); },
                 {kTiny, "image_encoder.no_such.weight", "missing key"});
    expect_error([&] { c.tensor("image_encoder.no_such.weight", {1}); }, {kTiny, "missing key"});
}

TEST_F(Checkpoint, ErrorShapeMismatch) {
    sam::Checkpoint c = sam::Checkpoint::open(kTiny);
    expect_error([&] { c.tensor("image_encoder.pos_embed", {1, 64, 64, 768}); },
                 {kTiny, "image_encoder.pos_embed", "shape (1, 64, 64, 32), expected (1, 64, 64, 768)"});
    EXPECT_EQ(c.unused_keys().size(), c.records().size());  // a failed fetch does not count as use
}

TEST_F(Checkpoint, ErrorUnsupportedDtype) {
    for (const char* type : {"DoubleStorage", "LongStorage"}) {
        write_bytes(file("dtype.pth"), one_tensor_zip(type, Bytes(16), 2, 0, {2}, {1}));
        expect_error([&] { sam::Checkpoint::open(file("dtype.pth")); },
                     {file("dtype.pth"), ": w: ", std::string("unsupported dtype torch.") + type});
    }
}

TEST_F(Checkpoint, ErrorStorageTooSmall) {
    write_bytes(file("small.pth"), one_tensor_zip("FloatStorage", floats_le({1, 2, 3, 4}), 4, 0, {2, 3}, {3, 1}));
    expect_error([&] { sam::Checkpoint::open(file("small.pth")); },
                 {file("small.pth"), ": w: ", "more than its storage data/0 (4)"});
    // Fewer elements than the storage, but the stride reaches past it.
    write_bytes(file("stride.pth"), one_tensor_zip("FloatStorage", floats_le({1, 2, 3, 4}), 4, 1, {2, 2}, {2, 1}));
    expect_error([&] { sam::Checkpoint::open(file("stride.pth")); }, {file("stride.pth"), ": w: ", "too small"});
    // The pickle declares more elements than the file holds.
    write_bytes(file("short.pth"), one_tensor_zip("FloatStorage", floats_le({1, 2}), 4, 0, {4}, {1}));
    expect_error([&] { sam::Checkpoint::open(file("short.pth")); }, {file("short.pth"), ": w: ", "holds 8 bytes"});
}

TEST_F(Checkpoint, ErrorMalformedPickleNeverCrashes) {
    // Every prefix cut and many single-byte corruptions of the real pickle: errors, never crashes.
    Bytes full = read_bytes(kTiny);
    ZipReader zip(full, kTiny);
    auto pkl_span = zip.payload(*zip.find("sam_tiny/data.pkl"));
    Bytes pkl(pkl_span.begin(), pkl_span.end());
    for (size_t cut = 0; cut < pkl.size(); cut += 97)
        EXPECT_THROW(from_bytes(zip_with_pickle(Bytes(pkl.begin(), pkl.begin() + static_cast<std::ptrdiff_t>(cut)))),
                     CheckpointError);
    std::mt19937 rng(11);
    for (int trial = 0; trial < 300; ++trial) {
        Bytes bad = pkl;
        bad[rng() % bad.size()] = static_cast<uint8_t>(rng());
        try {
            from_bytes(zip_with_pickle(bad));
        } catch (const CheckpointError&) {
        }
    }
}

// ---- limits against pickles that ask for far more than their size ----

// Pickle bytes (protocol 2) appended by hand.
struct RawPickle {
    Bytes b = {0x80, 0x02};
    RawPickle& op(std::initializer_list<uint8_t> ops) {
        b.insert(b.end(), ops);
        return *this;
    }
    RawPickle& text(const std::string& s) {
        b.insert(b.end(), s.begin(), s.end());
        return *this;
    }
    RawPickle& str(const std::string& s) {  // BINUNICODE
        op({'X'});
        for (int k = 0; k < 4; ++k) b.push_back(static_cast<uint8_t>(s.size() >> (8 * k)));
        return text(s);
    }
    RawPickle& put(uint8_t index) { return op({'q', index}); }  // BINPUT
    RawPickle& get(uint8_t index) { return op({'h', index}); }  // BINGET
    RawPickle& int32(int32_t v) {  // BININT
        op({'J'});
        for (int k = 0; k < 4; ++k) b.push_back(static_cast<uint8_t>(static_cast<uint32_t>(v) >> (8 * k)));
        return *this;
    }
    // memo 0: _rebuild_tensor_v2; memo 1: the storage ('storage', FloatStorage, key, 'cpu', numel).
    RawPickle& rebuild_and_storage(const std::string& storage_key, int32_t numel = 1) {
        text("ctorch._utils\n_rebuild_tensor_v2\n").put(0);
        op({'('}).str("storage").text("ctorch\nFloatStorage\n").str(storage_key).str("cpu").int32(numel).op({'t', 'Q'});
        return put(1);
    }
    // _rebuild_tensor_v2(storage, 0, memo[size], memo[stride], False, {})
    RawPickle& tensor(uint8_t size, uint8_t stride) {
        return get(0).op({'('}).get(1).op({'K', 0}).get(size).get(stride).op({0x89, '}', 't', 'R'});
    }
};

// A memoised tuple of 10^6 ints passed as size and stride to 10^4 REDUCE calls: 2 MB of pickle
// that would copy 2 x 10^10 ints (160 GB) if each call copied the tuple.
TEST_F(Checkpoint, ErrorMemoisedHugeTupleReusedByManyReduces) {
    RawPickle p;
    p.rebuild_and_storage("0").op({'('});
    for (int i = 0; i < 1000000; ++i) p.op({'K', 1});
    p.op({'t'}).put(2);
    for (int i = 0; i < 10000; ++i) p.tensor(2, 2);
    p.op({'.'});
    ASSERT_GT(p.b.size(), 2000000u);
    write_bytes(file("tuple.pth"), make_zip({{"a/data.pkl", p.b}, {"a/data/0", Bytes(4)}}));
    expect_error([&] { sam::Checkpoint::open(file("tuple.pth")); },
                 {file("tuple.pth"), "a/data.pkl", "tensor size has 1000000 dimensions, more than 8"});
}

// A memoised 1 MB storage key copied into every storage a persistent id creates.
TEST_F(Checkpoint, ErrorMemoisedHugeStringReusedIsBoundedBySize) {
    RawPickle p;
    p.str(std::string(1 << 20, 'k')).put(3).text("ctorch\nFloatStorage\n").put(4).str("storage").put(5).str("cpu").put(6);
    for (int i = 0; i < 10000; ++i) p.op({'('}).get(5).get(4).get(3).get(6).op({'K', 1, 't', 'Q'});
    p.op({'.'});
    expect_error([&] { from_bytes(zip_with_pickle(p.b), "string.pth"); },
                 {"string.pth", "a/data.pkl", "more copying than its", "allow"});
}

TEST_F(Checkpoint, ErrorTooManyTensors) {
    RawPickle p;
    p.rebuild_and_storage("0").op({'K', 1, 0x85}).put(2);  // size and stride (1,)
    for (int i = 0; i < 65537; ++i) p.tensor(2, 2);
    p.op({'.'});
    expect_error([&] { from_bytes(make_zip({{"a/data.pkl", p.b}, {"a/data/0", Bytes(4)}}), "many.pth"); },
                 {"many.pth", "a/data.pkl", "more than 65536 tensors"});
}

// Many keys over one storage: the tensors may describe at most 8 times the file's bytes.
TEST_F(Checkpoint, ErrorManyKeysSharingOneStorage) {
    const int32_t n = 1 << 16;  // floats in the one storage (256 KiB)
    RawPickle p;
    p.rebuild_and_storage("0", n).int32(n).op({0x85}).put(2).op({'K', 1, 0x85}).put(3);  // size (n,), stride (1,)
    p.text("ccollections\nOrderedDict\n").op({')', 'R', '('});
    for (int i = 0; i < 40; ++i) p.str("w" + std::to_string(i)).tensor(2, 3);
    p.op({'u', '.'});
    expect_error([&] { from_bytes(make_zip({{"a/data.pkl", p.b}, {"a/data/0", Bytes(4 * n)}}), "shared.pth"); },
                 {"shared.pth", "more than 8 times the file's"});
}

}  // namespace checkpoint_test
