// Loading and printing run configs: reads the file (size-capped), parses protobuf text format
// strictly (unknown fields, bad enums, out-of-range integers, duplicates and syntax errors are all
// errors, reported one-based as file:line:col), applies --set overrides, validates with the
// parser's locations (config_validate.cpp), and fills in defaults so the result says what runs.
#include "core/config.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>
#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "core/config_internal.h"
#include "devices/error.h"

namespace dpt {
namespace {

namespace pb = google::protobuf;

// Keeps the first error; the parser's line and column are zero-based.
class FirstError : public pb::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (!has_error_) {
      has_error_ = true;
      line_ = line;
      column_ = column;
      message_ = message;
    }
  }
  // "cfg.prototxt:3:7: message", one-based.
  std::string text(const std::string& source_name) const {
    if (!has_error_) return source_name + ": not a valid config";
    return source_name + ":" + std::to_string(line_ + 1) + ":" + std::to_string(column_ + 1) +
           ": " + message_;
  }

 private:
  bool has_error_ = false;
  int line_ = 0;
  int column_ = 0;
  std::string message_;
};

[[noreturn]] void too_large(const std::string& source_name, const std::string& size) {
  DPT_THROW(ErrorKind::kConfig) << source_name << ": file is " << size << " bytes, larger than the "
                                << kMaxConfigBytes << "-byte limit for configs";
}

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};

std::string read_config_file(const std::string& path) {
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  DPT_CHECK_AS(ErrorKind::kConfig, file != nullptr)
      << path << ": cannot open config: " << std::strerror(errno);
  // Refuse before reading; the read loop below also caps pipes and files that grow meanwhile.
  struct stat info {};
  if (fstat(fileno(file.get()), &info) == 0 && S_ISREG(info.st_mode) &&
      static_cast<std::size_t>(info.st_size) > kMaxConfigBytes) {
    too_large(path, std::to_string(info.st_size));
  }
  std::string text;
  char buffer[1 << 16];
  while (std::size_t count = std::fread(buffer, 1, sizeof buffer, file.get())) {
    text.append(buffer, count);
    if (text.size() > kMaxConfigBytes) too_large(path, "more than " + std::to_string(text.size()));
  }
  DPT_CHECK_AS(ErrorKind::kConfig, !std::ferror(file.get()))
      << path << ": cannot read config: " << std::strerror(errno);
  return text;
}

// Sets every unset singular scalar to its default and recurses into every singular message
// field except unset oneof members (a oneof says which one applies; instantiating would switch).
void resolve_message(pb::Message& message) {
  const pb::Descriptor* descriptor = message.GetDescriptor();
  const pb::Reflection* reflection = message.GetReflection();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const pb::FieldDescriptor* field = descriptor->field(i);
    const bool has = !field->is_repeated() && reflection->HasField(message, field);
    if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      if (field->is_repeated()) {
        for (int j = 0; j < reflection->FieldSize(message, field); ++j) {
          resolve_message(*reflection->MutableRepeatedMessage(&message, field, j));
        }
      } else if (has || field->containing_oneof() == nullptr) {
        resolve_message(*reflection->MutableMessage(&message, field));
      }
      continue;
    }
    if (field->is_repeated() || has || field->containing_oneof() != nullptr) continue;
    switch (field->cpp_type()) {
      case pb::FieldDescriptor::CPPTYPE_INT32:
        reflection->SetInt32(&message, field, field->default_value_int32());
        break;
      case pb::FieldDescriptor::CPPTYPE_INT64:
        reflection->SetInt64(&message, field, field->default_value_int64());
        break;
      case pb::FieldDescriptor::CPPTYPE_UINT32:
        reflection->SetUInt32(&message, field, field->default_value_uint32());
        break;
      case pb::FieldDescriptor::CPPTYPE_UINT64:
        reflection->SetUInt64(&message, field, field->default_value_uint64());
        break;
      case pb::FieldDescriptor::CPPTYPE_FLOAT:
        reflection->SetFloat(&message, field, field->default_value_float());
        break;
      case pb::FieldDescriptor::CPPTYPE_DOUBLE:
        reflection->SetDouble(&message, field, field->default_value_double());
        break;
      case pb::FieldDescriptor::CPPTYPE_BOOL:
        reflection->SetBool(&message, field, field->default_value_bool());
        break;
      case pb::FieldDescriptor::CPPTYPE_ENUM:
        reflection->SetEnum(&message, field, field->default_value_enum());
        break;
      case pb::FieldDescriptor::CPPTYPE_STRING:
        reflection->SetString(&message, field, field->default_value_string());
        break;
      case pb::FieldDescriptor::CPPTYPE_MESSAGE:
        break;
    }
  }
}

}  // namespace

