// Names of error kinds, for messages and the README's exit-code table.
#include "devices/error.h"

namespace dpt {

const char* error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInternal:
      return "internal error";
    case ErrorKind::kConfig:
      return "config error";
    case ErrorKind::kData:
      return "data error";
    case ErrorKind::kCheckpoint:
      return "checkpoint error";
    case ErrorKind::kNonFinite:
      return "non-finite value";
    case ErrorKind::kComm:
      return "communication error";
    case ErrorKind::kIo:
      return "I/O error";
  }
  return "error";
}

}  // namespace dpt
