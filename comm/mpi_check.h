// MPI_CHECK: turns an MPI return code into dpt::Error(kComm) with MPI_Error_string's text. Our
// communicators set MPI_ERRORS_RETURN, so failures come back here as codes instead of ending the
// process inside the library.
//   MPI_CHECK(MPI_Isend(...)) << "all_reduce #3: send to rank 1";
//   -> "all_reduce #3: send to rank 1: MPI_Isend: MPI_ERR_TRUNCATE: message truncated"
#pragma once

#include <string>

#include "devices/error.h"

namespace dpt::mpi {

// MPI_Error_string of `code`, or "MPI error <code>" when MPI cannot describe it.
std::string error_text(int code);

namespace detail {
struct RaiseMpi {
  int code;
  const char* call;
  [[noreturn]] void operator&(const ::dpt::detail::Message& message) const;
};
}  // namespace detail
}  // namespace dpt::mpi

// Evaluates `call` (an MPI function call) once; when it does not return MPI_SUCCESS (0 in every
// MPI implementation), throws kComm with the streamed context, the call's name and MPI's text.
#define MPI_CHECK(call)                                     \
  if (const int dpt_mpi_code = (call); dpt_mpi_code == 0) { \
  } else                                                    \
    ::dpt::mpi::detail::RaiseMpi{dpt_mpi_code, #call} & ::dpt::detail::Message()