namespace config_internal {

std::string float_text(float value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char text[32];
  for (int precision = 1; precision <= 9; ++precision) {
    std::snprintf(text, sizeof text, "%.*g", precision, static_cast<double>(value));
    if (std::strtof(text, nullptr) == value) break;
  }
  return text;
}

}  // namespace config_internal

proto::Config parse_config(const std::string& text, const std::string& source_name,
                           const std::vector<std::string>& overrides) {
  if (text.size() > kMaxConfigBytes) too_large(source_name, std::to_string(text.size()));
  FirstError errors;
  pb::TextFormat::ParseInfoTree tree;
  pb::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  parser.WriteLocationsTo(&tree);
  parser.SetRecursionLimit(kConfigRecursionLimit);
  proto::Config config;
  DPT_CHECK_AS(ErrorKind::kConfig, parser.ParseFromString(text, &config))
      << errors.text(source_name);

  std::vector<config_internal::OverrideRecord> records;
  for (const std::string& assignment : overrides) {
    records.push_back(config_internal::apply_override_recorded(config, assignment));
  }
  // Validate before resolving: resolving sets every field, which would hide "required".
  config_internal::validate_with_provenance(config, {source_name, &tree, &records});
  resolve_defaults(config);
  return config;
}

proto::Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  return parse_config(read_config_file(path), path, overrides);
}

void validate_config(const proto::Config& config, const std::string& source_name) {
  config_internal::validate_with_provenance(config, {source_name, nullptr, nullptr});
}

void resolve_defaults(proto::Config& config) {
  // Names first: layer_name() reads the kinds and indices, which resolving does not change.
  for (int i = 0; i < config.model().layer_size(); ++i) {
    const std::string name = layer_name(config, i);
    config.mutable_model()->mutable_layer(i)->set_name(name);
  }
  proto::OptimizerConfig& optimizer = *config.mutable_optimizer();
  if (optimizer.kind_case() == proto::OptimizerConfig::KIND_NOT_SET) optimizer.mutable_sgd();
  proto::LrScheduleConfig& schedule = *optimizer.mutable_schedule();
  if (schedule.kind_case() == proto::LrScheduleConfig::KIND_NOT_SET) schedule.mutable_constant();
  resolve_message(config);
}

std::string config_to_text(const proto::Config& config) {
  proto::Config resolved = config;
  resolve_defaults(resolved);
  std::string text;
  DPT_CHECK(pb::TextFormat::PrintToString(resolved, &text)) << "config_to_text: printing failed";
  return text;
}

std::string layer_name(const proto::Config& config, int index) {
  const int count = config.model().layer_size();
  DPT_CHECK(index >= 0 && index < count)
      << "layer_name: index " << index << " is outside [0, " << count << ")";
  const proto::LayerConfig& layer = config.model().layer(index);
  if (!layer.name().empty()) return layer.name();
  std::string kind;
  switch (layer.kind_case()) {
    case proto::LayerConfig::kDense:
      kind = "dense";
      break;
    case proto::LayerConfig::kDropout:
      kind = "dropout";
      break;
    case proto::LayerConfig::kActivation:
      for (char c : proto::ActivationKind_Name(layer.activation().kind())) {
        kind += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      }
      break;
    case proto::LayerConfig::KIND_NOT_SET:
      kind = "layer";
      break;
  }
  return kind + std::to_string(index);
}

}  // namespace dpt
