// Named float32 arrays plus string metadata in HDF5 (see array_file.h). Each dataset carries an
// int64 "index" attribute (the write order, restored on read) and an int64 "crc32" attribute
// (zlib crc32 of its little-endian float32 bytes), checked on read on top of Fletcher32, which
// covers the chunks but not a writer that stored the wrong values.
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

int64_t crc32_of(const std::vector<float>& values) {
  return static_cast<int64_t>(
      crc32_z(0, reinterpret_cast<const Bytef*>(values.data()), values.size() * sizeof(float)));
}

// Names must map to HDF5 paths one to one: non-empty components, no "." or "..", and no array
// whose name is another's group ("a" and "a/b").
void check_names(const std::string& path, const ArrayFile& file) {
  std::set<std::string> names;
  for (const Array& array : file.arrays) {
    DPT_CHECK(names.insert(array.name).second)
        << path << ": array name \"" << array.name << "\" appears twice";
    DPT_CHECK(static_cast<int64_t>(array.values.size()) == shape_numel(array.shape))
        << path << ": array " << array.name << " has " << array.values.size()
        << " values for shape " << shape_string(array.shape);
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

herr_t collect_attribute(hid_t, const char* name, const H5A_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->emplace_back(name);
  return 0;
}

// Reads one dataset as an Array, checking type, size, storage and both checksums.
Array read_array(hid_t file, const std::string& name, const std::string& path, int64_t& index) {
  const std::string context = path + ": " + name;
  h5::Handle dataset = h5::open_dataset(file, name, kCheckpoint, path);
  h5::Handle type(H5Dget_type(dataset.get()));
  H5_CHECK(kCheckpoint, type.get()) << context << ": cannot read the type";
  DPT_CHECK_AS(kCheckpoint, H5Tget_class(type.get()) == H5T_FLOAT && H5Tget_size(type.get()) == 4)
      << context << " is " << h5::type_name(type.get()) << ", want float32";
  Array array;
  array.name = name;
  array.shape = h5::dataset_shape(dataset.get(), kCheckpoint, context);
  const int64_t bytes = h5::checked_bytes(array.shape, 4, kMaxArrayBytes, kCheckpoint, context);
  // Our files are uncompressed: less storage than data means missing chunks, and refusing it
  // keeps a forged shape from making us allocate more than the file holds.
  const hsize_t stored = H5Dget_storage_size(dataset.get());
  DPT_CHECK_AS(kCheckpoint, stored >= static_cast<hsize_t>(bytes))
      << context << " stores " << stored << " bytes for shape " << shape_string(array.shape)
      << " (truncated or corrupt)";
  index = h5::read_int64_attribute(dataset.get(), "index", kCheckpoint, context);
  const int64_t crc = h5::read_int64_attribute(dataset.get(), "crc32", kCheckpoint, context);
  array.values.resize(static_cast<std::size_t>(shape_numel(array.shape)));
  if (!array.values.empty() && H5Dread(dataset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL,
                                       H5P_DEFAULT, array.values.data()) < 0) {
    DPT_CHECK_AS(kCheckpoint, !h5::last_error_is_checksum())
        << path << ": checksum mismatch in " << name << " (Fletcher32)";
    H5_THROW(kCheckpoint) << context << ": cannot read";
  }
  const int64_t actual = crc32_of(array.values);
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
  h5::MemoryFile out(bytes, path);
  for (std::size_t i = 0; i < file.arrays.size(); ++i) {
    const Array& array = file.arrays[i];
    h5::Handle dataset =
        h5::write_checked_dataset(out.get(), array.name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT,
                                  array.shape, array.values.data(), path);
    h5::write_int64_attribute(dataset.get(), "index", static_cast<int64_t>(i), path);
    h5::write_int64_attribute(dataset.get(), "crc32", crc32_of(array.values), path);
    H5_CHECK(ErrorKind::kIo, dataset.close()) << path << ": writing " << array.name;
  }
  for (const auto& [key, value] : file.attributes) {
    h5::write_string_attribute(out.get(), key, value, path);
  }
  const std::string_view image = out.finish();
  write_file_atomically(path, image.data(), image.size());
}

ArrayFile read_array_file(const std::string& path) {
  const h5::LibraryLock lock;
  h5::Handle file = h5::open_file(path, kCheckpoint);
  ArrayFile result;
  std::vector<std::string> attribute_names;
  H5_CHECK(kCheckpoint, H5Aiterate2(file.get(), H5_INDEX_NAME, H5_ITER_INC, nullptr,
                                    collect_attribute, &attribute_names))
      << path << ": cannot list attributes";
  for (const std::string& name : attribute_names) {
    result.attributes[name] = h5::read_string_attribute(file.get(), name, kCheckpoint, path);
  }

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
    Array array = read_array(file.get(), name, path, index);
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
