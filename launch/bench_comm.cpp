// dpt bench comm (launch/bench_comm.h). Every call is: refill the buffer with known small integers,
// MPI_Barrier so the ranks start together, time one in-place all-reduce, check every element
// against the exact sum. The table reports the median over calls of the slowest rank's time.
// The calls are made in launch/bench_comm_calls.cpp (MPI_Allreduce directly on MPI_COMM_WORLD, as
// a user of MPI would) and timed in launch/bench_comm_timing.cpp. A --backend whose buffers are
// device memory (nccl) works on a GPU buffer: the input is copied in before the barrier and the
// result out after the timed call, so only the collective is timed.
#include "launch/bench_comm.h"

#include <fmt/core.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "devices/cpu_info.h"
#include "devices/error.h"
#include "launch/bench_comm_calls.h"
#include "launch/bench_comm_timing.h"
#include "launch/metrics_writer.h"

namespace dpt {
namespace {

std::string size_text(uint64_t bytes) {
  if (bytes >= (1 << 20) && bytes % (1 << 20) == 0) return fmt::format("{} MiB", bytes >> 20);
  if (bytes >= (1 << 10) && bytes % (1 << 10) == 0) return fmt::format("{} KiB", bytes >> 10);
  return fmt::format("{} B", bytes);
}

// The 1-minute load average: other work on the host skews every number here.
double load_average() {
  std::ifstream file("/proc/loadavg");
  double load = -1;
  file >> load;
  return load;
}

// Index of the algorithm `key` in `chosen`, or -1.
int position(const std::vector<AlgorithmInfo>& chosen, const char* key) {
  for (std::size_t k = 0; k < chosen.size(); ++k) {
    if (chosen[k].key == key) return static_cast<int>(k);
  }
  return -1;
}

// The lines above the table: setup, the memcpy bound, definitions, column headings.
void print_header(const nlohmann::json& json, const std::vector<AlgorithmInfo>& chosen,
                  const std::string& ratio) {
  const nlohmann::json& copy = json["memcpy"];
  fmt::print(
      "dpt bench comm: all-reduce, float32 sum, in place, {} ranks; host {} ({} CPUs, load "
      "average {:.2f})\n",
      json["world_size"].get<int>(), json["host_cpu"].get<std::string>(),
      json["host_cpus"].get<unsigned>(), json["load_average_at_start"].get<double>());
  const uint64_t chunk = json["chunk_bytes"].get<uint64_t>();
  fmt::print(
      "dpt ring/native/auto: chunk_bytes {}; native is MPI_Iallreduce polled against the "
      "deadline; auto with every rank on one node: shared memory below {} (shm_threshold_bytes) "
      "and at every size on buffers from allocate_shared (no copies), across nodes recursive "
      "doubling below {} (ring_threshold_bytes), the ring from there up. dpt auto runs on a buffer "
      "from allocate_shared (as training's gradient buffer), dpt auto, own buffer on the common "
      "one\n",
      chunk == 0 ? std::string("automatic (whole blocks on one node, 1 MiB across nodes)")
                 : size_text(chunk),
      size_text(json["shm_threshold_bytes"].get<uint64_t>()),
      size_text(json["ring_threshold_bytes"].get<uint64_t>()));
  fmt::print(
      "bound: memcpy of {} (best of {}; GB/s = bytes copied / s, read+write traffic is "
      "twice): {:.2f} GB/s one rank alone, {:.2f} GB/s per rank with all at once\n",
      size_text(copy["bytes"].get<uint64_t>()), copy["reps"].get<int>(),
      copy["one_rank_gbs"].get<double>(), copy["all_ranks_gbs_per_rank"].get<double>());
  fmt::print(
      "time_us: median over calls of the slowest rank (ranks start together after "
      "MPI_Barrier); algbw = bytes/time, busbw = algbw*2(n-1)/n (nccl-tests), GB/s; "
      "every result checked exactly\n\n");
  fmt::print("{:>9} {:>5}", "size", "iters");
  for (const AlgorithmInfo& info : chosen) fmt::print(" | {:^26}", info.title);
  if (!ratio.empty()) fmt::print(" | {:>8}", ratio);
  fmt::print("\n{:>9} {:>5}", "", "");
  for (std::size_t k = 0; k < chosen.size(); ++k) {
    fmt::print(" | {:>10} {:>7} {:>7}", "time_us", "algbw", "busbw");
  }
  if (!ratio.empty()) fmt::print(" | {:>8}", "speed");
  fmt::print("\n");
  std::fflush(stdout);
}

void validate(const BenchCommArgs& args) {
  DPT_CHECK_AS(ErrorKind::kConfig, args.min_bytes >= sizeof(float) && args.min_bytes % 4 == 0)
      << "--min-bytes must be a positive multiple of 4 (float32), got " << args.min_bytes;
  DPT_CHECK_AS(ErrorKind::kConfig, args.min_bytes <= args.max_bytes)
      << "--min-bytes " << args.min_bytes << " is above --max-bytes " << args.max_bytes;
  DPT_CHECK_AS(ErrorKind::kConfig, args.max_bytes / sizeof(float) <= INT_MAX)
      << "--max-bytes: at most " << uint64_t{INT_MAX} * sizeof(float) << " (MPI's int count)";
  DPT_CHECK_AS(ErrorKind::kConfig, args.iters >= 0 && args.warmup >= -1)
      << "--iters must be >= 0 and --warmup >= -1";
  DPT_CHECK_AS(ErrorKind::kConfig, args.chunk_bytes == 0 || args.chunk_bytes >= 4096)
      << "--chunk-bytes must be 0 (automatic) or >= 4096";
}

}  // namespace

int run_bench_comm(const BenchCommArgs& args, const WorldInfo& world) {
  validate(args);
  DPT_CHECK_AS(ErrorKind::kConfig, world.size >= 2)
      << "dpt bench comm measures collectives between processes and needs at least 2: run it as "
         "`mpirun -np 2 dpt bench comm` (this is a world of "
      << world.size << ")";
  const int n = world.size;
  const bool leader = world.rank == 0;
  std::vector<AlgorithmInfo> chosen = chosen_algorithms(args.algorithms, !args.backend.empty());
  CommOptions options;
  options.chunk_bytes = args.chunk_bytes;
  options.ring_threshold_bytes = args.threshold_bytes;
  options.shm_threshold_bytes = args.shm_threshold_bytes;
  const std::size_t max_count = args.max_bytes / sizeof(float);
  // Declared before the calls: the device outlives its communicator and buffer.
  const std::shared_ptr<Device> device = backend_device(args, world);
  std::vector<BenchCall> calls;
  for (const AlgorithmInfo& info : chosen)
    calls.push_back(make_all_reduce(info, options, max_count));
  std::shared_ptr<void> device_buffer;
  if (!args.backend.empty()) {
    std::shared_ptr<Communicator> backend = make_backend(args, device.get());
    chosen.push_back({"backend", backend->backend()});
    BenchCall call;
    call.run = all_reduce_of(backend);
    if (backend->device_memory()) {
      DPT_CHECK_AS(ErrorKind::kConfig, device != nullptr)
          << "--backend " << args.backend << ": its buffers are device memory but no device";
      device_buffer.reset(device->allocate(max_count * sizeof(float)),
                          [device](void* p) { device->deallocate(p); });
      call.device = device.get();
      call.device_buffer = static_cast<float*>(device_buffer.get());
    }
    calls.push_back(call);
  }

  std::vector<float> input(max_count), work(max_count), expected(kPeriod, 0.0f);
  for (std::size_t i = 0; i < max_count; ++i) input[i] = input_value(i, world.rank);
  for (std::size_t j = 0; j < kPeriod; ++j) {
    for (int r = 0; r < n; ++r) expected[j] += input_value(j, r);
  }

  // The bound: one rank copying alone, then every rank copying at once (as in an all-reduce).
  constexpr int kCopyReps = 5;
  const std::size_t copy_bytes = max_count * sizeof(float);
  char* dst = reinterpret_cast<char*>(work.data());
  const char* src = reinterpret_cast<const char*>(input.data());
  const double copy_one = copy_bytes / time_memcpy(dst, src, copy_bytes, leader, kCopyReps) / 1e9;
  const double copy_all = copy_bytes / time_memcpy(dst, src, copy_bytes, true, kCopyReps) / 1e9;

  const double bus_factor = 2.0 * (n - 1) / n;
  // The speed column: --backend (else dpt auto) over MPI_Allreduce, when both are timed.
  const int auto_at = position(chosen, args.backend.empty() ? "auto" : "backend");
  const int mpi_at = position(chosen, "mpi");
  const std::string ratio = auto_at >= 0 && mpi_at >= 0 ? chosen[auto_at].title + "/MPI" : "";
  nlohmann::json json = {
      {"benchmark", "all_reduce, float32, sum, in place"},
      {"world_size", n},
      {"host_cpu", detect_cpu().model_name},
      {"host_cpus", std::thread::hardware_concurrency()},
      {"load_average_at_start", load_average()},
      {"chunk_bytes", args.chunk_bytes},
      {"ring_threshold_bytes", args.threshold_bytes},
      {"shm_threshold_bytes", args.shm_threshold_bytes},
      {"backend", args.backend.empty() ? nlohmann::json() : nlohmann::json(chosen.back().title)},
      {"definitions",
       {{"time_us", "median over calls of the slowest rank's time; ranks start together"},
        {"algbw_gbs", "bytes / time, in 1e9 bytes/s"},
        {"busbw_gbs", "algbw * 2(n-1)/n (nccl-tests)"},
        {"memcpy_gbs", "bytes copied / s (read + write traffic is twice this)"}}},
      {"memcpy",
       {{"bytes", copy_bytes},
        {"reps", kCopyReps},
        {"one_rank_gbs", copy_one},
        {"all_ranks_gbs_per_rank", copy_all}}},
      {"sizes", nlohmann::json::array()}};

  if (leader) print_header(json, chosen, ratio);
  std::vector<std::string> titles;
  for (const AlgorithmInfo& info : chosen) titles.push_back(info.title);

  for (uint64_t bytes = args.min_bytes;; bytes *= 2) {
    const std::size_t count = bytes / sizeof(float);
    const int64_t iters = args.iters > 0 ? args.iters : default_iters(bytes);
    const int64_t warmup = args.warmup >= 0 ? args.warmup : std::clamp<int64_t>(iters / 30, 1, 5);
    nlohmann::json row = {{"bytes", bytes}, {"count", count}, {"iters", iters}, {"warmup", warmup}};
    const std::vector<std::vector<double>> seconds =
        time_size(calls, titles, input, work, count, warmup, iters, expected);
    std::vector<double> medians;
    for (std::size_t k = 0; k < chosen.size(); ++k) {
      const double time = median(seconds[k]);
      medians.push_back(time);
      row["results"][chosen[k].key] = {
          {"time_us", time * 1e6},
          {"min_time_us", *std::min_element(seconds[k].begin(), seconds[k].end()) * 1e6},
          {"algbw_gbs", bytes / time / 1e9},
          {"busbw_gbs", bytes / time / 1e9 * bus_factor}};
    }
    if (!ratio.empty()) {
      row[args.backend.empty() ? "auto_over_mpi_speed" : "backend_over_mpi_speed"] =
          medians[mpi_at] / medians[auto_at];
    }
    if (leader) {
      fmt::print("{:>9} {:>5}", size_text(bytes), iters);
      for (double time : medians) {
        fmt::print(" | {:>10.1f} {:>7.3f} {:>7.3f}", time * 1e6, bytes / time / 1e9,
                   bytes / time / 1e9 * bus_factor);
      }
      if (!ratio.empty()) fmt::print(" | {:>8.2f}", medians[mpi_at] / medians[auto_at]);
      fmt::print("\n");
      std::fflush(stdout);
    }
    json["sizes"].push_back(row);
    if (bytes > args.max_bytes / 2) break;  // the next doubling would pass max_bytes (or wrap)
  }

  if (leader && !args.json.empty()) write_json_file(args.json, json);
  return 0;
}

}  // namespace dpt
