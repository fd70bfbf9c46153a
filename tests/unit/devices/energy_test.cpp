// Energy meters: RAPL over a fake powercap tree in a temp dir (exact joules, wrap-around, no double
// counting, unavailable reasons), NVML's not-found path for real, and NVML's arithmetic via fakes.
#include "devices/energy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "devices/error.h"

namespace dpt {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class FakePowercap {
 public:
  FakePowercap() {
    std::string pattern = (fs::temp_directory_path() / "dpt_energy_XXXXXX").string();
    root_ = ::mkdtemp(pattern.data());
  }
  ~FakePowercap() { fs::remove_all(root_); }
  std::string root() const { return root_.string(); }

  void zone(const std::string& dir, const std::string& name, uint64_t energy, uint64_t max_range) {
    fs::create_directories(root_ / dir);
    write(dir + "/name", name);
    write(dir + "/max_energy_range_uj", std::to_string(max_range));
    set(dir, energy);
  }
  void set(const std::string& dir, uint64_t energy) {
    write(dir + "/energy_uj", std::to_string(energy));
  }
  void write(const std::string& file, const std::string& text) {
    std::ofstream(root_ / file) << text << "\n";
  }

 private:
  fs::path root_;
};

constexpr uint64_t kMax = 10'000'000;  // 10 J counter range

// Two packages with subzones, as the kernel lays them out flat under /sys/class/powercap, plus
// the control-type directory, a psys zone and an mmio view of package 0, none of which count.
void make_two_packages(FakePowercap& tree) {
  fs::create_directories(tree.root() + "/intel-rapl");
  tree.zone("intel-rapl:0", "package-0", 1'000'000, kMax);
  tree.zone("intel-rapl:0:0", "core", 5'000, kMax);
  tree.zone("intel-rapl:0:1", "dram", 7'000, kMax);
  tree.zone("intel-rapl:1", "package-1", 9'500'000, kMax);
  tree.zone("intel-rapl:1:0", "core", 100, kMax);
  tree.zone("intel-rapl:2", "psys", 0, kMax);
  tree.zone("intel-rapl-mmio:0", "package-0", 0, kMax);
}

TEST(RaplCounterDelta, ForwardAndOneWrap) {
  EXPECT_EQ(rapl_counter_delta(100, 350, kMax), 250u);
  EXPECT_EQ(rapl_counter_delta(5, 5, kMax), 0u);
  // After kMax comes 0: from kMax - 1 to 1 is 3 steps (kMax - 1 -> kMax -> 0 -> 1).
  EXPECT_EQ(rapl_counter_delta(kMax - 1, 1, kMax), 3u);
}

TEST(RaplMeter, SumsPackagesOnlyAndHandlesWrap) {
  FakePowercap tree;
  make_two_packages(tree);
  RaplMeter meter(tree.root());
  ASSERT_TRUE(meter.available()) << meter.unavailable_reason();
  EXPECT_EQ(meter.unavailable_reason(), "");
  EXPECT_EQ(meter.zones(), (std::vector<std::string>{tree.root() + "/intel-rapl:0",
                                                     tree.root() + "/intel-rapl:1"}));

  meter.start();
  tree.set("intel-rapl:0", 3'500'000);    // +2.5 J
  tree.set("intel-rapl:1", 1'000'000);    // wrapped: +(kMax + 1 - 9.5e6 + 1e6) uJ = 1.500001 J
  tree.set("intel-rapl:0:0", 9'000'000);  // subzones, psys and mmio move a lot; none may count
  tree.set("intel-rapl:1:0", 8'000'000);
  tree.set("intel-rapl:2", 9'999'999);
  tree.set("intel-rapl-mmio:0", 9'999'999);
  const EnergyReading reading = meter.stop();
  EXPECT_DOUBLE_EQ(reading.joules, 4.000001);
  EXPECT_GE(reading.seconds, 0.0);

  // A second interval starts from the current counters.
  meter.start();
  tree.set("intel-rapl:0", 3'500'010);
  EXPECT_DOUBLE_EQ(meter.stop().joules, 10e-6);
}

TEST(RaplMeter, NoPowercapDirectory) {
  RaplMeter meter("/nonexistent/dpt/powercap");
  EXPECT_FALSE(meter.available());
  EXPECT_EQ(meter.unavailable_reason(),
            "no /nonexistent/dpt/powercap (no powercap driver; usual in VMs and containers)");
  EXPECT_THROW(meter.start(), Error);
}

TEST(RaplMeter, NoPackageZones) {
  FakePowercap tree;
  tree.zone("intel-rapl:0", "psys", 0, kMax);
  fs::create_directories(tree.root() + "/dtpm");
  RaplMeter meter(tree.root());
  EXPECT_FALSE(meter.available());
  EXPECT_EQ(meter.unavailable_reason(),
            "no RAPL package zones in " + tree.root() + " (in a VM the zone is usually absent)");
}

TEST(RaplMeter, UnreadableEnergyFileNamesPathAndCause) {
  FakePowercap tree;
  make_two_packages(tree);
  // Root ignores chmod 000, so make energy_uj unreadable as a directory.
  fs::remove(tree.root() + "/intel-rapl:1/energy_uj");
  fs::create_directories(tree.root() + "/intel-rapl:1/energy_uj");
  RaplMeter meter(tree.root());
  EXPECT_FALSE(meter.available());
  EXPECT_EQ(meter.unavailable_reason(),
            "cannot read " + tree.root() + "/intel-rapl:1/energy_uj: Is a directory");
}

TEST(RaplMeter, MissingEnergyFileNamesPathAndCause) {
  FakePowercap tree;
  make_two_packages(tree);
  fs::remove(tree.root() + "/intel-rapl:0/energy_uj");
  RaplMeter meter(tree.root());
  EXPECT_FALSE(meter.available());
  EXPECT_EQ(meter.unavailable_reason(),
            "cannot read " + tree.root() + "/intel-rapl:0/energy_uj: No such file or directory");
}

TEST(RaplMeter, GarbageCounterIsRefused) {
  FakePowercap tree;
  make_two_packages(tree);
  tree.write("intel-rapl:0/energy_uj", "12abc");
  RaplMeter meter(tree.root());
  EXPECT_EQ(meter.unavailable_reason(),
            tree.root() + "/intel-rapl:0/energy_uj is not a counter ('12abc')");
}

TEST(RaplMeter, CounterVanishingBeforeStopThrows) {
  FakePowercap tree;
  make_two_packages(tree);
  RaplMeter meter(tree.root());
  meter.start();
  fs::remove(tree.root() + "/intel-rapl:1/energy_uj");
  try {
    meter.stop();
    FAIL() << "stop() read a missing counter";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("intel-rapl:1/energy_uj: No such file or directory"));
  }
}

TEST(RaplReadError, PermissionDeniedExplainsRootOnly) {
  EXPECT_EQ(rapl_read_error("/x/energy_uj", EACCES),
            "cannot read /x/energy_uj: Permission denied (kernels since 2020 let only root read "
            "RAPL energy_uj; run as root or make it readable)");
  EXPECT_EQ(rapl_read_error("/x/energy_uj", ENOENT),
            "cannot read /x/energy_uj: No such file or directory");
}

TEST(NvmlMeter, LibraryNotFound) {
  NvmlMeter meter(0, "libdpt-no-such-nvml.so.1");
  EXPECT_FALSE(meter.available());
  EXPECT_EQ(meter.name(), "gpu 0 (NVML)");
  EXPECT_THAT(meter.unavailable_reason(), HasSubstr("NVML not found (libdpt-no-such-nvml.so.1"));
  EXPECT_THAT(meter.unavailable_reason(), HasSubstr("cannot open shared object file"));
  EXPECT_THROW(meter.start(), Error);
}

// ---- NVML fakes: one fake GPU whose counters the test sets. -------------------------------------

std::atomic<unsigned long long> fake_energy_mj{0};
std::atomic<unsigned> fake_power_mw{0};
std::atomic<int> fake_energy_rc{0};
std::atomic<int> fake_init_rc{0};
std::atomic<int> fake_shutdowns{0};
int fake_device_storage;

int fake_init() { return fake_init_rc; }
int fake_shutdown() { return ++fake_shutdowns, 0; }
const char* fake_error_string(int rc) { return rc == 3 ? "Not Supported" : "Driver Not Loaded"; }
int fake_handle(unsigned index, NvmlApi::Device* device) {
  *device = &fake_device_storage;
  return index == 0 ? 0 : 2;
}
int fake_total_energy(NvmlApi::Device device, unsigned long long* mj) {
  if (device != &fake_device_storage) return 2;
  *mj = fake_energy_mj;
  return fake_energy_rc;
}
int fake_power(NvmlApi::Device, unsigned* mw) { return *mw = fake_power_mw, 0; }

NvmlApi fake_api() {
  fake_energy_mj = 0;
  fake_power_mw = 0;
  fake_energy_rc = 0;
  fake_init_rc = 0;
  fake_shutdowns = 0;
  NvmlApi api;
  api.init = fake_init;
  api.shutdown = fake_shutdown;
  api.error_string = fake_error_string;
  api.handle_by_index = fake_handle;
  api.total_energy = fake_total_energy;
  api.power_usage = fake_power;
  return api;
}

TEST(NvmlMeter, EnergyCounterDifference) {
  NvmlApi api = fake_api();
  fake_energy_mj = 1'000'000;
  {
    NvmlMeter meter(api, 0);
    ASSERT_TRUE(meter.available()) << meter.unavailable_reason();
    EXPECT_TRUE(meter.uses_energy_counter());
    meter.start();
    fake_energy_mj = 1'012'345;
    EXPECT_DOUBLE_EQ(meter.stop().joules, 12.345);
  }
  EXPECT_EQ(fake_shutdowns, 1);
}

TEST(NvmlMeter, PollsPowerWhenEnergyUnsupported) {
  NvmlApi api = fake_api();
  fake_energy_rc = 3;
  fake_power_mw = 150'000;
  NvmlMeter meter(api, 0, /*poll_ms=*/1);
  ASSERT_TRUE(meter.available()) << meter.unavailable_reason();
  EXPECT_FALSE(meter.uses_energy_counter());
  meter.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  const EnergyReading reading = meter.stop();
  EXPECT_GE(reading.seconds, 0.03);
  EXPECT_NEAR(reading.watts(), 150.0, 1e-9);
  EXPECT_NEAR(reading.joules, 150.0 * reading.seconds, 1e-9);
}

TEST(NvmlMeter, ReasonsFromNvmlCalls) {
  NvmlApi api = fake_api();
  fake_init_rc = 9;
  EXPECT_EQ(NvmlMeter(api, 0).unavailable_reason(), "nvmlInit_v2 failed: Driver Not Loaded");
  EXPECT_EQ(fake_shutdowns, 0);  // no shutdown without a successful init

  api = fake_api();
  EXPECT_EQ(NvmlMeter(api, 1).unavailable_reason(),
            "no GPU 1: nvmlDeviceGetHandleByIndex_v2 failed: Driver Not Loaded");
}

// A CUDA device's meter finds its GPU by PCI bus id, never by NVML index: under
// CUDA_VISIBLE_DEVICES=3, CUDA's GPU 0 is NVML's GPU 3 (NVML ignores the variable).
int fake_device_3;
int fake_handle_by_bus(const char* bus, NvmlApi::Device* device) {
  if (std::string(bus) != "0000:3b:00.0") return 2;
  *device = &fake_device_3;
  return 0;
}
// Only GPU 3 has an energy counter here: a meter on any other GPU would poll power instead.
int fake_energy_of_gpu_3(NvmlApi::Device device, unsigned long long* mj) {
  if (device != &fake_device_3) return 2;
  *mj = fake_energy_mj;
  return 0;
}

TEST(NvmlMeter, FindsACudaDeviceByPciBusIdNotByIndex) {
  NvmlApi api = fake_api();
  api.handle_by_pci_bus_id = fake_handle_by_bus;
  api.total_energy = fake_energy_of_gpu_3;
  fake_energy_mj = 5'000'000;
  {
    NvmlMeter meter(api, 0, NvmlMeter::kDefaultPollMs, "0000:3b:00.0");
    ASSERT_TRUE(meter.available()) << meter.unavailable_reason();
    EXPECT_TRUE(meter.uses_energy_counter()) << "the meter reads another GPU than 0000:3b:00.0";
    EXPECT_EQ(meter.name(), "gpu 0 (NVML)");  // named by its CUDA ordinal
    meter.start();
    fake_energy_mj = 5'002'500;
    EXPECT_DOUBLE_EQ(meter.stop().joules, 2.5);
  }

  EXPECT_EQ(NvmlMeter(api, 1, NvmlMeter::kDefaultPollMs, "0000:65:00.0").unavailable_reason(),
            "no GPU 1 at 0000:65:00.0: nvmlDeviceGetHandleByPciBusId_v2 failed: Driver Not Loaded");
  api.handle_by_pci_bus_id = nullptr;
  EXPECT_EQ(NvmlMeter(api, 0, NvmlMeter::kDefaultPollMs, "0000:3b:00.0").unavailable_reason(),
            "GPU 0 (0000:3b:00.0): this NVML has no nvmlDeviceGetHandleByPciBusId_v2");
}

TEST(PowerIntegrator, Trapezoids) {
  PowerIntegrator integrator;
  integrator.add(10.0, 100.0);
  EXPECT_DOUBLE_EQ(integrator.reading().joules, 0.0);
  integrator.add(11.0, 200.0);  // 150 J
  integrator.add(13.0, 200.0);  // 400 J
  EXPECT_DOUBLE_EQ(integrator.reading().joules, 550.0);
  EXPECT_DOUBLE_EQ(integrator.reading().seconds, 3.0);
  EXPECT_DOUBLE_EQ(integrator.reading().watts(), 550.0 / 3.0);
}

TEST(EnergySummary, MeasuredAndNotApplicable) {
  FakePowercap tree;
  make_two_packages(tree);
  std::vector<std::unique_ptr<EnergyMeter>> meters;
  meters.push_back(std::make_unique<RaplMeter>(tree.root()));
  meters.push_back(std::make_unique<NvmlMeter>(0, "libdpt-no-such-nvml.so.1"));
  start_meters(meters);
  tree.set("intel-rapl:0", 3'300'000);  // +2.3 J
  const std::vector<EnergyResult> results = stop_meters(meters);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_TRUE(results[0].measured);
  EXPECT_NEAR(results[0].reading.joules, 2.3, 1e-12);
  EXPECT_FALSE(results[1].measured);
  EXPECT_EQ(results[1].reason, meters[1]->unavailable_reason());

  EnergyResult rapl{"cpu package (RAPL)", true, {12.3, 0.3}, ""};
  EnergyResult nvml{"gpu 0 (NVML)", false, {}, "NVML not found (x)"};
  EXPECT_EQ(energy_summary({rapl, nvml}),
            "energy: cpu package (RAPL) 12.30 J, 41.0 W over 0.30 s; gpu 0 (NVML) n/a: NVML not "
            "found (x)");
  EXPECT_EQ(energy_summary({}), "energy: n/a: no meters");
}

}  // namespace
}  // namespace dpt
