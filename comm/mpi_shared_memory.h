// Memory that every rank of an MPI communicator maps, when all of them run on one node: a POSIX
// shared-memory object (shm_open) made by rank 0, named to the others over MPI, mapped by all and
// unlinked as soon as everyone has it, so nothing is left in /dev/shm when the job ends, however
// it ends. Backs the shared-memory all-reduce of the "mpi" backend (comm/shm_all_reduce.h).
#pragma once

#include <mpi.h>

#include <cstddef>
#include <memory>
#include <string>

namespace dpt {

class SharedSegment {
 public:
  SharedSegment(char* data, std::size_t bytes) : data_(data), bytes_(bytes) {}
  ~SharedSegment();
  SharedSegment(const SharedSegment&) = delete;
  SharedSegment& operator=(const SharedSegment&) = delete;
  // Zero-filled at creation, page aligned.
  char* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }

 private:
  char* data_;
  std::size_t bytes_;
};

// Whether every rank of `comm` runs on this node (MPI_COMM_TYPE_SHARED; collective).
bool all_on_one_node(MPI_Comm comm);

// A segment of bytes_per_rank * size bytes mapped by every rank of `comm` (collective: every rank
// calls it). Null on every rank when the ranks span several nodes or when any rank could not
// create or map it (`why` says which); never throws for those, as the other algorithms remain.
// Call it only where all_on_one_node() holds.
std::unique_ptr<SharedSegment> map_node_segment(MPI_Comm comm, std::size_t bytes_per_rank,
                                                std::string& why);

}  // namespace dpt
