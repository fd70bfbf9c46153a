// --set overrides: "a.b[i].c=value" walked with protobuf reflection and applied to a copy of the
// config, which replaces the original only when the whole assignment succeeded. Each override
// remembers the field paths it wrote so that a later validation error can blame "--set ...".
// Value syntax is protobuf text format; string fields also take unquoted text.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/message.h>
#include <google/protobuf/text_format.h>

#include <cctype>
#include <memory>

#include "core/config.h"
#include "core/config_internal.h"
#include "devices/error.h"

namespace dpt {
namespace config_internal {
namespace {

namespace pb = google::protobuf;

// Keeps the first message the text parser reports, so it can go into our one-line error.
class FirstError : public pb::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (message_.empty()) message_ = message;
  }
  std::string message() const { return message_.empty() ? "not a valid value" : message_; }

 private:
  std::string message_;
};

struct Component {
  std::string name;
  int index = -1;  // -1: no [index] given
};

std::string trim(const std::string& text) {
  const auto begin = text.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  return text.substr(begin, text.find_last_not_of(" \t") - begin + 1);
}

// "model.layer[2].dense.units" -> {model}, {layer, 2}, {dense}, {units}.
std::vector<Component> parse_path(const std::string& path, const std::string& assignment) {
  std::vector<Component> components;
  std::size_t pos = 0;
  while (true) {
    Component component;
    while (pos < path.size() &&
           (std::isalnum(static_cast<unsigned char>(path[pos])) || path[pos] == '_')) {
      component.name += path[pos++];
    }
    bool ok = !component.name.empty();
    if (ok && pos < path.size() && path[pos] == '[') {
      const std::size_t close = path.find(']', pos);
      const std::string digits =
          close == std::string::npos ? "" : path.substr(pos + 1, close - pos - 1);
      ok = !digits.empty() && digits.size() <= 9 &&
           digits.find_first_not_of("0123456789") == std::string::npos;
      if (ok) component.index = std::stoi(digits);
      pos = ok ? close + 1 : path.size();
    }
    DPT_CHECK_AS(ErrorKind::kConfig, ok)
        << "--set " << assignment << ": bad field path \"" << path
        << "\" (expected names joined by '.', repeated fields indexed as layer[2])";
    components.push_back(component);
    if (pos == path.size()) return components;
    DPT_CHECK_AS(ErrorKind::kConfig, path[pos] == '.')
        << "--set " << assignment << ": bad field path \"" << path << "\" (unexpected '"
        << path[pos] << "')";
    ++pos;
  }
}

std::string field_list(const pb::Descriptor* descriptor) {
  std::string names;
  for (int i = 0; i < descriptor->field_count(); ++i) {
    names += (i ? ", " : "") + descriptor->field(i)->name();
  }
  return names;
}

// Text format wants strings quoted; on a command line quotes are a nuisance, so add them.
std::string quote_if_string(const pb::FieldDescriptor* field, const std::string& value) {
  const bool quoted = !value.empty() && (value[0] == '"' || value[0] == '\'' ||
                                         (field->is_repeated() && value[0] == '['));
  if (field->cpp_type() != pb::FieldDescriptor::CPPTYPE_STRING || quoted) return value;
  std::string text = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') text += '\\';
    text += c == '\n' ? std::string("\\n") : std::string(1, c);
  }
  return text + "\"";
}

// The paths a message body wrote when merged into `before`: leaves, with repeated elements
// numbered after those already in `before` (merging appends); an empty message is itself a leaf.
void collect_paths(const pb::Message& body, const pb::Message& before, const std::string& path,
                   std::vector<std::string>& paths) {
  std::vector<const pb::FieldDescriptor*> fields;
  body.GetReflection()->ListFields(body, &fields);
  if (fields.empty()) paths.push_back(path);
  for (const pb::FieldDescriptor* field : fields) {
    const std::string child = path + "." + field->name();
    if (field->is_repeated()) {
      const int offset = before.GetReflection()->FieldSize(before, field);
      const int count = body.GetReflection()->FieldSize(body, field);
      for (int i = 0; i < count; ++i)
        paths.push_back(child + "[" + std::to_string(offset + i) + "]");
    } else if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      collect_paths(body.GetReflection()->GetMessage(body, field),
                    before.GetReflection()->GetMessage(before, field), child, paths);
    } else {
      paths.push_back(child);
    }
  }
}

