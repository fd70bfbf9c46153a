// HDF5 helpers: handles, errors, defensive opening and checked datasets (see hdf5_util.h).
// Attributes live in hdf5_attributes.cpp, MemoryFile in hdf5_memory_file.cpp. Every H5* return
// value is checked.
#include "core/hdf5_util.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <vector>

namespace dpt::h5 {
namespace {

// Chunks of about this size keep per-chunk overhead small and fit HDF5's default 1 MiB cache.
constexpr hsize_t kChunkBytes = hsize_t{1} << 20;

herr_t collect_innermost(unsigned n, const H5E_error2_t* error, void* data) {
  if (n == 0 && error->desc != nullptr) *static_cast<std::string*>(data) = error->desc;
  return 0;
}

herr_t find_checksum(unsigned n, const H5E_error2_t* error, void* data) {
  if (error->desc == nullptr) return 0;
  std::string text = error->desc;
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (text.find("checksum") != std::string::npos) *static_cast<bool*>(data) = true;
  return 0;
}

std::vector<hsize_t> chunk_dims(const Shape& shape, std::size_t element_bytes) {
  const int rank = static_cast<int>(shape.size());
  std::vector<hsize_t> chunk(rank, 1);
  hsize_t inner = std::max<hsize_t>(element_bytes, 1);
  // Whole trailing dimensions while they fit, then part of the next one; outer axes stay 1.
  for (int axis = rank - 1; axis >= 0; --axis) {
    const hsize_t dim = std::max<hsize_t>(static_cast<hsize_t>(shape[axis]), 1);
    if (dim <= kChunkBytes / inner) {
      chunk[axis] = dim;
      inner *= dim;
    } else {
      // Even out the chunks so the last one is not mostly padding.
      const hsize_t most = std::max<hsize_t>(kChunkBytes / inner, 1);
      const hsize_t count = (dim + most - 1) / most;
      chunk[axis] = (dim + count - 1) / count;
      break;
    }
  }
  return chunk;
}

}  // namespace

Handle& Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    close();
    id_ = other.release();
  }
  return *this;
}

hid_t Handle::release() {
  const hid_t id = id_;
  id_ = H5I_INVALID_HID;
  return id;
}

herr_t Handle::close() {
  if (id_ < 0) return 0;
  const hid_t id = release();
  switch (H5Iget_type(id)) {
    case H5I_FILE:
      return H5Fclose(id);
    case H5I_GROUP:
      return H5Gclose(id);
    case H5I_DATASET:
      return H5Dclose(id);
    case H5I_DATASPACE:
      return H5Sclose(id);
    case H5I_DATATYPE:
      return H5Tclose(id);
    case H5I_ATTR:
      return H5Aclose(id);
    case H5I_GENPROP_LST:
      return H5Pclose(id);
    default:
      return H5Idec_ref(id);
  }
}

namespace {
std::recursive_mutex& library_mutex() {
  static std::recursive_mutex mutex;
  return mutex;
}
}  // namespace

LibraryLock::LibraryLock() : guard_(library_mutex()) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

std::string last_error() {
  std::string text;
  if (H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, collect_innermost, &text) < 0) return "";
  // System-call failures read "file write failed: time = <ctime with a newline>, filename = ...,
  // errno = 28, error message = 'No space left on device', ..."; keep the gist on one line.
  const std::string marker = "error message = '";
  const std::size_t start = text.find(marker);
  const std::size_t colon = text.find(':');
  if (start != std::string::npos && colon < start) {
    const std::size_t from = start + marker.size();
    text = text.substr(0, colon) + ": " + text.substr(from, text.find('\'', from) - from);
  }
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

bool last_error_is_checksum() {
  bool found = false;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, find_checksum, &found);
  return found;
}

void detail::RaiseH5::operator&(const ::dpt::detail::Message& message) const {
  std::string text = message.str();
  const std::string reason = last_error();
  if (!reason.empty()) text += ": " + reason;
  throw Error(kind, text);
}

std::string type_name(hid_t type) {
  const std::size_t bits = H5Tget_size(type) * 8;
  switch (H5Tget_class(type)) {
    case H5T_INTEGER:
      return (H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int") + std::to_string(bits);
    case H5T_FLOAT:
      return "float" + std::to_string(bits);
    case H5T_STRING:
      return "string";
    case H5T_COMPOUND:
      return "compound";
    case H5T_ENUM:
      return "enum";
    case H5T_ARRAY:
      return "array";
    case H5T_VLEN:
      return "vlen";
    case H5T_REFERENCE:
      return "reference";
    default:
      return "an unsupported type";
  }
}

Handle open_file(const std::string& path, ErrorKind kind) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    const int error = errno;
    DPT_THROW(kind) << path << ": cannot open: " << std::strerror(error);
  }
  DPT_CHECK_AS(kind, S_ISREG(info.st_mode)) << path << ": not a regular file";
  const htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
  H5_CHECK(kind, is_hdf5) << path << ": cannot open";
  DPT_CHECK_AS(kind, is_hdf5 > 0) << path << ": not an HDF5 file";
  Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  H5_CHECK(kind, file.get()) << path << ": cannot open";
  return file;
}

