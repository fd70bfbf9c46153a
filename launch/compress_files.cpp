// Where `dpt compress` writes, and the writing (see compress_files.h).
#include "launch/compress_files.h"

#include <unistd.h>

#include <filesystem>

#include "core/atomic_file.h"
#include "core/config.h"
#include "core/dataset.h"
#include "core/int8_file.h"
#include "devices/error.h"

namespace dpt {
namespace {

namespace fs = std::filesystem;

}  // namespace

std::string default_finetune_dir(const std::string& out) {
  const fs::path path(out);
  return (path.parent_path() / (path.stem().string() + "_finetune")).string();
}

std::string config_path_for(const std::string& out) {
  return fs::path(out).replace_extension(".prototxt").string();
}

std::string fp32_sibling(const std::string& out) {
  const fs::path path(out);
  return (path.parent_path() / (path.stem().string() + "_fp32" + path.extension().string()))
      .string();
}

void prepare_out_dir(const std::string& out) {
  const fs::path parent = fs::path(out).parent_path();
  const std::string dir = parent.empty() ? "." : parent.string();
  std::error_code error;
  fs::create_directories(dir, error);
  DPT_CHECK_AS(ErrorKind::kIo, !error && ::access(dir.c_str(), W_OK) == 0)
      << out << ": cannot write it: " << dir << " is not a writable directory";
}

std::string save_state(const PruneState& state, Device& device, const std::string& path,
                       const std::string& from, const std::string& method) {
  const std::unique_ptr<Model> model = build_model(device, state.config, state.params);
  const std::string config_text = config_to_text(state.config);
  model->save_weights(path, {{"config", config_text},
                             {"name", state.config.name()},
                             {"compressed_from", from},
                             {"compression", method}});
  if (state.hidden == state.hidden_original) return "";
  const std::string config_path = config_path_for(path);
  write_file_atomically(config_path, config_text.data(), config_text.size());
  return config_path;
}

QuantizedModel quantize_to_file(Model& source, const proto::Config& source_config,
                                const std::string& path, const std::string& from,
                                const std::string& method, bool shapes_changed) {
  const Dataset train = load_dataset(source_config.data().train_path());
  QuantizedModel quantized =
      quantize_model(source, train, normalization_from(source_config.data()),
                     quantize_options_from(source_config.compress().quantize()));
  const std::string config_text = config_to_text(source_config);
  save_quantized_model(
      path, quantized,
      {{"config", config_text}, {"compressed_from", from}, {"compression", method}});
  if (shapes_changed) {
    write_file_atomically(config_path_for(path), config_text.data(), config_text.size());
  }
  return quantized;
}

}  // namespace dpt
