#include "io/zip_reader.h"

#include <cstring>

#include <zlib.h>

#include "sam/error.h"

namespace sam {

namespace {

constexpr uint32_t kLocalHeaderSig = 0x04034b50;    // "PK\3\4"
constexpr uint32_t kCentralHeaderSig = 0x02014b50;  // "PK\1\2"
constexpr uint32_t kEndSig = 0x06054b50;            // "PK\5\6"
constexpr uint32_t kZip64EndSig = 0x06064b50;       // "PK\6\6"
constexpr uint32_t kZip64LocatorSig = 0x07064b50;   // "PK\6\7"
constexpr uint32_t kDataDescriptorSig = 0x08074b50; // "PK\7\8"
constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr uint32_t kFieldAlignment = 64;            // torch aligns every payload to 64 bytes
constexpr uint32_t kMax32 = 0xFFFFFFFFu;
constexpr uint16_t kMax16 = 0xFFFFu;

// Little-endian field access with bounds checks; every failure names the archive.
class Bytes {
  public:
    Bytes(std::span<const uint8_t> b, const std::string& path) : b_(b), path_(path) {}
    bool fits(uint64_t pos, uint64_t n) const { return pos <= b_.size() && n <= b_.size() - pos; }
    uint64_t get(uint64_t pos, int n, const char* what) const {
        if (!fits(pos, static_cast<uint64_t>(n)))
            throw CheckpointError(path_, "", std::string("truncated zip archive: ") + what + " runs past the end of the file");
        uint64_t v = 0;
        for (int i = n - 1; i >= 0; --i) v = (v << 8) | b_[pos + static_cast<uint64_t>(i)];
        return v;
    }
    uint16_t u16(uint64_t pos, const char* what) const { return static_cast<uint16_t>(get(pos, 2, what)); }
    uint32_t u32(uint64_t pos, const char* what) const { return static_cast<uint32_t>(get(pos, 4, what)); }
    uint64_t u64(uint64_t pos, const char* what) const { return get(pos, 8, what); }

