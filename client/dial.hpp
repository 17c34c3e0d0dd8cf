// Reaching a broker: resolve, TCP connect, TLS when asked, then the AMQP
// handshake, over one endpoint or the first of several that answers. What
// connect() runs, and what recovery will run again. Private to the library.
#pragma once

#include <asio/awaitable.hpp>
#include <cstddef>
#include <memory>
#include <vector>

#include "warren/client/connection.hpp"
#include "warren/client/transport.hpp"

namespace warren::detail {

class driver;

// Checks options that connect() refuses before any network work; throws
// warren::error.
void check_connect_options(const connect_options& options);

// A transport to the broker of `params` (TCP, or TLS for amqps), without any
// deadline of its own. Throws warren::error naming the endpoint.
asio::awaitable<std::unique_ptr<transport>> dial(const connection_params& params,
                                                 const connect_options& options);

// An open connection (after connection.open-ok) to the first of
// `candidates` that accepts one, each tried within its connection_timeout,
// in order or shuffled (options.shuffle_endpoints). `*chosen` (when given)
// receives the index of the one that answered. With one candidate its error
// is thrown as it is; with several, the error names each endpoint and why it
// failed, with errc::no_endpoint unless every failure had the same code.
asio::awaitable<std::shared_ptr<driver>> open_first(const std::vector<connection_params>& candidates,
                                                    const connect_options& options,
                                                    std::size_t* chosen = nullptr);

}  // namespace warren::detail
