// Energy meters over powercap (RAPL) files and a dlopen'ed NVML; see energy.h.
#include "devices/energy.h"

#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <type_traits>

#include "devices/error.h"

namespace dpt {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Reads a small sysfs file. Returns 0, or the errno of the failing open/read.
int read_small_file(const std::string& path, std::string& text) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  char buffer[256];
  const ssize_t n = ::read(fd, buffer, sizeof(buffer) - 1);
  const int err = n < 0 ? errno : 0;
  ::close(fd);
  if (err != 0) return err;
  text.assign(buffer, static_cast<std::size_t>(n));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return 0;
}

// Reads a decimal counter; on failure returns false with `reason` set.
bool read_counter(const std::string& path, uint64_t& value, std::string& reason) {
  std::string text;
  if (const int err = read_small_file(path, text); err != 0) {
    reason = rapl_read_error(path, err);
    return false;
  }
  char* end = nullptr;
  errno = 0;
  value = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0) {
    reason = path + " is not a counter ('" + text + "')";
    return false;
  }
  return true;
}

// "intel-rapl:<digits>" exactly: a top-level zone, not a subzone or the control type.
bool is_top_level_rapl_zone(const std::string& name) {
  const std::string prefix = "intel-rapl:";
  if (name.compare(0, prefix.size(), prefix) != 0 || name.size() == prefix.size()) return false;
  return std::all_of(name.begin() + prefix.size(), name.end(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

std::string format_reading(const EnergyReading& r) {
  char buffer[96];
  std::snprintf(buffer, sizeof(buffer), "%.2f J, %.1f W over %.2f s", r.joules, r.watts(),
                r.seconds);
  return buffer;
}

}  // namespace

// ---- RAPL ---------------------------------------------------------------------------------------

uint64_t rapl_counter_delta(uint64_t before, uint64_t after, uint64_t max_range_uj) {
  if (after >= before) return after - before;
  return max_range_uj + 1 - before + after;
}

std::string rapl_read_error(const std::string& path, int err) {
  std::string reason = "cannot read " + path + ": " + std::strerror(err);
  if (err == EACCES || err == EPERM) {
    reason +=
        " (kernels since 2020 let only root read RAPL energy_uj; run as root or make it "
        "readable)";
  }
  return reason;
}

RaplMeter::RaplMeter(const std::string& powercap_root) {
  struct stat info {};
  if (::stat(powercap_root.c_str(), &info) != 0 || !S_ISDIR(info.st_mode)) {
    reason_ = "no " + powercap_root + " (no powercap driver; usual in VMs and containers)";
    return;
  }
  DIR* dir = ::opendir(powercap_root.c_str());
  if (dir == nullptr) {
    reason_ = "cannot list " + powercap_root + ": " + std::strerror(errno);
    return;
  }
  std::vector<std::string> names;
  while (const dirent* entry = ::readdir(dir)) {
    if (is_top_level_rapl_zone(entry->d_name)) names.push_back(entry->d_name);
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());

  for (const std::string& name : names) {
    const std::string zone = powercap_root + "/" + name;
    std::string zone_name;
    if (const int err = read_small_file(zone + "/name", zone_name); err != 0) {
      reason_ = rapl_read_error(zone + "/name", err);
      return;
    }
    if (zone_name.compare(0, 7, "package") != 0) continue;  // psys contains the packages
    uint64_t max_range = 0, energy = 0;
    if (!read_counter(zone + "/max_energy_range_uj", max_range, reason_) ||
        !read_counter(zone + "/energy_uj", energy, reason_)) {
      return;
    }
    zones_.push_back(zone);
    max_range_uj_.push_back(max_range);
  }
  if (zones_.empty()) {
    reason_ = "no RAPL package zones in " + powercap_root + " (in a VM the zone is usually absent)";
  }
}

void RaplMeter::start() {
  DPT_CHECK(available()) << "RaplMeter::start: " << reason_;
  start_uj_.assign(zones_.size(), 0);
  std::string reason;
  for (std::size_t i = 0; i < zones_.size(); ++i) {
    DPT_CHECK(read_counter(zones_[i] + "/energy_uj", start_uj_[i], reason)) << reason;
  }
  start_s_ = now_s();
}

EnergyReading RaplMeter::stop() {
  DPT_CHECK(start_uj_.size() == zones_.size() && !zones_.empty()) << "RaplMeter::stop before start";
  const double seconds = now_s() - start_s_;
  uint64_t total_uj = 0;
  std::string reason;
  for (std::size_t i = 0; i < zones_.size(); ++i) {
    uint64_t end = 0;
    DPT_CHECK(read_counter(zones_[i] + "/energy_uj", end, reason)) << reason;
    total_uj += rapl_counter_delta(start_uj_[i], end, max_range_uj_[i]);
  }
  start_uj_.clear();
  return {static_cast<double>(total_uj) * 1e-6, seconds};
}

// ---- NVML ---------------------------------------------------------------------------------------

NvmlApi load_nvml(const std::string& library) {
  NvmlApi api;
  void* handle = ::dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* error = ::dlerror();
    api.error = std::string("NVML not found (") + (error ? error : library) + ")";
    return api;
  }
  api.library = std::shared_ptr<void>(handle, [](void* h) { ::dlclose(h); });
  const auto find = [&](auto& fn, const char* symbol, bool required) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(handle, symbol));
    if (fn == nullptr && required && api.error.empty()) {
      api.error = library + " has no " + symbol + " (driver too old)";
    }
  };
  find(api.init, "nvmlInit_v2", true);
  find(api.shutdown, "nvmlShutdown", true);
  find(api.error_string, "nvmlErrorString", true);
  find(api.handle_by_index, "nvmlDeviceGetHandleByIndex_v2", true);
  find(api.total_energy, "nvmlDeviceGetTotalEnergyConsumption", false);  // Volta and newer
  find(api.power_usage, "nvmlDeviceGetPowerUsage", true);
  find(api.handle_by_pci_bus_id, "nvmlDeviceGetHandleByPciBusId_v2", false);
  find(api.power_limit, "nvmlDeviceGetEnforcedPowerLimit", false);
  return api;
}

