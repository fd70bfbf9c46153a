// check_same_run: hashes of (program, config without `device`, model, training data, test data),
// all-gathered.
#include "launch/fingerprint.h"

#include <fmt/core.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/message_differencer.h>

#include <cstring>
#include <string>
#include <vector>

#include "core/config.h"
#include "devices/error.h"

namespace dpt {
namespace {

const char* const kItems[] = {"program version", "config", "model", "training data", "test data"};
constexpr int kNumItems = 5;
constexpr int kConfigItem = 1;

uint64_t hash_text(const std::string& text) { return fnv1a(text.data(), text.size()); }

uint64_t hash_dataset(const Dataset* dataset) {
  if (dataset == nullptr) return 0;
  const std::string shape = std::to_string(dataset->size) + shape_string(dataset->sample_shape) +
                            "/" + std::to_string(dataset->num_classes);
  uint64_t hash = hash_text(shape);
  hash = fnv1a(dataset->labels.data(), dataset->labels.size() * sizeof(int32_t), hash);
  hash = fnv1a(dataset->inputs_u8.data(), dataset->inputs_u8.size(), hash);
  return fnv1a(dataset->inputs_f32.data(), dataset->inputs_f32.size() * sizeof(float), hash);
}

// "optimizer.lr: 0.002 here, 0.001 on rank 0" style first difference.
std::string first_difference(const proto::Config& mine, const std::string& reference_text) {
  proto::Config reference;
  if (!google::protobuf::TextFormat::ParseFromString(reference_text, &reference)) {
    return "rank 0's config does not parse here (different program versions?)";
  }
  std::string report;
  google::protobuf::util::MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&report);
  differencer.Compare(reference, mine);
  const std::string first = report.substr(0, report.find('\n'));
  return first.empty() ? "texts differ" : first + " (rank 0 -> this rank)";
}

}  // namespace

// Length first, then the bytes in int64 words.
std::string broadcast_text(Communicator& comm, const std::string& text) {
  int64_t length = static_cast<int64_t>(text.size());
  comm.broadcast(&length, 1, DType::kI64, 0);
  std::vector<int64_t> words(static_cast<std::size_t>((length + 7) / 8));
  if (comm.rank() == 0) std::memcpy(words.data(), text.data(), text.size());
  comm.broadcast(words.data(), words.size(), DType::kI64, 0);
  return std::string(reinterpret_cast<const char*>(words.data()), static_cast<std::size_t>(length));
}

std::string dataset_fingerprint(const Dataset& dataset) {
  return fmt::format("fnv1a:{:016x}", hash_dataset(&dataset));
}

uint64_t fnv1a(const void* data, std::size_t bytes, uint64_t seed) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t hash = seed;
  for (std::size_t i = 0; i < bytes; ++i) {
    hash ^= p[i];
    hash *= 0x100000001b3ull;
  }
  return hash;
}

void check_same_run(Communicator& comm, const proto::Config& full_config, const Model& model,
                    const Dataset& train, const Dataset* test) {
  if (comm.size() == 1) return;
  // `device` says how a worker runs, not what it computes: it may differ (heterogeneous nodes).
  // Except fp16 loss scaling (precision FP16, launch/loss_scaling.h): a scaling rank multiplies
  // its loss gradient by the scale and divides the summed gradients by it, so every rank must
  // scale, with the same device.loss_scale, or none (else the ranks apply different updates).
  proto::Config config = full_config;
  config.clear_device();
  if (full_config.device().precision() == proto::FP16) {
    config.mutable_device()->set_precision(proto::FP16);
    *config.mutable_device()->mutable_loss_scale() = full_config.device().loss_scale();
  }
  // Compared resolved, as rank 0's text is: the first difference reported is then a real one,
  // not the defaults that resolving fills into the cleared device.
  resolve_defaults(config);
  const std::string config_text = config_to_text(config);
  std::vector<int64_t> mine = {
      static_cast<int64_t>(hash_text(DPT_VERSION)), static_cast<int64_t>(hash_text(config_text)),
      static_cast<int64_t>(hash_text(model.summary() + "/" + std::to_string(model.num_params()))),
      static_cast<int64_t>(hash_dataset(&train)), static_cast<int64_t>(hash_dataset(test))};
  std::vector<int64_t> all(static_cast<std::size_t>(kNumItems * comm.size()));
  comm.all_gather(mine.data(), all.data(), kNumItems, DType::kI64);

  for (int item = 0; item < kNumItems; ++item) {
    std::vector<int> differing;
    for (int rank = 1; rank < comm.size(); ++rank) {
      if (all[rank * kNumItems + item] != all[item]) differing.push_back(rank);
    }
    if (differing.empty()) continue;
    std::string detail;
    if (item == kConfigItem) {
      const std::string reference = broadcast_text(comm, config_text);
      if (all[comm.rank() * kNumItems + item] != all[item]) {
        detail = ": " + first_difference(config, reference);
      }
    }
    std::string ranks;
    for (int rank : differing) ranks += (ranks.empty() ? "" : ", ") + std::to_string(rank);
    DPT_THROW(ErrorKind::kConfig) << "rank" << (differing.size() > 1 ? "s " : " ") << ranks
                                  << " differ" << (differing.size() > 1 ? "" : "s")
                                  << " from rank 0 in " << kItems[item]
                                  << " (every rank must run the same program, config and data)"
                                  << detail;
  }
}

}  // namespace dpt
