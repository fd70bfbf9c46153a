// Tests for core/config: strict parsing with one-based file:line:col errors, the size cap, every
// validation rule (with the field path and where the value came from), --set overrides and their
// errors, default resolution, the config_to_text round trip, and layer_name.
#include "core/config.h"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "devices/error.h"
#include "expect_error.h"

namespace dpt {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using testing::error_of;

// Line numbers matter: the expected locations below count lines and columns in this text.
constexpr const char* kFull = R"(name: "mnist"
model {
  input_size: 784
  layer { name: "fc1" dense { units: 128 } }
  layer { activation { kind: RELU } }
  layer { dropout { rate: 0.2 } }
  layer { dense { units: 10 init: XAVIER } }
}
data {
  train_path: "train.h5"
  test_path: "test.h5"
}
optimizer {
  lr: 0.1
  sgd { momentum: 0.9 nesterov: true }
  schedule { warmup_steps: 100 cosine { final_lr_fraction: 0.01 } }
}
train { batch_size: 128 epochs: 3 }
)";

constexpr const char* kMinimal =
    "model { input_size: 4 layer { dense { units: 2 } } }\n"
    "data { train_path: \"t.h5\" }\n";

// kFull with the first `from` replaced by `to`.
std::string full_with(const std::string& from, const std::string& to) {
  std::string text = kFull;
  const auto pos = text.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  if (pos != std::string::npos) text.replace(pos, from.size(), to);
  return text;
}

std::string parse_error(const std::string& text, const std::vector<std::string>& overrides = {}) {
  return error_of([&] { parse_config(text, "cfg.prototxt", overrides); });
}

