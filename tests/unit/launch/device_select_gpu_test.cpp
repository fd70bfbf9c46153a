// Which GPU a worker takes (decide_device, select_device with fake probes and a fake GPU): the
// probe's verdict, local rank k -> GPU k when every worker of the node sees the same GPUs, each
// its own cuda:0 under a one-GPU-per-process launch (srun --gpus-per-task=1), two workers on one
// GPU refused, and AUTO's CPU fall-back when cuBLASLt cannot be loaded.
#include <gtest/gtest.h>

#include "devices/cuda_support.h"
#include "devices/error.h"
#include "fake_gpu.h"
#include "launch/device_select.h"

namespace dpt {
namespace {

GpuProbe fake_probe(int usable, int too_old = 0) {
  GpuProbe probe;
  probe.driver_version = probe.runtime_version = 13000;
  for (int i = 0; i < too_old + usable; ++i) {
    GpuInfo gpu;
    gpu.index = i;
    gpu.name = i < too_old ? "Tesla T4" : "NVIDIA H100";
    gpu.compute_major = i < too_old ? 7 : 9;
    gpu.compute_minor = i < too_old ? 5 : 0;
    gpu.pci_bus_id = "0000:" + std::to_string(10 + i) + ":00.0";
    check_compute_capability(gpu);
    probe.gpus.push_back(gpu);
  }
  finish_probe(probe);
  return probe;
}

WorldInfo node_of(int local_rank, int local_size) {
  WorldInfo world;
  world.rank = world.local_rank = local_rank;
  world.size = world.local_size = local_size;
  return world;
}

TEST(DecideDevice, AutoUsesTheCpuAndSaysWhyWhenNoGpuIsUsable) {
  GpuProbe no_driver;
  no_driver.reason = "no NVIDIA driver (libcuda.so.1 not found)";
  DeviceDecision decision = decide_device(proto::AUTO, no_driver, node_of(0, 1));
  EXPECT_EQ(decision.kind, DeviceKind::kCpu);
  EXPECT_EQ(decision.reason,
            "kind AUTO found no usable GPU: no NVIDIA driver (libcuda.so.1 not found)");
  decision = decide_device(proto::AUTO, fake_probe(0, 1), node_of(0, 1));
  EXPECT_EQ(decision.kind, DeviceKind::kCpu);
  EXPECT_NE(decision.reason.find("too old"), std::string::npos) << decision.reason;
}

TEST(DecideDevice, LocalRankKOwnsTheKthUsableGpu) {
  // cuda:0 is too old, so local ranks 0 and 1 get cuda:1 and cuda:2.
  const GpuProbe probe = fake_probe(2, 1);
  for (proto::DeviceChoice kind : {proto::AUTO, proto::CUDA}) {
    const DeviceDecision first = decide_device(kind, probe, node_of(0, 2));
    const DeviceDecision second = decide_device(kind, probe, node_of(1, 2));
    EXPECT_EQ(first.kind, DeviceKind::kCuda);
    EXPECT_EQ(first.gpu, 1);
    EXPECT_EQ(second.gpu, 2);
    EXPECT_NE(second.reason.find("local rank 1 owns GPU cuda:2 (NVIDIA H100) of 2 usable"),
              std::string::npos)
        << second.reason;
  }
  EXPECT_EQ(decide_device(proto::CPU, probe, node_of(0, 1)).kind, DeviceKind::kCpu);
}

TEST(DecideDevice, CudaWithoutAUsableGpuIsAConfigErrorWithTheReason) {
  GpuProbe probe;
  probe.reason = "no CUDA device found";
  try {
    decide_device(proto::CUDA, probe, node_of(0, 1));
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kConfig);
    EXPECT_EQ(std::string(error.what()),
              "device.kind: CUDA requested, but no GPU is usable: no CUDA device found; use AUTO "
              "or CPU");
  }
}

TEST(DecideDevice, FewerGpusThanLocalWorkersIsAConfigError) {
  for (proto::DeviceChoice kind : {proto::AUTO, proto::CUDA}) {
    try {
      decide_device(kind, fake_probe(2), node_of(2, 3));
      FAIL() << "no error";
    } catch (const Error& error) {
      EXPECT_EQ(error.kind(), ErrorKind::kConfig);
      EXPECT_NE(std::string(error.what()).find("device.kind"), std::string::npos);
      EXPECT_NE(std::string(error.what()).find("3 workers on this node but only 2 usable GPU(s)"),
                std::string::npos)
          << error.what();
    }
  }
}

TEST(SelectDevice, AutoAndCudaCreateTheChosenGpuAndSayWhich) {
  std::vector<int> created;
  const GpuFactory fake = [&created](int ordinal) {
    created.push_back(ordinal);
    return std::unique_ptr<Device>(new FakeGpu(ordinal));
  };
  proto::DeviceConfig config;
  config.set_kind(proto::AUTO);
  DeviceChoice choice = select_device(config, node_of(0, 1), fake_probe(1), fake);
  EXPECT_EQ(choice.device->kind(), DeviceKind::kCuda);
  EXPECT_EQ(
      choice.reason,
      "device: fake-gpu:0; kind AUTO: local rank 0 owns GPU cuda:0 (NVIDIA H100) of 1 usable");
  EXPECT_NE(choice.precision_reason.find("float32"), std::string::npos);
  // cuda:0 too old: local rank 1 of 2 owns cuda:2.
  config.set_kind(proto::CUDA);
  choice = select_device(config, node_of(1, 2), fake_probe(2, 1), fake);
  EXPECT_EQ(choice.device->index(), 2);
  EXPECT_NE(choice.reason.find("kind CUDA requested: local rank 1 owns GPU cuda:2"),
            std::string::npos)
      << choice.reason;
  EXPECT_EQ(created, (std::vector<int>{0, 2}));
}

TEST(SelectDevice, AutoFallsBackToTheCpuAndCudaFailsWithoutAUsableGpu) {
  const GpuFactory never = [](int) -> std::unique_ptr<Device> {
    ADD_FAILURE() << "no GPU should be created";
    return nullptr;
  };
  GpuProbe none;
  none.reason = "no NVIDIA driver";
  proto::DeviceConfig config;
  config.set_kind(proto::AUTO);
  config.set_threads(1);
  DeviceChoice choice = select_device(config, node_of(0, 1), none, never);
  EXPECT_EQ(choice.device->kind(), DeviceKind::kCpu);
  EXPECT_NE(choice.reason.find("; kind AUTO found no usable GPU: no NVIDIA driver"),
            std::string::npos)
      << choice.reason;
  config.set_kind(proto::CUDA);
  EXPECT_THROW(select_device(config, node_of(0, 1), none, never), Error);
  // More local workers than GPUs stays a config error under AUTO.
  config.set_kind(proto::AUTO);
  EXPECT_THROW(select_device(config, node_of(1, 2), fake_probe(1), never), Error);
}

TEST(CpuOnly, AutoBecomesTheCpuAndCudaIsAConfigErrorNamingTheWork) {
  proto::DeviceConfig config;
  config.set_kind(proto::AUTO);
  config.set_threads(3);
  const proto::DeviceConfig cpu = cpu_only(config, "dpt compress");
  EXPECT_EQ(cpu.kind(), proto::CPU);
  EXPECT_EQ(cpu.threads(), 3);
  config.set_kind(proto::CUDA);
  try {
    cpu_only(config, "dpt compress");
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kConfig);
    EXPECT_EQ(
        std::string(error.what()),
        "device.kind: CUDA requested, but dpt compress runs on the CPU only; use AUTO or CPU");
  }
}

