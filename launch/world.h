// Launch discovery: who started this process (mpirun or a shell), MPI's life time in the process
// (MpiSession), and where this worker sits in the world (rank, size, rank among the processes of
// its node). This is the one place that reads the launcher's environment variables. A process not
// started by mpirun never touches MPI unless its config asks for backend "mpi".
#pragma once

#include <string>
#include <vector>

namespace dpt {

// True when a launcher (Open MPI's mpirun, or another PMIx/PMI launcher) started this process:
// OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_RANK is set.
bool launched_by_mpirun();

// Owns MPI's initialisation: MPI_Init_thread asking for MPI_THREAD_MULTIPLE (at least
// MPI_THREAD_SERIALIZED is required: a communication thread issues collectives while the main
// thread computes) and MPI_Finalize in the destructor, unless abort() ended the job. At most one
// per process; create it in main() before anything uses MPI.
class MpiSession {
 public:
  // Initialises MPI when `initialize` is true (throws kComm when the library gives less than
  // MPI_THREAD_SERIALIZED); otherwise MPI is not touched.
  explicit MpiSession(bool initialize);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  // MPI is initialised (by this session) and not finalised.
  bool active() const { return active_; }
  // The thread level MPI provided (MPI_THREAD_*), or -1 when not active.
  int thread_level() const { return thread_level_; }
  // Ends every process of the job with `exit_code` (MPI_Abort on MPI_COMM_WORLD; mpirun passes
  // the code on). Returns only when MPI is not active, leaving the exit to the caller.
  void abort(int exit_code) noexcept;

 private:
  bool active_ = false;
  int thread_level_ = -1;
};

// This process's place in the world. A process without MPI is rank 0 of 1.
struct WorldInfo {
  int rank = 0;
  int size = 1;
  int local_rank = 0;  // rank among the processes on this node (shared memory)
  int local_size = 1;
  bool launched_by_mpirun = false;
  // Every process on this node has the same CPU affinity mask as this one (the launcher did not
  // bind them to their own CPUs), so device selection may split the CPUs between them.
  bool local_affinity_shared = true;
  // The CPUs of that shared mask at start-up (empty: not recorded; device selection then reads
  // this process's mask). Selecting a device pins the worker to its share of these, so a second
  // selection in the same process (dpt bench report runs several benches) gets the same share.
  std::vector<int> node_cpus;
};

// Collective over MPI_COMM_WORLD when the session is active (every rank must call it once, at
// start-up); otherwise rank 0 of 1 without touching MPI.
WorldInfo discover_world(const MpiSession& session);

// `mine` from every process on this node, indexed by local rank (device selection exchanges the
// GPUs each one sees). When MPI is active and the world has more than one process this is
// collective over MPI_COMM_WORLD: every rank calls it, at the same point. Otherwise there are no
// peers to ask and every process of the node is taken to say what this one says
// (world.local_size copies of `mine`).
std::vector<std::string> gather_on_node(const WorldInfo& world, const std::string& mine);

// " rank 1 of 4 (local 1 of 2)" style description for logs; empty for a world of one.
std::string describe_world(const WorldInfo& world);

// Reports a fatal error the way every dpt program ends: prints `line` on stderr (prefixed
// "rank N: " when the world has more than one process), then, when MPI is active with more than
// one process, aborts the whole job with `exit_code` so peers blocked in collectives fail fast.
// Returns `exit_code` for main() to return when it did not abort.
int report_fatal(MpiSession& session, const WorldInfo& world, const std::string& line,
                 int exit_code);

}  // namespace dpt
