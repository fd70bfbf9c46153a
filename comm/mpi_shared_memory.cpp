// map_node_segment (comm/mpi_shared_memory.h): shm_open + posix_fallocate on rank 0 (so a full
// /dev/shm is an error here, not a SIGBUS later), MPI_Bcast of the name, mmap on every rank, an
// MPI_Allreduce of the outcome, shm_unlink.
#include "comm/mpi_shared_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <random>

#include "comm/mpi_check.h"

namespace dpt {
namespace {

constexpr int kNameBytes = 64;

// Opens (rank 0: creates and sizes) the object and maps it; null and `why` on failure.
char* open_and_map(const char* name, std::size_t bytes, bool create, std::string& why) {
  const int fd =
      create ? shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600) : shm_open(name, O_RDWR, 0);
  if (fd < 0) {
    why = std::string("shm_open ") + name + ": " + std::strerror(errno);
    return nullptr;
  }
  if (create) {
    const int error = posix_fallocate(fd, 0, static_cast<off_t>(bytes));
    if (error != 0) {
      why = std::string("reserving ") + std::to_string(bytes) +
            " bytes in /dev/shm: " + std::strerror(error);
      close(fd);
      return nullptr;
    }
  }
  void* data = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int map_errno = errno;
  close(fd);
  if (data == MAP_FAILED) {
    why = std::string("mmap of ") + name + ": " + std::strerror(map_errno);
    return nullptr;
  }
  return static_cast<char*>(data);
}

}  // namespace

SharedSegment::~SharedSegment() { munmap(data_, bytes_); }

bool all_on_one_node(MPI_Comm comm) {
  int rank = 0, size = 1, node_size = 0;
  MPI_CHECK(MPI_Comm_rank(comm, &rank)) << "shared memory";
  MPI_CHECK(MPI_Comm_size(comm, &size)) << "shared memory";
  MPI_Comm node = MPI_COMM_NULL;
  MPI_CHECK(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node))
      << "shared memory";
  MPI_Comm_size(node, &node_size);
  MPI_Comm_free(&node);
  return node_size == size;  // else no node holds every rank, and every rank sees that
}

std::unique_ptr<SharedSegment> map_node_segment(MPI_Comm comm, std::size_t bytes_per_rank,
                                                std::string& why) {
  int rank = 0, size = 1;
  MPI_CHECK(MPI_Comm_rank(comm, &rank)) << "shared memory";
  MPI_CHECK(MPI_Comm_size(comm, &size)) << "shared memory";
  const std::size_t bytes = bytes_per_rank * static_cast<std::size_t>(size);
  std::array<char, kNameBytes> name{};
  char* data = nullptr;
  if (rank == 0) {
    std::random_device random;
    const unsigned long long tag = (static_cast<unsigned long long>(random()) << 32) ^ random();
    std::snprintf(name.data(), name.size(), "/dpt-%d-%016llx", static_cast<int>(getpid()), tag);
    data = open_and_map(name.data(), bytes, true, why);
    if (data == nullptr) {
      shm_unlink(name.data());
      name[0] = '\0';  // tells the others
    }
  }
  MPI_CHECK(MPI_Bcast(name.data(), kNameBytes, MPI_CHAR, 0, comm)) << "shared memory";
  if (rank != 0 && name[0] != '\0') data = open_and_map(name.data(), bytes, false, why);
  if (rank != 0 && name[0] == '\0') why = "rank 0 could not create it";
  int mapped = data != nullptr ? 1 : 0, everywhere = 0;
  MPI_CHECK(MPI_Allreduce(&mapped, &everywhere, 1, MPI_INT, MPI_MIN, comm)) << "shared memory";
  if (rank == 0 && name[0] != '\0') shm_unlink(name.data());  // every rank has mapped or failed
  if (everywhere == 0) {
    if (data != nullptr) munmap(data, bytes);
    if (why.empty()) why = "another rank could not map it";
    return nullptr;
  }
  return std::make_unique<SharedSegment>(data, bytes);
}

}  // namespace dpt