// Background sampling of power; the thread is the only writer of `integrator` and `error` until
// joined.
struct NvmlMeter::Poller {
  std::mutex mutex;
  std::condition_variable wake;
  bool stop = false;
  PowerIntegrator integrator;
  std::string error;
  std::thread thread;
};

NvmlMeter::NvmlMeter(unsigned device_index, const std::string& library)
    : NvmlMeter(load_nvml(library), device_index) {}

NvmlMeter::NvmlMeter(NvmlApi api, unsigned device_index, int poll_ms)
    : api_(std::move(api)), index_(device_index), poll_ms_(poll_ms) {
  if (!api_.error.empty()) {
    reason_ = api_.error;
    return;
  }
  if (const int rc = api_.init(); rc != 0) {
    reason_ = nvml_error("nvmlInit_v2", rc);
    return;
  }
  initialized_ = true;
  if (const int rc = api_.handle_by_index(index_, &device_); rc != 0) {
    reason_ =
        "no GPU " + std::to_string(index_) + ": " + nvml_error("nvmlDeviceGetHandleByIndex_v2", rc);
    return;
  }
  unsigned long long mj = 0;
  const int energy_rc = api_.total_energy ? api_.total_energy(device_, &mj) : -1;
  if (energy_rc == 0) {
    use_counter_ = true;
    return;
  }
  unsigned mw = 0;
  if (const int rc = api_.power_usage(device_, &mw); rc != 0) {
    reason_ = "GPU " + std::to_string(index_) + " reports neither energy (" +
              (api_.total_energy ? nvml_error("nvmlDeviceGetTotalEnergyConsumption", energy_rc)
                                 : std::string("no such call")) +
              ") nor power (" + nvml_error("nvmlDeviceGetPowerUsage", rc) + ")";
  }
}

NvmlMeter::~NvmlMeter() {
  if (poller_ && poller_->thread.joinable()) {
    {
      std::lock_guard<std::mutex> lock(poller_->mutex);
      poller_->stop = true;
    }
    poller_->wake.notify_all();
    poller_->thread.join();
  }
  if (initialized_) api_.shutdown();
}

std::string NvmlMeter::name() const { return "gpu " + std::to_string(index_) + " (NVML)"; }

std::string NvmlMeter::nvml_error(const char* call, int code) const {
  const char* text = api_.error_string ? api_.error_string(code) : nullptr;
  return std::string(call) + " failed: " + (text ? text : "error " + std::to_string(code));
}

