// The "local" backend: a world of one process. Every collective is a copy (or nothing, in
// place). It is what single-process runs use, and the reference the other backends are tested
// against.
#include <cstring>

#include "comm/communicator.h"
#include "comm/local_communicator.h"
#include "devices/error.h"

namespace dpt {
namespace {

void copy(const void* send, void* recv, std::size_t count, DType dtype) {
  if (send != recv && count > 0) std::memmove(recv, send, count * dtype_size(dtype));
}

class LocalCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "local"; }
  void all_reduce(const void* send, void* recv, std::size_t count, DType dtype,
                  ReduceOp op) override {
    copy(send, recv, count, dtype);
  }
  void broadcast(void* buffer, std::size_t count, DType dtype, int root) override {
    DPT_CHECK_AS(ErrorKind::kComm, root == 0)
        << "broadcast: root " << root << " outside a world of 1";
  }
  void all_gather(const void* send, void* recv, std::size_t count, DType dtype) override {
    copy(send, recv, count, dtype);
  }
  void reduce_scatter(const void* send, void* recv, std::size_t count, DType dtype,
                      ReduceOp op) override {
    copy(send, recv, count, dtype);
  }
  void barrier() override {}
  void abort(int exit_code) noexcept override {}
};

}  // namespace

std::unique_ptr<Communicator> make_local_communicator() {
  return std::make_unique<LocalCommunicator>();
}

}  // namespace dpt
