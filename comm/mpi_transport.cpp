// MpiTransport: MPI_Isend / MPI_Irecv / MPI_Test under the communicator's mutex, and the polling
// wait shared with the native (MPI_I*) collectives. Also MPI_CHECK's error text.
#include "comm/mpi_transport.h"

#include <climits>
#include <string>
#include <thread>

#include "comm/mpi_check.h"
#include "devices/error.h"

namespace dpt {
namespace mpi {

std::string error_text(int code) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS || length <= 0) {
    return "MPI error " + std::to_string(code);
  }
  return std::string(text, static_cast<std::size_t>(length));
}

namespace detail {
void RaiseMpi::operator&(const ::dpt::detail::Message& message) const {
  // "MPI_Isend(data, ...)" -> "MPI_Isend": the function's name is enough context.
  std::string name(call);
  name = name.substr(0, name.find('('));
  throw Error(ErrorKind::kComm, message.str() + ": " + name + ": " + error_text(code));
}
}  // namespace detail
}  // namespace mpi

namespace {

class MpiRequest : public Request {
 public:
  MpiRequest(std::mutex& mutex, bool receive, std::size_t bytes, int peer, int tag,
             bool exact = true)
      : mutex_(mutex), receive_(receive), exact_(exact), bytes_(bytes), peer_(peer), tag_(tag) {}
  // A request abandoned before completion (the collective timed out or failed) is cancelled and
  // freed, so MPI forgets it; the communicator is unusable after such a failure anyway.
  ~MpiRequest() override {
    if (request_ == MPI_REQUEST_NULL) return;
    std::lock_guard<std::mutex> lock(mutex_);
    MPI_Cancel(&request_);
    MPI_Request_free(&request_);
  }
  std::string describe() const {
    return std::string(receive_ ? "receive of " : "send of ") + std::to_string(bytes_) + " bytes " +
           (receive_ ? "from" : "to") + " rank " + std::to_string(peer_) + " (tag " +
           std::to_string(tag_) + ")";
  }

  std::mutex& mutex_;
  bool receive_;
  bool exact_;  // receives: a shorter message is an error too
  std::size_t bytes_;
  int peer_;
  int tag_;
  MPI_Request request_ = MPI_REQUEST_NULL;
  bool done_ = false;
};

int checked_count(std::size_t bytes, int peer) {
  DPT_CHECK_AS(ErrorKind::kComm, bytes <= static_cast<std::size_t>(INT_MAX))
      << "message of " << bytes << " bytes to/from rank " << peer
      << " exceeds MPI's int count; lower comm.chunk_bytes";
  return static_cast<int>(bytes);
}

// Spin, then yield, then nap, by how long this wait has lasted (PollPolicy).
class Backoff {
 public:
  explicit Backoff(const PollPolicy& policy) : policy_(policy), start_(Clock::now()) {}
  void pause(Clock::time_point now) const {
    const Clock::duration waited = now - start_;
    if (waited < policy_.spin) return;
    if (waited < policy_.sleep_after) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(policy_.nap);
    }
  }

 private:
  const PollPolicy& policy_;
  Clock::time_point start_;
};

}  // namespace

MpiTransport::MpiTransport(MPI_Comm comm, std::mutex& mutex, PollPolicy policy)
    : comm_(comm), mutex_(mutex), policy_(policy) {
  std::lock_guard<std::mutex> lock(mutex_);
  MPI_CHECK(MPI_Comm_rank(comm_, &rank_)) << "mpi transport";
  MPI_CHECK(MPI_Comm_size(comm_, &size_)) << "mpi transport";
}

std::unique_ptr<Request> MpiTransport::isend(const void* data, std::size_t bytes, int peer,
                                             int tag) {
  auto request = std::make_unique<MpiRequest>(mutex_, false, bytes, peer, tag);
  const int count = checked_count(bytes, peer);
  std::lock_guard<std::mutex> lock(mutex_);
  MPI_CHECK(MPI_Isend(data, count, MPI_BYTE, peer, tag, comm_, &request->request_))
      << request->describe();
  return request;
}

std::unique_ptr<Request> MpiTransport::irecv(void* data, std::size_t bytes, int peer, int tag) {
  return post_receive(data, bytes, peer, tag, true);
}

std::unique_ptr<Request> MpiTransport::irecv_up_to(void* data, std::size_t capacity, int peer,
                                                   int tag) {
  return post_receive(data, capacity, peer, tag, false);
}

std::unique_ptr<Request> MpiTransport::post_receive(void* data, std::size_t bytes, int peer,
                                                    int tag, bool exact) {
  auto request = std::make_unique<MpiRequest>(mutex_, true, bytes, peer, tag, exact);
  const int count = checked_count(bytes, peer);
  std::lock_guard<std::mutex> lock(mutex_);
  MPI_CHECK(MPI_Irecv(data, count, MPI_BYTE, peer, tag, comm_, &request->request_))
      << request->describe();
  return request;
}

bool MpiTransport::test(Request& base) {
  auto& request = static_cast<MpiRequest&>(base);
  if (request.done_) return true;
  int flag = 0;
  MPI_Status status;
  int code = MPI_SUCCESS;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    code = MPI_Test(&request.request_, &flag, &status);
  }
  if (code != MPI_SUCCESS) {
    int error_class = code;
    MPI_Error_class(code, &error_class);
    DPT_CHECK_AS(ErrorKind::kComm, error_class != MPI_ERR_TRUNCATE)
        << request.describe()
        << ": a larger message arrived: the ranks disagree about this collective's size";
    MPI_CHECK(code) << request.describe();
  }
  if (!flag) return false;
  request.done_ = true;
  if (request.receive_) {
    int received = 0;
    MPI_Get_count(&status, MPI_BYTE, &received);
    DPT_CHECK_AS(ErrorKind::kComm,
                 !request.exact_ || static_cast<std::size_t>(received) == request.bytes_)
        << request.describe() << ": got " << received
        << " bytes: the ranks disagree about this collective's size";
    request.set_received(static_cast<std::size_t>(received));
  }
  return true;
}

bool MpiTransport::wait(Request& request, Clock::time_point deadline) {
  const Backoff backoff(policy_);
  while (!test(request)) {
    const Clock::time_point now = Clock::now();
    if (now >= deadline) return false;
    backoff.pause(now);
  }
  return true;
}

bool MpiTransport::wait_native(MPI_Request& request, Clock::time_point deadline, const char* what) {
  const Backoff backoff(policy_);
  while (true) {
    int flag = 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      MPI_CHECK(MPI_Test(&request, &flag, MPI_STATUS_IGNORE)) << what;
    }
    if (flag) return true;
    const Clock::time_point now = Clock::now();
    if (now >= deadline) return false;
    backoff.pause(now);
  }
}

}  // namespace dpt