void NvmlMeter::start() {
  DPT_CHECK(available()) << "NvmlMeter::start: " << reason_;
  DPT_CHECK(!poller_) << "NvmlMeter::start twice";
  start_s_ = now_s();
  if (use_counter_) {
    const int rc = api_.total_energy(device_, &start_mj_);
    DPT_CHECK(rc == 0) << name() << ": " << nvml_error("nvmlDeviceGetTotalEnergyConsumption", rc);
    return;
  }
  poller_ = std::make_unique<Poller>();
  const auto sample = [this](Poller& p) {
    unsigned mw = 0;
    const int rc = api_.power_usage(device_, &mw);
    if (rc != 0 && p.error.empty()) p.error = nvml_error("nvmlDeviceGetPowerUsage", rc);
    if (rc == 0) p.integrator.add(now_s(), mw * 1e-3);
  };
  sample(*poller_);
  poller_->thread = std::thread([this, sample] {
    Poller& p = *poller_;
    std::unique_lock<std::mutex> lock(p.mutex);
    while (!p.wake.wait_for(lock, std::chrono::milliseconds(poll_ms_), [&] { return p.stop; })) {
      sample(p);
    }
  });
}

EnergyReading NvmlMeter::stop() {
  if (use_counter_) {
    unsigned long long end_mj = 0;
    const int rc = api_.total_energy(device_, &end_mj);
    DPT_CHECK(rc == 0) << name() << ": " << nvml_error("nvmlDeviceGetTotalEnergyConsumption", rc);
    return {static_cast<double>(end_mj - start_mj_) * 1e-3, now_s() - start_s_};
  }
  DPT_CHECK(poller_ != nullptr) << "NvmlMeter::stop before start";
  {
    std::lock_guard<std::mutex> lock(poller_->mutex);
    poller_->stop = true;
  }
  poller_->wake.notify_all();
  poller_->thread.join();
  std::unique_ptr<Poller> p = std::move(poller_);
  unsigned mw = 0;
  const int rc = api_.power_usage(device_, &mw);
  if (rc != 0 && p->error.empty()) p->error = nvml_error("nvmlDeviceGetPowerUsage", rc);
  DPT_CHECK(p->error.empty()) << name() << ": " << p->error;
  p->integrator.add(now_s(), mw * 1e-3);
  return p->integrator.reading();
}

void PowerIntegrator::add(double seconds, double watts) {
  if (count_ == 0) {
    first_s_ = seconds;
  } else {
    joules_ += (seconds - last_s_) * (watts + last_w_) / 2;
  }
  last_s_ = seconds;
  last_w_ = watts;
  ++count_;
}

// ---- Several meters -----------------------------------------------------------------------------

std::vector<std::unique_ptr<EnergyMeter>> default_energy_meters(unsigned gpu_index) {
  std::vector<std::unique_ptr<EnergyMeter>> meters;
  meters.push_back(std::make_unique<RaplMeter>());
  meters.push_back(std::make_unique<NvmlMeter>(gpu_index));
  return meters;
}

void start_meters(const std::vector<std::unique_ptr<EnergyMeter>>& meters) {
  for (const auto& meter : meters) {
    if (meter->available()) meter->start();
  }
}

std::vector<EnergyResult> stop_meters(const std::vector<std::unique_ptr<EnergyMeter>>& meters) {
  std::vector<EnergyResult> results;
  for (const auto& meter : meters) {
    EnergyResult result;
    result.meter = meter->name();
    if (!meter->available()) {
      result.reason = meter->unavailable_reason();
    } else {
      try {
        result.reading = meter->stop();
        result.measured = true;
      } catch (const Error& e) {
        result.reason = e.what();
      }
    }
    results.push_back(std::move(result));
  }
  return results;
}

std::string energy_summary(const std::vector<EnergyResult>& results) {
  std::string line = "energy:";
  if (results.empty()) return line + " n/a: no meters";
  for (std::size_t i = 0; i < results.size(); ++i) {
    const EnergyResult& r = results[i];
    line += (i == 0 ? " " : "; ") + r.meter + " " +
            (r.measured ? format_reading(r.reading) : "n/a: " + r.reason);
  }
  return line;
}

}  // namespace dpt
