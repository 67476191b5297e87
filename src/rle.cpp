// Run-length encoding of binary masks (see include/sam/rle.h).
#include "sam/rle.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

#include "sam/error.h"

namespace sam {
namespace {

// Checks a mask size and returns its pixel count, which must fit the 32-bit counts.
uint64_t checked_pixels(const char* field, int64_t height, int64_t width) {
    if (height < 0 || width < 0) {
        throw InputError(field, "negative size " + std::to_string(height) + "x" + std::to_string(width));
    }
    const uint64_t n = static_cast<uint64_t>(height) * static_cast<uint64_t>(width);
    if (n > std::numeric_limits<uint32_t>::max()) {
        throw InputError(field, "size " + std::to_string(height) + "x" + std::to_string(width) +
                                    " exceeds 32-bit run lengths");
    }
    return n;
}

// Calls on_change(c) for every column c where row `cur` and row `prev` differ in being non-zero.
// Equal 8-byte words are skipped at once; masks change in few places between rows.
template <typename OnChange>
void for_each_change(const uint8_t* prev, const uint8_t* cur, size_t width, OnChange&& on_change) {
    size_t c = 0;
    for (; c + 8 <= width; c += 8) {
        uint64_t a, b;
        std::memcpy(&a, prev + c, 8);
        std::memcpy(&b, cur + c, 8);
        if (a == b) continue;
        for (size_t k = c; k < c + 8; ++k) {
            if ((prev[k] != 0) != (cur[k] != 0)) on_change(k);
        }
    }
    for (; c < width; ++c) {
        if ((prev[c] != 0) != (cur[c] != 0)) on_change(c);
    }
}

// The transition rows of each column of a row-major (height, width) mask, column by column:
// rows r in [0, height] where pixel (r, c) differs from pixel (r - 1, c), with the pixels above
// and below the mask taken as 0. `start[c] .. start[c + 1]` index the rows of column c.
struct ColumnTransitions {
    std::vector<uint32_t> start, rows;
};

ColumnTransitions column_transitions(const uint8_t* mask, size_t height, size_t width) {
    // One pass over rows collects (column, row) pairs in row order ...
    std::vector<std::pair<uint32_t, uint32_t>> found;
    const std::vector<uint8_t> zeros(width, 0);
    for (size_t r = 0; r <= height; ++r) {
        const uint8_t* prev = r == 0 ? zeros.data() : mask + (r - 1) * width;
        const uint8_t* cur = r == height ? zeros.data() : mask + r * width;
        for_each_change(prev, cur, width, [&](size_t c) {
            found.emplace_back(static_cast<uint32_t>(c), static_cast<uint32_t>(r));
        });
    }
    // ... then a counting sort by column keeps each column's rows in increasing order.
    ColumnTransitions t;
    t.start.assign(width + 1, 0);
    for (const auto& f : found) ++t.start[f.first + 1];
    for (size_t c = 0; c < width; ++c) t.start[c + 1] += t.start[c];
    t.rows.resize(found.size());
    std::vector<uint32_t> next(t.start.begin(), t.start.end() - 1);
    for (const auto& f : found) t.rows[next[f.first]++] = f.second;
    return t;
}

}  // namespace

// Counts follow from the positions (column-major pixel indices) where the value changes: every
// column of the mask switches on and off an even number of times, starting and ending at 0, so
// the positions of all columns in order, with a column's closing change cancelling the next
// column's opening change at the same position, alternate 0->1 and 1->0 from the first. Finding
// the changes compares each row with the one above, so the mask is read once in memory order.
Rle rle_encode_placed(const uint8_t* mask, int height, int width, int x0, int y0, int full_height,
                      int full_width) {
    checked_pixels("rle_encode: mask", height, width);
    const uint64_t full_pixels = checked_pixels("rle_encode: image", full_height, full_width);
    if (x0 < 0 || y0 < 0 || int64_t{x0} + width > full_width || int64_t{y0} + height > full_height) {
        throw InputError("rle_encode", "crop " + std::to_string(width) + "x" + std::to_string(height) +
                                           " at (" + std::to_string(x0) + ", " + std::to_string(y0) +
                                           ") outside image " + std::to_string(full_width) + "x" +
                                           std::to_string(full_height));
    }
    Rle rle{full_height, full_width, {}};
    if (full_pixels == 0) return rle;

    const ColumnTransitions t =
        column_transitions(mask, static_cast<size_t>(height), static_cast<size_t>(width));
    std::vector<uint64_t> changes;
    changes.reserve(t.rows.size());
    for (size_t c = 0; c < static_cast<size_t>(width); ++c) {
        const uint64_t column_start = (x0 + c) * static_cast<uint64_t>(full_height) + static_cast<uint64_t>(y0);
        for (uint32_t i = t.start[c]; i < t.start[c + 1]; ++i) {
            const uint64_t pos = column_start + t.rows[i];
            if (!changes.empty() && changes.back() == pos) {
                changes.pop_back();  // off at the end of a column, on again at the next one
            } else {
                changes.push_back(pos);
            }
        }
    }
    if (!changes.empty() && changes.back() == full_pixels) changes.pop_back();  // ends on: no final 0
    rle.counts.reserve(changes.size() + 1);
    uint64_t last = 0;
    for (uint64_t pos : changes) {
        rle.counts.push_back(static_cast<uint32_t>(pos - last));
        last = pos;
    }
    rle.counts.push_back(static_cast<uint32_t>(full_pixels - last));
    return rle;
}

Rle rle_encode(const uint8_t* mask, int height, int width) {
    return rle_encode_placed(mask, height, width, 0, 0, height, width);
}

// Marks where each column switches on or off (a toggle at the first row of each run of ones and
// at the row after it), then XORs every row into the next, which turns the toggles into runs.
// Memory is written in order except for the toggles.
std::vector<uint8_t> rle_decode(const Rle& rle) {
    const uint64_t n = checked_pixels("rle_decode", rle.height, rle.width);
    uint64_t total = 0;
    for (uint32_t c : rle.counts) total += c;
    if (total != n) {
        throw InputError("rle_decode", "counts sum to " + std::to_string(total) + ", expected " +
                                           std::to_string(rle.height) + "x" + std::to_string(rle.width));
    }
    const auto h = static_cast<uint64_t>(rle.height), w = static_cast<uint64_t>(rle.width);
    std::vector<uint8_t> out(n, 0);
    uint64_t pos = 0;
    for (size_t i = 0; i < rle.counts.size(); ++i) {
        const uint64_t len = rle.counts[i];
        if (i % 2 == 1 && len > 0) {
            // Ones from pos to pos + len - 1, possibly over several columns.
            const uint64_t end = pos + len;
            for (uint64_t c = pos / h; c * h < end; ++c) {
                const uint64_t r0 = std::max(pos, c * h) - c * h;
                const uint64_t r1 = std::min(end, (c + 1) * h) - c * h;
                out[r0 * w + c] ^= 1;
                if (r1 < h) out[r1 * w + c] ^= 1;
            }
        }
        pos += len;
    }
    for (uint64_t r = 1; r < h; ++r) {
        const uint8_t* above = out.data() + (r - 1) * w;
        uint8_t* row = out.data() + r * w;
        for (uint64_t c = 0; c < w; ++c) row[c] ^= above[c];
    }
    return out;
}

int64_t rle_area(const Rle& rle) {
    int64_t area = 0;
    for (size_t i = 1; i < rle.counts.size(); i += 2) area += rle.counts[i];
    return area;
}

std::string rle_to_coco_string(const Rle& rle) {
    std::string s;
    const auto& c = rle.counts;
    for (size_t i = 0; i < c.size(); ++i) {
        int64_t x = c[i];
        if (i > 2) x -= c[i - 2];
        for (bool more = true; more;) {
            auto chunk = static_cast<char>(x & 0x1f);
            x >>= 5;  // arithmetic shift: negative deltas end in a run of -1
            more = (chunk & 0x10) ? x != -1 : x != 0;
            if (more) chunk |= 0x20;
            s.push_back(static_cast<char>(chunk + 48));
        }
    }
    return s;
}

Rle rle_from_coco_string(const std::string& s, int height, int width) {
    const uint64_t n = checked_pixels("coco rle", height, width);
    // A delta is at most 33 bits with its sign; 8 chunks of 5 bits hold it.
    constexpr int kMaxChunks = 8;
    Rle rle{height, width, {}};
    uint64_t total = 0;
    size_t p = 0;
    while (p < s.size()) {
        int64_t x = 0;
        for (int k = 0;; ++k) {
            if (p >= s.size()) throw InputError("coco rle", "string ends inside a count");
            if (k >= kMaxChunks) throw InputError("coco rle", "count too long at byte " + std::to_string(p));
            const int ch = static_cast<unsigned char>(s[p]) - 48;
            if (ch < 0 || ch > 63) {
                throw InputError("coco rle", "invalid character at byte " + std::to_string(p));
            }
            ++p;
            x |= static_cast<int64_t>(ch & 0x1f) << (5 * k);
            if (!(ch & 0x20)) {
                if (ch & 0x10) x |= static_cast<int64_t>(~uint64_t{0} << (5 * (k + 1)));  // sign-extend
                break;
            }
        }
        const size_t m = rle.counts.size();
        if (m > 2) x += rle.counts[m - 2];
        if (x < 0 || x > std::numeric_limits<uint32_t>::max()) {
            throw InputError("coco rle", "count " + std::to_string(m) + " out of range: " + std::to_string(x));
        }
        rle.counts.push_back(static_cast<uint32_t>(x));
        total += static_cast<uint64_t>(x);
        if (total > n) break;
    }
    if (total != n) {
        throw InputError("coco rle", "counts sum to " + std::string(total > n ? "more than " : "") +
                                         std::to_string(total) + ", expected " + std::to_string(height) +
                                         "x" + std::to_string(width) + " = " + std::to_string(n));
    }
    return rle;
}

double rle_iou(const Rle& a, const Rle& b) {
    if (a.height != b.height || a.width != b.width) {
        throw InputError("rle_iou", "sizes differ: " + std::to_string(a.height) + "x" + std::to_string(a.width) +
                                        " and " + std::to_string(b.height) + "x" + std::to_string(b.width));
    }
    // Walk both run lists together; overlapping stretches where both are on count as intersection.
    const auto& ca = a.counts;
    const auto& cb = b.counts;
    size_t ia = 0, ib = 0;
    uint64_t ra = ca.empty() ? 0 : ca[0], rb = cb.empty() ? 0 : cb[0];
    int64_t inter = 0;
    while (ia < ca.size() && ib < cb.size()) {
        if (ra == 0) {
            if (++ia < ca.size()) ra = ca[ia];
            continue;
        }
        if (rb == 0) {
            if (++ib < cb.size()) rb = cb[ib];
            continue;
        }
        const uint64_t step = std::min(ra, rb);
        if ((ia & 1) && (ib & 1)) inter += static_cast<int64_t>(step);
        ra -= step;
        rb -= step;
    }
    const int64_t uni = rle_area(a) + rle_area(b) - inter;
    return uni > 0 ? static_cast<double>(inter) / static_cast<double>(uni) : 0.0;
}

std::array<int, 4> rle_to_box_xyxy(const Rle& rle) {
    const uint64_t h = static_cast<uint64_t>(std::max(rle.height, 0));
    if (h == 0) return {0, 0, 0, 0};
    uint64_t xmin = UINT64_MAX, xmax = 0, ymin = UINT64_MAX, ymax = 0;
    uint64_t pos = 0;
    for (size_t i = 0; i < rle.counts.size(); ++i) {
        const uint64_t len = rle.counts[i];
        if ((i & 1) && len > 0) {
            // A run of ones from pixel pos to pos + len - 1 (column-major).
            const uint64_t first = pos, last = pos + len - 1;
            const uint64_t c_first = first / h, c_last = last / h;
            xmin = std::min(xmin, c_first);
            xmax = std::max(xmax, c_last);
            if (c_first == c_last) {
                ymin = std::min(ymin, first % h);
                ymax = std::max(ymax, last % h);
            } else {  // wraps a column end: covers the last row and the first row
                ymin = 0;
                ymax = h - 1;
            }
        }
        pos += len;
    }
    if (xmin == UINT64_MAX) return {0, 0, 0, 0};
    return {static_cast<int>(xmin), static_cast<int>(ymin), static_cast<int>(xmax), static_cast<int>(ymax)};
}

}  // namespace sam