TEST(SelectDevice, CudaCreatesARealCudaDeviceOrFailsWithAConfigError) {
  // With a fake probe claiming a GPU, the real factory either opens cuda:0 (a GPU is present)
  // or fails as a config error naming it (no driver, or a build without CUDA).
  proto::DeviceConfig config;
  config.set_kind(proto::CUDA);
  const bool have_gpu = !usable_gpus(probe_gpus()).empty();
  try {
    DeviceChoice choice = select_device(config, node_of(0, 1), fake_probe(1));
    EXPECT_TRUE(have_gpu);
    EXPECT_EQ(choice.device->kind(), DeviceKind::kCuda);
    EXPECT_NE(choice.reason.find("device: cuda:0 ("), std::string::npos) << choice.reason;
  } catch (const Error& error) {
    EXPECT_FALSE(have_gpu) << error.what();
    EXPECT_EQ(error.kind(), ErrorKind::kConfig);
    EXPECT_NE(std::string(error.what()).find("cuda:0"), std::string::npos) << error.what();
  }
}

// Bus ids of four physical GPUs.
const std::string kA = "0000:1b:00.0", kB = "0000:3b:00.0", kC = "0000:5e:00.0",
                  kD = "0000:86:00.0";

// What a worker sees when the launcher gives it only the GPUs `bus_ids` (CUDA numbers them 0..).
GpuProbe sees(const std::vector<std::string>& bus_ids) {
  GpuProbe probe = fake_probe(static_cast<int>(bus_ids.size()));
  for (std::size_t i = 0; i < bus_ids.size(); ++i) probe.gpus[i].pci_bus_id = bus_ids[i];
  if (bus_ids.empty()) probe.reason = "no CUDA device found";
  return probe;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// srun --gpus-per-task=1 or a per-rank CUDA_VISIBLE_DEVICES: 4 workers, each seeing only its own
// GPU as cuda:0. Every worker takes its cuda:0; judged by this worker alone (the old rule), it is
// 4 workers on 1 GPU and refused.
TEST(DecideDevice, OneGpuPerProcessLaunchGivesEachWorkerItsOwnCuda0) {
  const NodeGpus node = {{kA}, {kB}, {kC}, {kD}};
  for (proto::DeviceChoice kind : {proto::AUTO, proto::CUDA}) {
    for (int r = 0; r < 4; ++r) {
      const DeviceDecision decision =
          decide_device(kind, sees(node[static_cast<std::size_t>(r)]), node_of(r, 4), node);
      EXPECT_EQ(decision.kind, DeviceKind::kCuda);
      EXPECT_EQ(decision.gpu, 0);
    }
  }
  EXPECT_EQ(decide_device(proto::AUTO, sees({kC}), node_of(2, 4), node).reason,
            "kind AUTO: local rank 2 owns GPU cuda:0 (NVIDIA H100, 0000:5e:00.0), the first of "
            "the 1 it sees (the workers on this node see different GPUs)");
  EXPECT_THROW(decide_device(proto::CUDA, sees({kC}), node_of(2, 4)), Error);
}

TEST(DecideDevice, EveryWorkerSeeingTheSameGpusGivesLocalRankKCudaK) {
  const std::vector<std::string> all = {kA, kB, kC, kD};
  const NodeGpus node(4, all);
  for (int r = 0; r < 4; ++r) {
    EXPECT_EQ(decide_device(proto::CUDA, sees(all), node_of(r, 4), node).gpu, r);
  }
  EXPECT_EQ(decide_device(proto::AUTO, sees(all), node_of(3, 4), node).reason,
            "kind AUTO: local rank 3 owns GPU cuda:3 (NVIDIA H100) of 4 usable");
  // Three workers on two shared GPUs: refused under AUTO too (the GPUs are there; the launch is
  // wrong), naming the worker left without one.
  const NodeGpus three(3, {kA, kB});
  for (proto::DeviceChoice kind : {proto::AUTO, proto::CUDA}) {
    try {
      decide_device(kind, sees({kA, kB}), node_of(0, 3), three);
      FAIL() << "no error";
    } catch (const Error& error) {
      EXPECT_EQ(error.kind(), ErrorKind::kConfig);
      EXPECT_TRUE(contains(error.what(), "3 workers on this node but only 2 usable GPU(s)"))
          << error.what();
      EXPECT_TRUE(contains(error.what(), "(local rank 2 has none)")) << error.what();
    }
  }
}

// Two workers given the same physical GPU (a wrapper script's mistake) fail on every worker of
// the node, under AUTO too, naming both and the bus id, as NCCL would later refuse them.
TEST(DecideDevice, TwoWorkersOnOneGpuIsAConfigErrorNamingBoth) {
  const NodeGpus node = {{kA}, {kA}, {kB}};
  for (int r = 0; r < 3; ++r) {
    try {
      decide_device(proto::AUTO, sees(node[static_cast<std::size_t>(r)]), node_of(r, 3), node);
      FAIL() << "no error on local rank " << r;
    } catch (const Error& error) {
      EXPECT_EQ(error.kind(), ErrorKind::kConfig);
      EXPECT_TRUE(contains(error.what(),
                           "device.kind: AUTO: local ranks 0 and 1 would share GPU 0000:1b:00.0"))
          << error.what();
    }
  }
}

// A worker whose launcher gave it no GPU falls back to the CPU under AUTO (and is an error under
// CUDA) while the others share theirs among themselves.
TEST(DecideDevice, AWorkerWithoutGpusTakesNoneAndTheOthersShareTheirs) {
  const NodeGpus node = {{}, {kA, kB}, {kA, kB}};
  EXPECT_EQ(decide_device(proto::AUTO, sees({}), node_of(0, 3), node).kind, DeviceKind::kCpu);
  EXPECT_THROW(decide_device(proto::CUDA, sees({}), node_of(0, 3), node), Error);
  EXPECT_EQ(decide_device(proto::CUDA, sees({kA, kB}), node_of(1, 3), node).gpu, 0);
  EXPECT_EQ(decide_device(proto::CUDA, sees({kA, kB}), node_of(2, 3), node).gpu, 1);
}

TEST(SelectDevice, CreatesTheGpuTheNodeAssignmentGives) {
  std::vector<int> created;
  const GpuFactory fake = [&created](int ordinal) {
    created.push_back(ordinal);
    return std::unique_ptr<Device>(new FakeGpu(ordinal));
  };
  proto::DeviceConfig config;
  config.set_kind(proto::CUDA);
  const DeviceChoice choice =
      select_device(config, node_of(1, 2), sees({kB}), fake, NodeGpus{{kA}, {kB}});
  EXPECT_EQ(created, std::vector<int>{0});
  EXPECT_TRUE(contains(choice.reason,
                       "device: fake-gpu:0; kind CUDA requested: local rank 1 owns GPU cuda:0 "
                       "(NVIDIA H100, 0000:3b:00.0), the first of the 1 it sees"))
      << choice.reason;
}

// The driver and a GPU are there but libcublasLt does not load: the probe makes the GPU unusable
// with the loader's reason, so AUTO trains on the CPU saying why and CUDA is a config error.
TEST(SelectDevice, AutoFallsBackToTheCpuWhenCublasLtCannotBeLoaded) {
  const GpuFactory never = [](int) -> std::unique_ptr<Device> {
    ADD_FAILURE() << "no GPU should be created";
    return nullptr;
  };
  GpuProbe probe = fake_probe(1);
  const std::string load_error =
      "cuBLASLt: cannot load (libcublasLt.so.13: cannot open shared object file: No such file or "
      "directory)";
  require_gpu_library(probe, "cuBLASLt", load_error);
  const std::string reason =
      "cuda:0 (NVIDIA H100) present but cuBLASLt cannot be loaded: " + load_error;
  proto::DeviceConfig config;
  config.set_kind(proto::AUTO);
  config.set_threads(1);
  const DeviceChoice choice = select_device(config, node_of(0, 1), probe, never);
  EXPECT_EQ(choice.device->kind(), DeviceKind::kCpu);
  EXPECT_TRUE(contains(choice.reason, "; kind AUTO found no usable GPU: " + reason))
      << choice.reason;
  config.set_kind(proto::CUDA);
  try {
    select_device(config, node_of(0, 1), probe, never);
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kConfig);
    EXPECT_EQ(std::string(error.what()),
              "device.kind: CUDA requested, but no GPU is usable: " + reason + "; use AUTO or CPU");
  }
}

}  // namespace
}  // namespace dpt
