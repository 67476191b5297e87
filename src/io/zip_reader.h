// The subset of the zip format that torch.save writes: stored (uncompressed) entries, local
// headers padded so that payloads start on 64-byte boundaries, a ZIP64 end of central directory.
//
// Hand-written rather than taken from a library: we need the byte offset of each payload inside
// the file so that tensors can be memory-mapped in place. libzip and minizip only hand out
// decompressing read streams, and miniz (which torch vendors) is a whole deflate implementation
// to carry for a format we read and write without compression.
#pragma once

#include <cstdint>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sam {

struct ZipEntry {
    std::string name;
    uint64_t data_offset = 0;  // payload start, from the beginning of the archive
    uint64_t size = 0;         // payload bytes (stored entries: compressed == uncompressed)
    uint32_t crc32 = 0;
};

// The central directory of an archive held in memory (typically a file mapping).
// Throws CheckpointError naming `path` (and the entry at fault) when the bytes are not a zip,
// are truncated, or hold an entry that is compressed, encrypted or out of bounds.
class ZipReader {
  public:
    ZipReader(std::span<const uint8_t> bytes, std::string path);

    const std::vector<ZipEntry>& entries() const { return entries_; }
    const ZipEntry* find(std::string_view name) const;  // nullptr when absent
    std::span<const uint8_t> payload(const ZipEntry& e) const { return bytes_.subspan(e.data_offset, e.size); }

  private:
    void read_directory();
    ZipEntry read_central_entry(uint64_t& pos) const;
    uint64_t data_offset(const ZipEntry& e, uint64_t local_header) const;

    std::span<const uint8_t> bytes_;
    std::string path_;
    std::vector<ZipEntry> entries_;
    std::unordered_map<std::string, size_t> index_;
};

// Writes the same layout torch.save produces: stored entries with a data descriptor after each
// payload, the local extra field "FB" padding each payload to a 64-byte boundary, then the
// central directory, ZIP64 end records and the classic end record. ZIP64 fields are emitted for
// every size or offset that does not fit in 32 bits (or always, with `force_zip64`, for tests).
class ZipWriter {
  public:
    explicit ZipWriter(std::ostream& out, bool force_zip64 = false) : out_(out), force_zip64_(force_zip64) {}

    // Starts an entry of exactly `size` bytes; feed it with write(), close it with end_entry().
    void begin_entry(const std::string& name, uint64_t size);
    void write(const void* data, size_t n);
    void end_entry();
    // Writes the central directory and end records. The stream is complete afterwards.
    void finish();

  private:
    struct Written {
        std::string name;
        uint64_t local_header = 0, size = 0;
        uint32_t crc32 = 0;
    };
    void put(const void* data, size_t n);
    void put16(uint32_t v);
    void put32(uint64_t v);
    void put64(uint64_t v);
    bool big(uint64_t v) const { return force_zip64_ || v >= 0xFFFFFFFFu; }

    std::ostream& out_;
    bool force_zip64_;
    uint64_t pos_ = 0;
    std::vector<Written> done_;
    Written current_;
    uint64_t current_written_ = 0;
    bool in_entry_ = false;
};

// CRC-32 (the zip/PNG polynomial), continuing from `crc` (0 to start); zlib's.
uint32_t crc32_update(uint32_t crc, const void* data, size_t n);

}  // namespace sam
