// Launch discovery and MPI's life time. Ranks come from MPI itself; the local rank from
// MPI_Comm_split_type(MPI_COMM_TYPE_SHARED), so it is right under any launcher; the environment is
// read only to learn whether a launcher started us.
#include "launch/world.h"

#include <fmt/core.h>
#include <mpi.h>
#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "comm/mpi_check.h"
#include "devices/error.h"

namespace dpt {

bool launched_by_mpirun() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"}) {
    if (std::getenv(name) != nullptr) return true;
  }
  return false;
}

MpiSession::MpiSession(bool initialize) {
  if (!initialize) return;
  int initialized = 0;
  MPI_Initialized(&initialized);
  DPT_CHECK(!initialized) << "MpiSession: MPI is already initialised (one session per process)";
  // MPI_Init_thread's own failures abort the process (MPI_ERRORS_ARE_FATAL before a communicator
  // exists), with Open MPI's explanation.
  int provided = MPI_THREAD_SINGLE;
  MPI_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided))
      << "initialising MPI";
  active_ = true;
  thread_level_ = provided;
  if (provided < MPI_THREAD_SERIALIZED) {
    MPI_Finalize();
    active_ = false;
    DPT_THROW(ErrorKind::kComm)
        << "MPI provides thread level " << provided
        << ", below MPI_THREAD_SERIALIZED, which dpt's communication thread needs";
  }
}

MpiSession::~MpiSession() {
  if (!active_) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void MpiSession::abort(int exit_code) noexcept {
  if (!active_) return;
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  active_ = false;  // not reached with Open MPI, which ends the process
}

namespace {

// This process's CPU affinity mask as bytes (all zero when it cannot be read).
std::vector<unsigned char> affinity_bytes() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<unsigned char> bytes(sizeof(set), 0);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) std::memcpy(bytes.data(), &set, sizeof(set));
  return bytes;
}

}  // namespace

WorldInfo discover_world(const MpiSession& session) {
  WorldInfo world;
  world.launched_by_mpirun = launched_by_mpirun();
  if (!session.active()) return world;
  MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &world.rank)) << "discovering the world";
  MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &world.size)) << "discovering the world";
  MPI_Comm local = MPI_COMM_NULL;
  MPI_CHECK(
      MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world.rank, MPI_INFO_NULL, &local))
      << "finding the processes of this node";
  MPI_Comm_rank(local, &world.local_rank);
  MPI_Comm_size(local, &world.local_size);
  // Did the launcher bind each process to its own CPUs? Compare masks across the node.
  const std::vector<unsigned char> mine = affinity_bytes();
  std::vector<unsigned char> all(mine.size() * static_cast<std::size_t>(world.local_size));
  const int code = MPI_Allgather(mine.data(), static_cast<int>(mine.size()), MPI_BYTE, all.data(),
                                 static_cast<int>(mine.size()), MPI_BYTE, local);
  MPI_Comm_free(&local);
  MPI_CHECK(code) << "comparing CPU affinity on this node";
  for (int r = 0; r < world.local_size; ++r) {
    if (std::memcmp(all.data() + r * mine.size(), mine.data(), mine.size()) != 0) {
      world.local_affinity_shared = false;
    }
  }
  cpu_set_t set;
  std::memcpy(&set, mine.data(), sizeof(set));
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) world.node_cpus.push_back(cpu);
  }
  return world;
}

std::vector<std::string> gather_on_node(const WorldInfo& world, const std::string& mine) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (world.size <= 1 || !initialized || finalized) {
    return std::vector<std::string>(static_cast<std::size_t>(std::max(world.local_size, 1)), mine);
  }
  // The same split as discover_world's (key: world rank), so index r is local rank r.
  struct LocalComm {
    MPI_Comm comm = MPI_COMM_NULL;
    ~LocalComm() {
      if (comm != MPI_COMM_NULL) MPI_Comm_free(&comm);
    }
  } local;
  MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world.rank, MPI_INFO_NULL,
                                &local.comm))
      << "finding the processes of this node";
  int size = 1;
  MPI_Comm_size(local.comm, &size);
  const int length = static_cast<int>(mine.size());
  std::vector<int> lengths(static_cast<std::size_t>(size));
  MPI_CHECK(MPI_Allgather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, local.comm))
      << "exchanging what each process of this node sees";
  std::vector<int> offsets(lengths.size(), 0);
  for (std::size_t r = 1; r < lengths.size(); ++r) offsets[r] = offsets[r - 1] + lengths[r - 1];
  std::string all(static_cast<std::size_t>(offsets.back() + lengths.back()), '\0');
  MPI_CHECK(MPI_Allgatherv(mine.data(), length, MPI_CHAR, all.data(), lengths.data(),
                           offsets.data(), MPI_CHAR, local.comm))
      << "exchanging what each process of this node sees";
  std::vector<std::string> gathered;
  for (std::size_t r = 0; r < lengths.size(); ++r) {
    gathered.push_back(
        all.substr(static_cast<std::size_t>(offsets[r]), static_cast<std::size_t>(lengths[r])));
  }
  return gathered;
}

std::string describe_world(const WorldInfo& world) {
  if (world.size <= 1) return "";
  return fmt::format("rank {} of {} (local {} of {})", world.rank, world.size, world.local_rank,
                     world.local_size);
}

int report_fatal(MpiSession& session, const WorldInfo& world, const std::string& line,
                 int exit_code) {
  if (world.size > 1) {
    fmt::print(stderr, "rank {}: {}\n", world.rank, line);
  } else {
    fmt::print(stderr, "{}\n", line);
  }
  std::fflush(stderr);
  if (world.size > 1) session.abort(exit_code);
  return exit_code;
}

}  // namespace dpt
