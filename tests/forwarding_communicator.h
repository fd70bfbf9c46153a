// A Communicator that passes every call on to another one: tests derive from it and override
// the one behaviour they change (claiming device memory, corrupting a result, ...).
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "comm/communicator.h"

namespace dpt::testing {

class ForwardingCommunicator : public Communicator {
 public:
  explicit ForwardingCommunicator(std::unique_ptr<Communicator> inner) : inner_(std::move(inner)) {}
  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  std::string backend() const override { return inner_->backend(); }
  bool device_memory() const override { return inner_->device_memory(); }
  void all_reduce(const void* send, void* recv, std::size_t count, DType dtype,
                  ReduceOp op) override {
    inner_->all_reduce(send, recv, count, dtype, op);
  }
  void broadcast(void* buffer, std::size_t count, DType dtype, int root) override {
    inner_->broadcast(buffer, count, dtype, root);
  }
  void all_gather(const void* send, void* recv, std::size_t count, DType dtype) override {
    inner_->all_gather(send, recv, count, dtype);
  }
  void reduce_scatter(const void* send, void* recv, std::size_t count, DType dtype,
                      ReduceOp op) override {
    inner_->reduce_scatter(send, recv, count, dtype, op);
  }
  void barrier() override { inner_->barrier(); }
  void abort(int exit_code) noexcept override { inner_->abort(exit_code); }

 private:
  std::unique_ptr<Communicator> inner_;
};

}  // namespace dpt::testing
