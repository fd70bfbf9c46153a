// Loading, writing and batching datasets in dpt's HDF5 layout (see dataset.h). Loading checks
// types, shapes and the size cap before allocating, reads labels in blocks (they may be stored
// as any integer type) and range-checks each one; writing goes through write_file_atomically.
#include "core/dataset.h"

#include <algorithm>

#include "core/atomic_file.h"
#include "core/hdf5_util.h"
#include "devices/error.h"

namespace dpt {
namespace {

constexpr int64_t kLabelBlock = int64_t{1} << 20;

// Reads the selected part of `dataset`; a Fletcher32 failure gets its own message.
void read_checked(hid_t dataset, hid_t memory_type, hid_t memory_space, hid_t file_space, void* out,
                  const std::string& path, const char* name) {
  if (H5Dread(dataset, memory_type, memory_space, file_space, H5P_DEFAULT, out) >= 0) return;
  DPT_CHECK_AS(ErrorKind::kData, !h5::last_error_is_checksum())
      << path << ": checksum error reading " << name << " (Fletcher32)";
  H5_THROW(ErrorKind::kData) << path << ": cannot read " << name;
}

h5::Handle dataset_type(hid_t dataset, const std::string& path, const char* name) {
  h5::Handle type(H5Dget_type(dataset));
  H5_CHECK(ErrorKind::kData, type.get()) << path << ": cannot read the type of " << name;
  return type;
}

void read_labels(hid_t labels, int64_t size, int64_t num_classes, const std::string& path,
                 std::vector<int32_t>& out) {
  h5::Handle file_space(H5Dget_space(labels));
  H5_CHECK(ErrorKind::kData, file_space.get()) << path << ": cannot read /labels";
  out.resize(size);
  std::vector<int64_t> block(std::min(size, kLabelBlock));
  for (int64_t start = 0; start < size; start += kLabelBlock) {
    const hsize_t offset = start;
    const hsize_t count = std::min(kLabelBlock, size - start);
    H5_CHECK(ErrorKind::kData, H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, &offset,
                                                   nullptr, &count, nullptr))
        << path << ": cannot read /labels";
    h5::Handle memory_space(H5Screate_simple(1, &count, nullptr));
    H5_CHECK(ErrorKind::kData, memory_space.get()) << path << ": cannot read /labels";
    read_checked(labels, H5T_NATIVE_INT64, memory_space.get(), file_space.get(), block.data(), path,
                 "/labels");
    for (hsize_t i = 0; i < count; ++i) {
      const int64_t label = block[i];
      DPT_CHECK_AS(ErrorKind::kData, label >= 0 && label < num_classes)
          << path << ": /labels[" << start + static_cast<int64_t>(i) << "] = " << label
          << " is outside [0, " << num_classes << ")";
      out[start + i] = static_cast<int32_t>(label);
    }
  }
}

// Copies rows with (raw * scale - mean) / std; uint8 inputs go through a 256-entry table.
template <typename Out>
void gather_rows(const Dataset& dataset, const int64_t* indices, int64_t n,
                 const Normalization& norm, Out* out) {
  const int64_t width = dataset.feature_size;
  const Out scale = norm.scale, mean = norm.mean, std = norm.std;
  if (!dataset.inputs_u8.empty()) {
    Out table[256];
    for (int v = 0; v < 256; ++v) table[v] = (static_cast<Out>(v) * scale - mean) / std;
    for (int64_t row = 0; row < n; ++row) {
      const uint8_t* source = dataset.inputs_u8.data() + indices[row] * width;
      Out* target = out + row * width;
      for (int64_t j = 0; j < width; ++j) target[j] = table[source[j]];
    }
    return;
  }
  for (int64_t row = 0; row < n; ++row) {
    const float* source = dataset.inputs_f32.data() + indices[row] * width;
    Out* target = out + row * width;
    for (int64_t j = 0; j < width; ++j)
      target[j] = (static_cast<Out>(source[j]) * scale - mean) / std;
  }
}

}  // namespace

