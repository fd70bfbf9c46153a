// dpt::Error and the checking macros every library file uses. It lives in devices/, the lowest
// layer, because every layer throws it. Library code never prints or exits: it throws dpt::Error,
// whose kind is the process exit code launch/ returns (README "Exit codes"). Wrappers for foreign
// libraries (H5_CHECK, ...) live next to the code that uses that library.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace dpt {

// What went wrong, coarse enough to pick an exit code. Values are the exit codes.
enum class ErrorKind : int {
  kInternal = 1,    // a bug or an unexpected runtime failure
  kConfig = 2,      // usage, command line or config error
  kData = 3,        // data file missing, malformed, wrong shape, label out of range
  kCheckpoint = 4,  // weights/checkpoint file missing, corrupt or mismatched
  kNonFinite = 5,   // NaN or Inf in the loss or gradients
  kComm = 6,        // communication error or timeout
  kIo = 7,          // writing failed: disk full, unwritable directory
};

// Short lowercase name of a kind ("config error", ...), used in messages.
const char* error_kind_name(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }
  int exit_code() const { return static_cast<int>(kind_); }

 private:
  ErrorKind kind_;
};

namespace detail {
// Collects `<< a << b` into a message; Raise's operator& throws it. operator& binds looser than
// operator<<, so `Raise{k} & Message() << x << y` streams everything first, then throws.
class Message {
 public:
  template <typename T>
  Message& operator<<(const T& value) {
    stream_ << value;
    return *this;
  }
  std::string str() const { return stream_.str(); }

 private:
  std::ostringstream stream_;
};

struct Raise {
  ErrorKind kind;
  [[noreturn]] void operator&(const Message& message) const { throw Error(kind, message.str()); }
};
}  // namespace detail
}  // namespace dpt

// DPT_THROW(kind) << "message";  always throws dpt::Error of that kind.
#define DPT_THROW(kind) ::dpt::detail::Raise{kind} & ::dpt::detail::Message()

// DPT_CHECK_AS(kind, cond) << "message";  throws when cond is false.
#define DPT_CHECK_AS(kind, cond) \
  if (cond) {                    \
  } else                         \
    DPT_THROW(kind)

// DPT_CHECK(cond) << "message";  an internal invariant (exit code 1).
#define DPT_CHECK(cond) DPT_CHECK_AS(::dpt::ErrorKind::kInternal, cond)
