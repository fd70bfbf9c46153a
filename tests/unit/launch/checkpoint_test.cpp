// One checkpoint file: a round trip restores parameters, optimizer state and training state
// exactly; every kind of damage (flipped bytes in a dataset or in the state, truncation, not
// HDF5, missing file) is refused naming the file; a checkpoint that does not fit the model is
// refused naming the tensor and both shapes, and changes nothing.
#include "launch/checkpoint.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/config.h"
#include "devices/cpu_device.h"
#include "devices/error.h"
#include "temp_dir.h"

namespace dpt {
namespace {

class CheckpointTest : public testing::TempDirTest {
 protected:
  CheckpointTest() : TempDirTest("dpt_ckpt_test_") {}

  proto::Config config(int hidden = 8, const std::string& optimizer = "adam {}") {
    return parse_config("model { input_size: 5 layer { dense { units: " + std::to_string(hidden) +
                            " } } layer { dense { units: 3 } } }\n"
                            "optimizer { " +
                            optimizer +
                            " }\n"
                            "data { train_path: \"unused.h5\" }\n",
                        "ckpt.prototxt");
  }

  // A model and optimizer with non-trivial state: two steps on made-up gradients.
  struct Trained {
    std::unique_ptr<Model> model;
    std::unique_ptr<Optimizer> optimizer;
  };
  Trained trained(const proto::Config& cfg) {
    Trained t;
    t.model = std::make_unique<Model>(device_, cfg);
    t.model->init_params();
    t.optimizer = make_optimizer(device_, cfg.optimizer(), t.model->num_params());
    for (int step = 0; step < 2; ++step) {
      float* grads = t.model->grads().data<float>();
      for (int64_t i = 0; i < t.model->num_params(); ++i) grads[i] = 0.01f * (i % 7) - 0.02f;
      t.optimizer->step(t.model->params(), t.model->grads(), 0.1f);
    }
    return t;
  }

  TrainState state(const proto::Config& cfg) {
    TrainState s;
    s.step = 2;
    s.epoch = 1;
    s.step_in_epoch = 0;
    s.optimizer_steps = 2;
    s.world_size = 4;
    s.global_batch = 64;
    s.optimizer = "adam";
    s.config_text = config_to_text(cfg);
    s.version = "test";
    s.data_fingerprint = "fnv1a:0011223344556677";
    return s;
  }

  Checkpoint read_checkpoint_after_save(Trained& source, const TrainState& s) {
    const std::string path = dir_ + "/" + checkpoint_file_name(s.step);
    save_checkpoint(path, *source.model, *source.optimizer, s);
    return read_checkpoint(path);
  }

  std::vector<char> bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  void write(const std::string& path, const std::vector<char>& data) {
    std::ofstream(path, std::ios::binary)
        .write(data.data(), static_cast<std::streamsize>(data.size()));
  }
  std::string error_of(const std::string& path) {
    try {
      read_checkpoint(path);
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kCheckpoint) << e.what();
      return e.what();
    }
    return "";
  }

  CpuDevice device_{CpuDeviceOptions{1, CpuGemmLibrary::kOneDnn}};
};

TEST_F(CheckpointTest, RoundTripRestoresEverythingExactly) {
  const proto::Config cfg = config();
  Trained source = trained(cfg);
  const std::string path = dir_ + "/" + checkpoint_file_name(2);
  EXPECT_EQ(checkpoint_file_name(2), "step_000002.h5");
  save_checkpoint(path, *source.model, *source.optimizer, state(cfg));

  const Checkpoint checkpoint = read_checkpoint(path);
  EXPECT_EQ(checkpoint.state.step, 2);
  EXPECT_EQ(checkpoint.state.epoch, 1);
  EXPECT_EQ(checkpoint.state.world_size, 4);
  EXPECT_EQ(checkpoint.state.global_batch, 64);
  EXPECT_EQ(checkpoint.state.config_text, config_to_text(cfg));
  EXPECT_EQ(checkpoint.state.data_fingerprint, "fnv1a:0011223344556677");
  // Self-describing names and shapes.
  ASSERT_NE(checkpoint.file.find("params/dense0/weight"), nullptr);
  EXPECT_EQ(checkpoint.file.find("params/dense0/weight")->shape, (Shape{8, 5}));
  ASSERT_NE(checkpoint.file.find("optimizer/adam.v/dense1/bias"), nullptr);
  EXPECT_EQ(checkpoint.file.find("optimizer/adam.v/dense1/bias")->shape, (Shape{3}));

  Trained target = trained(config());
  target.model->params().fill_zero();
  restore_checkpoint(checkpoint, *target.model, *target.optimizer);
  const int64_t n = source.model->num_params();
  EXPECT_TRUE(std::equal(source.model->params().data<float>(),
                         source.model->params().data<float>() + n,
                         target.model->params().data<float>()));
  std::vector<NamedTensor> a = source.optimizer->state(), b = target.optimizer->state();
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(std::equal(a[i].tensor.data<float>(), a[i].tensor.data<float>() + n,
                           b[i].tensor.data<float>()))
        << a[i].name;
  }
  EXPECT_EQ(target.optimizer->steps(), 2);
}

