// Errors thrown by the library. Every message names the file, key, shape or field at fault.
// Thread safety: exceptions are values; nothing here is shared.
#pragma once

#include <stdexcept>
#include <string>

namespace sam {

// Base class: anything the library rejects (bad input, bad file, bad arguments).
class Error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// A checkpoint that cannot be read: "<file>: <key>: <what>".
class CheckpointError : public Error {
  public:
    CheckpointError(const std::string& path, const std::string& key, const std::string& what)
        : Error(path + (key.empty() ? "" : ": " + key) + ": " + what) {}
};

// An image that cannot be decoded: "<file>: <what>".
class ImageError : public Error {
  public:
    ImageError(const std::string& path, const std::string& what) : Error(path + ": " + what) {}
};

// An image whose header declares more pixels than the caller accepts: "<file>: <what>".
class ImageTooLargeError : public ImageError {
  public:
    using ImageError::ImageError;
};

// A prompt or argument the model cannot take: "<field>: <what>".
class InputError : public Error {
  public:
    InputError(const std::string& field, const std::string& what) : Error(field + ": " + what) {}
};

}  // namespace sam
