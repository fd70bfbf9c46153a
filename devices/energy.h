// Energy meters: joules used over an interval, read from what the machine exposes, or "n/a" with
// the reason. RaplMeter reads Linux powercap (RAPL) package counters on CPUs; NvmlMeter reads one
// GPU through NVML, loaded with dlopen so no GPU or driver is needed to build or run. A meter that
// cannot read says why and is never asked for a number. Benchmarks (launch/) start all meters
// around the timed work and print energy_summary(); nothing here prints.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace dpt {

// Energy over one start()..stop() interval.
struct EnergyReading {
  double joules = 0;
  double seconds = 0;
  double watts() const { return seconds > 0 ? joules / seconds : 0; }
};

class EnergyMeter {
 public:
  virtual ~EnergyMeter() = default;
  // What is measured, e.g. "cpu package (RAPL)".
  virtual std::string name() const = 0;
  // Decided at construction: the counters were found and read once.
  virtual bool available() const = 0;
  // Why not available ("" when available), e.g. "no /sys/class/powercap (...)".
  virtual std::string unavailable_reason() const = 0;
  // Begins an interval. Only when available(); not thread-safe.
  virtual void start() = 0;
  // Ends the interval begun by start(). Throws dpt::Error when the counters stop being readable.
  virtual EnergyReading stop() = 0;
};

// ---- RAPL (powercap) ----------------------------------------------------------------------------

// Microjoules counted from `before` to `after` on a counter that wraps to 0 after `max_range_uj`.
// Handles one wrap (after < before); the caller keeps intervals shorter than a wrap period.
uint64_t rapl_counter_delta(uint64_t before, uint64_t after, uint64_t max_range_uj);

// The reason text for failing to read `path` with errno `err`; explains EACCES (root-only
// counters).
std::string rapl_read_error(const std::string& path, int err);

// Sums the package zones (name "package-N") of <powercap_root>/intel-rapl:N — the intel_rapl
// driver lists AMD packages there too. Subzones (intel-rapl:N:M: core, uncore, dram) lie inside
// their package and are skipped, as are psys (the whole platform, which contains the packages) and
// intel-rapl-mmio (a second view of the same package), so nothing is counted twice.
class RaplMeter : public EnergyMeter {
 public:
  explicit RaplMeter(const std::string& powercap_root = "/sys/class/powercap");
  std::string name() const override { return "cpu package (RAPL)"; }
  bool available() const override { return reason_.empty(); }
  std::string unavailable_reason() const override { return reason_; }
  void start() override;
  EnergyReading stop() override;

  // The zone directories summed (for tests and messages).
  const std::vector<std::string>& zones() const { return zones_; }

 private:
  std::vector<std::string> zones_;
  std::vector<uint64_t> max_range_uj_;
  std::vector<uint64_t> start_uj_;
  double start_s_ = 0;
  std::string reason_;
};

// ---- NVML ---------------------------------------------------------------------------------------

// The few NVML entry points used, declared here (no nvml.h). Return values are nvmlReturn_t
// (0 = success). Tests fill this with fakes; load_nvml() fills it from the real library.
struct NvmlApi {
  using Device = void*;                                         // nvmlDevice_t, an opaque pointer
  int (*init)() = nullptr;                                      // nvmlInit_v2
  int (*shutdown)() = nullptr;                                  // nvmlShutdown
  const char* (*error_string)(int) = nullptr;                   // nvmlErrorString
  int (*handle_by_index)(unsigned, Device*) = nullptr;          // nvmlDeviceGetHandleByIndex_v2
  int (*total_energy)(Device, unsigned long long*) = nullptr;   // ...GetTotalEnergyConsumption, mJ
  int (*power_usage)(Device, unsigned*) = nullptr;              // nvmlDeviceGetPowerUsage, mW
  int (*handle_by_pci_bus_id)(const char*, Device*) = nullptr;  // ...GetHandleByPciBusId_v2
  int (*power_limit)(Device, unsigned*) = nullptr;  // nvmlDeviceGetEnforcedPowerLimit, mW
  std::shared_ptr<void> library;                    // keeps the dlopen handle open; null for fakes
  std::string error;  // why loading failed; "" when every pointer is set
};

