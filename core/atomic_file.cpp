// The write-temporary / fsync / rename / fsync-directory protocol (see atomic_file.h). Each step's
// failure is reported with errno's text, since ENOSPC or EROFS is what a user needs to see.
#include "core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "devices/error.h"

namespace dpt {
namespace {

// Runs `step` (a system call wrapper returning success) and throws kIo with strerror(errno)
// captured right after it, before building the message can disturb errno.
template <typename Step>
void check_step(Step step, const std::string& what) {
  if (step()) return;
  const int error = errno;
  DPT_THROW(ErrorKind::kIo) << what << ": " << std::strerror(error);
}

// The directory holding `path` ("." for a bare file name), whose entry the rename changes.
std::string directory_of(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// write() until done: it may write less than asked, or be interrupted by a signal.
bool write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t written = ::write(fd, data, size);
    if (written < 0 && errno == EINTR) continue;
    if (written < 0) return false;
    if (written == 0) {
      errno = EIO;  // no progress and no error code: do not spin
      return false;
    }
    data += written;
    size -= static_cast<std::size_t>(written);
  }
  return true;
}

// Closes a descriptor once, whether or not the close succeeds.
struct FileDescriptor {
  int fd = -1;
  ~FileDescriptor() {
    if (fd >= 0) ::close(fd);
  }
  bool close() {
    const int result = ::close(fd);
    fd = -1;
    return result == 0;
  }
};

}  // namespace

void write_file_atomically(const std::string& path, const void* data, std::size_t size) {
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  FileDescriptor file;
  check_step(
      [&] {
        file.fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        return file.fd >= 0;
      },
      path + ": cannot create temporary file " + temp);
  try {
    check_step([&] { return write_all(file.fd, static_cast<const char*>(data), size); },
               path + ": cannot write " + temp);
    check_step([&] { return ::fsync(file.fd) == 0; }, path + ": cannot fsync " + temp);
    check_step([&] { return file.close(); }, path + ": cannot close " + temp);
    check_step([&] { return ::rename(temp.c_str(), path.c_str()) == 0; },
               path + ": cannot rename " + temp + " to it");
  } catch (...) {
    ::unlink(temp.c_str());
    throw;
  }
  // The rename is only durable once the directory entry is on disk.
  const std::string directory = directory_of(path);
  FileDescriptor dir;
  check_step(
      [&] {
        dir.fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        return dir.fd >= 0 && ::fsync(dir.fd) == 0;
      },
      path + ": cannot fsync directory " + directory);
}

}  // namespace dpt
