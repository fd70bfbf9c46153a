// The machinery of the config Validator (core/config_validator.h): a message's path and where it
// was written (a file line:column or a --set override), the prefix of an error message that points
// at it, and the range checks every rule uses. The rules themselves are in config_validate*.cpp.
#include <google/protobuf/descriptor.h>

#include <cmath>

#include "core/config.h"
#include "core/config_internal.h"
#include "core/config_validator.h"
#include "devices/error.h"

namespace dpt::config_internal {
namespace {

// Where value `index` of `field` was written. The parser records one location per occurrence of
// the field name, and a list "[1, 2]" is one occurrence, so indices only line up when every
// element was written on its own; otherwise fall back to the only occurrence, if there is one.
Location field_location(const Node& node, const pb::FieldDescriptor* field, int index) {
  if (node.tree == nullptr) return {};
  if (!field->is_repeated()) return node.tree->GetLocation(field, -1);
  int recorded = 0;
  while (node.tree->GetLocation(field, recorded).line >= 0) ++recorded;
  const int size = node.message->GetReflection()->FieldSize(*node.message, field);
  if (index >= 0 && recorded == size) return node.tree->GetLocation(field, index);
  return recorded == 1 ? node.tree->GetLocation(field, 0) : Location{};
}

// `a` is `b` or one of its parents or children, as paths ("x.y" and "x.y[2].z").
bool related(const std::string& a, const std::string& b) {
  const std::string& shorter = a.size() <= b.size() ? a : b;
  const std::string& longer = a.size() <= b.size() ? b : a;
  if (longer.compare(0, shorter.size(), shorter) != 0) return false;
  return longer.size() == shorter.size() || longer[shorter.size()] == '.' ||
         longer[shorter.size()] == '[';
}

}  // namespace

// A string for a one-line message: quoted, with control characters escaped.
std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      const char digits[] = "0123456789abcdef";
      out += std::string("\\x") + digits[byte >> 4] + digits[byte & 15];
    } else {
      out += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
    }
  }
  return out + "\"";
}

const pb::FieldDescriptor* Validator::field_of(const Node& node, const char* name) const {
  const pb::FieldDescriptor* field = node.message->GetDescriptor()->FindFieldByName(name);
  DPT_CHECK(field != nullptr) << "config validation: no field " << name << " in "
                              << node.message->GetDescriptor()->full_name();
  return field;
}
std::string Validator::join(const std::string& path, const std::string& name, int index) {
  return (path.empty() ? name : path + "." + name) +
         (index >= 0 ? "[" + std::to_string(index) + "]" : "");
}

Node Validator::child(const Node& node, const char* name, int index) const {
  const pb::FieldDescriptor* field = field_of(node, name);
  const pb::Reflection* reflection = node.message->GetReflection();
  const pb::Message& message = index < 0
                                   ? reflection->GetMessage(*node.message, field)
                                   : reflection->GetRepeatedMessage(*node.message, field, index);
  return Node{&message, join(node.path, name, index),
              node.tree ? node.tree->GetTreeForNested(field, index) : nullptr,
              field_location(node, field, index)};
}

// "--set a=b: " when an override wrote at or around `path` (the last such wins, since it was
// applied last), else "file:line:col: " (one-based) when the file set it, else "file: ".
std::string Validator::prefix(const std::string& path, Location location) const {
  if (provenance_.overrides != nullptr) {
    for (auto it = provenance_.overrides->rbegin(); it != provenance_.overrides->rend(); ++it) {
      for (const std::string& written : it->paths) {
        if (related(written, path)) return "--set " + it->assignment + ": ";
      }
    }
  }
  if (location.line >= 0) {
    return provenance_.source_name + ":" + std::to_string(location.line + 1) + ":" +
           std::to_string(location.column + 1) + ": ";
  }
  return provenance_.source_name + ": ";
}

void Validator::fail_node(const Node& node, const std::string& what) const {
  DPT_THROW(ErrorKind::kConfig) << prefix(node.path, node.location) << node.path << ": " << what;
}
void Validator::fail(const Node& node, const char* name, const std::string& what, int index) const {
  const std::string path = join(node.path, name, index);
  DPT_THROW(ErrorKind::kConfig) << prefix(path, field_location(node, field_of(node, name), index))
                                << path << ": " << what;
}
// Required values that were never set have no location and no override to blame.
void Validator::require(const Node& node, const char* name) const {
  if (!node.message->GetReflection()->HasField(*node.message, field_of(node, name))) {
    DPT_THROW(ErrorKind::kConfig) << provenance_.source_name << ": " << join(node.path, name, -1)
                                  << ": required";
  }
}

void Validator::check_float(const Node& node, const char* name, float value,
                            const Range& range) const {
  if (!std::isfinite(value)) fail(node, name, "must be finite (got " + float_text(value) + ")");
  if (!range.contains(value)) {
    fail(node, name, std::string("must be ") + range.text + " (got " + float_text(value) + ")");
  }
}
void Validator::check_int(const Node& node, const char* name, int64_t value,
                          const Range& range) const {
  if (!range.contains(static_cast<double>(value))) {
    fail(node, name, std::string("must be ") + range.text + " (got " + std::to_string(value) + ")");
  }
}

}  // namespace dpt::config_internal