  private:
    std::span<const uint8_t> b_;
    const std::string& path_;
};

}  // namespace

ZipReader::ZipReader(std::span<const uint8_t> bytes, std::string path) : bytes_(bytes), path_(std::move(path)) {
    read_directory();
}

const ZipEntry* ZipReader::find(std::string_view name) const {
    auto it = index_.find(std::string(name));
    return it == index_.end() ? nullptr : &entries_[it->second];
}

void ZipReader::read_directory() {
    Bytes b(bytes_, path_);
    const uint64_t size = bytes_.size();
    bool starts_like_zip = size >= 4 && b.u32(0, "signature") == kLocalHeaderSig;

    // Find the end of central directory record: 22 bytes plus a comment of up to 64 KiB.
    uint64_t eocd = UINT64_MAX;
    if (size >= 22) {
        uint64_t lowest = size - 22 > kMax16 ? size - 22 - kMax16 : 0;
        for (uint64_t p = size - 22 + 1; p-- > lowest;) {
            if (b.u32(p, "end record") == kEndSig && p + 22 + b.u16(p + 20, "end record") <= size) {
                eocd = p;
                break;
            }
        }
    }
    if (eocd == UINT64_MAX)
        throw CheckpointError(path_, "", starts_like_zip
                                             ? "truncated zip archive: no end of central directory record"
                                             : "not a zip archive (torch.save checkpoints are zip files)");

    uint64_t count = b.u16(eocd + 10, "end record");
    uint64_t cd_size = b.u32(eocd + 12, "end record");
    uint64_t cd_offset = b.u32(eocd + 16, "end record");
    // A ZIP64 locator right before the classic record points at the 64-bit end record.
    if (eocd >= 20 && b.u32(eocd - 20, "zip64 locator") == kZip64LocatorSig) {
        uint64_t z = b.u64(eocd - 20 + 8, "zip64 locator");
        if (!b.fits(z, 56) || z > eocd - 20 || b.u32(z, "zip64 end record") != kZip64EndSig)
            throw CheckpointError(path_, "", "corrupt zip archive: bad ZIP64 end of central directory record");
        count = b.u64(z + 32, "zip64 end record");
        cd_size = b.u64(z + 40, "zip64 end record");
        cd_offset = b.u64(z + 48, "zip64 end record");
    }
    if (!b.fits(cd_offset, cd_size) || cd_offset + cd_size > eocd)
        throw CheckpointError(path_, "", "truncated zip archive: central directory at " + std::to_string(cd_offset) +
                                             " (+" + std::to_string(cd_size) + " bytes) lies outside the file");
    if (count > cd_size / 46)
        throw CheckpointError(path_, "", "corrupt zip archive: " + std::to_string(count) +
                                             " entries cannot fit in a central directory of " +
                                             std::to_string(cd_size) + " bytes");

    entries_.reserve(count);
    uint64_t pos = cd_offset;
    for (uint64_t i = 0; i < count; ++i) {
        ZipEntry e = read_central_entry(pos);
        if (pos > cd_offset + cd_size)
            throw CheckpointError(path_, e.name, "corrupt zip archive: central directory entry overruns the directory");
        if (!index_.emplace(e.name, entries_.size()).second)
            throw CheckpointError(path_, e.name, "corrupt zip archive: duplicate entry");
        entries_.push_back(std::move(e));
    }
}

ZipEntry ZipReader::read_central_entry(uint64_t& pos) const {
    Bytes b(bytes_, path_);
    if (b.u32(pos, "central directory") != kCentralHeaderSig)
        throw CheckpointError(path_, "", "corrupt zip archive: bad central directory entry at offset " + std::to_string(pos));
    uint16_t flags = b.u16(pos + 8, "central directory");
    uint16_t method = b.u16(pos + 10, "central directory");
    ZipEntry e;
    e.crc32 = b.u32(pos + 16, "central directory");
    uint64_t csize = b.u32(pos + 20, "central directory");
    uint64_t usize = b.u32(pos + 24, "central directory");
    uint16_t name_len = b.u16(pos + 28, "central directory");
    uint16_t extra_len = b.u16(pos + 30, "central directory");
    uint16_t comment_len = b.u16(pos + 32, "central directory");
    uint64_t local = b.u32(pos + 42, "central directory");
    if (!b.fits(pos + 46, uint64_t{name_len} + extra_len + comment_len))
        throw CheckpointError(path_, "", "truncated zip archive: central directory entry runs past the end of the file");
    e.name.assign(reinterpret_cast<const char*>(bytes_.data() + pos + 46), name_len);

    // ZIP64 extra field: 64-bit values, in this order, for each 32-bit field saturated at 0xFFFFFFFF.
    uint64_t x = pos + 46 + name_len, x_end = x + extra_len;
    while (x + 4 <= x_end) {
        uint16_t id = b.u16(x, "extra field"), len = b.u16(x + 2, "extra field");
        if (x + 4 + len > x_end) throw CheckpointError(path_, e.name, "corrupt zip archive: extra field overruns its entry");
        if (id == kZip64ExtraId) {
            uint64_t v = x + 4, v_end = v + len;
            auto take = [&](uint64_t& field) {
                if (field != kMax32) return;
                if (v + 8 > v_end) throw CheckpointError(path_, e.name, "corrupt zip archive: ZIP64 extra field too short");
                field = b.u64(v, "zip64 extra field");
                v += 8;
            };
            take(usize);
            take(csize);
            take(local);
        }
        x += 4 + uint64_t{len};
    }
    pos = x_end + comment_len;

    if (flags & 1u) throw CheckpointError(path_, e.name, "encrypted zip entries are not supported");
    if (method != 0)
        throw CheckpointError(path_, e.name, "compressed zip entry (method " + std::to_string(method) +
                                                 (method == 8 ? ", deflate" : "") +
                                                 "); torch.save writes stored (uncompressed) entries only, "
                                                 "re-save the checkpoint with torch.save");
    if (csize != usize)
        throw CheckpointError(path_, e.name, "corrupt zip archive: stored entry with compressed size " +
                                                 std::to_string(csize) + " != size " + std::to_string(usize));
    e.size = usize;
    e.data_offset = data_offset(e, local);
    return e;
}

uint64_t ZipReader::data_offset(const ZipEntry& e, uint64_t local) const {
    Bytes b(bytes_, path_);
    if (!b.fits(local, 30) || b.u32(local, "local header") != kLocalHeaderSig)
        throw CheckpointError(path_, e.name, "corrupt or truncated zip archive: no local header at offset " + std::to_string(local));
    uint64_t start = local + 30 + b.u16(local + 26, "local header") + b.u16(local + 28, "local header");
    if (!b.fits(start, e.size))
        throw CheckpointError(path_, e.name, "truncated zip archive: payload of " + std::to_string(e.size) +
                                                 " bytes at offset " + std::to_string(start) +
                                                 " runs past the end of the file (" + std::to_string(bytes_.size()) + " bytes)");
    return start;
}

// ---- writing ----

void ZipWriter::put(const void* data, size_t n) {
    out_.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
    pos_ += n;
}
void ZipWriter::put16(uint32_t v) {
    uint8_t b[2] = {static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8)};
    put(b, 2);
}
void ZipWriter::put32(uint64_t v) {
    uint8_t b[4];
    for (int i = 0; i < 4; ++i) b[i] = static_cast<uint8_t>(v >> (8 * i));
    put(b, 4);
}
void ZipWriter::put64(uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(v >> (8 * i));
    put(b, 8);
}

