// dpt devices [--json]: what this machine offers for training (CPU, ISA features, topology,
// memory, affinity, GPUs, collective backends) and how many workers and threads to run on it.
// Detection lives in devices/cpu_info.h; this file only formats and prints.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "devices/cpu_info.h"

namespace dpt {

struct DevicesArgs {
  bool json = false;  // print JSON instead of the table
};

// Prints the report of detect_machine() to stdout; returns the exit code (0).
int run_devices(const DevicesArgs& args);

// The report as JSON; `backends` are the built-in communicator backends.
nlohmann::json devices_json(const MachineInfo& machine, const std::vector<std::string>& backends);

// The report as a readable table, lines ending in '\n'.
std::string devices_table(const MachineInfo& machine, const std::vector<std::string>& backends);

}  // namespace dpt