Dataset load_dataset(const std::string& path) {
  const h5::LibraryLock lock;
  const ErrorKind kData = ErrorKind::kData;
  h5::Handle file = h5::open_file(path, kData);
  Dataset dataset;
  dataset.path = path;
  dataset.num_classes = h5::read_int64_attribute(file.get(), "num_classes", kData, path);
  DPT_CHECK_AS(kData, dataset.num_classes >= 1 && dataset.num_classes <= INT32_MAX)
      << path << ": attribute num_classes = " << dataset.num_classes << " is outside [1, "
      << INT32_MAX << "]";
  // Files from users' own tools may omit "format"; when present it must be ours.
  const htri_t has_format = H5Aexists(file.get(), "format");
  H5_CHECK(kData, has_format) << path << ": cannot look up attribute format";
  if (has_format > 0) {
    const std::string format = h5::read_string_attribute(file.get(), "format", kData, path);
    DPT_CHECK_AS(kData, format == kDatasetFormat)
        << path << ": attribute format = \"" << format << "\", want \"" << kDatasetFormat << "\"";
  }

  h5::Handle inputs = h5::open_dataset(file.get(), "/inputs", kData, path);
  h5::Handle labels = h5::open_dataset(file.get(), "/labels", kData, path);
  const h5::Handle input_type = dataset_type(inputs.get(), path, "/inputs");
  const std::size_t input_bytes = H5Tget_size(input_type.get());
  const bool is_u8 = H5Tget_class(input_type.get()) == H5T_INTEGER && input_bytes == 1 &&
                     H5Tget_sign(input_type.get()) == H5T_SGN_NONE;
  const bool is_f32 = H5Tget_class(input_type.get()) == H5T_FLOAT && input_bytes == 4;
  DPT_CHECK_AS(kData, is_u8 || is_f32)
      << path << ": /inputs is " << h5::type_name(input_type.get()) << ", want uint8 or float32";
  const Shape shape = h5::dataset_shape(inputs.get(), kData, path + ": /inputs");
  DPT_CHECK_AS(kData, shape.size() >= 2)
      << path << ": /inputs has shape " << shape_string(shape) << ", want [N, d1, ...]";
  for (int64_t dim : shape) {
    DPT_CHECK_AS(kData, dim > 0) << path << ": /inputs has shape " << shape_string(shape)
                                 << " with an empty dimension";
  }
  h5::checked_bytes(shape, input_bytes, kMaxDatasetBytes, kData, path + ": /inputs");

  const h5::Handle label_type = dataset_type(labels.get(), path, "/labels");
  DPT_CHECK_AS(kData,
               H5Tget_class(label_type.get()) == H5T_INTEGER && H5Tget_size(label_type.get()) <= 8)
      << path << ": /labels is " << h5::type_name(label_type.get()) << ", want an integer type";
  const Shape label_shape = h5::dataset_shape(labels.get(), kData, path + ": /labels");
  DPT_CHECK_AS(kData, label_shape.size() == 1)
      << path << ": /labels has shape " << shape_string(label_shape) << ", want [N]";
  DPT_CHECK_AS(kData, label_shape[0] == shape[0])
      << path << ": /inputs has " << shape[0] << " samples but /labels has " << label_shape[0];

  dataset.size = shape[0];
  dataset.sample_shape.assign(shape.begin() + 1, shape.end());
  dataset.feature_size = shape_numel(dataset.sample_shape);
  const std::size_t numel = static_cast<std::size_t>(shape_numel(shape));
  if (is_u8) {
    dataset.inputs_u8.resize(numel);
    read_checked(inputs.get(), H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, dataset.inputs_u8.data(), path,
                 "/inputs");
  } else {
    dataset.inputs_f32.resize(numel);
    read_checked(inputs.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, dataset.inputs_f32.data(), path,
                 "/inputs");
  }
  read_labels(labels.get(), dataset.size, dataset.num_classes, path, dataset.labels);
  return dataset;
}

