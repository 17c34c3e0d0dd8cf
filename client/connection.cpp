#include "warren/client/connection.hpp"

#include <asio/connect.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include "warren/client/core.hpp"
#include "warren/client/driver.hpp"
#include "warren/client/dial.hpp"
#include "warren/client/timeout.hpp"

namespace warren {
namespace detail {

constexpr auto tuple_awaitable = asio::experimental::as_tuple(asio::use_awaitable);

struct connection_handle {
  std::shared_ptr<driver> impl;
  connection_handle() = default;
  connection_handle(const connection_handle&) = delete;
  connection_handle& operator=(const connection_handle&) = delete;
  ~connection_handle() {
    if (impl) impl->abandon();
  }
};

// What a channel handle (and its consumers) hold: the logical channel, not a
// raw id. `id` is the channel's number on the wire in the connection's
// current core; every operation reads it afresh, so a channel re-opened
// under another number keeps its handles.
struct logical_channel {
  std::shared_ptr<connection_handle> conn;
  std::uint16_t id = 0;
  logical_channel() = default;
  logical_channel(const logical_channel&) = delete;
  logical_channel& operator=(const logical_channel&) = delete;
  driver& impl() const noexcept { return *conn->impl; }
  connection_core& core() const noexcept { return conn->impl->core_; }
  ~logical_channel() {
    // A channel nobody can reach any more is closed so its id is reused.
    if (conn && conn->impl && core().is_channel_open(id)) {
      core().close_channel(id, 0, {});
    }
  }
};

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
  co_return detail::make_connection(std::move(d));
}

namespace detail {
connection make_connection(std::shared_ptr<driver> d) {
  auto handle = std::make_shared<connection_handle>();
  handle->impl = std::move(d);
  return connection(std::move(handle));
}
}  // namespace detail

// ---- connection ------------------------------------------------------------

asio::awaitable<channel> connection::open_channel() {
  auto& impl = *handle_->impl;
  std::uint16_t id = 0;
  co_await impl.checked_op([&impl, &id](std::uint64_t op, detail::completion done) {
    id = impl.core_.open_channel(op, std::move(done));
  });
  auto h = std::make_shared<detail::logical_channel>();
  h->conn = handle_;
  h->id = id;
  co_return channel(std::move(h));
}

asio::awaitable<void> connection::close(std::uint16_t code, std::string_view text) {
  auto& impl = *handle_->impl;
  co_await impl.checked_op([&](std::uint64_t id, detail::completion done) {
    impl.core_.close(code, std::string(text), id, std::move(done));
  });
}

asio::awaitable<connection_notice> connection::next_notice() {
  auto& impl = *handle_->impl;
  op_result r = co_await impl.checked_op([&impl](std::uint64_t id, detail::completion done) {
    impl.core_.next_event(id, std::move(done));
  });
  co_return std::move(*r.event);
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

// ---- channel ---------------------------------------------------------------

namespace {

// A synchronous request, with the whole result (basic.get's message too).
template <class M>
asio::awaitable<op_result> request(const detail::logical_channel& h, const M& m) {
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
  if (error_info e = h.core().send(h.id, m)) detail::throw_error(std::move(e));
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
}

asio::awaitable<void> channel::exchange_delete(std::string_view name, exchange_delete_options o) {
  warren::exchange_delete m;
  m.exchange = name;
  m.if_unused = o.if_unused;
  m.no_wait = o.no_wait;
  co_await call_or_send(*handle_, m);
}

asio::awaitable<void> channel::exchange_bind(std::string_view destination, std::string_view source,
                                             std::string_view routing_key, bind_options o) {
  auto m = binding<warren::exchange_bind>(destination, source, routing_key, o.arguments, o.no_wait);
  co_await call_or_send(*handle_, m);
}

asio::awaitable<void> channel::exchange_unbind(std::string_view destination,
                                               std::string_view source,
                                               std::string_view routing_key, bind_options o) {
  auto m = binding<warren::exchange_unbind>(destination, source, routing_key, o.arguments, o.no_wait);
  co_await call_or_send(*handle_, m);
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
    co_return res;
  }
  queue_declare_ok ok = co_await call(*handle_, m);
  res.queue = std::move(ok.queue);
  res.message_count = ok.message_count;
  res.consumer_count = ok.consumer_count;
  co_return res;
}

asio::awaitable<void> channel::queue_bind(std::string_view queue, std::string_view exchange,
                                          std::string_view routing_key, bind_options o) {
  auto m = binding<warren::queue_bind>(queue, exchange, routing_key, o.arguments, o.no_wait);
  co_await call_or_send(*handle_, m);
}

asio::awaitable<void> channel::queue_unbind(std::string_view queue, std::string_view exchange,
                                            std::string_view routing_key,
                                            const field_table* arguments) {
  auto m = binding<warren::queue_unbind>(queue, exchange, routing_key, arguments, false);
  co_await call(*handle_, m);
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
    co_return 0;
  }
  queue_delete_ok ok = co_await call(*handle_, m);
  co_return ok.message_count;
}

asio::awaitable<void> channel::qos(qos_options o) {
  basic_qos m;
  m.prefetch_count = o.prefetch_count;
  m.prefetch_size = o.prefetch_size;
  m.global = o.global;
  co_await call(*handle_, m);
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
  co_await h.impl().checked_op([&h, &m, &state](std::uint64_t id, detail::completion done) {
    h.core().consume(h.id, m, state, id, std::move(done));
  });
  co_return consumer(handle_, std::move(state));
}

asio::awaitable<std::optional<message>> channel::get(std::string_view queue, bool no_ack) {
  basic_get m;
  m.queue = queue;
  m.no_ack = no_ack;
  op_result r = co_await request(*handle_, m);  // get-ok brings the message
  co_return r.msg.take();
}

void channel::ack(std::uint64_t delivery_tag, bool multiple) {
  basic_ack m;
  m.delivery_tag = delivery_tag;
  m.multiple = multiple;
  send(*handle_, m);
}

void channel::nack(std::uint64_t delivery_tag, bool multiple, bool requeue) {
  basic_nack m;
  m.delivery_tag = delivery_tag;
  m.multiple = multiple;
  m.requeue = requeue;
  send(*handle_, m);
}

void channel::reject(std::uint64_t delivery_tag, bool requeue) {
  basic_reject m;
  m.delivery_tag = delivery_tag;
  m.requeue = requeue;
  send(*handle_, m);
}

asio::awaitable<void> channel::recover(bool requeue) {
  basic_recover m;
  m.requeue = requeue;
  co_await call(*handle_, m);
}

asio::awaitable<void> channel::wait_writable() {
  auto& h = *handle_;
  auto& core = h.core();
  if (core.writable(h.id)) co_return;
  auto start = [&h](std::uint64_t id, detail::completion done) {
    h.core().wait_writable(h.id, id, std::move(done));
  };
  auto wait = h.impl().checked_op(start);
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
  detail::throw_error(ec == errc::channel_closed || ec == errc::connection_closed
                          ? h.core().channel_error(h.id)
                          : detail::make_info(ec, "cannot publish: " + ec.message()));
}

}  // namespace

