// The "local" backend: a world of one process. Every collective is a copy (or nothing, in
// place). It is what single-process runs use, and the reference the other backends are tested
// against. Also holds make_communicator() until the MPI backend brings a registry.
#include <cstring>

#include "comm/communicator.h"
#include "devices/error.h"

namespace dpt {
namespace {

class LocalCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "local"; }
  void all_reduce(const void* send, void* recv, std::size_t count, DType dtype,
                  ReduceOp op) override {
    if (send != recv && count > 0) std::memcpy(recv, send, count * dtype_size(dtype));
  }
  void broadcast(void* buffer, std::size_t count, DType dtype, int root) override {
    DPT_CHECK(root == 0) << "broadcast root " << root << " outside a world of size 1";
  }
  void all_gather(const void* send, void* recv, std::size_t count, DType dtype) override {
    if (send != recv && count > 0) std::memcpy(recv, send, count * dtype_size(dtype));
  }
  void barrier() override {}
  void abort() noexcept override {}
};

}  // namespace

std::unique_ptr<Communicator> make_communicator(const proto::CommConfig& config) {
  const std::string& name = config.backend();
  DPT_CHECK_AS(ErrorKind::kConfig, name == "auto" || name == "local")
      << "comm.backend: unknown backend \"" << name << "\" (built: auto, local)";
  return std::make_unique<LocalCommunicator>();
}

}  // namespace dpt
