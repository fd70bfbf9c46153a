// Atomic replacement of a file: write a temporary in the same directory, fsync it, rename it over
// the destination, fsync the directory. Used by every writer of dataset, weight and checkpoint
// files so that a crash or a full disk never leaves a partial file under the final name.
#pragma once

#include <cstddef>
#include <string>

namespace dpt {

// Writes `size` bytes to "<path>.tmp.<pid>", fsyncs and closes it, renames it to `path` and
// fsyncs the directory. On any failure the temporary is removed and dpt::Error(kIo) naming `path`
// and strerror(errno) is thrown. `path` is either the previous file or the complete new one.
void write_file_atomically(const std::string& path, const void* data, std::size_t size);

}  // namespace dpt
