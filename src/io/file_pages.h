// Giving back the resident pages of a mapped checkpoint that have a copy elsewhere.
#pragma once

#include <cstddef>

namespace sam {

// Drops this process's mappings of the pages in [data, data + bytes) that are pages of a file
// or shared memory (for a private file mapping: pages never written since it was mapped), as
// MADV_DONTNEED does; their contents stay in the page cache, and the next read faults them back
// from there. Pages written since mapping (private copies), anonymous and swapped pages are left
// as they are, so no content is ever lost. Returns the bytes dropped. Best effort: where
// /proc/self/pagemap cannot be read, nothing is dropped. Racing writes into the range are the
// caller's to exclude (a write between the check and the drop would be discarded).
size_t drop_file_pages(const void* data, size_t bytes);

}  // namespace sam
