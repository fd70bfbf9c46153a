// MeshContext::connect (gloo_mesh.h). Rank r's blob holds `size` slots; slot j is the address of
// r's pair for peer j (empty for j == r), as a 4-byte length and kMaxByteSize bytes.
#include "comm/plugins/gloo/gloo_mesh.h"

#include <gloo/transport/address.h>
#include <gloo/transport/context.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace dpt_gloo {
namespace {

constexpr std::size_t kAddressBytes = gloo::transport::Address::kMaxByteSize;
constexpr std::size_t kSlotBytes = sizeof(uint32_t) + kAddressBytes;

}  // namespace

void MeshContext::connect(const std::shared_ptr<gloo::transport::Device>& device,
                          dpt_coll_allgather_fn allgather, void* state) {
  std::shared_ptr<gloo::transport::Context> transport = device->createContext(rank, size);
  transport->setTimeout(getTimeout());
  const std::size_t blob_bytes = kSlotBytes * static_cast<std::size_t>(size);
  std::vector<char> mine(blob_bytes, 0);
  for (int peer = 0; peer < size; ++peer) {
    if (peer == rank) continue;
    const std::vector<char> address = transport->createPair(peer)->address().bytes();
    if (address.size() > kAddressBytes) {
      throw BootstrapError("a Gloo pair address of " + std::to_string(address.size()) +
                           " bytes exceeds " + std::to_string(kAddressBytes));
    }
    const auto length = static_cast<uint32_t>(address.size());
    char* slot = mine.data() + kSlotBytes * static_cast<std::size_t>(peer);
    std::memcpy(slot, &length, sizeof(length));
    std::memcpy(slot + sizeof(length), address.data(), address.size());
  }
  std::vector<char> all(blob_bytes * static_cast<std::size_t>(size));
  if (allgather(state, mine.data(), blob_bytes, all.data()) != 0) {
    throw BootstrapError("the bootstrap all-gather of the peers' addresses failed");
  }
  for (int peer = 0; peer < size; ++peer) {
    if (peer == rank) continue;
    // The peer's slot for this rank: the address of the peer's pair that waits for us.
    const char* slot = all.data() + blob_bytes * static_cast<std::size_t>(peer) +
                       kSlotBytes * static_cast<std::size_t>(rank);
    uint32_t length = 0;
    std::memcpy(&length, slot, sizeof(length));
    if (length == 0 || length > kAddressBytes) {
      throw BootstrapError("rank " + std::to_string(peer) + " published no address for rank " +
                           std::to_string(rank));
    }
    transport->getPair(peer)->connect(
        std::vector<char>(slot + sizeof(length), slot + sizeof(length) + length));
  }
  device_ = device;
  transportContext_ = std::move(transport);
}

}  // namespace dpt_gloo
