// MeshContext: a gloo::Context whose TCP pairs are connected through dpt's bootstrap all-gather
// (comm/plugin_abi.h's dpt_coll_allgather_fn) instead of a gloo::rendezvous::Store. Every rank
// creates one pair per peer, publishes the pairs' addresses in one fixed-size all-gather, and
// connects each pair to the address its peer published for it (as Gloo's connectFullMesh does
// with a store). Part of the Gloo plug-in (gloo_plugin.cpp).
#pragma once

#include <gloo/context.h>
#include <gloo/transport/device.h>

#include <memory>
#include <stdexcept>

#include "comm/plugin_abi.h"

namespace dpt_gloo {

// The bootstrap callback failed (the plug-in reports DPT_COLL_ERR_BOOTSTRAP).
struct BootstrapError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class MeshContext : public gloo::Context {
 public:
  MeshContext(int rank, int size) : gloo::Context(rank, size) {}
  // Collective: connects this rank to every other over `device` (pairs time out after
  // getTimeout()). Throws BootstrapError or Gloo's exceptions.
  void connect(const std::shared_ptr<gloo::transport::Device>& device,
               dpt_coll_allgather_fn allgather, void* state);
};

}  // namespace dpt_gloo