TEST_F(CheckpointTest, DamageOfEveryKindIsRefusedNamingTheFile) {
  const proto::Config cfg = config(64);
  Trained source = trained(cfg);
  const std::string good = dir_ + "/good.h5";
  save_checkpoint(good, *source.model, *source.optimizer, state(cfg));
  const std::vector<char> original = bytes(good);

  // A flipped byte inside the parameter data (its float bytes are found in the file).
  const float* weights = source.model->params().data<float>() + 100;
  const char* needle = reinterpret_cast<const char*>(weights);
  auto at = std::search(original.begin(), original.end(), needle, needle + 16);
  ASSERT_NE(at, original.end());
  std::vector<char> flipped = original;
  flipped[static_cast<std::size_t>(at - original.begin()) + 5] ^= 0x10;
  write(dir_ + "/flipped.h5", flipped);
  EXPECT_NE(error_of(dir_ + "/flipped.h5").find("flipped.h5"), std::string::npos);

  // A flipped byte in the stored config text (a root attribute).
  const std::string marker = "input_size: 5";
  auto text = std::search(original.begin(), original.end(), marker.begin(), marker.end());
  ASSERT_NE(text, original.end());
  std::vector<char> edited = original;
  edited[static_cast<std::size_t>(text - original.begin()) + marker.size() - 1] = '6';
  write(dir_ + "/edited.h5", edited);
  // (HDF5's own metadata checksum sees this one first.)
  EXPECT_NE(error_of(dir_ + "/edited.h5").find("edited.h5"), std::string::npos);
  // A state attribute changed through HDF5 itself: only our state checksum can tell.
  ArrayFile tampered = read_array_file(good);
  tampered.attributes["step"] = "3";
  write_array_file(dir_ + "/tampered.h5", tampered);
  const std::string tampered_error = error_of(dir_ + "/tampered.h5");
  EXPECT_NE(tampered_error.find("tampered.h5: the training state attributes are corrupt"),
            std::string::npos)
      << tampered_error;

  write(dir_ + "/truncated.h5", std::vector<char>(original.begin(), original.begin() + 3000));
  EXPECT_NE(error_of(dir_ + "/truncated.h5").find("truncated.h5"), std::string::npos);
  write(dir_ + "/text.h5", {'n', 'o', 't', ' ', 'h', 'd', 'f', '5'});
  EXPECT_NE(error_of(dir_ + "/text.h5").find("text.h5"), std::string::npos);
  EXPECT_NE(error_of(dir_ + "/absent.h5").find("absent.h5"), std::string::npos);
  // The weights file of a run is not a checkpoint.
  source.model->save_weights(dir_ + "/model.h5", {});
  EXPECT_NE(error_of(dir_ + "/model.h5").find("not a dpt checkpoint"), std::string::npos);
}

TEST_F(CheckpointTest, BalanceSharesRoundTripAndBadListsAreRefused) {
  const proto::Config cfg = config();
  Trained source = trained(cfg);
  TrainState s = state(cfg);
  EXPECT_TRUE(read_checkpoint_after_save(source, s).state.balance_shares.empty());
  s.balance_shares = {40, 1, 23};
  const Checkpoint checkpoint = read_checkpoint_after_save(source, s);
  EXPECT_EQ(checkpoint.state.balance_shares, (std::vector<int64_t>{40, 1, 23}));
  EXPECT_EQ(checkpoint.file.attributes.at("balance_shares"), "40,1,23");
  // Written with a valid state checksum, so only the list's own checks can refuse them.
  const std::string path = dir_ + "/shares.h5";
  s.balance_shares = {40, 0, 24};
  save_checkpoint(path, *source.model, *source.optimizer, s);
  EXPECT_NE(
      error_of(path).find("shares.h5: attribute \"balance_shares\" is \"40,0,24\", not a list "
                          "of positive row counts"),
      std::string::npos)
      << error_of(path);
  s.balance_shares = {40, 30};
  save_checkpoint(path, *source.model, *source.optimizer, s);
  EXPECT_NE(error_of(path).find("\"40,30\", not a list of positive row counts summing to the "
                                "global batch 64"),
            std::string::npos)
      << error_of(path);
  s.balance_shares = {40, 20};
  save_checkpoint(path, *source.model, *source.optimizer, s);
  EXPECT_NE(
      error_of(path).find("shares.h5: attribute \"balance_shares\" sums to 60, not the global "
                          "batch 64"),
      std::string::npos)
      << error_of(path);
  // Edited after saving: the state checksum covers the list when present.
  ArrayFile edited = read_array_file(dir_ + "/" + checkpoint_file_name(2));
  edited.attributes["balance_shares"] = "41,1,22";
  write_array_file(path, edited);
  EXPECT_NE(error_of(path).find("the training state attributes are corrupt"), std::string::npos);
}

TEST_F(CheckpointTest, AMismatchNamesTheTensorAndBothShapesAndChangesNothing) {
  Trained source = trained(config(8));
  const std::string path = dir_ + "/c.h5";
  save_checkpoint(path, *source.model, *source.optimizer, state(config(8)));
  const Checkpoint checkpoint = read_checkpoint(path);

  Trained wider = trained(config(9));
  const std::vector<float> before(wider.model->params().data<float>(),
                                  wider.model->params().data<float>() + wider.model->num_params());
  try {
    restore_checkpoint(checkpoint, *wider.model, *wider.optimizer);
    FAIL() << "restored into a wider model";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kCheckpoint);
    EXPECT_NE(std::string(e.what()).find("params/dense0/weight has shape [8, 5], the model "
                                         "expects [9, 5]"),
              std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(std::equal(before.begin(), before.end(), wider.model->params().data<float>()));

  Trained sgd = trained(config(8, "sgd { momentum: 0.9 }"));
  try {
    restore_checkpoint(checkpoint, *sgd.model, *sgd.optimizer);
    FAIL() << "restored adam state into sgd";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("saved with optimizer adam"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace dpt