void write_dataset(const std::string& path, const std::vector<uint8_t>& inputs, const Shape& shape,
                   const std::vector<int32_t>& labels, int64_t num_classes) {
  const h5::LibraryLock lock;
  DPT_CHECK(shape.size() >= 2 && shape_numel(shape) == static_cast<int64_t>(inputs.size()))
      << path << ": write_dataset got " << inputs.size() << " input values for shape "
      << shape_string(shape) << " (want [N, d1, ...])";
  for (int64_t dim : shape) {
    DPT_CHECK(dim > 0) << path << ": write_dataset got shape " << shape_string(shape)
                       << " with an empty dimension";
  }
  DPT_CHECK(static_cast<int64_t>(labels.size()) == shape[0])
      << path << ": write_dataset got " << labels.size() << " labels for " << shape[0]
      << " samples";
  DPT_CHECK(num_classes >= 1 && num_classes <= INT32_MAX)
      << path << ": write_dataset got num_classes = " << num_classes;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    DPT_CHECK(labels[i] >= 0 && labels[i] < num_classes)
        << path << ": label[" << i << "] = " << labels[i] << " is outside [0, " << num_classes
        << ")";
  }
  h5::MemoryFile file(inputs.size() + labels.size() * 4, path);
  h5::Handle inputs_set = h5::write_checked_dataset(file.get(), "inputs", H5T_STD_U8LE,
                                                    H5T_NATIVE_UINT8, shape, inputs.data(), path);
  H5_CHECK(ErrorKind::kIo, inputs_set.close()) << path << ": writing inputs";
  h5::Handle labels_set = h5::write_checked_dataset(
      file.get(), "labels", H5T_STD_I32LE, H5T_NATIVE_INT32, {shape[0]}, labels.data(), path);
  H5_CHECK(ErrorKind::kIo, labels_set.close()) << path << ": writing labels";
  h5::write_int64_attribute(file.get(), "num_classes", num_classes, path);
  h5::write_string_attribute(file.get(), "format", kDatasetFormat, path);
  const std::string_view image = file.finish();
  write_file_atomically(path, image.data(), image.size());
}

void gather_batch(const Dataset& dataset, const int64_t* indices, int64_t n,
                  const Normalization& normalization, Tensor& inputs, int32_t* labels) {
  DPT_CHECK(n >= 0 && (n == 0 || (indices != nullptr && labels != nullptr)))
      << "gather_batch: n = " << n << " with null indices or labels";
  DPT_CHECK(inputs.device().kind() == DeviceKind::kCpu) << "gather_batch: inputs not on the CPU";
  DPT_CHECK(inputs.ndim() == 2 && inputs.dim(0) >= n && inputs.dim(1) == dataset.feature_size)
      << "gather_batch: inputs have shape " << shape_string(inputs.shape()) << ", want [>= " << n
      << ", " << dataset.feature_size << "]";
  const std::size_t numel = static_cast<std::size_t>(dataset.size * dataset.feature_size);
  DPT_CHECK(static_cast<int64_t>(dataset.labels.size()) == dataset.size &&
            (dataset.inputs_u8.size() == numel ||
             (dataset.inputs_u8.empty() && dataset.inputs_f32.size() == numel)))
      << "gather_batch: " << dataset.path << " does not hold inputs and labels for " << dataset.size
      << " samples";
  DPT_CHECK(normalization.std != 0.0f) << "gather_batch: normalization std is 0";
  for (int64_t i = 0; i < n; ++i) {
    DPT_CHECK(indices[i] >= 0 && indices[i] < dataset.size)
        << "gather_batch: indices[" << i << "] = " << indices[i] << " is outside [0, "
        << dataset.size << ")";
    labels[i] = dataset.labels[indices[i]];
  }
  if (inputs.dtype() == DType::kF32) {
    gather_rows(dataset, indices, n, normalization, inputs.data<float>());
  } else {
    gather_rows(dataset, indices, n, normalization, inputs.data<double>());
  }
}

}  // namespace dpt