// A temporary directory removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = ::testing::TempDir() + "config_test_XXXXXX";
    path_ = ::mkdtemp(pattern.data()) ? pattern : "";
    EXPECT_FALSE(path_.empty());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string write(const std::string& name, const std::string& content) const {
    const std::string file = path_ + "/" + name;
    std::ofstream(file, std::ios::binary) << content;
    return file;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(ConfigTest, FullConfigParsesAndResolvesDefaults) {
  const proto::Config config = parse_config(kFull, "cfg.prototxt");
  EXPECT_EQ(config.name(), "mnist");
  EXPECT_EQ(config.model().input_size(), 784);
  ASSERT_EQ(config.model().layer_size(), 4);
  EXPECT_EQ(config.model().layer(0).name(), "fc1");
  EXPECT_EQ(config.model().layer(1).name(), "relu1");
  EXPECT_EQ(config.model().layer(2).name(), "dropout2");
  EXPECT_EQ(config.model().layer(3).name(), "dense3");
  EXPECT_FLOAT_EQ(config.model().layer(2).dropout().rate(), 0.2f);
  EXPECT_EQ(config.model().layer(3).dense().init(), proto::XAVIER);
  EXPECT_FLOAT_EQ(config.optimizer().lr(), 0.1f);
  EXPECT_FLOAT_EQ(config.optimizer().sgd().momentum(), 0.9f);
  EXPECT_EQ(config.optimizer().schedule().warmup_steps(), 100);
  EXPECT_EQ(config.train().batch_size(), 128);
  // Defaults are now explicit (has_*), with the values config.proto states.
  EXPECT_TRUE(config.train().has_log_every_steps());
  EXPECT_EQ(config.train().log_every_steps(), 50);
  EXPECT_TRUE(config.model().layer(0).dense().has_bias());
  EXPECT_TRUE(config.model().layer(0).dense().bias());
  EXPECT_TRUE(config.device().has_threads());
  EXPECT_EQ(config.comm().backend(), "auto");
  EXPECT_TRUE(config.comm().has_backend());
  // Unset oneof members stay unset.
  EXPECT_FALSE(config.optimizer().has_adam());
  EXPECT_FALSE(config.optimizer().schedule().has_constant());

  const std::string text = config_to_text(config);
  for (const char* expected :
       {"  micro_batch_size: 0\n", "  log_every_steps: 50\n", "  eval_batch_size: 1000\n",
        "  on_non_finite: STOP\n", "  max_consecutive_skips: 10\n", "  drop_last: true\n",
        "  loss: SOFTMAX_CROSS_ENTROPY\n", "  seed: 1\n", "    name: \"relu1\"\n",
        "      init: HE\n", "  shuffle: true\n", "  std: 1\n", "  kind: AUTO\n",
        "  cpu_gemm: CPU_GEMM_AUTO\n", "  precision: PRECISION_AUTO\n", "  backend: \"auto\"\n",
        "    weight_decay: 0\n", "    total_steps: 0\n", "  clip_grad_norm: 0\n"}) {
    EXPECT_NE(text.find(expected), std::string::npos) << expected << " missing from\n" << text;
  }
  EXPECT_EQ(text.find("adam"), std::string::npos) << text;
  EXPECT_EQ(text.find("constant"), std::string::npos) << text;
}

TEST(ConfigTest, MinimalConfigGetsSgdAndConstantSchedule) {
  const proto::Config config = parse_config(kMinimal, "min.prototxt");
  EXPECT_TRUE(config.optimizer().has_sgd());
  EXPECT_TRUE(config.optimizer().schedule().has_constant());
  EXPECT_FLOAT_EQ(config.optimizer().lr(), 0.001f);
  EXPECT_FLOAT_EQ(config.optimizer().sgd().momentum(), 0.0f);
  EXPECT_TRUE(config.optimizer().sgd().has_nesterov());
  EXPECT_EQ(config.model().layer(0).name(), "dense0");
  EXPECT_FLOAT_EQ(config.data().input_scale(), 1.0f / 255.0f);
  EXPECT_TRUE(config.data().has_test_path());
  EXPECT_EQ(config.data().test_path(), "");
  const std::string text = config_to_text(config);
  EXPECT_NE(text.find("  sgd {\n"), std::string::npos) << text;
  EXPECT_NE(text.find("    constant {\n"), std::string::npos) << text;
}

TEST(ConfigTest, ParseErrorsAreOneBasedFileLineColumn) {
  struct Case {
    std::string text;
    std::string expected;
  };
  const std::vector<Case> cases = {
      // Unknown field: reported at the token after the name (line 4, column 8 is the ':').
      {"name: \"x\"\nmodel {\n  input_size: 4\n  bogus: 1\n}",
       "cfg.prototxt:4:8: Message type \"dpt.proto.ModelConfig\" has no field named \"bogus\""},
      // Bad enum value: reported at the token after the value, the '}' in column 21.
      {"model { loss: HINGE }", "cfg.prototxt:1:21: Unknown enumeration value of \"HINGE\""},
      {"model { loss: 7 }", "cfg.prototxt:1:17: Unknown enumeration value of \"7\""},
      // Out-of-range integers: the number starts in column 19 / 21.
      {"device { threads: 3000000000 }", "cfg.prototxt:1:19: Integer out of range (3000000000)"},
      {"model { input_size: 9223372036854775808 }", "cfg.prototxt:1:21: Integer out of range"},
      // A negative unsigned seed: the '-' in column 15.
      {"model { seed: -1 }", "cfg.prototxt:1:15: Expected integer, got: -"},
      {"model { input_size: 1.5 }", "cfg.prototxt:1:21: Expected integer, got: 1.5"},
      {"optimizer { lr: abc }", "cfg.prototxt:1:17: Expected double, got: abc"},
      {"data { train_path: x }", "cfg.prototxt:1:20: Expected string, got: x"},
      // Duplicates of a non-repeated field: the ':' after the second lr is column 23; the '{'
      // after the second model is line 2, column 7.
      {"optimizer { lr: 0.1 lr: 0.2 }",
       "cfg.prototxt:1:23: Non-repeated field \"lr\" is specified multiple times."},
      {"model { input_size: 1 }\nmodel { }",
       "cfg.prototxt:2:7: Non-repeated field \"model\" is specified multiple times."},
      {"optimizer { sgd {} adam {} }", "cfg.prototxt:1:25: Field \"adam\" is specified along"},
      // Syntax: an extra '}' in column 24, and end of input after column 22.
      {"model { input_size: 1 }}", "cfg.prototxt:1:24: Expected identifier, got: }"},
      {"model { input_size: 1 ", "cfg.prototxt:1:23: Expected identifier"},
      {"data { train_path: \"abc }", "cfg.prototxt:1:26: Unexpected end of string."},
  };
  for (const Case& c : cases) {
    const std::string message = parse_error(c.text);
    EXPECT_EQ(message.rfind(c.expected, 0), 0u) << "input: " << c.text << "\ngot: " << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

TEST(ConfigTest, DeeplyNestedInputIsAnErrorNotACrash) {
  std::string bomb;
  for (int i = 0; i < 10000; ++i) bomb += "model {";
  // The second "model" is not a field of ModelConfig; its ' {' follows in column 14.
  EXPECT_EQ(parse_error(bomb).rfind("cfg.prototxt:1:14: Message type \"dpt.proto.ModelConfig\"", 0),
            0u);
  std::string braces = "model { layer ";
  for (int i = 0; i < 10000; ++i) braces += "{ ";
  EXPECT_EQ(parse_error(braces).rfind("cfg.prototxt:1:", 0), 0u);
}

TEST(ConfigTest, SizeCap) {
  const std::string padding(kMaxConfigBytes + 1 - std::string(kMinimal).size(), ' ');
  EXPECT_EQ(parse_error(kMinimal + padding),
            "cfg.prototxt: file is 1048577 bytes, larger than the 1048576-byte limit for configs");
  // Exactly at the limit is accepted.
  EXPECT_EQ(parse_config(kMinimal + padding.substr(1), "ok").model().input_size(), 4);

  TempDir dir;
  const std::string big = dir.write("big.prototxt", std::string(2000000, ' '));
  EXPECT_EQ(error_of([&] { load_config(big); }),
            big + ": file is 2000000 bytes, larger than the 1048576-byte limit for configs");
}

TEST(ConfigTest, LoadConfigReadsFilesAndNamesThemInErrors) {
  TempDir dir;
  const std::string good = dir.write("good.prototxt", kFull);
  const proto::Config config = load_config(good, {"optimizer.lr=0.25"});
  EXPECT_FLOAT_EQ(config.optimizer().lr(), 0.25f);
  EXPECT_EQ(config.model().layer(3).name(), "dense3");

  const std::string bad = dir.write("bad.prototxt", full_with("lr: 0.1", "lr: -0.1"));
  EXPECT_EQ(error_of([&] { load_config(bad); }),
            bad + ":14:3: optimizer.lr: must be > 0 (got -0.1)");

  const std::string missing = dir.path() + "/missing.prototxt";
  EXPECT_EQ(error_of([&] { load_config(missing); }),
            missing + ": cannot open config: No such file or directory");
  EXPECT_EQ(error_of([&] { load_config(dir.path()); }),
            dir.path() + ": cannot read config: Is a directory");
}

TEST(ConfigTest, EveryValidationRuleNamesFieldAndLocation) {
  struct Case {
    std::string from, to, expected;
  };
  const std::string cosine = "cosine { final_lr_fraction: 0.01 }";  // starts in column 32
  const std::string schedule_line = "  schedule { warmup_steps: 100 ";
  const std::vector<Case> cases = {
      {"input_size: 784", "input_size: 0",
       "cfg.prototxt:3:3: model.input_size: must be > 0 (got 0)"},
      {"  input_size: 784\n", "", "cfg.prototxt: model.input_size: required"},
      {"name: \"fc1\"", "name: \"fc 1\"",
       "cfg.prototxt:4:11: model.layer[0].name: must contain only letters, digits, '_' and '-' "
       "(got \"fc 1\")"},
      {"name: \"fc1\"", "name: \"relu1\"",
       "cfg.prototxt:5:3: model.layer[1]: default name \"relu1\" is taken by model.layer[0]; "
       "name this layer"},
      {"layer { activation", "layer { name: \"fc1\" activation",
       "cfg.prototxt:5:11: model.layer[1].name: duplicate layer name \"fc1\" (also "
       "model.layer[0])"},
      {"layer { dropout { rate: 0.2 } }", "layer { name: \"d\" }",
       "cfg.prototxt:6:3: model.layer[2]: no kind set (expected dense, activation or dropout)"},
      {"dense { units: 10 init: XAVIER }", "dense { init: XAVIER }",
       "cfg.prototxt: model.layer[3].dense.units: required"},
      {"units: 128", "units: -5",
       "cfg.prototxt:4:31: model.layer[0].dense.units: must be > 0 (got -5)"},
      {"units: 128", "units: 128 init_std: 0",
       "cfg.prototxt:4:42: model.layer[0].dense.init_std: must be > 0 (got 0)"},
      {"kind: RELU", "kind: LEAKY_RELU negative_slope: -0.5",
       "cfg.prototxt:5:41: model.layer[1].activation.negative_slope: must be >= 0 (got -0.5)"},
      {"rate: 0.2", "rate: 1",
       "cfg.prototxt:6:21: model.layer[2].dropout.rate: must be in [0, 1) (got 1)"},
      {"layer { dense { units: 10 init: XAVIER } }",
       "layer { dense { units: 10 } }\n  layer { activation { kind: TANH } }",
       "cfg.prototxt:8:3: model.layer[4]: the last layer must be dense (the loss reads its "
       "outputs)"},
      {"  train_path: \"train.h5\"\n", "", "cfg.prototxt: data.train_path: required"},
      {"\"train.h5\"", "\"\"", "cfg.prototxt:10:3: data.train_path: must not be empty"},
      {"test_path: \"test.h5\"\n", "test_path: \"test.h5\"\n  input_scale: inf\n",
       "cfg.prototxt:12:3: data.input_scale: must be finite (got inf)"},
      {"test_path: \"test.h5\"\n", "test_path: \"test.h5\"\n  input_scale: 0\n",
       "cfg.prototxt:12:3: data.input_scale: must be > 0 (got 0)"},
      {"test_path: \"test.h5\"\n", "test_path: \"test.h5\"\n  mean: nan\n",
       "cfg.prototxt:12:3: data.mean: must be finite (got nan)"},
      {"test_path: \"test.h5\"\n", "test_path: \"test.h5\"\n  std: 0\n",
       "cfg.prototxt:12:3: data.std: must be > 0 (got 0)"},
      {"lr: 0.1", "lr: -0.1", "cfg.prototxt:14:3: optimizer.lr: must be > 0 (got -0.1)"},
      {"lr: 0.1", "lr: -inf", "cfg.prototxt:14:3: optimizer.lr: must be finite (got -inf)"},
      {"momentum: 0.9", "momentum: 1",
       "cfg.prototxt:15:9: optimizer.sgd.momentum: must be in [0, 1) (got 1)"},
      {"momentum: 0.9 nesterov: true", "nesterov: true",
       "cfg.prototxt:15:9: optimizer.sgd.nesterov: requires momentum > 0 (got momentum 0)"},
      {"nesterov: true", "nesterov: true weight_decay: -1",
       "cfg.prototxt:15:38: optimizer.sgd.weight_decay: must be >= 0 (got -1)"},
      {"sgd { momentum: 0.9 nesterov: true }", "adam { beta1: 1 }",
       "cfg.prototxt:15:10: optimizer.adam.beta1: must be in [0, 1) (got 1)"},
      {"sgd { momentum: 0.9 nesterov: true }", "adamw { beta2: -0.1 }",
       "cfg.prototxt:15:11: optimizer.adamw.beta2: must be in [0, 1) (got -0.1)"},
      {"sgd { momentum: 0.9 nesterov: true }", "adam { eps: 0 }",
       "cfg.prototxt:15:10: optimizer.adam.eps: must be > 0 (got 0)"},
      {"sgd { momentum: 0.9 nesterov: true }", "adamw { weight_decay: -0.01 }",
       "cfg.prototxt:15:11: optimizer.adamw.weight_decay: must be >= 0 (got -0.01)"},
      {"warmup_steps: 100", "warmup_steps: -1",
       "cfg.prototxt:16:14: optimizer.schedule.warmup_steps: must be >= 0 (got -1)"},
      {"warmup_steps: 100", "warmup_start_factor: 1.5",
       "cfg.prototxt:16:14: optimizer.schedule.warmup_start_factor: must be in [0, 1] (got 1.5)"},
      {"warmup_steps: 100", "total_steps: -5",
       "cfg.prototxt:16:14: optimizer.schedule.total_steps: must be >= 0 (got -5)"},
      {"0.01 }", "1.01 }",
       "cfg.prototxt:16:41: optimizer.schedule.cosine.final_lr_fraction: must be in [0, 1] (got "
       "1.01)"},
      {cosine, "step { gamma: 0.5 }", "cfg.prototxt: optimizer.schedule.step.step_size: required"},
      {cosine, "step { step_size: 0 }",
       "cfg.prototxt:16:39: optimizer.schedule.step.step_size: must be > 0 (got 0)"},
      {cosine, "step { step_size: 10 gamma: 0 }",
       "cfg.prototxt:16:53: optimizer.schedule.step.gamma: must be in (0, 1] (got 0)"},
      {cosine, "multistep { milestones: 0 }",
       "cfg.prototxt:16:44: optimizer.schedule.multistep.milestones[0]: must be > 0 (got 0)"},
      {cosine, "multistep { milestones: 10 milestones: 5 }",
       "cfg.prototxt:16:59: optimizer.schedule.multistep.milestones[1]: must be strictly "
       "increasing (got 5 after 10)"},
      // A list is one occurrence in the parser's locations: the error points at the list.
      {cosine, "multistep { milestones: [10, 10] }",
       "cfg.prototxt:16:44: optimizer.schedule.multistep.milestones[1]: must be strictly "
       "increasing (got 10 after 10)"},
      {cosine, "multistep { gamma: 1.5 }",
       "cfg.prototxt:16:44: optimizer.schedule.multistep.gamma: must be in (0, 1] (got 1.5)"},
      {cosine, "exponential { }", "cfg.prototxt: optimizer.schedule.exponential.gamma: required"},
      {cosine, "exponential { gamma: 0 }",
       "cfg.prototxt:16:46: optimizer.schedule.exponential.gamma: must be in (0, 1] (got 0)"},
      {cosine, "polynomial { power: 0 }",
       "cfg.prototxt:16:45: optimizer.schedule.polynomial.power: must be > 0 (got 0)"},
      {cosine, "polynomial { final_lr_fraction: -0.5 }",
       "cfg.prototxt:16:45: optimizer.schedule.polynomial.final_lr_fraction: must be in [0, 1] "
       "(got -0.5)"},
      {cosine, "wsd { decay_fraction: 0 }",
       "cfg.prototxt:16:38: optimizer.schedule.wsd.decay_fraction: must be in (0, 1] (got 0)"},
      {cosine, "wsd { final_lr_fraction: 2 }",
       "cfg.prototxt:16:38: optimizer.schedule.wsd.final_lr_fraction: must be in [0, 1] (got 2)"},
      {"lr: 0.1", "lr: 0.1 clip_grad_norm: -1",
       "cfg.prototxt:14:11: optimizer.clip_grad_norm: must be >= 0 (got -1)"},
      {"batch_size: 128", "batch_size: 0",
       "cfg.prototxt:18:9: train.batch_size: must be > 0 (got 0)"},
      {"epochs: 3", "micro_batch_size: 256",
       "cfg.prototxt:18:25: train.micro_batch_size: must be in [0, train.batch_size = 128] (got "
       "256)"},
      {"epochs: 3", "micro_batch_size: -1",
       "cfg.prototxt:18:25: train.micro_batch_size: must be in [0, train.batch_size = 128] (got "
       "-1)"},
      {"epochs: 3", "micro_batch_size: 48",
       "cfg.prototxt:18:25: train.micro_batch_size: must divide train.batch_size = 128 (got 48)"},
      {"epochs: 3", "epochs: 0", "cfg.prototxt:18:25: train.epochs: must be > 0 (got 0)"},
      {"epochs: 3", "max_steps: -1", "cfg.prototxt:18:25: train.max_steps: must be >= 0 (got -1)"},
      {"epochs: 3", "log_every_steps: 0",
       "cfg.prototxt:18:25: train.log_every_steps: must be > 0 (got 0)"},
      {"epochs: 3", "eval_every_epochs: -1",
       "cfg.prototxt:18:25: train.eval_every_epochs: must be >= 0 (got -1)"},
      {"epochs: 3", "eval_batch_size: 0",
       "cfg.prototxt:18:25: train.eval_batch_size: must be > 0 (got 0)"},
      {"epochs: 3", "max_consecutive_skips: 0",
       "cfg.prototxt:18:25: train.max_consecutive_skips: must be > 0 (got 0)"},
      {"epochs: 3 }\n", "epochs: 3 }\ndevice { threads: -1 }\n",
       "cfg.prototxt:19:10: device.threads: must be >= 0 (got -1)"},
      {"epochs: 3 }\n", "epochs: 3 }\ncomm { backend: \"gloo\" }\n",
       "cfg.prototxt:19:8: comm.backend: must be \"auto\", \"local\", \"mpi\", \"plugin\" or "
       "\"nccl\" (got \"gloo\")"},
      {"epochs: 3 }\n", "epochs: 3 }\ncomm { backend: \"plugin\" }\n",
       "cfg.prototxt:19:8: comm.backend: \"plugin\" needs comm.plugin_path (the plug-in's .so)"},
      {"epochs: 3 }\n", "epochs: 3 }\ncomm { balance: BALANCE_THROUGHPUT balance_steps: 0 }\n",
       "cfg.prototxt:19:36: comm.balance_steps: must be > 0 (got 0)"},
      {"epochs: 3 }\n", "epochs: 3 }\ncomm { balance_warmup_steps: -1 }\n",
       "cfg.prototxt:19:8: comm.balance_warmup_steps: must be >= 0 (got -1)"},
      {"epochs: 3 }\n", "epochs: 3 }\ncomm { rebalance_every_steps: -2 }\n",
       "cfg.prototxt:19:8: comm.rebalance_every_steps: must be >= 0 (got -2)"},
      {"epochs: 3 }\n", "epochs: 3 }\ncomm { balance: FASTEST }\n",
       "cfg.prototxt:19:25: Unknown enumeration value of \"FASTEST\" for field \"balance\"."},
      {"epochs: 3 }\n", "epochs: 3 }\nfault_injection { slow_us_per_sample: -5 }\n",
       "cfg.prototxt:19:19: fault_injection.slow_us_per_sample: must be >= 0 (got -5)"},
      {"epochs: 3 }\n", "epochs: 3 }\ntune { memory_budget_mb: -1 }\n",
       "cfg.prototxt:19:8: tune.memory_budget_mb: must be >= 0 (got -1)"},
      {"epochs: 3 }\n", "epochs: 3 }\ntune { memory_fraction: 0 }\n",
       "cfg.prototxt:19:8: tune.memory_fraction: must be in (0, 1] (got 0)"},
      {"epochs: 3 }\n", "epochs: 3 }\ntune { min_batch: 0 }\n",
       "cfg.prototxt:19:8: tune.min_batch: must be > 0 (got 0)"},
      {"epochs: 3 }\n", "epochs: 3 }\ntune { min_batch: 8 max_batch: 4 }\n",
       "cfg.prototxt:19:21: tune.max_batch: must be >= tune.min_batch = 8 (got 4)"},
      {"epochs: 3 }\n", "epochs: 3 }\ntune { global_batch: -2 }\n",
       "cfg.prototxt:19:8: tune.global_batch: must be >= 0 (got -2)"},
      {"epochs: 3 }\n", "epochs: 3 }\ntune { throughput_tolerance: 1 }\n",
       "cfg.prototxt:19:8: tune.throughput_tolerance: must be in [0, 1) (got 1)"},
      {"epochs: 3 }\n", "epochs: 3 }\ntune { timing_steps: 0 }\n",
       "cfg.prototxt:19:8: tune.timing_steps: must be > 0 (got 0)"},
      {"epochs: 3 }\n", "epochs: 3 }\ntune { reference_batch: -1 }\n",
       "cfg.prototxt:19:8: tune.reference_batch: must be >= 0 (got -1)"},
      {"epochs: 3 }\n", "epochs: 3 }\ntune { warmup_epochs: -1 }\n",
       "cfg.prototxt:19:8: tune.warmup_epochs: must be >= 0 (got -1)"},
      {"epochs: 3 }\n", "epochs: 3 }\ntune { lr_min: 0 }\n",
       "cfg.prototxt:19:8: tune.lr_min: must be > 0 (got 0)"},
      {"epochs: 3 }\n", "epochs: 3 }\ntune { lr_min: 0.1 lr_max: 0.01 }\n",
       "cfg.prototxt:19:20: tune.lr_max: must be > tune.lr_min = 0.1 (got 0.01)"},
      {"epochs: 3 }\n", "epochs: 3 }\ntune { lr_range_steps: 5 }\n",
       "cfg.prototxt:19:8: tune.lr_range_steps: must be >= 10 (got 5)"},
  };
  EXPECT_EQ(std::string(kFull).find(schedule_line + cosine), std::string(kFull).find("  schedule"));
  for (const Case& c : cases) {
    EXPECT_EQ(parse_error(full_with(c.from, c.to)), c.expected) << c.from << " -> " << c.to;
  }
}

TEST(ConfigTest, ValuesInMessagesStayOnOneLine) {
  EXPECT_EQ(parse_error(full_with("name: \"fc1\"", "name: \"a\\nb\\\"\"")),
            "cfg.prototxt:4:11: model.layer[0].name: must contain only letters, digits, '_' and "
            "'-' (got \"a\\x0ab\\\"\")");
}

TEST(ConfigTest, ModelNeedsLayers) {
  EXPECT_EQ(parse_error("model { input_size: 4 }"),
            "cfg.prototxt: model.layer: at least one layer is required");
  // Without a model at all, the first rule in field order is the input size.
  EXPECT_EQ(parse_error("data { train_path: \"x\" }"), "cfg.prototxt: model.input_size: required");
}

TEST(ConfigTest, FirstViolationInFieldOrderIsReported) {
  // optimizer (field 4) comes before train (field 5), whatever the order in the file.
  const std::string text = full_with("batch_size: 128", "batch_size: 0") + "";
  const std::string both = std::string(text).replace(text.find("lr: 0.1"), 7, "lr: 0");
  EXPECT_EQ(parse_error(both), "cfg.prototxt:14:3: optimizer.lr: must be > 0 (got 0)");
}

TEST(ConfigTest, ValidateConfigWithoutLocations) {
  proto::Config config = parse_config(kFull, "cfg.prototxt");
  EXPECT_NO_THROW(validate_config(config, "mem"));
  config.mutable_train()->set_micro_batch_size(3);
  EXPECT_EQ(error_of([&] { validate_config(config, "mem"); }),
            "mem: train.micro_batch_size: must divide train.batch_size = 128 (got 3)");
}

TEST(ConfigTest, OverridesSetScalarsEnumsStringsAndNestedFields) {
  proto::Config config = parse_config(kFull, "cfg.prototxt");
  apply_override(config, "optimizer.lr=0.5");
  EXPECT_FLOAT_EQ(config.optimizer().lr(), 0.5f);
  apply_override(config, " model.loss = MEAN_SQUARED_ERROR ");
  EXPECT_EQ(config.model().loss(), proto::MEAN_SQUARED_ERROR);
  apply_override(config, "data.train_path=/tmp/a b.h5");
  EXPECT_EQ(config.data().train_path(), "/tmp/a b.h5");
  apply_override(config, "name=\"quoted name\"");
  EXPECT_EQ(config.name(), "quoted name");
  apply_override(config, "name=say \"hi\"\\");
  EXPECT_EQ(config.name(), "say \"hi\"\\");
  apply_override(config, "data.test_path=[x]");
  EXPECT_EQ(config.data().test_path(), "[x]");
  apply_override(config, "data.test_path=");
  EXPECT_EQ(config.data().test_path(), "");
  apply_override(config, "data.shuffle=false");
  EXPECT_FALSE(config.data().shuffle());
  apply_override(config, "optimizer.schedule.warmup_steps=7");
  EXPECT_EQ(config.optimizer().schedule().warmup_steps(), 7);
  apply_override(config, "train.seed=18446744073709551615");
  EXPECT_EQ(config.train().seed(), 18446744073709551615ull);
  apply_override(config, "device.kind=CPU");
  EXPECT_EQ(config.device().kind(), proto::CPU);
  // Creates the messages on the way.
  proto::Config empty;
  apply_override(empty, "optimizer.schedule.step.step_size=100");
  EXPECT_EQ(empty.optimizer().schedule().step().step_size(), 100);
}

TEST(ConfigTest, OverridesIndexAppendAndReplaceRepeatedFields) {
  proto::Config config = parse_config(kFull, "cfg.prototxt");
  apply_override(config, "model.layer[0].dense.units=64");
  EXPECT_EQ(config.model().layer(0).dense().units(), 64);
  apply_override(config, "model.layer[4].dense.units=5");
  ASSERT_EQ(config.model().layer_size(), 5);
  EXPECT_EQ(config.model().layer(4).dense().units(), 5);
  apply_override(config, "model.layer[5]={ name: \"out\" dense { units: 3 bias: false } }");
  ASSERT_EQ(config.model().layer_size(), 6);
  EXPECT_EQ(config.model().layer(5).name(), "out");
  EXPECT_FALSE(config.model().layer(5).dense().bias());
  // A body merges: the name stays, the kind switches from dense to activation.
  apply_override(config, "model.layer[0]={activation { kind: GELU }}");
  EXPECT_EQ(config.model().layer(0).name(), "fc1");
  EXPECT_EQ(config.model().layer(0).activation().kind(), proto::GELU);
  EXPECT_FALSE(config.model().layer(0).has_dense());

  apply_override(config, "optimizer.schedule.multistep.milestones=[5, 10]");
  EXPECT_FALSE(config.optimizer().schedule().has_cosine());
  ASSERT_EQ(config.optimizer().schedule().multistep().milestones_size(), 2);
  EXPECT_EQ(config.optimizer().schedule().multistep().milestones(1), 10);
  apply_override(config, "optimizer.schedule.multistep.milestones[0]=7");
  apply_override(config, "optimizer.schedule.multistep.milestones[2]=20");
  EXPECT_EQ(std::vector<int64_t>(config.optimizer().schedule().multistep().milestones().begin(),
                                 config.optimizer().schedule().multistep().milestones().end()),
            (std::vector<int64_t>{7, 10, 20}));
  apply_override(config, "optimizer.schedule.multistep.milestones=3");
  EXPECT_EQ(config.optimizer().schedule().multistep().milestones_size(), 1);
  apply_override(config, "model.layer=[{dense {units: 1}}, {dropout {}}]");
  ASSERT_EQ(config.model().layer_size(), 2);
  EXPECT_EQ(config.model().layer(0).dense().units(), 1);
  EXPECT_TRUE(config.model().layer(1).has_dropout());
}

TEST(ConfigTest, OverridesSwitchOneofsAndMergeBodies) {
  proto::Config config = parse_config(kFull, "cfg.prototxt");
  apply_override(config, "optimizer.sgd={momentum: 0.5}");
  EXPECT_FLOAT_EQ(config.optimizer().sgd().momentum(), 0.5f);
  EXPECT_TRUE(config.optimizer().sgd().nesterov());  // merged, not replaced
  apply_override(config, "optimizer.adam.beta1=0.8");
  EXPECT_TRUE(config.optimizer().has_adam());
  EXPECT_FALSE(config.optimizer().has_sgd());
  EXPECT_FLOAT_EQ(config.optimizer().adam().beta1(), 0.8f);
  EXPECT_FLOAT_EQ(config.optimizer().adam().beta2(), 0.999f);
  apply_override(config, "optimizer.adamw={}");
  EXPECT_TRUE(config.optimizer().has_adamw());
  EXPECT_FALSE(config.optimizer().has_adam());
  apply_override(config, "optimizer={lr: 0.03 schedule { constant {} }}");
  EXPECT_FLOAT_EQ(config.optimizer().lr(), 0.03f);
  EXPECT_TRUE(config.optimizer().has_adamw());
  EXPECT_TRUE(config.optimizer().schedule().has_constant());
  EXPECT_EQ(config.optimizer().schedule().warmup_steps(), 100);
}

TEST(ConfigTest, OverrideErrors) {
  const proto::Config original = parse_config(kFull, "cfg.prototxt");
  struct Case {
    std::string assignment, expected;
  };
  const std::vector<Case> cases = {
      {"optimizer.lr", "--set optimizer.lr: expected field.path=value (no '=' found)"},
      {"optimizer.foo=1",
       "--set optimizer.foo=1: no field \"foo\" in dpt.proto.OptimizerConfig (fields: lr, sgd, "
       "adam, adamw, schedule, clip_grad_norm)"},
      {"modle.input_size=3",
       "--set modle.input_size=3: no field \"modle\" in dpt.proto.Config (fields: name, model, "
       "data, optimizer, train, device, comm, fault_injection, checkpoint, monitor, trace, "
       "compress, tune)"},
      {"train.batch_size=abc",
       "--set train.batch_size=abc: train.batch_size: Expected integer, got: abc (got \"abc\")"},
      {"train.epochs=1 2", "--set train.epochs=1 2: train.epochs: not a valid value (got \"1 2\")"},
      {"device.threads=3000000000",
       "--set device.threads=3000000000: device.threads: Integer out of range (3000000000)"},
      {"model.loss=HINGE",
       "--set model.loss=HINGE: model.loss: Unknown enumeration value of \"HINGE\""},
      {"data.shuffle=maybe", "--set data.shuffle=maybe: data.shuffle: Invalid value for boolean"},
      {"model.layer[9].dense.units=1",
       "--set model.layer[9].dense.units=1: index 9 is out of range for model.layer (it has 4 "
       "elements; [4] appends one)"},
      {"optimizer.schedule.multistep.milestones[1]=4",
       "--set optimizer.schedule.multistep.milestones[1]=4: index 1 is out of range for "
       "optimizer.schedule.multistep.milestones (it has 0 elements; [0] appends one)"},
      {"optimizer[0].lr=1",
       "--set optimizer[0].lr=1: optimizer is not repeated and takes no [index]"},
      {"model.layer.dense.units=1",
       "--set model.layer.dense.units=1: model.layer is repeated; give an index, e.g. "
       "model.layer[0]"},
      {"optimizer.lr.x=1", "--set optimizer.lr.x=1: optimizer.lr is a float field, not a message"},
      {"model..x=1", "--set model..x=1: bad field path \"model..x\""},
      {"model.layer[x].name=a", "--set model.layer[x].name=a: bad field path"},
      {"=3", "--set =3: bad field path \"\""},
      {"optimizer.sgd=5",
       "--set optimizer.sgd=5: optimizer.sgd: a message takes a body in braces, e.g. "
       "optimizer.sgd={ ... } (got \"5\")"},
      {"optimizer.sgd={momentum: x}",
       "--set optimizer.sgd={momentum: x}: optimizer.sgd: Expected double, got: x"},
      {"optimizer.sgd={bogus: 1}",
       "--set optimizer.sgd={bogus: 1}: optimizer.sgd: Message type \"dpt.proto.SgdConfig\" has "
       "no field named \"bogus\""},
      {"model.layer=[{dense {units: 1}}, {bad: 2}]",
       "--set model.layer=[{dense {units: 1}}, {bad: 2}]: model.layer: Message type "
       "\"dpt.proto.LayerConfig\" has no field named \"bad\""},
      // The walk switches the optimizer to adam before failing; the config must not change.
      {"optimizer.adam.nope=1", "--set optimizer.adam.nope=1: no field \"nope\" in"},
  };
  for (const Case& c : cases) {
    proto::Config config = original;
    const std::string message = error_of([&] { apply_override(config, c.assignment); });
    EXPECT_EQ(message.rfind(c.expected, 0), 0u) << c.assignment << "\ngot: " << message;
    EXPECT_TRUE(MessageDifferencer::Equals(config, original)) << c.assignment;
  }
  // Errors from parse_config's overrides come out unchanged.
  EXPECT_EQ(parse_error(kFull, {"optimizer.lr"}),
            "--set optimizer.lr: expected field.path=value (no '=' found)");
}

TEST(ConfigTest, ValidationBlamesTheOverrideThatSetTheValue) {
  EXPECT_EQ(parse_error(kFull, {"optimizer.lr=-0.1"}),
            "--set optimizer.lr=-0.1: optimizer.lr: must be > 0 (got -0.1)");
  // The last override that wrote the field is the one to blame.
  EXPECT_EQ(parse_error(kFull, {"optimizer.lr=-1", "optimizer.lr=-2"}),
            "--set optimizer.lr=-2: optimizer.lr: must be > 0 (got -2)");
  EXPECT_EQ(parse_error(kFull, {"optimizer.sgd={momentum: 2}"}),
            "--set optimizer.sgd={momentum: 2}: optimizer.sgd.momentum: must be in [0, 1) (got 2)");
  EXPECT_EQ(parse_error(kFull, {"model.layer[4]={activation {}}"}),
            "--set model.layer[4]={activation {}}: model.layer[4]: the last layer must be dense "
            "(the loss reads its outputs)");
  EXPECT_EQ(parse_error(kFull, {"model.layer[3].activation.kind=TANH"}),
            "--set model.layer[3].activation.kind=TANH: model.layer[3]: the last layer must be "
            "dense (the loss reads its outputs)");
  // A body that did not touch the bad value leaves the blame with the file.
  EXPECT_EQ(parse_error(full_with("lr: 0.1", "lr: -0.1"), {"optimizer={clip_grad_norm: 1}"}),
            "cfg.prototxt:14:3: optimizer.lr: must be > 0 (got -0.1)");
  EXPECT_EQ(parse_error(kFull, {"optimizer.schedule.multistep.milestones=[3, 2]"}),
            "--set optimizer.schedule.multistep.milestones=[3, 2]: "
            "optimizer.schedule.multistep.milestones[1]: must be strictly increasing (got 2 after "
            "3)");
  // A valid override passes validation and is resolved like the file.
  const proto::Config config =
      parse_config(kFull, "cfg.prototxt", {"model.layer[4]={dense {units: 2}}"});
  EXPECT_EQ(config.model().layer(4).name(), "dense4");
}

TEST(ConfigTest, CompressRulesNameTheField) {
  EXPECT_EQ(parse_error(kFull, {"compress.prune.sparsity=1.5"}),
            "--set compress.prune.sparsity=1.5: compress.prune.sparsity: must be in [0, 1) (got "
            "1.5)");
  EXPECT_EQ(parse_error(kFull, {"compress.prune.sparsity=1"}),
            "--set compress.prune.sparsity=1: compress.prune.sparsity: must be in [0, 1) (got 1)");
  EXPECT_EQ(parse_error(kFull, {"compress.prune.sparsity=-0.1"}),
            "--set compress.prune.sparsity=-0.1: compress.prune.sparsity: must be in [0, 1) (got "
            "-0.1)");
  EXPECT_EQ(parse_error(kFull, {"compress.prune.iterations=0"}),
            "--set compress.prune.iterations=0: compress.prune.iterations: must be > 0 (got 0)");
  EXPECT_EQ(parse_error(kFull, {"compress.prune.finetune_steps=-1"}),
            "--set compress.prune.finetune_steps=-1: compress.prune.finetune_steps: must be >= 0 "
            "(got -1)");
  EXPECT_EQ(parse_error(kFull, {"compress.eval_samples=-5"}),
            "--set compress.eval_samples=-5: compress.eval_samples: must be >= 0 (got -5)");
  EXPECT_EQ(parse_error(kFull, {"compress.latency_repeats=0"}),
            "--set compress.latency_repeats=0: compress.latency_repeats: must be > 0 (got 0)");
  EXPECT_EQ(parse_error(kFull, {"compress.latency_warmup=-1"}),
            "--set compress.latency_warmup=-1: compress.latency_warmup: must be >= 0 (got -1)");
  EXPECT_EQ(parse_error(kFull, {"compress.throughput_batch=0"}),
            "--set compress.throughput_batch=0: compress.throughput_batch: must be > 0 (got 0)");
  EXPECT_EQ(parse_error(kFull, {"compress.throughput_repeats=0"}),
            "--set compress.throughput_repeats=0: compress.throughput_repeats: must be > 0 (got "
            "0)");
  EXPECT_EQ(parse_error(kFull, {"compress.prune.structure=SIDEWAYS"})
                .find("--set compress.prune.structure=SIDEWAYS: "),
            0u);
  // From the file: the line and column of the value.
  EXPECT_EQ(parse_error(std::string(kFull) + "compress { prune { sparsity: 2 } }\n"),
            "cfg.prototxt:19:20: compress.prune.sparsity: must be in [0, 1) (got 2)");
  // Defaults: nothing pruned, one round, no fine-tuning.
  const proto::Config config = parse_config(kFull, "cfg.prototxt");
  EXPECT_EQ(config.compress().prune().sparsity(), 0.0f);
  EXPECT_EQ(config.compress().prune().structure(), proto::UNSTRUCTURED);
  EXPECT_EQ(config.compress().prune().iterations(), 1);
  EXPECT_EQ(config.compress().prune().finetune_steps(), 0);
  const proto::Config set = parse_config(
      kFull, "cfg.prototxt",
      {"compress.prune={sparsity: 0.8 structure: STRUCTURED iterations: 3 finetune_steps: 500}"});
  EXPECT_FLOAT_EQ(set.compress().prune().sparsity(), 0.8f);
  EXPECT_EQ(set.compress().prune().structure(), proto::STRUCTURED);
  EXPECT_EQ(set.compress().prune().iterations(), 3);
  EXPECT_EQ(set.compress().prune().finetune_steps(), 500);
}

TEST(ConfigTest, ConfigToTextRoundTrips) {
  const std::vector<std::string> texts = {
      kFull,
      kMinimal,
      full_with("sgd { momentum: 0.9 nesterov: true }", "adamw { beta1: 0.85 eps: 1e-7 }"),
      full_with("cosine { final_lr_fraction: 0.01 }", "multistep { milestones: [10, 20] }"),
      full_with("cosine { final_lr_fraction: 0.01 }", "wsd { decay_fraction: 0.3 }"),
      full_with("test_path: \"test.h5\"", "input_scale: 0.1 mean: 0.1307 std: 0.3081"),
  };
  for (const std::string& text : texts) {
    const proto::Config config = parse_config(text, "cfg.prototxt");
    const std::string printed = config_to_text(config);
    const proto::Config again = parse_config(printed, "config.prototxt");
    EXPECT_TRUE(MessageDifferencer::Equals(config, again)) << printed;
    EXPECT_EQ(config_to_text(again), printed);
  }
  // Printing resolves defaults even for a config that was built in code.
  proto::Config built;
  built.mutable_model()->set_input_size(3);
  built.mutable_model()->add_layer()->mutable_dense()->set_units(2);
  built.mutable_data()->set_train_path("t.h5");
  const std::string printed = config_to_text(built);
  EXPECT_NE(printed.find("  lr: 0.001\n"), std::string::npos) << printed;
  EXPECT_NE(printed.find("    name: \"dense0\"\n"), std::string::npos) << printed;
  EXPECT_FALSE(built.has_optimizer());  // the argument is left alone
  proto::Config resolved = built;
  resolve_defaults(resolved);
  EXPECT_TRUE(MessageDifferencer::Equals(parse_config(printed, "p"), resolved));
}

TEST(ConfigTest, LayerNameDefaults) {
  const proto::Config config = [] {
    proto::Config c;
    auto* model = c.mutable_model();
    model->add_layer()->mutable_dense();
    model->add_layer()->mutable_activation()->set_kind(proto::GELU);
    model->add_layer()->mutable_dropout();
    model->add_layer()->mutable_activation()->set_kind(proto::LEAKY_RELU);
    auto* named = model->add_layer();
    named->set_name("out");
    named->mutable_dense();
    model->add_layer()->mutable_activation()->set_kind(proto::SIGMOID);
    model->add_layer()->mutable_activation()->set_kind(proto::TANH);
    model->add_layer()->mutable_activation();  // kind defaults to RELU
    auto* unnamed = model->add_layer();
    unnamed->set_name("");  // an empty name is defaulted too
    unnamed->mutable_dense();
    model->add_layer();  // no kind
    return c;
  }();
  const std::vector<std::string> expected = {"dense0", "gelu1",    "dropout2", "leaky_relu3",
                                             "out",    "sigmoid5", "tanh6",    "relu7",
                                             "dense8", "layer9"};
  ASSERT_EQ(config.model().layer_size(), static_cast<int>(expected.size()));
  for (int i = 0; i < config.model().layer_size(); ++i) {
    EXPECT_EQ(layer_name(config, i), expected[i]) << i;
  }
  EXPECT_EQ(error_of([&] { layer_name(config, 10); }, ErrorKind::kInternal),
            "layer_name: index 10 is outside [0, 10)");
  EXPECT_EQ(error_of([&] { layer_name(config, -1); }, ErrorKind::kInternal),
            "layer_name: index -1 is outside [0, 10)");
}

}  // namespace
}  // namespace dpt
