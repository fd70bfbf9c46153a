// Helpers for tests that train: a synthetic dataset, configs with overrides and data blocks, a
// small data-parallel run's fixture, N ranks training as N threads over the in-process thread
// world, and reading weights back.
#pragma once

#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "comm/thread_world.h"
#include "core/array_file.h"
#include "core/config.h"
#include "core/dataset.h"
#include "core/random.h"
#include "devices/cpu_device.h"
#include "devices/error.h"
#include "launch/stop_signal.h"
#include "launch/trainer.h"
#include "temp_dir.h"

namespace dpt::testing {

// n samples of `features` bytes, labels uniform in [0, classes), seeded.
inline void write_random_dataset(const std::string& path, int64_t n, int64_t features, int classes,
                                 uint64_t seed) {
  std::vector<uint8_t> inputs(static_cast<std::size_t>(n * features));
  std::vector<int32_t> labels(static_cast<std::size_t>(n));
  RandomStream random(seed, 0);
  for (int64_t i = 0; i < n; ++i) {
    labels[i] = static_cast<int32_t>(random.below(static_cast<uint64_t>(classes)));
    for (int64_t j = 0; j < features; ++j) {
      // The label shifts a few features, so there is something to learn.
      const int bias = j % classes == labels[i] ? 100 : 0;
      inputs[i * features + j] = static_cast<uint8_t>(bias + random.below(150));
    }
  }
  write_dataset(path, inputs, {n, features}, labels, classes);
}

// `base` with `extra` (text format) merged in, field by field.
inline proto::Config with(proto::Config base, const std::string& extra) {
  EXPECT_TRUE(google::protobuf::TextFormat::MergeFromString(extra, &base)) << extra;
  return base;
}

// A config's data block (text format): the `train` path, the `test` path unless it is empty,
// then `extra` fields (e.g. "input_scale: 0.01").
inline std::string data_text(const std::string& train, const std::string& test = "",
                             const std::string& extra = "") {
  std::string text = "data { train_path: \"" + train + "\"";
  if (!test.empty()) text += " test_path: \"" + test + "\"";
  if (!extra.empty()) text += " " + extra;
  return text + " }\n";
}

// A write_random_dataset file: its name in dir_, then the arguments after the path.
struct RandomData {
  std::string name;
  int64_t n = 0, features = 0;
  int classes = 0;
  uint64_t seed = 0;
};

// A TempDirTest whose dir_ also holds `files`, written before each test.
class RandomDataTest : public TempDirTest {
 protected:
  RandomDataTest(const std::string& name, std::vector<RandomData> files)
      : TempDirTest(name), files_(std::move(files)) {}
  void SetUp() override {
    TempDirTest::SetUp();
    for (const RandomData& file : files_) {
      write_random_dataset(dir_ + "/" + file.name, file.n, file.features, file.classes, file.seed);
    }
  }

 private:
  std::vector<RandomData> files_;
};

// The run data_parallel_test and balance_train_test compare across world sizes: 240 random
// samples of 12 features in 4 classes (dir_/data.h5, train and test set), a small network with
// dropout, SGD with momentum, batch 24 for 2 epochs (20 steps).
class SmallRunTest : public RandomDataTest {
 protected:
  explicit SmallRunTest(const std::string& name)
      : RandomDataTest(name, {{"data.h5", 240, 12, 4, 8}}) {}

  // That run's config, with `blocks` (text format: comm, fault_injection, ...) added; `file`
  // names it in parse errors.
  proto::Config small_run_config(const std::string& blocks, const std::string& file) const {
    const std::string text = R"(
      model {
        input_size: 12
        layer { dense { units: 16 } }
        layer { activation { kind: GELU } }
        layer { dropout { rate: 0.25 } }
        layer { dense { units: 4 } }
      }
      optimizer { lr: 0.1 sgd { momentum: 0.9 } }
      train { batch_size: 24 epochs: 2 log_every_steps: 5 }
    )" + blocks + "\n" + data_text(dir_ + "/data.h5", dir_ + "/data.h5");
    return parse_config(text, file);
  }
};

struct WorldRun {
  std::vector<TrainSummary> summaries;  // per rank
  std::vector<std::string> errors;      // per rank, "" when it succeeded
  std::vector<ErrorKind> kinds;
  bool ok() const {
    for (const std::string& error : errors) {
      if (!error.empty()) return false;
    }
    return true;
  }
};

// Makes rank `rank`'s device (train_threads: a one-thread oneDNN CpuDevice when none is given).
using MakeDevice = std::function<std::unique_ptr<Device>(int rank)>;

// Runs that train to the end use the product's default collective timeout, 300 s: rank 0 saves
// checkpoints while the other ranks wait in the next collective, and on a loaded machine a save
// (fsync included) has taken over 20 s, which a short test timeout turned into a failed run
// ("ranks that did not arrive: 0"). Tests about timeouts set short ones of their own.
//
// Trains with `world` ranks as threads. With `signals`, SIGTERM/SIGINT are caught for the run
// (config.fault_injection FAULT_SIGTERM then stops it the way a preempting scheduler would).
inline WorldRun train_threads(int world, const proto::Config& config, const std::string& run_dir,
                              const std::string& resume = "", bool signals = false,
                              const MakeDevice& make_device = {}) {
  ThreadWorld thread_world(world, CommOptions{config.comm().timeout_s()});
  std::optional<StopSignal> stop;
  TrainOptions options;
  options.resume = resume;
  if (signals) {
    stop.emplace();
    options.stop_requested = [&stop] { return stop->received() != 0; };
  }
  WorldRun run;
  run.summaries.resize(static_cast<std::size_t>(world));
  run.errors.resize(static_cast<std::size_t>(world));
  run.kinds.resize(static_cast<std::size_t>(world), ErrorKind::kInternal);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < world; ++rank) {
    threads.emplace_back([&, rank] {
      const auto r = static_cast<std::size_t>(rank);
      std::unique_ptr<Communicator> comm = thread_world.communicator(rank);
      try {
        std::unique_ptr<Device> device =
            make_device ? make_device(rank)
                        : std::make_unique<CpuDevice>(CpuDeviceOptions{1, CpuGemmLibrary::kOneDnn});
        TrainListener quiet;
        run.summaries[r] = train(config, *device, *comm, run_dir, quiet, options);
      } catch (const Error& e) {
        run.errors[r] = e.what();
        run.kinds[r] = e.kind();
        comm->abort(e.exit_code());  // as launch/ does: peers fail fast
      } catch (const std::exception& e) {
        run.errors[r] = e.what();
        comm->abort(1);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  return run;
}

// Every float of an array file (weights or checkpoint), arrays in file order, optionally only
// those whose names start with `prefix`.
inline std::vector<float> read_values(const std::string& path, const std::string& prefix = "") {
  std::vector<float> values;
  for (const Array& array : read_array_file(path).arrays) {
    if (array.name.compare(0, prefix.size(), prefix) != 0) continue;
    values.insert(values.end(), array.values.begin(), array.values.end());
  }
  return values;
}

// max |a - b| / max(1, |b|) over two equally long vectors.
inline double worst_relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    const double d = std::fabs(double(a[i]) - b[i]) / std::max(1.0, std::fabs(double(b[i])));
    worst = std::max(worst, d);
  }
  return worst;
}

}  // namespace dpt::testing
