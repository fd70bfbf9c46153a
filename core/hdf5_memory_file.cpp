// MemoryFile (see hdf5_util.h): HDF5 files built with the core driver, whose buffer we own through
// the file-image callbacks so that the bytes HDF5 leaves at H5Fclose (a complete, valid file) can
// be written to disk by write_file_atomically, where disk errors are ours to report.
#include <cstdlib>
#include <cstring>

#include "core/hdf5_util.h"

namespace dpt::h5 {

struct detail::ImageBuffer {
  void* data = nullptr;
  std::size_t capacity = 0;
};

namespace {

// Extra room beyond the size hint (metadata), and the step by which the buffer grows past it.
constexpr std::size_t kGrowthBytes = std::size_t{1} << 20;

// The core driver's buffer goes through these, so the final image outlives H5Fclose.
void* buffer_realloc(void* ptr, std::size_t size, H5FD_file_image_op_t, void* udata) {
  auto* buffer = static_cast<detail::ImageBuffer*>(udata);
  void* grown = std::realloc(ptr, size);
  if (grown != nullptr) {
    buffer->data = grown;
    buffer->capacity = size;
  }
  return grown;
}
void* buffer_memcpy(void* dest, const void* src, std::size_t size, H5FD_file_image_op_t, void*) {
  return std::memcpy(dest, src, size);
}
void* buffer_malloc(std::size_t size, H5FD_file_image_op_t op, void* udata) {
  return buffer_realloc(nullptr, size, op, udata);
}
herr_t buffer_free(void*, H5FD_file_image_op_t, void*) { return 0; }  // ~MemoryFile frees it
void* udata_copy(void* udata) { return udata; }
herr_t udata_free(void*) { return 0; }

}  // namespace

MemoryFile::MemoryFile(std::size_t size_hint, const std::string& display_path)
    : buffer_(std::make_unique<detail::ImageBuffer>()), display_path_(display_path) {
  const std::string where = display_path + ": cannot create an HDF5 file in memory";
  Handle access(H5Pcreate(H5P_FILE_ACCESS));
  H5_CHECK(ErrorKind::kIo, access.get()) << where;
  H5_CHECK(ErrorKind::kIo, H5Pset_fapl_core(access.get(), size_hint + kGrowthBytes, false))
      << where;
  H5FD_file_image_callbacks_t callbacks = {buffer_malloc, buffer_memcpy, buffer_realloc,
                                           buffer_free,   udata_copy,    udata_free,
                                           buffer_.get()};
  H5_CHECK(ErrorKind::kIo, H5Pset_file_image_callbacks(access.get(), &callbacks)) << where;
  // v1.8 object headers allow dense attribute storage (no 64 KiB limit on metadata).
  H5_CHECK(ErrorKind::kIo, H5Pset_libver_bounds(access.get(), H5F_LIBVER_V18, H5F_LIBVER_V18))
      << where;
  // The name only identifies the file among those open in this process.
  const std::string name = display_path + ".in-memory";
  file_ = Handle(H5Fcreate(name.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, access.get()));
  H5_CHECK(ErrorKind::kIo, file_.get()) << where;
}

MemoryFile::~MemoryFile() {
  file_.close();
  std::free(buffer_->data);
}

std::string_view MemoryFile::finish() {
  const std::string where = display_path_ + ": cannot serialize the HDF5 file";
  H5_CHECK(ErrorKind::kIo, H5Fflush(file_.get(), H5F_SCOPE_LOCAL)) << where;
  // With every object closed, the end of the file no longer moves; close writes the superblock.
  const ssize_t size = H5Fget_file_image(file_.get(), nullptr, 0);
  H5_CHECK(ErrorKind::kIo, size) << where;
  H5_CHECK(ErrorKind::kIo, file_.close()) << where;
  DPT_CHECK_AS(ErrorKind::kIo, static_cast<std::size_t>(size) <= buffer_->capacity)
      << where << ": image of " << size << " bytes in a buffer of " << buffer_->capacity;
  return {static_cast<const char*>(buffer_->data), static_cast<std::size_t>(size)};
}

}  // namespace dpt::h5
