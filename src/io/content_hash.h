// SHA-256 of a byte buffer, as 64 lowercase hex digits (OpenSSL's libcrypto, already in the
// process through cpp-httplib). Content hashes name uploaded images and cached embeddings, so
// the same bytes find the same embedding again.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace sam {

std::string sha256_hex(const void* data, size_t size);

}  // namespace sam