asio::awaitable<publish_outcome> channel::publish(std::string_view exchange,
                                                  std::string_view routing_key,
                                                  std::string_view body,
                                                  const basic_properties& properties,
                                                  publish_flags flags) {
  auto& h = *handle_;
  auto& core = h.core();
  if (!core.writable(h.id)) co_await wait_writable();
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

asio::awaitable<std::uint64_t> channel::publish_pipelined(const prepared_publish& prepared,
                                                          std::string_view body) {
  auto& h = *handle_;
  if (!h.core().writable(h.id)) co_await wait_writable();
  co_return publish_now(h, prepared, body);
}

bool channel::try_publish(const prepared_publish& prepared, std::string_view body,
                          std::uint64_t* sequence) {
  auto& h = *handle_;
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
  auto& core = h.core();
  if (!core.writable(h.id)) co_await wait_writable();
  const publish_frame_args args = publish_args(h.id, exchange, routing_key, flags);
  std::uint64_t seq = 0;
  if (auto ec = core.publish(args, properties, as_bytes(body), 0, {}, &seq))
    throw_publish_error(h, ec);
  co_return seq;
}

asio::awaitable<confirm_summary> channel::wait_for_confirms() {
  auto& h = *handle_;
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

asio::awaitable<void> channel::tx_select() { co_await call(*handle_, warren::tx_select{}); }
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

asio::awaitable<std::optional<message>> consumer::next() {
  auto& h = *channel_;
  for (;;) {
    // A buffered delivery is handed over at once, moved straight from the
    // stream's slot: no operation, no trip through the executor's queue.
    if (message* m = h.core().take_delivery(state_)) {
      co_return std::move(*m);
    }
    auto pending = wait_delivery(h, state_);
    co_await std::move(pending);
    if (stream_ended(*state_)) co_return std::nullopt;
  }
}

bool consumer::try_next(message& m) {
  auto& h = *channel_;
  if (!h.core().take_delivery(state_, m)) return false;
  return true;
}

asio::awaitable<bool> consumer::next(message& m) {
  auto& h = *channel_;
  for (;;) {
    if (try_next(m)) co_return true;
    auto pending = wait_delivery(h, state_);
    co_await std::move(pending);
    if (stream_ended(*state_)) co_return false;
  }
}

asio::awaitable<void> consumer::cancel() {
  auto& h = *channel_;
  const std::string tag = state_->tag;
  co_await h.impl().checked_op([&h, &tag](std::uint64_t id, detail::completion done) {
    h.core().cancel(h.id, tag, id, std::move(done));
  });
}

error_info consumer::end_reason() const { return state_ ? state_->end_reason : error_info{}; }
std::size_t consumer::buffered() const noexcept { return state_ ? state_->buffer.size() : 0; }

}  // namespace warren
