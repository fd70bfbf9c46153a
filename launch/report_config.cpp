// The config summary at the top of the report page (summarize_config, launch/report.h): the
// model as layers and a parameter count, loss, optimizer and schedule, training, data and device
// settings of a run's config.prototxt.
#include "launch/report.h"

#include <fmt/core.h>

#include <algorithm>
#include <cctype>

#include <google/protobuf/descriptor.h>

#include "core/config.h"
#include "devices/error.h"

namespace dpt {

namespace {

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// The set member of the oneof "kind" of `message` ("adamw", "cosine", "dense"), and its body.
std::string oneof_kind(const google::protobuf::Message& message, std::string* body = nullptr) {
  const google::protobuf::OneofDescriptor* oneof = message.GetDescriptor()->FindOneofByName("kind");
  const google::protobuf::FieldDescriptor* field =
      oneof ? message.GetReflection()->GetOneofFieldDescriptor(message, oneof) : nullptr;
  if (field == nullptr) return "";
  if (body != nullptr && field->type() == google::protobuf::FieldDescriptor::TYPE_MESSAGE) {
    *body = message.GetReflection()->GetMessage(message, field).ShortDebugString();
  }
  return field->name();
}

}  // namespace

ConfigSummary summarize_config(const std::string& text) {
  ConfigSummary summary;
  if (text.empty()) {
    summary.error = "no config.prototxt in the run directory";
    return summary;
  }
  proto::Config c;
  try {
    c = parse_config(text, "config.prototxt");
  } catch (const Error& e) {
    summary.error = e.what();
    return summary;
  }
  summary.name = c.name();
  std::string model = std::to_string(c.model().input_size());
  int64_t inputs = c.model().input_size(), params = 0;
  for (const proto::LayerConfig& layer : c.model().layer()) {
    model += " → ";
    if (layer.has_dense()) {
      model += fmt::format("dense {}", layer.dense().units());
      params += layer.dense().units() * inputs + (layer.dense().bias() ? layer.dense().units() : 0);
      inputs = layer.dense().units();
    } else if (layer.has_activation()) {
      model += lower(proto::ActivationKind_Name(layer.activation().kind()));
    } else if (layer.has_dropout()) {
      model += fmt::format("dropout {:g}", layer.dropout().rate());
    } else {
      model += oneof_kind(layer);
    }
  }
  summary.rows.emplace_back("model", model);
  summary.rows.emplace_back("parameters", report_number(static_cast<double>(params)));
  summary.rows.emplace_back("loss", lower(proto::LossKind_Name(c.model().loss())));
  const proto::OptimizerConfig& o = c.optimizer();
  std::string body;
  const std::string optimizer = oneof_kind(o, &body);
  summary.rows.emplace_back("optimizer", fmt::format("{}, lr {:g}{}{}", optimizer, o.lr(),
                                                     body.empty() ? "" : "; ", body));
  body.clear();
  const std::string schedule = oneof_kind(o.schedule(), &body);
  summary.rows.emplace_back(
      "lr schedule",
      fmt::format(
          "{}{}{}{}", schedule, body.empty() ? "" : " (" + body + ")",
          o.schedule().warmup_steps() > 0
              ? fmt::format(", warmup {} steps", o.schedule().warmup_steps())
              : "",
          o.clip_grad_norm() > 0 ? fmt::format("; clip grad norm {:g}", o.clip_grad_norm()) : ""));
  const proto::TrainConfig& t = c.train();
  std::string train = fmt::format("batch {}", t.batch_size());
  if (t.micro_batch_size() > 0 && t.micro_batch_size() != t.batch_size()) {
    train += fmt::format(" (micro {})", t.micro_batch_size());
  }
  train += fmt::format(", {} epochs", t.epochs());
  if (t.max_steps() > 0) train += fmt::format(", at most {} steps", t.max_steps());
  train += fmt::format(", log every {} steps", t.log_every_steps());
  summary.rows.emplace_back("training", train);
  summary.rows.emplace_back(
      "data", c.data().train_path() +
                  (c.data().test_path().empty() ? "" : ", test " + c.data().test_path()));
  summary.rows.emplace_back(
      "device", fmt::format("{}; comm {}, buckets {:g} MiB{}",
                            lower(proto::DeviceChoice_Name(c.device().kind())), c.comm().backend(),
                            c.comm().bucket_mb(), c.comm().overlap() ? ", overlapped" : ""));
  return summary;
}

}  // namespace dpt