// Sets the last field of the path: `message` owns `field`; `index` is -1 or in [0, size].
void set_field(pb::Message& message, const pb::FieldDescriptor* field, int index,
               const std::string& value, const std::string& path, OverrideRecord& record) {
  const pb::Reflection* reflection = message.GetReflection();
  FirstError errors;
  pb::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  parser.SetRecursionLimit(kConfigRecursionLimit);
  const std::string where = "--set " + record.assignment + ": " + path + ": ";
  const bool is_message = field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE;

  if (field->is_repeated() && index < 0) {
    // No index: the value (one element or a [list]) replaces the whole field.
    std::unique_ptr<pb::Message> fresh(message.New());
    DPT_CHECK_AS(
        ErrorKind::kConfig,
        parser.ParseFromString(field->name() + ": " + quote_if_string(field, value), fresh.get()))
        << where << errors.message();
    reflection->SwapFields(&message, fresh.get(), {field});
    record.paths.push_back(path);
    return;
  }
  if (is_message) {
    DPT_CHECK_AS(ErrorKind::kConfig,
                 value.size() >= 2 && value.front() == '{' && value.back() == '}')
        << where << "a message takes a body in braces, e.g. " << path << "={ ... } (got \"" << value
        << "\")";
    const bool append = index >= 0 && index == reflection->FieldSize(message, field);
    pb::Message* target = !field->is_repeated() ? reflection->MutableMessage(&message, field)
                          : append              ? reflection->AddMessage(&message, field)
                                   : reflection->MutableRepeatedMessage(&message, field, index);
    std::unique_ptr<pb::Message> body(target->New());
    DPT_CHECK_AS(ErrorKind::kConfig,
                 parser.ParseFromString(value.substr(1, value.size() - 2), body.get()))
        << where << errors.message();
    if (append) {
      record.paths.push_back(path);
    } else {
      collect_paths(*body, *target, path, record.paths);
    }
    target->MergeFrom(*body);
    return;
  }
  DPT_CHECK_AS(ErrorKind::kConfig,
               parser.ParseFieldValueFromString(quote_if_string(field, value), field, &message))
      << where << errors.message() << " (got \"" << value << "\")";
  if (field->is_repeated()) {
    // ParseFieldValueFromString appended; move the new value into place.
    const int last = reflection->FieldSize(message, field) - 1;
    if (index < last) {
      reflection->SwapElements(&message, field, index, last);
      reflection->RemoveLast(&message, field);
    }
  }
  record.paths.push_back(path);
}

}  // namespace

OverrideRecord apply_override_recorded(proto::Config& config, const std::string& assignment) {
  OverrideRecord record{assignment, {}};
  const std::size_t equals = assignment.find('=');
  DPT_CHECK_AS(ErrorKind::kConfig, equals != std::string::npos)
      << "--set " << assignment << ": expected field.path=value (no '=' found)";
  const std::string path_text = trim(assignment.substr(0, equals));
  const std::string value = trim(assignment.substr(equals + 1));
  const std::vector<Component> components = parse_path(path_text, assignment);

  proto::Config copy = config;
  pb::Message* message = &copy;
  std::string path;
  for (std::size_t i = 0; i < components.size(); ++i) {
    const Component& component = components[i];
    const pb::Descriptor* descriptor = message->GetDescriptor();
    const pb::FieldDescriptor* field = descriptor->FindFieldByName(component.name);
    DPT_CHECK_AS(ErrorKind::kConfig, field != nullptr)
        << "--set " << assignment << ": no field \"" << component.name << "\" in "
        << descriptor->full_name() << " (fields: " << field_list(descriptor) << ")";
    path += (path.empty() ? "" : ".") + component.name;
    const bool last = i + 1 == components.size();
    const pb::Reflection* reflection = message->GetReflection();
    const int size = field->is_repeated() ? reflection->FieldSize(*message, field) : 0;
    if (component.index >= 0) {
      DPT_CHECK_AS(ErrorKind::kConfig, field->is_repeated())
          << "--set " << assignment << ": " << path << " is not repeated and takes no [index]";
      DPT_CHECK_AS(ErrorKind::kConfig, component.index <= size)
          << "--set " << assignment << ": index " << component.index << " is out of range for "
          << path << " (it has " << size << " elements; [" << size << "] appends one)";
      path += "[" + std::to_string(component.index) + "]";
    }
    if (last) {
      set_field(*message, field, component.index, value, path, record);
      break;
    }
    DPT_CHECK_AS(ErrorKind::kConfig, field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE)
        << "--set " << assignment << ": " << path << " is a " << field->type_name()
        << " field, not a message";
    DPT_CHECK_AS(ErrorKind::kConfig, !field->is_repeated() || component.index >= 0)
        << "--set " << assignment << ": " << path << " is repeated; give an index, e.g. " << path
        << "[0]";
    if (!field->is_repeated()) {
      message = reflection->MutableMessage(message, field);  // switches a oneof to this member
    } else if (component.index == size) {
      message = reflection->AddMessage(message, field);
    } else {
      message = reflection->MutableRepeatedMessage(message, field, component.index);
    }
  }
  config.Swap(&copy);
  return record;
}

}  // namespace config_internal

void apply_override(proto::Config& config, const std::string& assignment) {
  config_internal::apply_override_recorded(config, assignment);
}

}  // namespace dpt
