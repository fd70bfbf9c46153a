// HDF5 helpers shared by the dataset and array-file code in core/: an owning hid_t, H5_CHECK
// (a failed call becomes dpt::Error carrying HDF5's own innermost error text), chunked datasets
// with the Fletcher32 checksum filter, string and int64 attributes, and defensive opening of
// files and datasets that may be hostile. Internal to core/: dataset.h and array_file.h are the
// public API. Not thread-safe (the Debian HDF5 build is not).
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "core/tensor.h"
#include "devices/error.h"

namespace dpt::h5 {

// Largest rank accepted from a file; ours are rank <= 5, HDF5 allows 32.
constexpr int kMaxRank = 8;

// Owns one HDF5 identifier and closes it with the H5*close call matching its type.
class Handle {
 public:
  Handle() = default;
  explicit Handle(hid_t id) : id_(id) {}
  ~Handle() { close(); }
  Handle(Handle&& other) noexcept : id_(other.release()) {}
  Handle& operator=(Handle&& other) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  hid_t release();
  // Closes now; returns the H5*close status (negative on failure). A file's close writes its
  // metadata, so writers must check this instead of relying on the destructor.
  herr_t close();

 private:
  hid_t id_ = H5I_INVALID_HID;
};

// Held by every public entry point that calls HDF5 (load_dataset, write_dataset, array files).
// Debian's HDF5 is built without thread safety and its state is process-wide, so one
// process-wide (recursive) mutex mirrors it: ranks run as threads in tests, and a checkpoint may
// be written while data loads. It also stops HDF5 printing error stacks to stderr, so only our
// one-line dpt::Error messages reach the user.
class LibraryLock {
 public:
  LibraryLock();
  LibraryLock(const LibraryLock&) = delete;
  LibraryLock& operator=(const LibraryLock&) = delete;

 private:
  std::lock_guard<std::recursive_mutex> guard_;
};

// The innermost (first-detected) description on this thread's HDF5 error stack, e.g.
// "data error detected by Fletcher32 checksum"; empty when the stack is empty.
std::string last_error();

// True when the current error stack reports a failed data checksum (Fletcher32).
bool last_error_is_checksum();

namespace detail {
struct ImageBuffer;
struct RaiseH5 {
  ErrorKind kind;
  [[noreturn]] void operator&(const ::dpt::detail::Message& message) const;
};
}  // namespace detail

// "HDF5 type name" for messages: "uint8", "int64", "float32", "string", "compound", ...
std::string type_name(hid_t type);

// An HDF5 file built in memory (core driver, no backing store), in a format HDF5 1.8+ reads,
// with dense attribute storage so metadata attributes may exceed 64 KiB. Writers build files here
// and store the bytes with write_file_atomically, so no disk error ever reaches HDF5: HDF5 1.10
// keeps a half-closed file after a failed H5Fclose, which then crashes the process at exit.
// The bytes are taken over when HDF5 releases them at close (H5Fget_file_image on an open file
// writes a bad superblock checksum in 1.10.8).
class MemoryFile {
 public:
  // `size_hint`: the expected file size, so the buffer grows once. Throws kIo naming
  // `display_path`.
  MemoryFile(std::size_t size_hint, const std::string& display_path);
  ~MemoryFile();
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;

  hid_t get() const { return file_.get(); }
  // Flushes and closes the file; returns its bytes, valid while this object lives. Every object
  // opened in the file must be closed first. Throws kIo.
  std::string_view finish();

 private:
  std::unique_ptr<detail::ImageBuffer> buffer_;  // HDF5's callbacks hold its address
  std::string display_path_;
  Handle file_;  // declared last: closed before buffer_ is freed
};

// Opens an existing file read-only after checking it exists, is a regular file and is HDF5.
// Throws `kind` naming `path`: "cannot open: <strerror>", "not an HDF5 file", "cannot open:
// <HDF5 message>" (truncated files fail here).
Handle open_file(const std::string& path, ErrorKind kind);

// Opens dataset `name` (relative to `location`) after checking that it exists, is reached by
// hard links only (soft and external links are refused) and stores its data inside the file
// (external raw-data files and virtual datasets are refused). Throws `kind` with messages
// starting "<context>: ".
Handle open_dataset(hid_t location, const std::string& name, ErrorKind kind,
                    const std::string& context);

// The dataset's shape ([] for a scalar). Throws `kind` for a null dataspace or rank > kMaxRank.
Shape dataset_shape(hid_t dataset, ErrorKind kind, const std::string& context);

// numel(shape) * element_bytes, or throws `kind` "<context> has shape [...]: over the cap of N
// bytes" when it (or the product on the way) exceeds `max_bytes`.
int64_t checked_bytes(const Shape& shape, int64_t element_bytes, int64_t max_bytes, ErrorKind kind,
                      const std::string& context);

// Creates dataset `name` under `location` (a '/'-separated name: missing intermediate groups are
// created) with `file_type` and `shape`, chunked (chunks of about 1 MiB) with the Fletcher32
// filter, and writes `data` (numel(shape) elements of `memory_type`). Rank-0 datasets cannot be
// chunked and are stored contiguous. Returns the open dataset. Throws kIo naming `display_path`.
Handle write_checked_dataset(hid_t location, const std::string& name, hid_t file_type,
                             hid_t memory_type, const Shape& shape, const void* data,
                             const std::string& display_path);

// Scalar attributes on `object`. Writers throw kIo; readers throw `kind` for a missing attribute
// or one of the wrong type/shape, with messages starting "<context>: ".
void write_string_attribute(hid_t object, const std::string& name, const std::string& value,
                            const std::string& display_path);
void write_int64_attribute(hid_t object, const std::string& name, int64_t value,
                           const std::string& display_path);
// Accepts fixed- and variable-length strings (h5py writes the latter) up to 64 MiB.
std::string read_string_attribute(hid_t object, const std::string& name, ErrorKind kind,
                                  const std::string& context);
// Accepts any integer type that fits in int64.
int64_t read_int64_attribute(hid_t object, const std::string& name, ErrorKind kind,
                             const std::string& context);

}  // namespace dpt::h5

// H5_THROW(kind) << "x.h5: cannot read /inputs";  throws dpt::Error(kind) with the message
// followed by ": <innermost HDF5 error description>", right after a failed H5* call.
#define H5_THROW(kind) ::dpt::h5::detail::RaiseH5{kind} & ::dpt::detail::Message()

// H5_CHECK(kind, status) << "x.h5: writing /inputs";  H5_THROW(kind) when the HDF5 return value
// `status` (herr_t, hid_t or htri_t) is negative.
#define H5_CHECK(kind, status) \
  if ((status) >= 0) {         \
  } else                       \
    H5_THROW(kind)
