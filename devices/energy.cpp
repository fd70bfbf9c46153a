// Energy meters over powercap (RAPL) files, and running several meters together; see energy.h.
// The NVML meter is energy_nvml.cpp.
#include "devices/energy.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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

// ---- Several meters -----------------------------------------------------------------------------

std::vector<std::unique_ptr<EnergyMeter>> default_energy_meters(unsigned gpu_index,
                                                                const std::string& gpu_pci_bus_id) {
  std::vector<std::unique_ptr<EnergyMeter>> meters;
  meters.push_back(std::make_unique<RaplMeter>());
  meters.push_back(std::make_unique<NvmlMeter>(load_nvml(), gpu_index, NvmlMeter::kDefaultPollMs,
                                               gpu_pci_bus_id));
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