void ZipWriter::begin_entry(const std::string& name, uint64_t size) {
    if (in_entry_) throw Error("zip writer: entry " + current_.name + " not finished");
    if (name.size() > kMax16) throw Error("zip writer: entry name too long: " + name);
    current_ = {name, pos_, size, 0};
    current_written_ = 0;
    in_entry_ = true;

    // Local header: sizes and CRC follow in a data descriptor (general purpose flag bit 3), as
    // torch writes them. A payload of 4 GiB or more also gets a ZIP64 extra field.
    bool zip64 = big(size);
    uint64_t zip64_len = zip64 ? 20 : 0;
    uint64_t start = pos_ + 30 + name.size() + zip64_len + 4;
    uint64_t pad = (kFieldAlignment - start % kFieldAlignment) % kFieldAlignment;
    put32(kLocalHeaderSig);
    put16(zip64 ? 45 : 0);   // version needed
    put16(0x0808);           // data descriptor follows; names are UTF-8
    put16(0);                // stored
    put16(0);                // time
    put16(0);                // date
    put32(0);                // crc (in the data descriptor)
    put32(zip64 ? kMax32 : 0);
    put32(zip64 ? kMax32 : 0);
    put16(static_cast<uint32_t>(name.size()));
    put16(static_cast<uint32_t>(zip64_len + 4 + pad));
    put(name.data(), name.size());
    if (zip64) {
        put16(kZip64ExtraId);
        put16(16);
        put64(size);
        put64(size);
    }
    // "FB" padding field so that the payload starts on a 64-byte boundary.
    put16('F' | ('B' << 8));
    put16(static_cast<uint32_t>(pad));
    std::string zs(pad, 'Z');
    put(zs.data(), zs.size());
}

void ZipWriter::write(const void* data, size_t n) {
    if (!in_entry_ || current_written_ + n > current_.size)
        throw Error("zip writer: entry " + current_.name + " overruns its declared size");
    current_.crc32 = crc32_update(current_.crc32, data, n);
    current_written_ += n;
    put(data, n);
}

void ZipWriter::end_entry() {
    if (!in_entry_ || current_written_ != current_.size)
        throw Error("zip writer: entry " + current_.name + " has " + std::to_string(current_written_) +
                    " of its " + std::to_string(current_.size) + " bytes");
    put32(kDataDescriptorSig);
    put32(current_.crc32);
    if (big(current_.size)) {
        put64(current_.size);
        put64(current_.size);
    } else {
        put32(current_.size);
        put32(current_.size);
    }
    done_.push_back(current_);
    in_entry_ = false;
}

void ZipWriter::finish() {
    if (in_entry_) throw Error("zip writer: entry " + current_.name + " not finished");
    uint64_t cd_offset = pos_;
    for (const Written& w : done_) {
        bool big_size = big(w.size), big_offset = big(w.local_header);
        uint32_t zip64_len = (big_size ? 16 : 0) + (big_offset ? 8 : 0);
        put32(kCentralHeaderSig);
        put16(0);                                  // version made by
        put16(zip64_len ? 45 : 0);                 // version needed
        put16(0x0808);
        put16(0);                                  // stored
        put16(0);                                  // time
        put16(0);                                  // date
        put32(w.crc32);
        put32(big_size ? kMax32 : w.size);
        put32(big_size ? kMax32 : w.size);
        put16(static_cast<uint32_t>(w.name.size()));
        put16(zip64_len ? zip64_len + 4 : 0);
        put16(0);                                  // comment
        put16(0);                                  // disk
        put16(0);                                  // internal attributes
        put32(0);                                  // external attributes
        put32(big_offset ? kMax32 : w.local_header);
        put(w.name.data(), w.name.size());
        if (zip64_len) {
            put16(kZip64ExtraId);
            put16(zip64_len);
            if (big_size) {
                put64(w.size);
                put64(w.size);
            }
            if (big_offset) put64(w.local_header);
        }
    }
    uint64_t cd_size = pos_ - cd_offset, n = done_.size();

    // ZIP64 end record and locator (torch always writes them), then the classic end record.
    uint64_t zip64_end = pos_;
    put32(kZip64EndSig);
    put64(44);
    put16(0x031e);
    put16(45);
    put32(0);
    put32(0);
    put64(n);
    put64(n);
    put64(cd_size);
    put64(cd_offset);
    put32(kZip64LocatorSig);
    put32(0);
    put64(zip64_end);
    put32(1);
    put32(kEndSig);
    put16(0);
    put16(0);
    put16(force_zip64_ || n >= kMax16 ? kMax16 : n);
    put16(force_zip64_ || n >= kMax16 ? kMax16 : n);
    put32(big(cd_size) ? kMax32 : cd_size);
    put32(big(cd_offset) ? kMax32 : cd_offset);
    put16(0);
}

// zlib's CRC-32 (zlib is in the process already, through libpng).
uint32_t crc32_update(uint32_t crc, const void* data, size_t n) {
    return static_cast<uint32_t>(crc32_z(crc, static_cast<const Bytef*>(data), n));
}

}  // namespace sam
