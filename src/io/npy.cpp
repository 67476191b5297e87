// .npy reader/writer. Hand-written: the format is a 10-line header plus raw bytes, and no
// Debian library reads it from C++ without pulling in Python.
//
// The header is a Python dict literal, {'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), },
// parsed here as exactly that grammar: hostile files get an error naming the file and field,
// never a size computed from a negative or overflowing dimension.
#include "sam/npy.h"

#include <cstring>
#include <fstream>
#include <iterator>
#include <string_view>

#include "io/atomic_file.h"
#include "io/half.h"
#include "sam/error.h"

namespace sam {
namespace {

// The three fields of the header dict.
struct NpyHeader {
    std::string descr;
    bool fortran_order = false;
    Shape shape;
};

// Recursive-descent reader of the header literal. Every failure names the file and the field.
class HeaderParser {
  public:
    HeaderParser(std::string_view text, const std::string& name) : s_(text), name_(name) {}

    NpyHeader parse() {
        NpyHeader h;
        bool seen_descr = false, seen_order = false, seen_shape = false;
        expect('{', "header");
        while (!eat('}')) {
            const std::string key = string_literal("header key");
            expect(':', ("field '" + key + "'").c_str());
            if (key == "descr") {
                if (seen_descr) fail("duplicate field 'descr'");
                seen_descr = true;
                if (peek() != '\'' && peek() != '"') fail("field 'descr': structured dtypes are not supported");
                h.descr = string_literal("field 'descr'");
            } else if (key == "fortran_order") {
                if (seen_order) fail("duplicate field 'fortran_order'");
                seen_order = true;
                h.fortran_order = boolean("field 'fortran_order'");
            } else if (key == "shape") {
                if (seen_shape) fail("duplicate field 'shape'");
                seen_shape = true;
                h.shape = shape();
            } else {
                fail("unexpected field '" + key + "' (a .npy header holds descr, fortran_order and shape)");
            }
            if (!eat(',')) {
                expect('}', "header");
                break;
            }
        }
        skip_space();
        if (pos_ != s_.size()) fail("text after the header dict at byte " + std::to_string(pos_));
        if (!seen_descr) fail("no field 'descr'");
        if (!seen_order) fail("no field 'fortran_order'");
        if (!seen_shape) fail("no field 'shape'");
        return h;
    }

  private:
    [[noreturn]] void fail(const std::string& what) const { throw Error(name_ + ": npy header: " + what); }
    void skip_space() {
        while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
            ++pos_;
    }
    char peek() {
        skip_space();
        return pos_ < s_.size() ? s_[pos_] : '\0';
    }
    bool eat(char c) {
        if (peek() != c || pos_ >= s_.size()) return false;
        ++pos_;
        return true;
    }
    void expect(char c, const char* where) {
        if (!eat(c)) fail(std::string(where) + ": expected '" + c + "' at byte " + std::to_string(pos_));
    }
    std::string string_literal(const char* where) {
        const char quote = peek();
        if (quote != '\'' && quote != '"') fail(std::string(where) + ": expected a string at byte " + std::to_string(pos_));
        const size_t end = s_.find(quote, pos_ + 1);
        if (end == std::string_view::npos) fail(std::string(where) + ": unterminated string");
        std::string out(s_.substr(pos_ + 1, end - pos_ - 1));
        pos_ = end + 1;
        return out;
    }
    bool boolean(const char* where) {
        skip_space();
        for (std::string_view word : {"True", "False"})
            if (s_.substr(pos_, word.size()) == word) {
                pos_ += word.size();
                return word == "True";
            }
        fail(std::string(where) + ": expected True or False");
    }
    // A tuple of non-negative integers: (), (5,), (1, 2), (1, 2,).
    Shape shape() {
        Shape dims;
        expect('(', "field 'shape'");
        while (!eat(')')) {
            if (dims.size() >= kNpyMaxDims)
                fail("field 'shape': more than " + std::to_string(kNpyMaxDims) + " dimensions");
            dims.push_back(dimension(dims.size()));
            if (!eat(',')) {
                expect(')', "field 'shape'");
                break;
            }
        }
        return dims;
    }
    int64_t dimension(size_t index) {
        const std::string where = "field 'shape': dimension " + std::to_string(index);
        skip_space();
        if (pos_ < s_.size() && s_[pos_] == '-') fail(where + " is negative");
        if (pos_ >= s_.size() || s_[pos_] < '0' || s_[pos_] > '9') fail(where + " is not an integer");
        int64_t v = 0;
        for (; pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9'; ++pos_)
            if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, s_[pos_] - '0', &v))
                fail(where + " does not fit 64 bits");
        if (pos_ < s_.size() && s_[pos_] == 'L') ++pos_;  // Python 2's long literal
        return v;
    }

