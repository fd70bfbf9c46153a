// The backend registry: config name -> backend. A new backend is one more file and one more line
// in kBackends.
#include <mpi.h>

#include <string>

#include "comm/communicator.h"
#include "comm/local_communicator.h"
#include "comm/mpi_communicator.h"
#include "comm/nccl_communicator.h"
#include "comm/plugin_communicator.h"
#include "devices/error.h"

namespace dpt {
namespace {

struct Backend {
  const char* name;
  std::unique_ptr<Communicator> (*make)(const CommOptions& options, Device* device);
};

std::unique_ptr<Communicator> make_local(const CommOptions&, Device*) {
  return make_local_communicator();
}

std::unique_ptr<Communicator> make_mpi(const CommOptions& options, Device* device) {
  return make_mpi_communicator(options, device);
}

std::unique_ptr<Communicator> make_plugin(const CommOptions& options, Device*) {
  return make_plugin_communicator(options);
}

std::unique_ptr<Communicator> make_auto(const CommOptions& options, Device* device) {
  if (!mpi_active()) return make_local_communicator();
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size == 1) return make_local_communicator();
  // NCCL is not part of the driver: a GPU machine may lack libnccl.so.2. The ranks agree, so
  // either all of them use NCCL or none does.
  int nccl = 0;
  if (device != nullptr && device->kind() == DeviceKind::kCuda && nccl_built()) {
    try {
      nccl_version();
      nccl = 1;
    } catch (const Error&) {
    }
  }
  int all = nccl;
  MPI_Allreduce(&nccl, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (all == 1) return make_nccl_communicator(options, device);
  return make_mpi_communicator(options, device);
}

constexpr Backend kBackends[] = {
    {"auto", make_auto},
    {"local", make_local},
    {"mpi", make_mpi},
    {"plugin", make_plugin},
    {"nccl", make_nccl_communicator},
};

}  // namespace

std::vector<std::string> communicator_backends() {
  std::vector<std::string> names;
  for (const Backend& backend : kBackends) {
    if (std::string(backend.name) != "nccl" || nccl_built()) names.push_back(backend.name);
  }
  return names;
}

CommOptions comm_options(const proto::CommConfig& config) {
  CommOptions options;
  options.timeout_s = config.timeout_s();
  options.ring_threshold_bytes = static_cast<std::size_t>(config.ring_threshold_bytes());
  options.shm_threshold_bytes = static_cast<std::size_t>(config.shm_threshold_bytes());
  options.chunk_bytes = static_cast<std::size_t>(config.chunk_bytes());
  options.plugin_path = config.plugin_path();
  options.mpi_device_buffers =
      config.cuda_aware_mpi() ? MpiDeviceBuffers::kCudaAwareMpi : MpiDeviceBuffers::kStage;
  switch (config.all_reduce()) {
    case proto::ALL_REDUCE_RING:
      options.all_reduce = AllReduceAlgorithm::kRing;
      break;
    case proto::ALL_REDUCE_NATIVE:
      options.all_reduce = AllReduceAlgorithm::kNative;
      break;
    default:
      options.all_reduce = AllReduceAlgorithm::kAuto;
      break;
  }
  return options;
}

std::unique_ptr<Communicator> make_communicator(const proto::CommConfig& config, Device* device) {
  std::string names;
  for (const Backend& backend : kBackends) {
    if (config.backend() == backend.name) return backend.make(comm_options(config), device);
    names += names.empty() ? backend.name : std::string(", ") + backend.name;
  }
  DPT_THROW(ErrorKind::kConfig) << "comm.backend: unknown backend \"" << config.backend()
                                << "\" (built in: " << names << ")";
}

}  // namespace dpt
