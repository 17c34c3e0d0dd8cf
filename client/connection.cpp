#include "warren/client/connection.hpp"

#include <asio/connect.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include "warren/client/core.hpp"
#include "warren/client/driver.hpp"
#include "warren/client/dial.hpp"
#include "warren/client/recovery.hpp"
#include "warren/client/timeout.hpp"

namespace warren {
namespace detail {

constexpr auto tuple_awaitable = asio::experimental::as_tuple(asio::use_awaitable);

}  // namespace detail

using detail::op_result;

// ---- connect ---------------------------------------------------------------

namespace detail {
asio::awaitable<connection> connect_uri(std::string_view uri, const connect_options& options) {
  connection_params params;
  std::string what;
  if (auto ec = parse_uri(uri, params, &what)) throw_error(make_info(ec, what));
  std::vector<connection_params> one{std::move(params)};
  auto pending = connect(std::move(one), options);
  connection c = co_await std::move(pending);
  co_return c;
}
}  // namespace detail

asio::awaitable<connection> connect(connection_params params) {
  static const connect_options defaults;
  return connect(std::move(params), defaults);
}

asio::awaitable<connection> connect(connection_params params, const connect_options& options) {
  std::vector<connection_params> one{std::move(params)};
  return connect(std::move(one), options);
}

asio::awaitable<connection> connect(const std::vector<std::string>& uris,
                                    const connect_options& options) {
  std::vector<connection_params> candidates;
  candidates.reserve(uris.size());
  for (std::size_t i = 0; i < uris.size(); ++i) {
    connection_params p;
    std::string what;
    if (auto ec = parse_uri(uris[i], p, &what)) {
      if (uris.size() > 1) what = "URI " + std::to_string(i + 1) + ": " + what;
      detail::throw_error(detail::make_info(ec, what));
    }
    candidates.push_back(std::move(p));
  }
  return connect(std::move(candidates), options);
}

asio::awaitable<connection> connect(const connection_params& shared,
                                    const std::vector<endpoint>& endpoints,
                                    const connect_options& options) {
  std::vector<connection_params> candidates;
  candidates.reserve(endpoints.size());
  for (const auto& e : endpoints) {
    connection_params p = shared;
    p.host = e.host;
    p.port = e.port != 0 ? e.port : (shared.tls ? 5671 : 5672);
    candidates.push_back(std::move(p));
  }
  return connect(std::move(candidates), options);
}

asio::awaitable<connection> connect(std::vector<connection_params> candidates,
                                    const connect_options& options) {
  detail::check_connect_options(options);
  std::size_t chosen = 0;
  auto pending = detail::open_first(candidates, options, &chosen);
  auto d = co_await std::move(pending);
  d->endpoint = to_uri(candidates[chosen], true);
  auto conn = detail::make_connection(d);
  if (options.recovery.enabled) {
    auto& h = conn.handle_;
    h->rec = std::make_shared<detail::recovery>(d->ex_, std::move(candidates), options);
    h->rec->watch(h, *d);
  }
  co_return conn;
}

namespace detail {
connection make_connection(std::shared_ptr<driver> d) {
  auto handle = std::make_shared<connection_handle>();
  handle->impl = std::move(d);
  return connection(std::move(handle));
}
}  // namespace detail

// ---- connection ------------------------------------------------------------

namespace {
// With recovery on, an operation started while a recovery runs waits for it
// (at most request_timeout) instead of failing at once.
asio::awaitable<void> recovered(detail::connection_handle& h) {
  auto rec = h.rec;
  if (!rec) co_return;
  // Lost, and the close not yet seen by recovery: it is about to start.
  while (!rec->recovering() && !rec->stopped() && !rec->gave_up() && h.impl->core_.is_closed() &&
         detail::is_connection_loss(h.impl->core_.close_reason()))
    co_await rec->wait_change();
  if (rec->recovering()) {
    auto waiting = rec->wait_recovered(h.impl->opts_.request_timeout);
    co_await std::move(waiting);
  }
}

// With recovery on: the connection is not usable now, but may be again.
bool must_wait(const detail::connection_handle& h) noexcept {
  return h.rec && (h.rec->recovering() || !h.impl->core_.is_open());
}

// An operation failed with errc::interrupted and the connection is being
// (or about to be) recovered: worth trying again.
bool retryable(const detail::connection_handle& h, const error_info& e) noexcept {
  return h.rec && e.code == errc::interrupted && !h.rec->stopped() && !h.rec->gave_up();
}

// With recovery on: waits while channel::reopen() runs on `h`.
asio::awaitable<void> reopened(const detail::logical_channel& h) {
  while (h.reopening) co_await h.conn->rec->wait_change();
}

// An operation on `h` that began at reopen count `epoch` failed: true when a
// reopen cut it short (it has finished now), so it is worth trying again.
asio::awaitable<bool> cut_by_reopen(const detail::logical_channel& h, std::uint64_t epoch) {
  if (!h.conn->rec || (!h.reopening && h.reopens == epoch)) co_return false;
  co_await reopened(h);
  co_return true;
}
}  // namespace

asio::awaitable<channel> connection::open_channel() {
  if (handle_->rec) co_await recovered(*handle_);
  auto& impl = *handle_->impl;
  std::uint16_t id = 0;
  co_await impl.checked_op([&impl, &id](std::uint64_t op, detail::completion done) {
    id = impl.core_.open_channel(op, std::move(done));
  });
  auto h = std::make_shared<detail::logical_channel>();
  h->conn = handle_;
  h->id = id;
  if (handle_->rec) handle_->rec->channel_opened(h);
  co_return channel(std::move(h));
}

asio::awaitable<void> connection::close(std::uint16_t code, std::string_view text) {
  if (handle_->rec) handle_->rec->stop();
  auto& impl = *handle_->impl;
  co_await impl.checked_op([&](std::uint64_t id, detail::completion done) {
    impl.core_.close(code, std::string(text), id, std::move(done));
  });
}

asio::awaitable<connection_notice> connection::next_notice() {
  auto rec = handle_->rec;
  for (;;) {
    if (rec) {
      if (auto n = rec->take_notice()) co_return std::move(*n);
      if (rec->recovering()) {
        co_await rec->wait_change();
        continue;
      }
    }
    auto impl = handle_->impl;
    op_result r = co_await impl->op([&impl](std::uint64_t id, detail::completion done) {
      impl->core_.next_event(id, std::move(done));
    });
    if (!r.error) co_return std::move(*r.event);
    const bool loss = detail::is_connection_loss(impl->core_.close_reason());
    if (!rec || rec->stopped() || rec->gave_up() || !loss) {
      if (rec) {
        if (auto n = rec->take_notice()) co_return std::move(*n);
      }
      detail::throw_error(impl->user_error(std::move(r.error)));
    }
    // Lost: recovery starts when the transport's close is seen.
    if (!rec->recovering() && impl == handle_->impl) co_await rec->wait_change();
  }
}

asio::awaitable<void> connection::update_secret(std::string new_secret, std::string reason) {
  auto& impl = *handle_->impl;
  co_await impl.checked_op([&](std::uint64_t id, detail::completion done) {
    impl.core_.update_secret(std::move(new_secret), std::move(reason), id, std::move(done));
  });
}

bool connection::is_open() const noexcept { return handle_ && handle_->impl->core_.is_open(); }
bool connection::blocked() const noexcept { return handle_ && handle_->impl->core_.blocked(); }
error_info connection::close_reason() const {
  return handle_ ? handle_->impl->core_.close_reason() : error_info{};
}
std::uint32_t connection::frame_max() const noexcept { return handle_->impl->core_.frame_max(); }
std::uint16_t connection::channel_max() const noexcept { return handle_->impl->core_.channel_max(); }
std::uint16_t connection::heartbeat() const noexcept { return handle_->impl->core_.heartbeat(); }
const field_table& connection::server_properties() const noexcept {
  return handle_->impl->core_.server_properties();
}
asio::any_io_executor connection::get_executor() const noexcept { return handle_->impl->ex_; }
std::string connection::endpoint() const { return handle_->impl->endpoint; }
std::string connection::current_queue_name(std::string_view queue) const {
  return handle_->rec ? handle_->rec->topo.current(std::string(queue)) : std::string(queue);
}
bool connection::recovering() const noexcept { return handle_->rec && handle_->rec->recovering(); }
connection_counters connection::counters() const noexcept {
  if (!handle_) return {};
  connection_counters c = handle_->earlier;
  c += handle_->impl->core_.counters();
  return c;
}

// ---- channel ---------------------------------------------------------------

namespace {

// A synchronous request, with the whole result (basic.get's message too).
template <class M>
asio::awaitable<op_result> request(const detail::logical_channel& h, const M& m) {
  if (h.conn->rec) co_await recovered(*h.conn);
  auto& impl = h.impl();
  const std::uint16_t ch = h.id;
  co_return co_await impl.checked_op([&impl, ch, &m](std::uint64_t id, detail::completion done) {
    impl.core_.request(ch, m, id, std::move(done));
  });
}

// A synchronous request that returns the broker's reply, of the type the
// spec gives it (M::reply): the core matched the reply to the request's
// responses, so it is that type.
template <class M>
asio::awaitable<typename M::reply> call(const detail::logical_channel& h, const M& m) {
  op_result r = co_await request(h, m);
  if constexpr (!std::is_void_v<typename M::reply>)
    co_return std::get<typename M::reply>(std::move(*r.reply));
}

template <class M>
void send(const detail::logical_channel& h, const M& m) {
  if (error_info e = h.core().send(h.id, m)) detail::throw_error(h.impl().user_error(std::move(e)));
}

// What recovery will declare again (nothing when it is off).
detail::topology* recorded(const detail::logical_channel& h) {
  return h.conn->rec ? &h.conn->rec->topo : nullptr;
}

// The four binding methods share their shape: two names (destination and
// source, or queue and exchange), a routing key and arguments.
template <class M>
M binding(std::string_view to, std::string_view from, std::string_view routing_key,
          const field_table* arguments, bool no_wait) {
  M m;
  if constexpr (requires { m.destination; }) {
    m.destination = to;
    m.source = from;
  } else {
    m.queue = to;
    m.exchange = from;
  }
  m.routing_key = routing_key;
  if constexpr (requires { m.no_wait; }) m.no_wait = no_wait;
  if (arguments) m.arguments = *arguments;
  return m;
}

// Synchronous unless no_wait is set, in which case the broker sends no reply.
template <class M>
asio::awaitable<void> call_or_send(const detail::logical_channel& h, const M& m) {
  if (m.no_wait)
    send(h, m);
  else
    co_await call(h, m);
}

}  // namespace

std::uint16_t channel::id() const noexcept { return handle_ ? handle_->id : 0; }
bool channel::is_open() const noexcept { return handle_ && handle_->core().is_channel_open(handle_->id); }
error_info channel::close_reason() const {
  return handle_ ? handle_->core().channel_error(handle_->id) : error_info{};
}

asio::awaitable<void> channel::close() {
  auto& h = *handle_;
  h.closed_by_user = true;
  co_await h.impl().checked_op([&h](std::uint64_t id, detail::completion done) {
    h.core().close_channel(h.id, id, std::move(done));
  });
}

asio::awaitable<bool> channel::flow(bool active) {
  channel_flow m;
  m.active = active;
  channel_flow_ok ok = co_await call(*handle_, m);
  co_return ok.active;
}

asio::awaitable<void> channel::exchange_declare(std::string_view name, exchange_declare_options o) {
  warren::exchange_declare m;
  m.exchange = name;
  m.type = o.type;
  m.passive = o.passive;
  m.durable = o.durable;
  m.auto_delete = o.auto_delete;
  m.internal = o.internal;
  m.no_wait = o.no_wait;
  if (o.arguments) m.arguments = *o.arguments;
  co_await call_or_send(*handle_, m);
  if (auto* t = recorded(*handle_)) t->declared(m);
}

asio::awaitable<void> channel::exchange_delete(std::string_view name, exchange_delete_options o) {
  warren::exchange_delete m;
  m.exchange = name;
  m.if_unused = o.if_unused;
  m.no_wait = o.no_wait;
  co_await call_or_send(*handle_, m);
  if (auto* t = recorded(*handle_)) t->exchange_deleted(m.exchange);
}

asio::awaitable<void> channel::exchange_bind(std::string_view destination, std::string_view source,
                                             std::string_view routing_key, bind_options o) {
  auto m = binding<warren::exchange_bind>(destination, source, routing_key, o.arguments, o.no_wait);
  co_await call_or_send(*handle_, m);
  if (auto* t = recorded(*handle_)) t->bound(m);
}

asio::awaitable<void> channel::exchange_unbind(std::string_view destination,
                                               std::string_view source,
                                               std::string_view routing_key, bind_options o) {
  auto m = binding<warren::exchange_unbind>(destination, source, routing_key, o.arguments, o.no_wait);
  co_await call_or_send(*handle_, m);
  if (auto* t = recorded(*handle_)) t->unbound(m);
}

asio::awaitable<queue_declare_result> channel::queue_declare(std::string_view name,
                                                             queue_declare_options o) {
  warren::queue_declare m;
  m.queue = name;
  m.passive = o.passive;
  m.durable = o.durable;
  m.exclusive = o.exclusive;
  m.auto_delete = o.auto_delete;
  m.no_wait = o.no_wait;
  if (o.arguments) m.arguments = *o.arguments;
  queue_declare_result res;
  if (o.no_wait) {
    send(*handle_, m);
    res.queue = name;
    if (auto* t = recorded(*handle_)) t->declared(m, res.queue);
    co_return res;
  }
  queue_declare_ok ok = co_await call(*handle_, m);
  if (auto* t = recorded(*handle_)) t->declared(m, ok.queue);
  res.queue = std::move(ok.queue);
  res.message_count = ok.message_count;
  res.consumer_count = ok.consumer_count;
  co_return res;
}

asio::awaitable<void> channel::queue_bind(std::string_view queue, std::string_view exchange,
                                          std::string_view routing_key, bind_options o) {
  auto m = binding<warren::queue_bind>(queue, exchange, routing_key, o.arguments, o.no_wait);
  co_await call_or_send(*handle_, m);
  if (auto* t = recorded(*handle_)) t->bound(m);
}

asio::awaitable<void> channel::queue_unbind(std::string_view queue, std::string_view exchange,
                                            std::string_view routing_key,
                                            const field_table* arguments) {
  auto m = binding<warren::queue_unbind>(queue, exchange, routing_key, arguments, false);
  co_await call(*handle_, m);
  if (auto* t = recorded(*handle_)) t->unbound(m);
}

asio::awaitable<std::uint32_t> channel::queue_purge(std::string_view queue) {
  warren::queue_purge m;
  m.queue = queue;
  queue_purge_ok ok = co_await call(*handle_, m);
  co_return ok.message_count;
}

asio::awaitable<std::uint32_t> channel::queue_delete(std::string_view queue,
                                                     queue_delete_options o) {
  warren::queue_delete m;
  m.queue = queue;
  m.if_unused = o.if_unused;
  m.if_empty = o.if_empty;
  m.no_wait = o.no_wait;
  if (o.no_wait) {
    send(*handle_, m);
    if (auto* t = recorded(*handle_)) t->queue_deleted(m.queue);
    co_return 0;
  }
  queue_delete_ok ok = co_await call(*handle_, m);
  if (auto* t = recorded(*handle_)) t->queue_deleted(m.queue);
  co_return ok.message_count;
}

asio::awaitable<void> channel::qos(qos_options o) {
  basic_qos m;
  m.prefetch_count = o.prefetch_count;
  m.prefetch_size = o.prefetch_size;
  m.global = o.global;
  co_await call(*handle_, m);
  if (handle_->conn->rec) handle_->qos = m;
}

asio::awaitable<consumer> channel::consume(std::string_view queue, consume_options o) {
  if (o.prefetch != 0) co_await qos({.prefetch_count = o.prefetch});
  auto state = std::make_shared<detail::consumer_state>();
  std::size_t cap = (!o.no_ack && o.prefetch != 0) ? o.prefetch : o.buffer;
  state->capacity = cap == 0 ? 1 : cap;
  basic_consume m;
  m.queue = queue;
  m.consumer_tag = o.consumer_tag;
  m.no_local = o.no_local;
  m.no_ack = o.no_ack;
  m.exclusive = o.exclusive;
  if (o.arguments) m.arguments = *o.arguments;
  auto& h = *handle_;
  if (h.conn->rec) co_await recovered(*h.conn);
  co_await h.impl().checked_op([&h, &m, &state](std::uint64_t id, detail::completion done) {
    h.core().consume(h.id, m, state, id, std::move(done));
  });
  if (h.conn->rec) h.consumers.push_back({state, m});
  co_return consumer(handle_, std::move(state));
}

asio::awaitable<std::optional<message>> channel::get(std::string_view queue, bool no_ack) {
  basic_get m;
  m.queue = queue;
  m.no_ack = no_ack;
  op_result r = co_await request(*handle_, m);  // get-ok brings the message
  std::optional<message> got = r.msg.take();
  if (got && handle_->conn->rec) {
    got->delivery_tag += handle_->tag_offset;
    handle_->last_tag = std::max(handle_->last_tag, got->delivery_tag);
  }
  co_return got;
}

namespace {
// The broker's tag for a tag the user holds; false for one from before the
// last recovery, which must never reach the new channel.
bool wire_tag(detail::logical_channel& h, std::uint64_t& tag) {
  const auto& rec = h.conn->rec;
  if (!rec) return true;
  // While the connection is lost and recovery may bring it back, every tag
  // the user holds is from the lost channel: stale as well.
  const bool lost = !rec->stopped() && !rec->gave_up() && (rec->recovering() || !h.core().is_open());
  if (lost || tag <= h.tag_offset) {
    ++h.stale_acks;
    const auto& core = h.core();
    if (core.logging())
      core.log(log_level::warning, "channel " + std::to_string(h.id) + ": delivery tag " +
                                       std::to_string(tag) +
                                       " is from before the last recovery; its ack is not sent "
                                       "(the broker delivers that message again)");
    return false;
  }
  tag -= h.tag_offset;
  return true;
}
}  // namespace

bool channel::ack(std::uint64_t delivery_tag, bool multiple) {
  basic_ack m;
  m.delivery_tag = delivery_tag;
  m.multiple = multiple;
  if (!wire_tag(*handle_, m.delivery_tag)) return false;
  send(*handle_, m);
  return true;
}

bool channel::nack(std::uint64_t delivery_tag, bool multiple, bool requeue) {
  basic_nack m;
  m.delivery_tag = delivery_tag;
  m.multiple = multiple;
  m.requeue = requeue;
  if (!wire_tag(*handle_, m.delivery_tag)) return false;
  send(*handle_, m);
  return true;
}

bool channel::reject(std::uint64_t delivery_tag, bool requeue) {
  basic_reject m;
  m.delivery_tag = delivery_tag;
  m.requeue = requeue;
  if (!wire_tag(*handle_, m.delivery_tag)) return false;
  send(*handle_, m);
  return true;
}

std::uint64_t channel::stale_acks() const noexcept { return handle_ ? handle_->stale_acks : 0; }

asio::awaitable<void> channel::recover(bool requeue) {
  basic_recover m;
  m.requeue = requeue;
  co_await call(*handle_, m);
}

namespace {
// channel::wait_writable() for a logical channel.
asio::awaitable<void> writable_wait(detail::logical_channel& h);

// The operation writable_wait() awaits, itself no coroutine: a publish that
// is a coroutine already awaits it directly while the broker has not blocked
// publishing, one coroutine frame fewer on the path a publisher bound by its
// confirm window takes once per window.
asio::awaitable<void> writable_op(detail::logical_channel& h) {
  return h.impl().wake_op([&h](std::uint64_t id, detail::wake done) {
    h.core().wait_writable(h.id, id, std::move(done));
  });
}
}  // namespace

asio::awaitable<void> channel::wait_writable() { return writable_wait(*handle_); }

namespace {
asio::awaitable<void> writable_wait(detail::logical_channel& h) {
  auto& core = h.core();
  if (core.writable(h.id)) co_return;
  auto wait = writable_op(h);
  if (!core.blocked()) {
    co_await std::move(wait);
    co_return;
  }
  // Blocked by the broker: wait, but not forever.
  try {
    co_await with_timeout(std::move(wait), h.impl().opts_.blocked_timeout);
  } catch (const error& e) {
    if (e.code() != errc::timeout) throw;
    detail::throw_error(detail::make_info(
        errc::blocked_timeout, "the broker blocked publishing for more than " +
                                   std::to_string(h.impl().opts_.blocked_timeout.count()) + " ms"));
  }
}
}  // namespace

namespace {

publish_frame_args publish_args(std::uint16_t ch, std::string_view exchange,
                                std::string_view routing_key, publish_flags flags) {
  publish_frame_args args;
  args.channel = ch;
  args.exchange = exchange;
  args.routing_key = routing_key;
  args.mandatory = flags.mandatory;
  args.immediate = flags.immediate;
  return args;
}

// A publish the core refused: the channel's own error when it is closed.
[[noreturn]] void throw_publish_error(detail::logical_channel& h, std::error_code ec) {
  const bool closed = ec == errc::channel_closed || ec == errc::connection_closed ||
                      ec == errc::connection_lost || ec == errc::heartbeat_timeout;
  detail::throw_error(h.impl().user_error(
      closed ? h.core().channel_error(h.id) : detail::make_info(ec, "cannot publish: " + ec.message())));
}

}  // namespace

asio::awaitable<publish_outcome> channel::publish(std::string_view exchange,
                                                  std::string_view routing_key,
                                                  std::string_view body,
                                                  const basic_properties& properties,
                                                  publish_flags flags) {
  auto& h = *handle_;
  if (!h.conn->rec) {
    auto& core = h.core();
    if (!core.writable(h.id)) {
      if (core.blocked()) {
        co_await wait_writable();
      } else {
        auto wait = writable_op(h);
        co_await std::move(wait);
      }
    }
    const publish_frame_args args = publish_args(h.id, exchange, routing_key, flags);
    if (!core.confirm_mode(h.id)) {
      if (auto ec = core.publish(args, properties, as_bytes(body), 0, {}))
        throw_publish_error(h, ec);
      co_return publish_outcome{};
    }
    op_result r = co_await h.impl().checked_op([&](std::uint64_t id, detail::completion done) {
      core.publish(args, properties, as_bytes(body), id, std::move(done));
    });
    co_return std::move(r.outcome);
  }
  // With recovery: a publish that could not be sent waits for the recovery
  // and is sent then; one lost before its confirm has an unknown outcome,
  // or (if asked) is published again on the recovered connection.
  bool again = false;
  for (;;) {
    if (must_wait(*h.conn)) co_await recovered(*h.conn);
    if (h.reopening) co_await reopened(h);
    const std::uint64_t epoch = h.reopens;
    auto& c = h.core();
    if (!c.writable(h.id)) {
      std::optional<error> failed;
      try {
        co_await writable_wait(h);
      } catch (const error& e) {
        failed = e;
      }
      if (failed) {
        if (retryable(*h.conn, failed->info())) continue;
        throw *failed;
      }
    }
    const publish_frame_args args = publish_args(h.id, exchange, routing_key, flags);
    if (!c.confirm_mode(h.id)) {
      if (auto ec = c.publish(args, properties, as_bytes(body), 0, {})) {
        error_info e = h.impl().user_error(c.channel_error(h.id));
        if (!e) e = detail::make_info(ec, "cannot publish: " + ec.message());
        if (retryable(*h.conn, e)) continue;
        detail::throw_error(std::move(e));
      }
      co_return publish_outcome{};
    }
    op_result r = co_await h.impl().op([&](std::uint64_t id, detail::completion done) {
      c.publish(args, properties, as_bytes(body), id, std::move(done));
    });
    if (!r.error) {
      r.outcome.republished = again;
      if (r.outcome.sequence != 0) r.outcome.sequence += h.seq_offset;
      co_return std::move(r.outcome);
    }
    error_info e = h.impl().user_error(std::move(r.error));
    auto cut = cut_by_reopen(h, epoch);
    if (!co_await std::move(cut) && !retryable(*h.conn, e)) detail::throw_error(std::move(e));
    if (!h.impl().opts_.recovery.republish_unconfirmed) {
      publish_outcome unknown;
      unknown.status = publish_status::unknown;
      co_return unknown;
    }
    again = true;
  }
}

namespace {
const basic_properties no_properties;
}  // namespace

// Not coroutines themselves: they hand back the full overload's (lazy)
// operation, one coroutine frame per publish instead of two.
asio::awaitable<publish_outcome> channel::publish(std::string_view exchange,
                                                  std::string_view routing_key,
                                                  std::string_view body, publish_flags flags) {
  return publish(exchange, routing_key, body, no_properties, flags);
}

asio::awaitable<std::uint64_t> channel::publish_pipelined(std::string_view exchange,
                                                          std::string_view routing_key,
                                                          std::string_view body,
                                                          publish_flags flags) {
  return publish_pipelined(exchange, routing_key, body, no_properties, flags);
}

prepared_publish channel::prepare_publish(std::string_view exchange, std::string_view routing_key,
                                          const basic_properties& properties,
                                          publish_flags flags) const {
  auto& h = *handle_;
  const publish_frame_args args = publish_args(h.id, exchange, routing_key, flags);
  prepared_publish p;
  if (auto ec = p.prepare(args, properties, h.core().publish_frame_max()))
    detail::throw_error(detail::make_info(ec, "cannot prepare the publish: " + ec.message()));
  return p;
}

namespace {

std::uint64_t publish_now(detail::logical_channel& h, const prepared_publish& prepared,
                          std::string_view body) {
  auto& core = h.core();
  std::uint64_t seq = 0;
  if (auto ec = core.publish(prepared, as_bytes(body), &seq))
    throw_publish_error(h, ec);
  return seq;
}

}  // namespace

// With recovery on: a prepared publish made before a recovery that gave the
// channel another number (or the connection another frame_max) is encoded
// as prepared and sent as frames for the channel it has now.
std::error_code publish_prepared(detail::logical_channel& h, const prepared_publish& prepared,
                                 std::string_view body, std::uint64_t* seq) {
  auto& c = h.core();
  if (prepared.channel() == h.id && prepared.frame_max() == c.publish_frame_max())
    return c.publish(prepared, as_bytes(body), seq);
  if (!prepared.ready()) return std::make_error_code(std::errc::invalid_argument);
  byte_buffer frames;
  prepared.encode(frames, as_bytes(body));
  return c.publish_encoded(h.id, frames.view(), prepared.mandatory(), prepared.exchange(),
                           prepared.routing_key(), seq);
}

// With recovery on and republish_unconfirmed: keeps the frames of the
// pipelined publish just queued (from `mark` in the output), until its
// confirm, to publish them again after a loss. Forgets the oldest kept
// publishes that were confirmed meanwhile.
void keep_for_republish(detail::logical_channel& h, std::size_t mark, std::uint64_t seq,
                        bool mandatory, std::string_view exchange, std::string_view routing_key) {
  if (seq == 0 || !h.impl().opts_.recovery.republish_unconfirmed) return;
  auto& c = h.core();
  while (!h.kept.empty() && c.confirm_settled(h.id, h.kept.front().seq)) h.kept.pop_front();
  const byte_buffer& out = c.output();
  auto& k = h.kept.emplace_back();
  k.seq = seq;
  k.frames.assign(out.data() + mark, out.data() + out.size());
  k.mandatory = mandatory;
  if (mandatory) {
    k.exchange = exchange;
    k.routing_key = routing_key;
  }
}

// A pipelined publish with recovery on: `encode(core, channel, &seq)`
// queues it. Waits out a recovery (and retries a publish it cut short) as
// publish() does; numbers it in the logical channel's sequence, which goes
// on rising across recoveries; keeps it for republishing when asked to.
template <class Encode>
asio::awaitable<std::uint64_t> pipelined_with_recovery(detail::logical_channel& h, Encode encode,
                                                       bool mandatory, std::string_view exchange,
                                                       std::string_view routing_key) {
  for (;;) {
    if (must_wait(*h.conn)) co_await recovered(*h.conn);
    if (h.reopening) co_await reopened(h);
    const std::uint64_t epoch = h.reopens;
    if (!h.core().writable(h.id)) {
      std::optional<error> failed;
      try {
        co_await writable_wait(h);
      } catch (const error& e) {
        failed = e;
      }
      if (failed) {
        auto cut = cut_by_reopen(h, epoch);
        if (co_await std::move(cut) || retryable(*h.conn, failed->info())) continue;
        throw *failed;
      }
    }
    auto& c = h.core();
    const std::size_t mark = c.output().size();
    std::uint64_t seq = 0;
    if (auto ec = encode(c, h.id, &seq)) {
      error_info e = h.impl().user_error(c.channel_error(h.id));
      if (!e) e = detail::make_info(ec, "cannot publish: " + ec.message());
      if (retryable(*h.conn, e)) continue;
      detail::throw_error(std::move(e));
    }
    keep_for_republish(h, mark, seq, mandatory, exchange, routing_key);
    co_return seq == 0 ? 0 : seq + h.seq_offset;
  }
}

asio::awaitable<std::uint64_t> channel::publish_pipelined(const prepared_publish& prepared,
                                                          std::string_view body) {
  auto& h = *handle_;
  if (h.conn->rec) {
    auto encode = [&prepared, body, &h](detail::connection_core&, std::uint16_t,
                                        std::uint64_t* seq) {
      return publish_prepared(h, prepared, body, seq);
    };
    auto pending = pipelined_with_recovery(h, encode, prepared.mandatory(), prepared.exchange(),
                                           prepared.routing_key());
    co_return co_await std::move(pending);
  }
  if (!h.core().writable(h.id)) {
    if (h.core().blocked()) {
      co_await wait_writable();
    } else {
      auto wait = writable_op(h);
      co_await std::move(wait);
    }
  }
  co_return publish_now(h, prepared, body);
}

bool channel::try_publish(const prepared_publish& prepared, std::string_view body,
                          std::uint64_t* sequence) {
  auto& h = *handle_;
  if (h.conn->rec) {
    // Lost, being recovered or reopened: publish_pipelined would wait.
    if (must_wait(*h.conn) || h.reopening || !h.core().writable(h.id)) {
      if (!must_wait(*h.conn) && !h.core().is_channel_open(h.id))
        detail::throw_error(h.core().channel_error(h.id));
      return false;
    }
    auto& c = h.core();
    const std::size_t mark = c.output().size();
    std::uint64_t seq = 0;
    if (auto ec = publish_prepared(h, prepared, body, &seq)) throw_publish_error(h, ec);
    keep_for_republish(h, mark, seq, prepared.mandatory(), prepared.exchange(),
                       prepared.routing_key());
    if (sequence) *sequence = seq == 0 ? 0 : seq + h.seq_offset;
    return true;
  }
  if (!h.core().writable(h.id)) {
    // A closed channel is an error, not a reason to wait.
    if (!h.core().is_channel_open(h.id)) detail::throw_error(h.core().channel_error(h.id));
    return false;
  }
  const std::uint64_t seq = publish_now(h, prepared, body);
  if (sequence) *sequence = seq;
  return true;
}

asio::awaitable<std::uint64_t> channel::publish_pipelined(std::string_view exchange,
                                                          std::string_view routing_key,
                                                          std::string_view body,
                                                          const basic_properties& properties,
                                                          publish_flags flags) {
  auto& h = *handle_;
  if (h.conn->rec) {
    auto encode = [&](detail::connection_core& c, std::uint16_t ch, std::uint64_t* seq) {
      return c.publish(publish_args(ch, exchange, routing_key, flags), properties, as_bytes(body),
                       0, {}, seq);
    };
    auto pending = pipelined_with_recovery(h, encode, flags.mandatory, exchange, routing_key);
    co_return co_await std::move(pending);
  }
  auto& core = h.core();
  if (!core.writable(h.id)) {
    if (core.blocked()) {
      co_await wait_writable();
    } else {
      auto wait = writable_op(h);
      co_await std::move(wait);
    }
  }
  const publish_frame_args args = publish_args(h.id, exchange, routing_key, flags);
  std::uint64_t seq = 0;
  if (auto ec = core.publish(args, properties, as_bytes(body), 0, {}, &seq))
    throw_publish_error(h, ec);
  co_return seq;
}

asio::awaitable<confirm_summary> channel::wait_for_confirms() {
  auto& h = *handle_;
  if (h.conn->rec) {
    // Across a recovery: the new channel's confirms, plus what was carried
    // over from the lost one.
    for (;;) {
      if (must_wait(*h.conn)) co_await recovered(*h.conn);
      if (h.reopening) co_await reopened(h);
      const std::uint64_t epoch = h.reopens;
      op_result r = co_await h.impl().op([&h](std::uint64_t id, detail::completion done) {
        h.core().wait_for_confirms(h.id, id, std::move(done));
      });
      if (r.error) {
        error_info e = h.impl().user_error(std::move(r.error));
        auto cut = cut_by_reopen(h, epoch);
        if (co_await std::move(cut) || retryable(*h.conn, e)) continue;
        detail::throw_error(std::move(e));
      }
      confirm_summary s = r.summary;
      s.acked += h.carried.acked;
      s.nacked += h.carried.nacked;
      s.returned += h.carried.returned;
      s.unknown += h.carried.unknown;
      s.republished += h.carried.republished;
      h.carried = {};
      co_return s;
    }
  }
  op_result r = co_await h.impl().checked_op([&h](std::uint64_t id, detail::completion done) {
    h.core().wait_for_confirms(h.id, id, std::move(done));
  });
  co_return r.summary;
}

asio::awaitable<returned_message> channel::next_return() {
  auto& h = *handle_;
  op_result r = co_await h.impl().checked_op([&h](std::uint64_t id, detail::completion done) {
    h.core().next_return(h.id, id, std::move(done));
  });
  co_return std::move(*r.returned);
}

asio::awaitable<void> channel::confirm_select(std::size_t window) {
  auto& h = *handle_;
  co_await h.impl().checked_op([&h](std::uint64_t id, detail::completion done) {
    h.core().confirm_select(h.id, id, std::move(done));
  });
  h.core().set_confirm_window(h.id, window);
  h.confirm = true;
  h.confirm_window = window;
}

std::uint64_t channel::returns_dropped() const noexcept {
  return handle_ ? handle_->core().returns_dropped(handle_->id) : 0;
}

bool channel::in_confirm_mode() const noexcept {
  return handle_ && handle_->core().confirm_mode(handle_->id);
}
std::uint64_t channel::unconfirmed() const noexcept {
  return handle_ ? handle_->core().unconfirmed(handle_->id) : 0;
}

asio::awaitable<void> channel::reopen() {
  auto& h = *handle_;
  if (!h.conn->rec)
    detail::throw_error(detail::make_info(std::make_error_code(std::errc::operation_not_supported),
                                          "reopen() needs connect_options::recovery"));
  if (must_wait(*h.conn)) co_await recovered(*h.conn);
  if (h.reopening) {
    // One at a time: a second caller finds the channel reopened.
    co_await reopened(h);
    co_return;
  }
  h.closed_by_user = false;
  auto reopening = detail::reopen_channel(h);
  co_await std::move(reopening);
}

asio::awaitable<void> channel::tx_select() {
  co_await call(*handle_, warren::tx_select{});
  handle_->tx = true;
}
asio::awaitable<void> channel::tx_commit() { co_await call(*handle_, warren::tx_commit{}); }
asio::awaitable<void> channel::tx_rollback() { co_await call(*handle_, warren::tx_rollback{}); }

// ---- consumer --------------------------------------------------------------

consumer& consumer::operator=(consumer&& o) noexcept {
  if (this != &o) {
    consumer gone(std::move(*this));
    channel_ = std::move(o.channel_);
    state_ = std::move(o.state_);
  }
  return *this;
}

consumer::~consumer() {
  if (!state_ || !channel_) return;
  // Nobody will read this stream: stop the broker sending to it.
  channel_->core().abandon_consumer(state_);
}

const std::string& consumer::tag() const noexcept { return state_->tag; }

namespace {

// consumer::next() when nothing is buffered: wait until a delivery is or the
// stream has ended (throws if the channel or connection failed). Not a
// coroutine itself: the operation's is the only frame.
asio::awaitable<op_result> wait_delivery(detail::logical_channel& h,
                                         std::shared_ptr<detail::consumer_state> state) {
  auto wait = [&h, state = std::move(state)](std::uint64_t id, detail::completion done) {
    h.core().wait_delivery(state, id, std::move(done));
  };
  return h.impl().checked_op(std::move(wait));
}

// Woken with nothing buffered: the stream is over.
bool stream_ended(const detail::consumer_state& s) {
  return s.buffer.empty() && s.state == detail::consumer_state::status::ended;
}

}  // namespace

namespace {
// The tag the user sees (see logical_channel::tag_offset).
void user_tag(detail::logical_channel& h, message& m) {
  if (!h.conn->rec) return;
  m.delivery_tag += h.tag_offset;
  if (m.delivery_tag > h.last_tag) h.last_tag = m.delivery_tag;
}

// After a wait that failed: true when the stream goes on once the
// connection is recovered (and it was), false when the failure stands.
asio::awaitable<bool> resumes(detail::logical_channel& h, const error& e) {
  auto rec = h.conn->rec;
  if (!rec || e.code() != errc::interrupted) co_return false;
  while (!rec->recovering() && !rec->gave_up() && !rec->stopped() && !h.core().is_open())
    co_await rec->wait_change();
  auto waiting = rec->wait_recovered(std::chrono::milliseconds(0));
  co_await std::move(waiting);
  co_return h.core().is_open();
}

// The stream ended. With recovery on, a cancel from the broker right before
// the connection drops (RabbitMQ sends one to every consumer of a node that
// stops) is not the end: the stream comes back with the connection. So a
// broker cancel counts once the connection has stayed up for five seconds
// after it (stopping a node's queues can take that long). True: the stream
// goes on.
asio::awaitable<bool> survives_end(detail::logical_channel& h,
                                   const std::shared_ptr<detail::consumer_state>& state) {
  auto rec = h.conn->rec;
  if (!rec || state->end_reason.code != errc::consumer_cancelled) co_return false;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  auto* before = h.conn->impl.get();
  while (std::chrono::steady_clock::now() < until && !rec->stopped() && !rec->gave_up() &&
         h.conn->impl.get() == before && !rec->recovering() && h.core().is_open()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    auto waiting = rec->wait_change_for(left + std::chrono::milliseconds(1));
    co_await std::move(waiting);
  }
  if (rec->stopped() || rec->gave_up() || (h.conn->impl.get() == before && h.core().is_open())) {
    // Ended for good: recovery must not bring it back.
    std::erase_if(h.consumers, [&](const detail::consumer_record& c) { return c.state.lock() == state; });
    co_return false;
  }
  if (rec->recovering() || !h.core().is_open()) {
    auto waiting = rec->wait_recovered(std::chrono::milliseconds(0));
    co_await std::move(waiting);
  }
  co_return h.core().is_open();
}

// consumer::next() with recovery on, when nothing is buffered: waits for a
// delivery, riding out a loss of the connection and a broker cancel that
// the loss follows. True: look for a delivery again; false: the stream is
// over. Throws what cannot be recovered from.
asio::awaitable<bool> await_across_recovery(detail::logical_channel& h,
                                            const std::shared_ptr<detail::consumer_state>& state) {
  if (h.reopening) co_await reopened(h);
  const std::uint64_t epoch = h.reopens;
  std::optional<error> failed;
  try {
    auto pending = wait_delivery(h, state);
    co_await std::move(pending);
  } catch (const error& e) {
    failed = e;
  }
  // A reopen of the channel ends the stream for a moment: it comes back.
  if (h.reopening || h.reopens != epoch) {
    co_await reopened(h);
    co_return true;
  }
  if (failed) {
    auto more = resumes(h, *failed);
    if (!co_await std::move(more)) throw *failed;
    co_return true;
  }
  if (!stream_ended(*state)) co_return true;
  auto more = survives_end(h, state);
  co_return co_await std::move(more);
}
}  // namespace

asio::awaitable<std::optional<message>> consumer::next() {
  auto& h = *channel_;
  for (;;) {
    // A buffered delivery is handed over at once, moved straight from the
    // stream's slot: no operation, no trip through the executor's queue.
    if (!h.conn->rec || !h.conn->rec->recovering()) {
      if (message* m = h.core().take_delivery(state_)) {
        user_tag(h, *m);
        co_return std::move(*m);
      }
    }
    if (h.conn->rec) {
      auto more = await_across_recovery(h, state_);
      if (!co_await std::move(more)) co_return std::nullopt;
      continue;
    }
    auto pending = wait_delivery(h, state_);
    co_await std::move(pending);
    if (stream_ended(*state_)) co_return std::nullopt;
  }
}

bool consumer::try_next(message& m) {
  auto& h = *channel_;
  const detail::recovery* rec = h.conn->rec.get();
  if (rec && rec->recovering()) return false;
  if (!h.core().take_delivery(state_, m)) return false;
  if (rec) user_tag(h, m);
  return true;
}

asio::awaitable<bool> consumer::next(message& m) {
  auto& h = *channel_;
  for (;;) {
    if (try_next(m)) co_return true;
    if (h.conn->rec) {
      auto more = await_across_recovery(h, state_);
      if (!co_await std::move(more)) co_return false;
      continue;
    }
    auto pending = wait_delivery(h, state_);
    co_await std::move(pending);
    if (stream_ended(*state_)) co_return false;
  }
}

asio::awaitable<void> consumer::cancel() {
  auto& h = *channel_;
  const std::string tag = state_->tag;
  std::erase_if(h.consumers, [this](const detail::consumer_record& c) {
    return c.state.lock() == state_;
  });
  co_await h.impl().checked_op([&h, &tag](std::uint64_t id, detail::completion done) {
    h.core().cancel(h.id, tag, id, std::move(done));
  });
}

error_info consumer::end_reason() const { return state_ ? state_->end_reason : error_info{}; }
std::size_t consumer::buffered() const noexcept { return state_ ? state_->buffer.size() : 0; }

}  // namespace warren
