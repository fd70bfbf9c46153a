// PluginCommunicator (comm/plugin_communicator.h): dpt's Communicator calls mapped one to one on
// the plug-in's table, with the bootstrap all-gather over MPI.
#include "comm/plugin_communicator.h"

#include <mpi.h>

#include <climits>
#include <mutex>
#include <sstream>

#include "comm/mpi_check.h"
#include "comm/mpi_communicator.h"
#include "comm/mpi_transport.h"
#include "comm/plugin_library.h"
#include "comm/reduce.h"
#include "devices/error.h"

namespace dpt {
namespace {

dpt_coll_dtype_t plugin_dtype(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return DPT_COLL_F32;
    case DType::kF64:
      return DPT_COLL_F64;
    case DType::kBF16:
      return DPT_COLL_BF16;
    case DType::kF16:
      return DPT_COLL_F16;
    case DType::kI32:
      return DPT_COLL_I32;
    case DType::kI64:
      return DPT_COLL_I64;
  }
  return DPT_COLL_F32;
}

dpt_coll_op_t plugin_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kMax:
      return DPT_COLL_MAX;
    case ReduceOp::kMin:
      return DPT_COLL_MIN;
    default:
      return DPT_COLL_SUM;  // kAvg sums, then divides here
  }
}

class PluginCommunicator : public Communicator {
 public:
  explicit PluginCommunicator(const CommOptions& options)
      : library_(options.plugin_path), timeout_s_(options.timeout_s) {
    DPT_CHECK_AS(ErrorKind::kConfig, mpi_active())
        << "comm.backend: \"plugin\" is bootstrapped over MPI and needs a process started by "
           "mpirun (or MPI initialised)";
    MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &mpi_comm_)) << "plugin backend: bootstrap";
    MPI_CHECK(MPI_Comm_set_errhandler(mpi_comm_, MPI_ERRORS_RETURN)) << "plugin backend: bootstrap";
    transport_ = std::make_unique<MpiTransport>(mpi_comm_, mpi_mutex_);
    dpt_coll_init_args_t args{};
    args.rank = transport_->rank();
    args.size = transport_->size();
    args.timeout_s = timeout_s_;
    args.allgather = &PluginCommunicator::bootstrap_allgather;
    args.allgather_state = this;
    const int status = table().init(&args, &comm_);
    if (status != DPT_COLL_OK || comm_ == nullptr) {
      const std::string reason = table().last_error(nullptr);
      free_mpi();
      DPT_THROW(ErrorKind::kComm) << "comm.backend \"plugin\" (" << library_.description() << ", "
                                  << library_.path() << "): init on rank " << args.rank << " of "
                                  << args.size << " failed: " << plugin_status_name(status) << ": "
                                  << reason
                                  << (bootstrap_error_.empty() ? "" : "; " + bootstrap_error_);
    }
  }
  ~PluginCommunicator() override {
    std::lock_guard<std::mutex> lock(mutex_);
    table().destroy(comm_);
    free_mpi();
  }

  int rank() const override { return transport_->rank(); }
  int size() const override { return transport_->size(); }
  std::string backend() const override { return std::string("plugin:") + table().name; }

  void all_reduce(const void* send, void* recv, std::size_t count, DType dtype,
                  ReduceOp op) override {
    std::lock_guard<std::mutex> lock(mutex_);
    check(table().all_reduce(comm_, send, recv, count, plugin_dtype(dtype), plugin_op(op)),
          "all_reduce", count, dtype, reduce_op_name(op));
    if (op == ReduceOp::kAvg) finish_average(recv, count, dtype, size());
  }
  void broadcast(void* buffer, std::size_t count, DType dtype, int root) override {
    DPT_CHECK_AS(ErrorKind::kComm, root >= 0 && root < size())
        << "broadcast: root " << root << " outside a world of " << size();
    std::lock_guard<std::mutex> lock(mutex_);
    check(table().broadcast(comm_, buffer, count, plugin_dtype(dtype), root), "broadcast", count,
          dtype, ("root " + std::to_string(root)).c_str());
  }
  void all_gather(const void* send, void* recv, std::size_t count, DType dtype) override {
    std::lock_guard<std::mutex> lock(mutex_);
    check(table().all_gather(comm_, send, recv, count, plugin_dtype(dtype)), "all_gather", count,
          dtype, nullptr);
  }
  void reduce_scatter(const void* send, void* recv, std::size_t count, DType dtype,
                      ReduceOp op) override {
    std::lock_guard<std::mutex> lock(mutex_);
    check(table().reduce_scatter(comm_, send, recv, count, plugin_dtype(dtype), plugin_op(op)),
          "reduce_scatter", count, dtype, reduce_op_name(op));
    if (op == ReduceOp::kAvg) finish_average(recv, count, dtype, size());
  }
  void barrier() override {
    std::lock_guard<std::mutex> lock(mutex_);
    check(table().barrier(comm_), "barrier", 0, DType::kF32, nullptr);
  }
  void abort(int exit_code) noexcept override {
    table().abort(comm_);  // no lock: the contract allows it while a call is in progress
    if (mpi_active()) MPI_Abort(MPI_COMM_WORLD, exit_code);
  }

 private:
  const dpt_coll_plugin_v1_t& table() const { return library_.table(); }

  // The ABI's bootstrap callback: MPI_Iallgather polled against the timeout.
  static int bootstrap_allgather(void* state, const void* send, size_t bytes, void* recv) {
    auto* self = static_cast<PluginCommunicator*>(state);
    try {
      DPT_CHECK_AS(ErrorKind::kComm, bytes <= static_cast<std::size_t>(INT_MAX))
          << "bootstrap all-gather of " << bytes << " bytes: above MPI's int count";
      MPI_Request request = MPI_REQUEST_NULL;
      {
        std::lock_guard<std::mutex> lock(self->mpi_mutex_);
        MPI_CHECK(MPI_Iallgather(send, static_cast<int>(bytes), MPI_BYTE, recv,
                                 static_cast<int>(bytes), MPI_BYTE, self->mpi_comm_, &request))
            << "bootstrap all-gather";
      }
      const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                               std::chrono::duration<double>(self->timeout_s_));
      DPT_CHECK_AS(ErrorKind::kComm,
                   self->transport_->wait_native(request, deadline, "MPI_Iallgather"))
          << "bootstrap all-gather over MPI timed out after " << self->timeout_s_
          << " s (comm.timeout_s)";
      return 0;
    } catch (const std::exception& error) {
      self->bootstrap_error_ = error.what();
      return 1;
    }
  }

  // Throws kComm for a failed call, with the plug-in's own message.
  void check(int status, const char* what, std::size_t count, DType dtype, const char* extra) {
    const uint64_t sequence = ++sequence_;
    if (status == DPT_COLL_OK) return;
    std::ostringstream call;
    call << what << " #" << sequence;
    if (std::string(what) != "barrier") {
      call << " (count=" << count << ", " << dtype_name(dtype) << (extra ? ", " : "")
           << (extra ? extra : "") << ")";
    }
    if (status == DPT_COLL_ERR_TIMEOUT) call << " timed out after " << timeout_s_ << " s";
    DPT_THROW(ErrorKind::kComm) << "plugin " << table().name << ": " << call.str() << ": "
                                << (status == DPT_COLL_ERR_TIMEOUT
                                        ? ""
                                        : plugin_status_name(status) + ": ")
                                << table().last_error(comm_);
  }

  void free_mpi() {
    if (mpi_comm_ != MPI_COMM_NULL && mpi_active()) MPI_Comm_free(&mpi_comm_);
  }

  PluginLibrary library_;
  double timeout_s_;
  std::mutex mutex_;      // one plug-in call at a time (ABI contract)
  std::mutex mpi_mutex_;  // the bootstrap's MPI calls
  MPI_Comm mpi_comm_ = MPI_COMM_NULL;
  std::unique_ptr<MpiTransport> transport_;
  std::string bootstrap_error_;
  dpt_coll_comm_t* comm_ = nullptr;
  uint64_t sequence_ = 0;
};

}  // namespace

std::unique_ptr<Communicator> make_plugin_communicator(const CommOptions& options) {
  DPT_CHECK_AS(ErrorKind::kConfig, !options.plugin_path.empty())
      << "comm.plugin_path: required with comm.backend \"plugin\"";
  return std::make_unique<PluginCommunicator>(options);
}

}  // namespace dpt
