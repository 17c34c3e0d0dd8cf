#include "warren/client/rpc.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <random>
#include <string>
#include <unordered_map>

namespace warren {
namespace detail {

namespace {

constexpr std::string_view reply_to = "amq.rabbitmq.reply-to";

error_info rpc_error(std::error_code code, std::string text) {
  error_info e;
  e.code = code;
  e.text = std::move(text);
  return e;
}

// A prefix that keeps this client's correlation ids apart from any other's.
std::string correlation_prefix() {
  std::random_device seed;
  std::mt19937_64 gen(seed());
  const std::uint64_t r = gen();
  static constexpr char hex[] = "0123456789abcdef";
  std::string p = "warren-rpc-";
  for (int i = 0; i < 16; ++i) p += hex[(r >> (4 * i)) & 0xf];
  p += '-';
  return p;
}

}  // namespace

// A call waiting for its reply. The reader wakes it by cancelling its timer.
struct rpc_pending {
  explicit rpc_pending(const asio::any_io_executor& ex) : timer(ex) {}
  asio::steady_timer timer;
  std::optional<message> reply;
  error_info failure;
  bool done = false;
};

struct rpc_state {
  asio::any_io_executor ex;
  channel ch;
  consumer replies;
  std::unordered_map<std::string, std::shared_ptr<rpc_pending>> pending;
  std::string prefix;
  std::uint64_t next_id = 0;
  std::uint64_t late = 0;
  bool ended = false;
  error_info failure;  // why the reply stream ended

  void wake(rpc_pending& p) {
    p.done = true;
    p.timer.cancel();
  }

  void fail_all(const error_info& why) {
    auto waiting = std::move(pending);
    pending.clear();
    for (auto& [id, p] : waiting) {
      p->failure = why;
      wake(*p);
    }
  }
};

// What rpc_client holds: the client's channel goes with the last copy.
struct rpc_handle {
  std::shared_ptr<rpc_state> st;
  rpc_handle() = default;
  rpc_handle(const rpc_handle&) = delete;
  rpc_handle& operator=(const rpc_handle&) = delete;
  ~rpc_handle();
};

namespace {

asio::awaitable<void> close_channel(channel ch) {
  try {
    auto op = ch.close();
    co_await std::move(op);
  } catch (...) {
  }
}

// Hands each reply to the call waiting for it, until the stream ends.
asio::awaitable<void> read_replies(std::shared_ptr<rpc_state> st) {
  error_info why;
  try {
    message m;
    for (;;) {
      auto next = st->replies.next(m);
      const bool got = co_await std::move(next);
      if (!got) {
        why = st->replies.end_reason();
        break;
      }
      auto it = m.properties.correlation_id ? st->pending.find(*m.properties.correlation_id)
                                            : st->pending.end();
      if (it == st->pending.end()) {
        ++st->late;
        continue;
      }
      auto p = std::move(it->second);
      st->pending.erase(it);
      p->reply = std::move(m);
      m = message{};
      st->wake(*p);
    }
  } catch (const error& e) {
    why = e.info();
  } catch (const std::exception& e) {
    why = rpc_error(errc::internal_error, e.what());
  }
  if (!why) why = rpc_error(errc::channel_closed, "the RPC client's reply consumer ended");
  st->ended = true;
  st->failure = why;
  st->fail_all(why);
}

}  // namespace

rpc_handle::~rpc_handle() {
  if (!st || st->ended || !st->ch) return;
  asio::co_spawn(st->ex, close_channel(st->ch), asio::detached);
}

}  // namespace detail

asio::awaitable<rpc_client> rpc_client::open(connection& conn) {
  auto st = std::make_shared<detail::rpc_state>();
  st->ex = conn.get_executor();
  st->prefix = detail::correlation_prefix();
  auto opening = conn.open_channel();
  st->ch = co_await std::move(opening);
  auto subscribing = st->ch.consume(detail::reply_to, {.no_ack = true});
  st->replies = co_await std::move(subscribing);
  asio::co_spawn(st->ex, detail::read_replies(st), asio::detached);
  rpc_client c;
  c.handle_ = std::make_shared<detail::rpc_handle>();
  c.handle_->st = std::move(st);
  co_return c;
}

namespace {
const basic_properties no_properties;
}

asio::awaitable<message> rpc_client::call(std::string_view exchange, std::string_view routing_key,
                                          std::string_view body,
                                          std::chrono::steady_clock::duration timeout) {
  return call(exchange, routing_key, body, no_properties, timeout);
}

asio::awaitable<message> rpc_client::call(std::string_view exchange, std::string_view routing_key,
                                          std::string_view body, const basic_properties& properties,
                                          std::chrono::steady_clock::duration timeout) {
  if (!handle_) throw error(detail::rpc_error(errc::channel_closed, "no RPC client"));
  auto st = handle_->st;
  if (st->ended) throw error(st->failure);
  const std::string id = st->prefix + std::to_string(++st->next_id);
  basic_properties request = properties;
  request.correlation_id = id;
  request.reply_to = std::string(detail::reply_to);

  auto pending = std::make_shared<detail::rpc_pending>(st->ex);
  if (timeout > std::chrono::steady_clock::duration::zero())
    pending->timer.expires_after(timeout);
  else
    pending->timer.expires_at(asio::steady_timer::time_point::max());
  st->pending.emplace(id, pending);
  try {
    auto publishing = st->ch.publish(exchange, routing_key, body, request);
    co_await std::move(publishing);
  } catch (...) {
    st->pending.erase(id);
    throw;
  }
  std::error_code ec;
  if (!pending->done) {
    auto waiting = pending->timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    auto [waited] = co_await std::move(waiting);
    ec = waited;
  }
  if (!pending->done) {
    st->pending.erase(id);
    if (ec == asio::error::operation_aborted)
      throw error(detail::rpc_error(ec, "the RPC call was cancelled"));
    throw error(detail::rpc_error(errc::timeout, "no reply to the RPC call in time"));
  }
  if (pending->failure) throw error(pending->failure);
  co_return std::move(*pending->reply);
}

asio::awaitable<void> rpc_client::close() {
  if (!handle_) co_return;
  auto st = handle_->st;
  if (st->ended) co_return;
  auto closing = st->ch.close();
  co_await std::move(closing);
}

std::uint64_t rpc_client::late_replies() const noexcept { return handle_ ? handle_->st->late : 0; }
std::size_t rpc_client::waiting() const noexcept {
  return handle_ ? handle_->st->pending.size() : 0;
}

}  // namespace warren
