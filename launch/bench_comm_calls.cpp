// The all-reduces of dpt bench comm (launch/bench_comm_calls.h).
#include "launch/bench_comm_calls.h"

#include <mpi.h>

#include <algorithm>
#include <iterator>

#include "comm/mpi_check.h"
#include "comm/mpi_communicator.h"
#include "devices/error.h"
#include "launch/device_select.h"

namespace dpt {
namespace {

const AlgorithmInfo kAlgorithms[] = {
    {"ring", "dpt ring"},     {"mpi", "MPI_Allreduce"},
    {"native", "dpt native"}, {"auto-plain", "dpt auto, own buffer"},
    {"auto", "dpt auto"},
};

}  // namespace

std::vector<AlgorithmInfo> chosen_algorithms(const std::vector<std::string>& keys, bool backend) {
  std::vector<AlgorithmInfo> chosen;
  for (const AlgorithmInfo& info : kAlgorithms) {
    const bool wanted = keys.empty() ? (!backend || info.key == "mpi")
                                     : std::find(keys.begin(), keys.end(), info.key) != keys.end();
    if (wanted) chosen.push_back(info);
  }
  for (const std::string& key : keys) {
    DPT_CHECK_AS(ErrorKind::kConfig,
                 std::any_of(std::begin(kAlgorithms), std::end(kAlgorithms),
                             [&](const AlgorithmInfo& info) { return key == info.key; }))
        << "--algorithms: unknown algorithm \"" << key
        << "\" (ring, mpi, native, auto-plain, auto)";
  }
  return chosen;
}

std::shared_ptr<Device> backend_device(const BenchCommArgs& args, const WorldInfo& world) {
  if (args.backend != "nccl") return nullptr;
  // The GPU training would give this rank (collective: the node's ranks agree on who owns which
  // GPU, so a launch where each rank sees only its own GPU works too).
  proto::DeviceConfig config;
  config.set_kind(proto::CUDA);
  try {
    return select_device(config, world).device;
  } catch (const Error& error) {
    DPT_THROW(error.kind()) << "--backend nccl needs one usable GPU per rank (rank " << world.rank
                            << "): " << error.what();
  }
}

std::shared_ptr<Communicator> make_backend(const BenchCommArgs& args, Device* device) {
  proto::CommConfig config;
  config.set_backend(args.backend);
  config.set_plugin_path(args.plugin_path);
  config.set_chunk_bytes(static_cast<int64_t>(args.chunk_bytes));
  config.set_ring_threshold_bytes(static_cast<int64_t>(args.threshold_bytes));
  config.set_shm_threshold_bytes(static_cast<int64_t>(args.shm_threshold_bytes));
  return make_communicator(config, device);
}

AllReduce all_reduce_of(std::shared_ptr<Communicator> comm) {
  return [comm](float* data, std::size_t count) {
    comm->all_reduce(data, data, count, DType::kF32, ReduceOp::kSum);
  };
}

BenchCall make_all_reduce(const AlgorithmInfo& info, const CommOptions& base,
                          std::size_t max_count) {
  BenchCall call;
  if (info.key == "mpi") {
    call.run = [](float* data, std::size_t count) {
      MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(count), MPI_FLOAT, MPI_SUM,
                              MPI_COMM_WORLD))
          << "bench comm";
    };
    return call;
  }
  CommOptions options = base;
  options.all_reduce = info.key == "ring"     ? AllReduceAlgorithm::kRing
                       : info.key == "native" ? AllReduceAlgorithm::kNative
                                              : AllReduceAlgorithm::kAuto;
  std::shared_ptr<Communicator> comm = make_mpi_communicator(options);
  call.run = all_reduce_of(comm);
  if (info.key == "auto") {
    call.memory = comm->allocate_shared(max_count * sizeof(float));
    call.host_buffer = static_cast<float*>(call.memory.get());
  }
  return call;
}

}  // namespace dpt
