#include "warren/client/dial.hpp"

#include <algorithm>
#include <asio/connect.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <numeric>
#include <optional>
#include <random>

#include "warren/client/driver.hpp"
#include "warren/client/log.hpp"
#include "warren/client/tcp_transport.hpp"
#include "warren/client/timeout.hpp"
#if WARREN_WITH_TLS
#include "warren/client/tls_transport.hpp"
#endif

namespace warren {

bool tls_supported() noexcept { return WARREN_WITH_TLS != 0; }

namespace detail {

namespace {

constexpr auto tuple_awaitable = asio::experimental::as_tuple(asio::use_awaitable);

std::string where_of(const connection_params& p) {
  return (p.host.find(':') != std::string::npos ? "[" + p.host + "]" : p.host) + ":" +
         std::to_string(p.port);
}

// One endpoint, within its connection_timeout: the transport, then the
// AMQP handshake in the time left.
asio::awaitable<std::shared_ptr<driver>> open_one(const connection_params& params,
                                                  const connect_options& options) {
  auto ex = co_await asio::this_coro::executor;
  core_config cfg;
  cfg.params = params;
  cfg.connection_name = options.connection_name;
  cfg.max_body_size = options.max_body_size;
  cfg.log = options.log;
  cfg.client_properties = options.client_properties;
  auto d = std::make_shared<driver>(ex, std::move(cfg), options);
  if (options.log) emit(options.log, log_level::info, "connecting to " + to_uri(params, true));
  const auto limit = params.connection_timeout;
  const auto deadline = std::chrono::steady_clock::now() + limit;

  std::unique_ptr<transport> t;
  if (limit.count() > 0) {
    try {
      auto pending = dial(params, options);
      t = co_await with_timeout(std::move(pending), limit);
    } catch (const error& e) {
      if (e.code() != errc::timeout) throw;
      throw_error(make_info(errc::timeout, "no AMQP connection to " + where_of(params) + " within " +
                                               std::to_string(limit.count()) + " ms"));
    }
  } else {
    auto pending = dial(params, options);
    t = co_await std::move(pending);
  }
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  if (limit.count() > 0 && left.count() <= 0) left = std::chrono::milliseconds(1);
  if (limit.count() <= 0) left = std::chrono::milliseconds(0);
  std::optional<error_info> late;
  try {
    auto pending = d->open(std::move(t), left);
    co_await std::move(pending);
  } catch (const error& e) {
    if (e.code() != errc::timeout) throw;
    late = e.info();
  }
  // The whole attempt had one limit: name that, not the part of it left for
  // the handshake.
  if (late) throw_error(make_info(errc::timeout, "no AMQP connection to " + where_of(params) +
                                                     " within " + std::to_string(limit.count()) + " ms"));
  if (options.log) {
    std::string server;
    const field_table& props = d->core_.server_properties();
    for (const char* key : {"product", "version"})
      if (const auto* v = props.find(key))
        if (const auto* text = std::get_if<std::string>(&v->variant())) server += " " + escaped(*text);
    emit(options.log, log_level::info,
         "connected to " + to_uri(params, true) + (server.empty() ? "" : " (" + server.substr(1) + ")"));
  }
  co_return d;
}

}  // namespace

void check_connect_options(const connect_options& options) {
  if (!options.client_properties.empty()) {
    byte_buffer scratch;
    writer w(scratch);
    encode_table(w, options.client_properties);
    if (!w.ok())
      throw_error(make_info(std::make_error_code(std::errc::invalid_argument),
                            "client_properties cannot be encoded: " + w.error().message()));
  }
  if (options.receive_batch_bytes > (std::size_t{4} << 20))
    throw_error(make_info(std::make_error_code(std::errc::invalid_argument),
                          "receive_batch_bytes is over 4 MiB"));
  if (options.receive_batch_bytes != 0 &&
      (options.receive_batch_wait.count() <= 0 || options.receive_batch_wait > std::chrono::seconds(1)))
    throw_error(make_info(std::make_error_code(std::errc::invalid_argument),
                          "receive_batch_wait must be above zero and at most 1 s"));
}

asio::awaitable<std::unique_ptr<transport>> dial(const connection_params& params,
                                                 const connect_options& options) {
#if !WARREN_WITH_TLS
  if (params.tls)
    throw_error(make_info(errc::tls_unavailable,
                          "amqps needs TLS, and this warren was built without TLS (meson -Dtls=enabled)"));
  (void)options;
#endif
  auto ex = co_await asio::this_coro::executor;
  const std::string where = where_of(params);
  asio::ip::tcp::resolver resolver(ex);
  auto [rec, endpoints] =
      co_await resolver.async_resolve(params.host, std::to_string(params.port), tuple_awaitable);
  if (rec) throw_error(make_info(rec, "cannot resolve " + params.host + ": " + rec.message()));
  asio::ip::tcp::socket socket(ex);
  auto [cec, ep] = co_await asio::async_connect(socket, endpoints, tuple_awaitable);
  if (cec) throw_error(make_info(cec, "cannot connect to " + where + ": " + cec.message()));
  std::error_code nb;
  socket.non_blocking(true, nb);
  if (nb) throw_error(make_info(nb, "cannot make the socket non-blocking: " + nb.message()));
#if WARREN_WITH_TLS
  if (params.tls) {
    auto pending = start_tls(std::move(socket), params, options.tls_context);
    co_return co_await std::move(pending);
  }
#endif
  co_return std::make_unique<tcp_transport>(std::move(socket));
}

asio::awaitable<std::shared_ptr<driver>> open_first(const std::vector<connection_params>& candidates,
                                                    const connect_options& options,
                                                    std::size_t* chosen) {
  if (candidates.empty())
    throw_error(make_info(errc::no_endpoint, "no endpoint to connect to: the list is empty"));
  std::vector<std::size_t> order(candidates.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  if (options.shuffle_endpoints) {
    std::random_device seed;
    std::minstd_rand rng(seed());
    std::shuffle(order.begin(), order.end(), rng);
  }
  std::vector<std::pair<std::size_t, error_info>> failures;
  for (std::size_t i : order) {
    std::optional<error_info> failed;
    try {
      auto pending = open_one(candidates[i], options);
      auto d = co_await std::move(pending);
      if (chosen) *chosen = i;
      co_return d;
    } catch (const error& e) {
      failed = e.info();
    }
    if (options.log)
      emit(options.log, log_level::warning,
           "cannot connect to " + to_uri(candidates[i], true) + ": " + escaped(failed->describe()));
    failures.emplace_back(i, std::move(*failed));
  }
  if (failures.size() == 1) throw_error(std::move(failures.front().second));

  error_info all;
  all.code = failures.front().second.code;
  for (auto& [i, f] : failures) {
    if (f.code != all.code) all.code = errc::no_endpoint;
  }
  all.text = "all " + std::to_string(failures.size()) + " endpoints failed:";
  for (auto& [i, f] : failures) {
    all.text += " [" + std::to_string(i + 1) + "] " + where_of(candidates[i]) + ": " + f.describe() + ";";
  }
  all.text.pop_back();
  throw_error(std::move(all));
}

}  // namespace detail
}  // namespace warren