    std::string_view s_;
    const std::string& name_;
    size_t pos_ = 0;
};

// Bytes per element of a plain little-endian descr ("<f4", "|u1", "<i8", "|b1"); 0 if unsupported.
size_t item_size(const std::string& descr) {
    if (descr.size() < 3 || (descr[0] != '<' && descr[0] != '|' && descr[0] != '=')) return 0;
    if (std::string_view("fiubc").find(descr[1]) == std::string_view::npos) return 0;
    const std::string digits = descr.substr(2);
    for (const char* ok : {"1", "2", "4", "8", "16"})
        if (digits == ok) return static_cast<size_t>(std::atoi(ok));
    return 0;
}

uint32_t le_u32(const uint8_t* p, int n) {
    uint32_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

}  // namespace

NpyArray decode_npy(const uint8_t* data, size_t size, const std::string& name) {
    if (size < 10 || std::memcmp(data, "\x93NUMPY", 6) != 0) throw Error(name + ": not a .npy file");
    const int major = data[6];
    if (major < 1 || major > 3) throw Error(name + ": unsupported .npy format version " + std::to_string(major));
    const size_t len_bytes = major == 1 ? 2 : 4;
    if (size < 8 + len_bytes) throw Error(name + ": truncated npy header");
    const size_t header_len = le_u32(data + 8, static_cast<int>(len_bytes));
    const size_t header_start = 8 + len_bytes;
    if (header_len > size - header_start)
        throw Error(name + ": truncated npy header (" + std::to_string(header_len) + " bytes declared, " +
                    std::to_string(size - header_start) + " in the file)");
    const std::string_view text(reinterpret_cast<const char*>(data) + header_start, header_len);
    const NpyHeader h = HeaderParser(text, name).parse();

    const size_t isize = item_size(h.descr);
    if (isize == 0) throw Error(name + ": unsupported npy dtype '" + h.descr + "'");
    if (h.fortran_order) throw Error(name + ": Fortran-order arrays are not supported");
    // numel x item size must be exactly what follows the header. As NumPy, the product of the
    // non-zero dimensions must fit a signed 64-bit size even when another dimension is 0: tensors
    // multiply dimensions left to right.
    int64_t nonzero_bytes = static_cast<int64_t>(isize);
    bool empty = false;
    for (int64_t d : h.shape) {
        if (d == 0) {
            empty = true;
        } else if (__builtin_mul_overflow(nonzero_bytes, d, &nonzero_bytes)) {
            throw Error(name + ": npy shape " + shape_str(h.shape) + " of " + h.descr + " overflows 64 bits");
        }
    }
    const uint64_t nbytes = empty ? 0 : static_cast<uint64_t>(nonzero_bytes);
    const size_t data_start = header_start + header_len, available = size - data_start;
    if (nbytes > available)
        throw Error(name + ": truncated npy data (shape " + shape_str(h.shape) + " of " + h.descr + " expected " +
                    std::to_string(nbytes) + " bytes, " + std::to_string(available) + " present)");
    if (nbytes < available)
        throw Error(name + ": npy data is " + std::to_string(available) + " bytes, but shape " + shape_str(h.shape) +
                    " of " + h.descr + " holds " + std::to_string(nbytes));

    NpyArray a;
    a.descr = h.descr;
    a.shape = h.shape;
    a.bytes.assign(data + data_start, data + size);
    return a;
}

NpyArray read_npy(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot open");
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) throw Error(path + ": read error");
    return decode_npy(bytes.data(), bytes.size(), path);
}

namespace {

// float32 from an array of <f4, <f8 or <f2 (sizes already checked against the shape).
Tensor to_float(const NpyArray& a, const std::string& name) {
    Tensor t = Tensor::empty(a.shape);
    const int64_t n = t.numel();
    const uint8_t* src = a.bytes.data();
    if (a.descr == "<f4") {
        if (n) std::memcpy(t.data(), src, static_cast<size_t>(n) * 4);
    } else if (a.descr == "<f8") {
        for (int64_t i = 0; i < n; ++i) {
            double d;
            std::memcpy(&d, src + 8 * i, 8);
            t[i] = static_cast<float>(d);
        }
    } else if (a.descr == "<f2") {
        for (int64_t i = 0; i < n; ++i) {
            uint16_t h;
            std::memcpy(&h, src + 2 * i, 2);
            t[i] = half_to_float(h);
        }
    } else {
        throw Error(name + ": expected a float array, got dtype " + a.descr);
    }
    return t;
}

}  // namespace

Tensor load_npy(const std::string& path) { return to_float(read_npy(path), path); }

Tensor decode_npy_float(const uint8_t* data, size_t size, const std::string& name) {
    return to_float(decode_npy(data, size, name), name);
}

void save_npy(const std::string& path, const NpyArray& a) {
    std::string header = "{'descr': '" + a.descr + "', 'fortran_order': False, 'shape': (";
    for (size_t i = 0; i < a.shape.size(); ++i) header += std::to_string(a.shape[i]) + (a.shape.size() == 1 || i + 1 < a.shape.size() ? ", " : "");
    header += "), }";
    size_t total = 10 + header.size() + 1;
    header.append((64 - total % 64) % 64, ' ');
    header += '\n';
    write_file_atomic(path, [&](std::ostream& out) {
        out.write("\x93NUMPY\x01\x00", 8);
        uint16_t len = static_cast<uint16_t>(header.size());
        char lb[2] = {static_cast<char>(len & 0xff), static_cast<char>(len >> 8)};
        out.write(lb, 2);
        out.write(header.data(), static_cast<std::streamsize>(header.size()));
        out.write(reinterpret_cast<const char*>(a.bytes.data()), static_cast<std::streamsize>(a.bytes.size()));
    });
}

void save_npy(const std::string& path, const Tensor& t) {
    NpyArray a;
    a.descr = "<f4";
    a.shape = t.shape();
    a.bytes.resize(static_cast<size_t>(t.numel()) * 4);
    if (t.numel()) std::memcpy(a.bytes.data(), t.data(), a.bytes.size());
    save_npy(path, a);
}

}  // namespace sam
