// Small text-file readers for /proc and sysfs (devices/cpu_info.cpp, cpu_topology.cpp): missing
// files give empty text or a fallback, never an exception.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace dpt::sysfs {

inline std::string trim(const std::string& text) {
  const std::size_t begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  return text.substr(begin, text.find_last_not_of(" \t\r\n") - begin + 1);
}

// The whole file; `found` false (and "") when it cannot be read.
inline std::string read_file(const std::filesystem::path& path, bool* found = nullptr) {
  std::ifstream file(path);
  if (found != nullptr) *found = static_cast<bool>(file);
  std::ostringstream text;
  if (file) text << file.rdbuf();
  return text.str();
}

// An integer file such as core_id; `fallback` when missing or not a number.
inline int read_int(const std::filesystem::path& path, int fallback) {
  bool found = false;
  const std::string text = trim(read_file(path, &found));
  if (!found || text.empty()) return fallback;
  try {
    return std::stoi(text);
  } catch (const std::exception&) {
    return fallback;
  }
}

}  // namespace dpt::sysfs
