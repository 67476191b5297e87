// SHA-256 (FIPS 180-4) of a byte buffer, as 64 lowercase hex digits. The server names uploaded
// images by their content hash, so re-uploading the same bytes finds the cached embedding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace sam::server {

std::string sha256_hex(const uint8_t* data, size_t size);

}  // namespace sam::server
