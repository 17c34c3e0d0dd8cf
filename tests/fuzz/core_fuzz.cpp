// connection_core against a hostile broker: a valid handshake, then the input
// as steps of client calls and broker bytes (see core_session.hpp), with the
// core's invariants checked after every step. A broken one aborts.
#include <cstdint>

#include "core_session.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  warren::fuzz::core_session session(warren::bytes_view(data, size),
                                     warren::fuzz::on_violation::abort);
  session.run();
  return 0;
}
