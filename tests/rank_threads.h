// N ranks as N threads over one in-process ThreadWorld, for tests that check what ranks agree on:
// on_ranks runs a body on every rank and returns each rank's error.
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "comm/thread_world.h"

namespace dpt::testing {

// Runs body(rank, comm) for ranks 0..world-1, each on its own thread (collectives time out after
// `timeout_s`). A rank whose body throws records the message and aborts its communicator, so its
// peers fail fast instead of waiting out the timeout. Returns each rank's error, "" when none.
inline std::vector<std::string> on_ranks(int world, double timeout_s,
                                         const std::function<void(int, Communicator&)>& body) {
  ThreadWorld thread_world(world, CommOptions{timeout_s});
  std::vector<std::string> errors(static_cast<std::size_t>(world));
  std::vector<std::thread> threads;
  for (int rank = 0; rank < world; ++rank) {
    threads.emplace_back([&, rank] {
      std::unique_ptr<Communicator> comm = thread_world.communicator(rank);
      try {
        body(rank, *comm);
      } catch (const std::exception& e) {
        errors[static_cast<std::size_t>(rank)] = e.what();
        comm->abort(1);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  return errors;
}

}  // namespace dpt::testing
