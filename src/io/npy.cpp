// .npy reader/writer. Hand-written: the format is a 10-line header plus raw bytes, and no
// Debian library reads it from C++ without pulling in Python.
#include "sam/npy.h"

#include <cstring>
#include <fstream>
#include <sstream>

#include "io/atomic_file.h"
#include "io/half.h"
#include "sam/error.h"

namespace sam {
namespace {

std::string header_value(const std::string& header, const std::string& key, const std::string& path) {
    size_t k = header.find("'" + key + "'");
    if (k == std::string::npos) throw Error(path + ": npy header has no '" + key + "'");
    size_t colon = header.find(':', k);
    if (colon == std::string::npos) throw Error(path + ": malformed npy header");
    return header.substr(colon + 1);
}

}  // namespace

NpyArray read_npy(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot open");
    char magic[8];
    if (!in.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0)
        throw Error(path + ": not a .npy file");
    uint32_t header_len = 0;
    if (magic[6] == 1) {
        uint8_t b[2];
        in.read(reinterpret_cast<char*>(b), 2);
        header_len = b[0] | (b[1] << 8);
    } else {
        uint8_t b[4];
        in.read(reinterpret_cast<char*>(b), 4);
        header_len = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<uint32_t>(b[3]) << 24);
    }
    if (!in || header_len > (1u << 20)) throw Error(path + ": truncated npy header");
    std::string header(header_len, '\0');
    if (!in.read(header.data(), header_len)) throw Error(path + ": truncated npy header");

    NpyArray a;
    std::string d = header_value(header, "descr", path);
    size_t q0 = d.find('\''), q1 = d.find('\'', q0 + 1);
    if (q0 == std::string::npos || q1 == std::string::npos) throw Error(path + ": malformed npy descr");
    a.descr = d.substr(q0 + 1, q1 - q0 - 1);
    std::string fo = header_value(header, "fortran_order", path);
    if (fo.find("True") < fo.find(',')) throw Error(path + ": Fortran-order arrays are not supported");
    std::string s = header_value(header, "shape", path);
    size_t p0 = s.find('('), p1 = s.find(')');
    if (p0 == std::string::npos || p1 == std::string::npos) throw Error(path + ": malformed npy shape");
    std::stringstream dims(s.substr(p0 + 1, p1 - p0 - 1));
    std::string item;
    while (std::getline(dims, item, ','))
        if (item.find_first_not_of(" ") != std::string::npos) a.shape.push_back(std::stoll(item));

    size_t item_size = 0;
    if (a.descr.size() >= 3) item_size = static_cast<size_t>(std::stoi(a.descr.substr(2)));
    if (item_size == 0 || a.descr[0] == '>') throw Error(path + ": unsupported npy dtype " + a.descr);
    a.bytes.resize(static_cast<size_t>(shape_numel(a.shape)) * item_size);
    if (!in.read(reinterpret_cast<char*>(a.bytes.data()), static_cast<std::streamsize>(a.bytes.size())))
        throw Error(path + ": truncated npy data (expected " + std::to_string(a.bytes.size()) + " bytes)");
    return a;
}

Tensor load_npy(const std::string& path) {
    NpyArray a = read_npy(path);
    Tensor t = Tensor::empty(a.shape);
    int64_t n = t.numel();
    if (a.descr == "<f4") {
        std::memcpy(t.data(), a.bytes.data(), a.bytes.size());
    } else if (a.descr == "<f8") {
        const double* src = reinterpret_cast<const double*>(a.bytes.data());
        for (int64_t i = 0; i < n; ++i) t[i] = static_cast<float>(src[i]);
    } else if (a.descr == "<f2") {
        const uint16_t* src = reinterpret_cast<const uint16_t*>(a.bytes.data());
        for (int64_t i = 0; i < n; ++i) t[i] = half_to_float(src[i]);
    } else {
        throw Error(path + ": expected a float array, got dtype " + a.descr);
    }
    return t;
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
