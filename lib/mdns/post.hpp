// How lib/mdns hands results to their owner: the owner's `post` runs a closure on the owner's thread (the
// strand). The Avahi thread only ever passes values through it, never touching the owner's state itself.
#pragma once

#include <functional>

namespace ship::mdns {

using Post = std::function<void(std::function<void()>)>;

} // namespace ship::mdns
