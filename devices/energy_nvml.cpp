// The NVML energy meter of devices/energy.h: NVML loaded with dlopen (so dpt runs without the
// driver), total energy counters where the GPU has them, else power sampled on a thread and
// integrated.
#include <dlfcn.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

#include "devices/energy.h"
#include "devices/error.h"

namespace dpt {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

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

NvmlMeter::NvmlMeter(NvmlApi api, unsigned device_index, int poll_ms, const std::string& pci_bus_id)
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
  if (!pci_bus_id.empty()) {
    if (api_.handle_by_pci_bus_id == nullptr) {
      reason_ = "GPU " + std::to_string(index_) + " (" + pci_bus_id +
                "): this NVML has no nvmlDeviceGetHandleByPciBusId_v2";
      return;
    }
    if (const int rc = api_.handle_by_pci_bus_id(pci_bus_id.c_str(), &device_); rc != 0) {
      reason_ = "no GPU " + std::to_string(index_) + " at " + pci_bus_id + ": " +
                nvml_error("nvmlDeviceGetHandleByPciBusId_v2", rc);
      return;
    }
  } else if (const int rc = api_.handle_by_index(index_, &device_); rc != 0) {
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

}  // namespace dpt