Handle open_dataset(hid_t location, const std::string& name, ErrorKind kind,
                    const std::string& context) {
  // Check each link on the way: H5Lexists needs its parent to exist, and a soft or external
  // link anywhere on the path could lead outside the file.
  std::string prefix = !name.empty() && name[0] == '/' ? "/" : "";
  std::size_t start = name.find_first_not_of('/');
  while (start != std::string::npos) {
    const std::size_t end = name.find('/', start);
    if (!prefix.empty() && prefix.back() != '/') prefix += '/';
    prefix += name.substr(start, end == std::string::npos ? end : end - start);
    start = end == std::string::npos ? end : name.find_first_not_of('/', end);
    const htri_t exists = H5Lexists(location, prefix.c_str(), H5P_DEFAULT);
    H5_CHECK(kind, exists) << context << ": cannot look up " << name;
    DPT_CHECK_AS(kind, exists > 0) << context << ": missing dataset " << name;
    H5L_info_t link{};
    H5_CHECK(kind, H5Lget_info(location, prefix.c_str(), &link, H5P_DEFAULT))
        << context << ": cannot look up " << name;
    DPT_CHECK_AS(kind, link.type == H5L_TYPE_HARD)
        << context << ": " << name << " is reached through a "
        << (link.type == H5L_TYPE_EXTERNAL ? "link to another file" : "soft link") << " (refused)";
  }
  Handle object(H5Oopen(location, name.c_str(), H5P_DEFAULT));
  H5_CHECK(kind, object.get()) << context << ": cannot open " << name;
  DPT_CHECK_AS(kind, H5Iget_type(object.get()) == H5I_DATASET)
      << context << ": " << name << " is not a dataset";
  Handle create(H5Dget_create_plist(object.get()));
  H5_CHECK(kind, create.get()) << context << ": cannot inspect " << name;
  const H5D_layout_t layout = H5Pget_layout(create.get());
  const int external = H5Pget_external_count(create.get());
  H5_CHECK(kind, layout) << context << ": cannot inspect " << name;
  H5_CHECK(kind, external) << context << ": cannot inspect " << name;
  DPT_CHECK_AS(kind, layout != H5D_VIRTUAL && external == 0)
      << context << ": " << name << " keeps its data outside the file (refused)";
  return object;
}

Shape dataset_shape(hid_t dataset, ErrorKind kind, const std::string& context) {
  Handle space(H5Dget_space(dataset));
  H5_CHECK(kind, space.get()) << context << ": cannot read the shape";
  const H5S_class_t space_class = H5Sget_simple_extent_type(space.get());
  H5_CHECK(kind, space_class) << context << ": cannot read the shape";
  if (space_class == H5S_SCALAR) return {};
  DPT_CHECK_AS(kind, space_class == H5S_SIMPLE) << context << " has no data (null dataspace)";
  const int rank = H5Sget_simple_extent_ndims(space.get());
  H5_CHECK(kind, rank) << context << ": cannot read the shape";
  DPT_CHECK_AS(kind, rank <= kMaxRank)
      << context << " has rank " << rank << ", more than " << kMaxRank;
  hsize_t dims[kMaxRank] = {};
  H5_CHECK(kind, H5Sget_simple_extent_dims(space.get(), dims, nullptr))
      << context << ": cannot read the shape";
  Shape shape;
  for (int axis = 0; axis < rank; ++axis) {
    DPT_CHECK_AS(kind, dims[axis] <= static_cast<hsize_t>(INT64_MAX))
        << context << " has dimension " << axis << " = " << dims[axis] << ", too large";
    shape.push_back(static_cast<int64_t>(dims[axis]));
  }
  return shape;
}

int64_t checked_bytes(const Shape& shape, int64_t element_bytes, int64_t max_bytes, ErrorKind kind,
                      const std::string& context) {
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  int64_t bytes = element_bytes;
  for (int64_t dim : shape) {
    DPT_CHECK_AS(kind, dim > 0 && bytes <= max_bytes / dim)
        << context << " has shape " << shape_string(shape) << ": over the cap of " << max_bytes
        << " bytes";
    bytes *= dim;
  }
  return bytes;
}

Handle write_checked_dataset(hid_t location, const std::string& name, hid_t file_type,
                             hid_t memory_type, const Shape& shape, const void* data,
                             const std::string& display_path) {
  const std::string where = display_path + ": writing " + name;
  const int rank = static_cast<int>(shape.size());
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  // A fixed dimension of 0 cannot be chunked; an unlimited maximum allows it.
  std::vector<hsize_t> max_dims = dims;
  for (hsize_t& dim : max_dims) dim = dim == 0 ? H5S_UNLIMITED : dim;
  Handle space(rank == 0 ? H5Screate(H5S_SCALAR)
                         : H5Screate_simple(rank, dims.data(), max_dims.data()));
  H5_CHECK(ErrorKind::kIo, space.get()) << where;
  Handle create(H5Pcreate(H5P_DATASET_CREATE));
  H5_CHECK(ErrorKind::kIo, create.get()) << where;
  if (rank > 0) {
    const std::vector<hsize_t> chunk = chunk_dims(shape, H5Tget_size(file_type));
    H5_CHECK(ErrorKind::kIo, H5Pset_chunk(create.get(), rank, chunk.data())) << where;
    H5_CHECK(ErrorKind::kIo, H5Pset_fletcher32(create.get())) << where;
  }
  Handle link(H5Pcreate(H5P_LINK_CREATE));
  H5_CHECK(ErrorKind::kIo, link.get()) << where;
  H5_CHECK(ErrorKind::kIo, H5Pset_create_intermediate_group(link.get(), 1)) << where;
  Handle dataset(H5Dcreate2(location, name.c_str(), file_type, space.get(), link.get(),
                            create.get(), H5P_DEFAULT));
  H5_CHECK(ErrorKind::kIo, dataset.get()) << where;
  if (shape_numel(shape) > 0) {
    H5_CHECK(ErrorKind::kIo,
             H5Dwrite(dataset.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data))
        << where;
  }
  return dataset;
}

}  // namespace dpt::h5
