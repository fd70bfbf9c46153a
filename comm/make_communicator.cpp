// The backend registry: config name -> backend. A new backend (nccl, a vendor plug-in) is one
// more file and one more line in kBackends.
#include <string>

#include "comm/communicator.h"
#include "comm/local_communicator.h"
#include "comm/mpi_communicator.h"
#include "comm/plugin_communicator.h"
#include "devices/error.h"

namespace dpt {
namespace {

struct Backend {
  const char* name;
  std::unique_ptr<Communicator> (*make)(const CommOptions& options);
};

std::unique_ptr<Communicator> make_local(const CommOptions&) { return make_local_communicator(); }

std::unique_ptr<Communicator> make_auto(const CommOptions& options) {
  if (!mpi_active()) return make_local_communicator();
  std::unique_ptr<Communicator> mpi = make_mpi_communicator(options);
  if (mpi->size() > 1) return mpi;
  return make_local_communicator();
}

constexpr Backend kBackends[] = {
    {"auto", make_auto},
    {"local", make_local},
    {"mpi", make_mpi_communicator},
    {"plugin", make_plugin_communicator},
};

}  // namespace

std::vector<std::string> communicator_backends() {
  std::vector<std::string> names;
  for (const Backend& backend : kBackends) names.push_back(backend.name);
  return names;
}

CommOptions comm_options(const proto::CommConfig& config) {
  CommOptions options;
  options.timeout_s = config.timeout_s();
  options.ring_threshold_bytes = static_cast<std::size_t>(config.ring_threshold_bytes());
  options.shm_threshold_bytes = static_cast<std::size_t>(config.shm_threshold_bytes());
  options.chunk_bytes = static_cast<std::size_t>(config.chunk_bytes());
  options.plugin_path = config.plugin_path();
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

std::unique_ptr<Communicator> make_communicator(const proto::CommConfig& config) {
  std::string names;
  for (const Backend& backend : kBackends) {
    if (config.backend() == backend.name) return backend.make(comm_options(config));
    names += names.empty() ? backend.name : std::string(", ") + backend.name;
  }
  DPT_THROW(ErrorKind::kConfig) << "comm.backend: unknown backend \"" << config.backend()
                                << "\" (built in: " << names << ")";
}

}  // namespace dpt
