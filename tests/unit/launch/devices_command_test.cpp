// What `dpt devices` prints about GPUs it will not use: a GPU whose cuBLASLt cannot be loaded
// shows as not usable, with the same reason device selection gives, in the table and the JSON.
#include "launch/devices_command.h"

#include <gtest/gtest.h>

namespace dpt {
namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(DevicesCommand, AGpuWithoutCublasLtIsShownAsNotUsableWithTheReason) {
  MachineInfo machine = detect_machine();
  machine.gpu = GpuProbe{};
  machine.gpu.driver_version = machine.gpu.runtime_version = 13000;
  GpuInfo h100;
  h100.name = "NVIDIA H100";
  h100.compute_major = 9;
  h100.memory_bytes = int64_t{80} << 30;
  h100.pci_bus_id = "0000:1b:00.0";
  machine.gpu.gpus = {h100};
  const std::string load_error = "cuBLASLt: cannot load (libcublasLt.so.13: not found)";
  require_gpu_library(machine.gpu, "cuBLASLt", load_error);
  const std::string reason =
      "cuda:0 (NVIDIA H100) present but cuBLASLt cannot be loaded: " + load_error;

  const std::string table = devices_table(machine, {"local"});
  EXPECT_TRUE(contains(table, "not usable: cuBLASLt cannot be loaded")) << table;
  EXPECT_TRUE(contains(table, "n/a: " + reason)) << table;
  EXPECT_TRUE(contains(table, "cpu: no usable GPU (" + reason + ")")) << table;

  const nlohmann::json json = devices_json(machine, {"local"});
  EXPECT_EQ(json["gpus"]["reason"], reason);
  EXPECT_EQ(json["gpus"]["devices"][0]["usable"], false);
  EXPECT_EQ(json["gpus"]["devices"][0]["note"], "cuBLASLt cannot be loaded");
  EXPECT_EQ(json["recommendation"]["device"], "cpu");
}

}  // namespace
}  // namespace dpt
