// The "local" backend: a world of one (comm/local_communicator.cpp).
#pragma once

#include <memory>

#include "comm/communicator.h"

namespace dpt {

std::unique_ptr<Communicator> make_local_communicator();

}  // namespace dpt
