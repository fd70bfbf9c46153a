// Scalar string and int64 attributes (declared in hdf5_util.h). Readers check the stored type
// and size before reading, since attribute values come from files that may be hostile.
#include <algorithm>
#include <vector>

#include "core/hdf5_util.h"

namespace dpt::h5 {
namespace {

constexpr std::size_t kMaxStringBytes = std::size_t{64} << 20;

void write_attribute(hid_t object, const std::string& name, hid_t type, const void* value,
                     const std::string& display_path) {
  const std::string where = display_path + ": writing attribute " + name;
  Handle space(H5Screate(H5S_SCALAR));
  H5_CHECK(ErrorKind::kIo, space.get()) << where;
  Handle attribute(H5Acreate2(object, name.c_str(), type, space.get(), H5P_DEFAULT, H5P_DEFAULT));
  H5_CHECK(ErrorKind::kIo, attribute.get()) << where;
  H5_CHECK(ErrorKind::kIo, H5Awrite(attribute.get(), type, value)) << where;
  H5_CHECK(ErrorKind::kIo, attribute.close()) << where;
}

// Opens attribute `name` holding exactly one value; returns it with its stored type.
Handle open_attribute(hid_t object, const std::string& name, ErrorKind kind,
                      const std::string& context, Handle& type) {
  const htri_t exists = H5Aexists(object, name.c_str());
  H5_CHECK(kind, exists) << context << ": cannot look up attribute " << name;
  DPT_CHECK_AS(kind, exists > 0) << context << ": missing attribute " << name;
  Handle attribute(H5Aopen(object, name.c_str(), H5P_DEFAULT));
  H5_CHECK(kind, attribute.get()) << context << ": cannot open attribute " << name;
  Handle space(H5Aget_space(attribute.get()));
  H5_CHECK(kind, space.get()) << context << ": cannot read attribute " << name;
  const hssize_t points = H5Sget_simple_extent_npoints(space.get());
  H5_CHECK(kind, points) << context << ": cannot read attribute " << name;
  DPT_CHECK_AS(kind, points == 1) << context << ": attribute " << name << " holds " << points
                                  << " values, want 1";
  type = Handle(H5Aget_type(attribute.get()));
  H5_CHECK(kind, type.get()) << context << ": cannot read attribute " << name;
  return attribute;
}

}  // namespace

void write_string_attribute(hid_t object, const std::string& name, const std::string& value,
                            const std::string& display_path) {
  const std::string where = display_path + ": writing attribute " + name;
  // Fixed-length, null-padded: HDF5 cannot store a zero-size string, so "" becomes one pad byte.
  std::string buffer = value;
  buffer.resize(std::max<std::size_t>(value.size(), 1), '\0');
  Handle type(H5Tcopy(H5T_C_S1));
  H5_CHECK(ErrorKind::kIo, type.get()) << where;
  H5_CHECK(ErrorKind::kIo, H5Tset_size(type.get(), buffer.size())) << where;
  H5_CHECK(ErrorKind::kIo, H5Tset_strpad(type.get(), H5T_STR_NULLPAD)) << where;
  H5_CHECK(ErrorKind::kIo, H5Tset_cset(type.get(), H5T_CSET_UTF8)) << where;
  write_attribute(object, name, type.get(), buffer.data(), display_path);
}

void write_int64_attribute(hid_t object, const std::string& name, int64_t value,
                           const std::string& display_path) {
  write_attribute(object, name, H5T_STD_I64LE, &value, display_path);
}

std::string read_string_attribute(hid_t object, const std::string& name, ErrorKind kind,
                                  const std::string& context) {
  Handle type;
  Handle attribute = open_attribute(object, name, kind, context, type);
  const std::string where = context + ": cannot read attribute " + name;
  DPT_CHECK_AS(kind, H5Tget_class(type.get()) == H5T_STRING)
      << context << ": attribute " << name << " is " << type_name(type.get()) << ", want a string";
  const htri_t variable = H5Tis_variable_str(type.get());
  H5_CHECK(kind, variable) << where;
  Handle memory_type(H5Tcopy(H5T_C_S1));
  H5_CHECK(kind, memory_type.get()) << where;
  // HDF5 converts neither ASCII <-> UTF-8 nor between paddings: read as stored.
  const H5T_cset_t cset = H5Tget_cset(type.get());
  H5_CHECK(kind, cset) << where;
  H5_CHECK(kind, H5Tset_cset(memory_type.get(), cset)) << where;
  if (variable > 0) {
    H5_CHECK(kind, H5Tset_size(memory_type.get(), H5T_VARIABLE)) << where;
    char* text = nullptr;
    H5_CHECK(kind, H5Aread(attribute.get(), memory_type.get(), &text)) << where;
    std::string value = text == nullptr ? "" : text;
    H5free_memory(text);
    return value;
  }
  const std::size_t size = H5Tget_size(type.get());
  DPT_CHECK_AS(kind, size > 0 && size <= kMaxStringBytes)
      << context << ": attribute " << name << " has " << size << " bytes, over the cap";
  const H5T_str_t pad = H5Tget_strpad(type.get());
  H5_CHECK(kind, H5Tset_size(memory_type.get(), size)) << where;
  H5_CHECK(kind, H5Tset_strpad(memory_type.get(), pad)) << where;
  std::string value(size, '\0');
  H5_CHECK(kind, H5Aread(attribute.get(), memory_type.get(), value.data())) << where;
  if (pad == H5T_STR_NULLTERM) {
    value.resize(std::min(value.find('\0'), value.size()));
  } else {
    const char filler = pad == H5T_STR_SPACEPAD ? ' ' : '\0';
    value.resize(value.find_last_not_of(filler) + 1);  // npos + 1 == 0: all padding
  }
  return value;
}

int64_t read_int64_attribute(hid_t object, const std::string& name, ErrorKind kind,
                             const std::string& context) {
  Handle type;
  Handle attribute = open_attribute(object, name, kind, context, type);
  const std::string where = context + ": cannot read attribute " + name;
  const bool is_unsigned = H5Tget_sign(type.get()) == H5T_SGN_NONE;
  DPT_CHECK_AS(kind, H5Tget_class(type.get()) == H5T_INTEGER && H5Tget_size(type.get()) <= 8)
      << context << ": attribute " << name << " is " << type_name(type.get())
      << ", want an integer";
  // Read unsigned 64-bit values as such: HDF5 would clamp values above INT64_MAX silently.
  if (is_unsigned && H5Tget_size(type.get()) == 8) {
    uint64_t value = 0;
    H5_CHECK(kind, H5Aread(attribute.get(), H5T_NATIVE_UINT64, &value)) << where;
    DPT_CHECK_AS(kind, value <= static_cast<uint64_t>(INT64_MAX))
        << context << ": attribute " << name << " = " << value << " is too large";
    return static_cast<int64_t>(value);
  }
  int64_t value = 0;
  H5_CHECK(kind, H5Aread(attribute.get(), H5T_NATIVE_INT64, &value)) << where;
  return value;
}

}  // namespace dpt::h5
