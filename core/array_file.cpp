// Named float32 arrays plus string metadata in HDF5 (see array_file.h). Each dataset carries an
// int64 "index" attribute (the write order, restored on read) and an int64 "crc32" attribute
// (zlib crc32 of its little-endian float32 or int8 bytes), checked on read on top of Fletcher32,
// which covers the chunks but not a writer that stored the wrong values.
#include "core/array_file.h"

#include <zlib.h>

#include <algorithm>
#include <set>

#include "core/atomic_file.h"
#include "core/hdf5_util.h"
#include "devices/error.h"

namespace dpt {
namespace {

constexpr ErrorKind kCheckpoint = ErrorKind::kCheckpoint;

herr_t collect_attribute(hid_t, const char* name, const H5A_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->emplace_back(name);
  return 0;
}

int64_t crc32_of(const Array& array) {
  const bool int8 = array.type == ArrayType::kI8;
  const void* data =
      int8 ? static_cast<const void*>(array.int8_values.data()) : array.values.data();
  const std::size_t bytes = int8 ? array.int8_values.size() : array.values.size() * sizeof(float);
  return static_cast<int64_t>(crc32_z(0, static_cast<const Bytef*>(data), bytes));
}

std::size_t value_count(const Array& array) {
  return array.type == ArrayType::kI8 ? array.int8_values.size() : array.values.size();
}

void read_attributes(hid_t file, const std::string& path,
                     std::map<std::string, std::string>& attributes) {
  std::vector<std::string> names;
  H5_CHECK(kCheckpoint,
           H5Aiterate2(file, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_attribute, &names))
      << path << ": cannot list attributes";
  for (const std::string& name : names) {
    attributes[name] = h5::read_string_attribute(file, name, kCheckpoint, path);
  }
}

// Names must map to HDF5 paths one to one: non-empty components, no "." or "..", and no array
// whose name is another's group ("a" and "a/b").
void check_names(const std::string& path, const ArrayFile& file) {
  std::set<std::string> names;
  for (const Array& array : file.arrays) {
    DPT_CHECK(names.insert(array.name).second)
        << path << ": array name \"" << array.name << "\" appears twice";
    DPT_CHECK(static_cast<int64_t>(value_count(array)) == shape_numel(array.shape))
        << path << ": array " << array.name << " has " << value_count(array) << " values for shape "
        << shape_string(array.shape);
    std::size_t start = 0;
    while (true) {
      const std::size_t end = array.name.find('/', start);
      const std::string part = array.name.substr(start, end - start);
      DPT_CHECK(!part.empty() && part != "." && part != "..")
          << path << ": invalid array name \"" << array.name << "\"";
      if (end == std::string::npos) break;
      start = end + 1;
    }
  }
  for (const std::string& name : names) {
    for (std::size_t slash = name.find('/'); slash != std::string::npos;
         slash = name.find('/', slash + 1)) {
      DPT_CHECK(names.count(name.substr(0, slash)) == 0)
          << path << ": array " << name.substr(0, slash) << " is also the group of " << name;
    }
  }
  for (const auto& [key, value] : file.attributes) {
    DPT_CHECK(!key.empty()) << path << ": empty attribute name";
  }
}

struct LinkList {
  std::vector<std::string> hard;
  std::string refused;  // first soft or external link, if any
};

herr_t collect_link(hid_t, const char* name, const H5L_info_t* info, void* data) {
  auto* links = static_cast<LinkList*>(data);
  if (info->type == H5L_TYPE_HARD) {
    links->hard.emplace_back(name);
  } else if (links->refused.empty()) {
    links->refused = name;
  }
  return 0;
}

// Reads one dataset as an Array, checking type, size, storage and both checksums.
Array read_array(hid_t file, const std::string& name, const std::string& path, bool allow_int8,
                 int64_t& index) {
  const std::string context = path + ": " + name;
  h5::Handle dataset = h5::open_dataset(file, name, kCheckpoint, path);
  h5::Handle type(H5Dget_type(dataset.get()));
  H5_CHECK(kCheckpoint, type.get()) << context << ": cannot read the type";
  const bool is_float = H5Tget_class(type.get()) == H5T_FLOAT && H5Tget_size(type.get()) == 4;
  const bool is_int8 = H5Tget_class(type.get()) == H5T_INTEGER && H5Tget_size(type.get()) == 1 &&
                       H5Tget_sign(type.get()) == H5T_SGN_2;
  DPT_CHECK_AS(kCheckpoint, is_float || (allow_int8 && is_int8))
      << context << " is " << h5::type_name(type.get()) << ", want float32"
      << (allow_int8 ? " or int8" : "");
  Array array;
  array.name = name;
  array.type = is_float ? ArrayType::kF32 : ArrayType::kI8;
  array.shape = h5::dataset_shape(dataset.get(), kCheckpoint, context);
  const int64_t bytes =
      h5::checked_bytes(array.shape, is_float ? 4 : 1, kMaxArrayBytes, kCheckpoint, context);
  // Our files are uncompressed: less storage than data means missing chunks, and refusing it
  // keeps a forged shape from making us allocate more than the file holds.
  const hsize_t stored = H5Dget_storage_size(dataset.get());
  DPT_CHECK_AS(kCheckpoint, stored >= static_cast<hsize_t>(bytes))
      << context << " stores " << stored << " bytes for shape " << shape_string(array.shape)
      << " (truncated or corrupt)";
  index = h5::read_int64_attribute(dataset.get(), "index", kCheckpoint, context);
  const int64_t crc = h5::read_int64_attribute(dataset.get(), "crc32", kCheckpoint, context);
  const auto numel = static_cast<std::size_t>(shape_numel(array.shape));
  void* data = nullptr;
  if (is_float) {
    array.values.resize(numel);
    data = array.values.data();
  } else {
    array.int8_values.resize(numel);
    data = array.int8_values.data();
  }
  const hid_t memory_type = is_float ? H5T_NATIVE_FLOAT : H5T_NATIVE_INT8;
  if (numel > 0 && H5Dread(dataset.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
    DPT_CHECK_AS(kCheckpoint, !h5::last_error_is_checksum())
        << path << ": checksum mismatch in " << name << " (Fletcher32)";
    H5_THROW(kCheckpoint) << context << ": cannot read";
  }
  const int64_t actual = crc32_of(array);
  DPT_CHECK_AS(kCheckpoint, actual == crc) << path << ": checksum mismatch in " << name
                                           << " (crc32 " << actual << ", stored " << crc << ")";
  return array;
}

}  // namespace

const Array* ArrayFile::find(const std::string& name) const {
  for (const Array& array : arrays) {
    if (array.name == name) return &array;
  }
  return nullptr;
}

void write_array_file(const std::string& path, const ArrayFile& file) {
  const h5::LibraryLock lock;
  check_names(path, file);
  std::size_t bytes = 0;
  for (const Array& array : file.arrays) bytes += array.values.size() * sizeof(float);
  for (const Array& array : file.arrays) bytes += array.int8_values.size();
  h5::MemoryFile out(bytes, path);
  for (std::size_t i = 0; i < file.arrays.size(); ++i) {
    const Array& array = file.arrays[i];
    const bool int8 = array.type == ArrayType::kI8;
    h5::Handle dataset = h5::write_checked_dataset(
        out.get(), array.name, int8 ? H5T_STD_I8LE : H5T_IEEE_F32LE,
        int8 ? H5T_NATIVE_INT8 : H5T_NATIVE_FLOAT, array.shape,
        int8 ? static_cast<const void*>(array.int8_values.data()) : array.values.data(), path);
    h5::write_int64_attribute(dataset.get(), "index", static_cast<int64_t>(i), path);
    h5::write_int64_attribute(dataset.get(), "crc32", crc32_of(array), path);
    H5_CHECK(ErrorKind::kIo, dataset.close()) << path << ": writing " << array.name;
  }
  for (const auto& [key, value] : file.attributes) {
    h5::write_string_attribute(out.get(), key, value, path);
  }
  const std::string_view image = out.finish();
  write_file_atomically(path, image.data(), image.size());
}

std::map<std::string, std::string> read_array_file_attributes(const std::string& path) {
  const h5::LibraryLock lock;
  h5::Handle file = h5::open_file(path, kCheckpoint);
  std::map<std::string, std::string> attributes;
  read_attributes(file.get(), path, attributes);
  return attributes;
}

ArrayFile read_array_file(const std::string& path, bool allow_int8) {
  const h5::LibraryLock lock;
  h5::Handle file = h5::open_file(path, kCheckpoint);
  ArrayFile result;
  read_attributes(file.get(), path, result.attributes);

  LinkList links;
  H5_CHECK(kCheckpoint, H5Lvisit(file.get(), H5_INDEX_NAME, H5_ITER_INC, collect_link, &links))
      << path << ": cannot list arrays";
  DPT_CHECK_AS(kCheckpoint, links.refused.empty())
      << path << ": " << links.refused << " is a soft or external link (refused)";
  std::vector<std::pair<int64_t, Array>> indexed;
  for (const std::string& name : links.hard) {
    h5::Handle object(H5Oopen(file.get(), name.c_str(), H5P_DEFAULT));
    H5_CHECK(kCheckpoint, object.get()) << path << ": cannot open " << name;
    const H5I_type_t type = H5Iget_type(object.get());
    if (type == H5I_GROUP) continue;
    DPT_CHECK_AS(kCheckpoint, type == H5I_DATASET) << path << ": " << name << " is not an array";
    int64_t index = 0;
    Array array = read_array(file.get(), name, path, allow_int8, index);
    indexed.emplace_back(index, std::move(array));
  }
  std::sort(indexed.begin(), indexed.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (std::size_t i = 0; i < indexed.size(); ++i) {
    DPT_CHECK_AS(kCheckpoint, indexed[i].first == static_cast<int64_t>(i))
        << path << ": " << indexed[i].second.name << " has index " << indexed[i].first
        << ", want each of 0.." << indexed.size() - 1 << " once";
    result.arrays.push_back(std::move(indexed[i].second));
  }
  return result;
}

}  // namespace dpt