// dlopen(library) and look up the entry points; on failure returns an api with `error` set.
NvmlApi load_nvml(const std::string& library = "libnvidia-ml.so.1");

// Energy of one GPU: the total-energy counter (Volta and newer) when supported, else the power
// reading polled every `poll_ms` on a background thread and integrated (an approximation: NVML
// power is itself averaged over up to a second).
// The GPU is NVML's `device_index`, or, when `pci_bus_id` is given (GpuInfo::pci_bus_id), the
// one at that bus id: a CUDA ordinal is not an NVML index (NVML's docs: "the NVML index may not
// correlate with ... the CUDA device index"; NVML ignores CUDA_VISIBLE_DEVICES), so a CUDA device
// is found by its bus id. `device_index` names the meter either way ("gpu <device_index> (NVML)").
class NvmlMeter : public EnergyMeter {
 public:
  static constexpr int kDefaultPollMs = 20;
  explicit NvmlMeter(unsigned device_index = 0, const std::string& library = "libnvidia-ml.so.1");
  NvmlMeter(NvmlApi api, unsigned device_index, int poll_ms = kDefaultPollMs,
            const std::string& pci_bus_id = "");
  ~NvmlMeter() override;
  NvmlMeter(const NvmlMeter&) = delete;
  NvmlMeter& operator=(const NvmlMeter&) = delete;

  std::string name() const override;
  bool available() const override { return reason_.empty(); }
  std::string unavailable_reason() const override { return reason_; }
  void start() override;
  EnergyReading stop() override;

  // True when the total-energy counter is used, false when power is polled.
  bool uses_energy_counter() const { return use_counter_; }

 private:
  struct Poller;
  std::string nvml_error(const char* call, int code) const;

  NvmlApi api_;
  unsigned index_;
  int poll_ms_;
  bool initialized_ = false;
  bool use_counter_ = false;
  NvmlApi::Device device_ = nullptr;
  unsigned long long start_mj_ = 0;
  double start_s_ = 0;
  std::unique_ptr<Poller> poller_;
  std::string reason_;
};

// Trapezoid integral of power samples (seconds, watts), in order. Used by NvmlMeter's polling.
class PowerIntegrator {
 public:
  void add(double seconds, double watts);
  EnergyReading reading() const { return {joules_, last_s_ - first_s_}; }

 private:
  int64_t count_ = 0;
  double first_s_ = 0, last_s_ = 0, last_w_ = 0, joules_ = 0;
};

// ---- Several meters -----------------------------------------------------------------------------

// One meter's outcome over an interval: a reading, or the reason there is none.
struct EnergyResult {
  std::string meter;
  bool measured = false;
  EnergyReading reading;  // when measured
  std::string reason;     // when not measured
};

// The meters a benchmark uses on this machine: CPU packages (RAPL) and one GPU (NVML): the one at
// `gpu_pci_bus_id` when given, named by its CUDA ordinal `gpu_index`, else NVML's GPU `gpu_index`.
std::vector<std::unique_ptr<EnergyMeter>> default_energy_meters(
    unsigned gpu_index = 0, const std::string& gpu_pci_bus_id = "");

// Starts every available meter.
void start_meters(const std::vector<std::unique_ptr<EnergyMeter>>& meters);

// Stops every started meter; one result per meter, a stop() error becoming the reason.
std::vector<EnergyResult> stop_meters(const std::vector<std::unique_ptr<EnergyMeter>>& meters);

// One line: "energy: cpu package (RAPL) 12.3 J, 41.0 W; gpu 0 (NVML) n/a: <reason>".
std::string energy_summary(const std::vector<EnergyResult>& results);

}  // namespace dpt
