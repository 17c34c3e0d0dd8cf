// A broker that does as little as AMQP allows, to measure what a client costs
// when the broker costs nothing. Used only by the benchmarks.
//
// It performs the handshake (any credentials), answers channel.open,
// exchange/queue declare, bind, purge and delete, basic.qos, confirm.select,
// basic.consume and basic.cancel, and discards published content. Publishes
// are counted: queue.declare (passive or not) reports the number of publishes
// taken so far, over all connections, as its message count, so a client can
// time "until the broker has taken every message" the same way it does with
// RabbitMQ. In confirm mode every batch of publishes read from the socket is
// acknowledged with one basic.ack (multiple = true).
//
// basic.consume starts a stream of pre-encoded basic.deliver triplets (PerfTest
// bodies: sequence number, send time) written as fast as the socket takes
// them, until basic.cancel or channel.close. The channel's basic.qos prefetch
// count bounds the unacknowledged deliveries, as a broker's would (no bound
// with no-ack or prefetch 0); basic.ack/nack/reject (multiple or not) settle
// them.
//
//   null-broker [--listen ADDR] [--port N] [--size BYTES]
//
// One thread, one io_context; prints "null-broker listening on ADDR:PORT" once
// it accepts connections and stops on SIGINT/SIGTERM.

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "raw_amqp.hpp"
#include "warren/client/wire.hpp"

namespace {

using asio::ip::tcp;
using namespace warren;
using bench::put_method;
constexpr auto tuple_awaitable = asio::experimental::as_tuple(asio::use_awaitable);

struct options {
  std::string listen = "127.0.0.1";
  std::uint16_t port = 5673;
  std::size_t deliver_size = 64;
};

constexpr std::uint32_t our_frame_max = 131072;
std::uint64_t published_total = 0;  // one thread: no synchronisation needed

// One consumer's delivery stream: a batch of triplets encoded once, with the
// offsets of what changes per message.
struct stream {
  std::uint16_t channel = 0;
  std::string tag;
  byte_buffer batch;
  std::vector<std::uint32_t> tag_at;   // delivery tag (u64) of each triplet
  std::vector<std::uint32_t> body_at;  // first byte of each body
  std::vector<std::uint32_t> end_at;   // one past each triplet
  bool no_ack = false;
};

struct channel_state {
  bool open = false;
  bool confirm = false;
  bool ack_due = false;
  std::uint64_t published = 0;  // publish sequence number in confirm mode
  std::uint64_t delivery_tag = 0;
  std::uint64_t settled = 0;  // deliveries acknowledged (or rejected) so far
  std::uint16_t prefetch = 0;
};

class session : public std::enable_shared_from_this<session> {
 public:
  session(tcp::socket s, const options& o)
      : sock_(std::move(s)), wake_(sock_.get_executor()), beat_(sock_.get_executor()), opts_(o) {}

  void start() {
    asio::co_spawn(sock_.get_executor(), shared_from_this()->reader(), asio::detached);
    asio::co_spawn(sock_.get_executor(), shared_from_this()->writer(), asio::detached);
  }

 private:
  asio::awaitable<void> reader() {
    auto self = shared_from_this();
    std::uint8_t header[8];
    auto [hec, hn] = co_await asio::async_read(sock_, asio::buffer(header), tuple_awaitable);
    if (hec || std::memcmp(header, protocol_header.data(), 8) != 0) {
      if (!hec) out_.append(protocol_header.data(), protocol_header.size());
      finish();
      co_return;
    }
    connection_start start;
    start.version_major = 0;
    start.version_minor = 9;
    start.server_properties.add("product", "null-broker");
    field_table caps;
    caps.add("publisher_confirms", true)
        .add("basic.nack", true)
        .add("consumer_cancel_notify", true);
    start.server_properties.add("capabilities", std::move(caps));
    start.mechanisms = "PLAIN AMQPLAIN";
    start.locales = "en_US";
    put_method(out_, 0, start);
    kick();

    // Room for many frames per read; a whole frame (at most frame_max) always fits.
    std::vector<std::uint8_t> in(1u << 20);
    std::size_t have = 0;
    while (!closing_) {
      auto [ec, n] = co_await sock_.async_read_some(
          asio::buffer(in.data() + have, in.size() - have), tuple_awaitable);
      if (ec) break;
      have += n;
      std::size_t pos = 0;
      while (have - pos >= frame_header_size && !closing_) {
        const std::uint8_t* p = in.data() + pos;
        const std::uint32_t size = detail::load32(p + 3);
        if (size > our_frame_max - frame_overhead) {
          closing_ = true;
          break;
        }
        if (have - pos < frame_overhead + size) break;
        if (p[0] == static_cast<std::uint8_t>(frame_type::method))
          on_method(detail::load16(p + 1), bytes_view(p + frame_header_size, size));
        pos += frame_overhead + size;
      }
      if (pos != 0 && pos != have) std::memmove(in.data(), in.data() + pos, have - pos);
      have -= pos;
      for (std::size_t ch = 0; ch < channels_.size(); ++ch) {
        channel_state& c = channels_[ch];
        if (!c.ack_due) continue;
        c.ack_due = false;
        basic_ack ack;
        ack.delivery_tag = c.published;
        ack.multiple = true;
        put_method(out_, static_cast<std::uint16_t>(ch), ack);
      }
      kick();
    }
    finish();
  }

  asio::awaitable<void> writer() {
    auto self = shared_from_this();
    std::size_t next_stream = 0;
    for (;;) {
      if (!out_.empty()) {
        std::swap(out_, sending_);
        auto [ec, n] = co_await asio::async_write(
            sock_, asio::buffer(sending_.data(), sending_.size()), tuple_awaitable);
        sending_.clear();
        if (ec) break;
        continue;
      }
      if (closing_) break;
      if (!streams_.empty()) {
        // Shared: a cancel may drop the stream while its batch is being written.
        // The first stream with room in its channel's prefetch window.
        std::shared_ptr<stream> keep;
        std::size_t room = 0;
        for (std::size_t k = 0; k < streams_.size() && !keep; ++k) {
          auto& cand = streams_[next_stream++ % streams_.size()];
          room = window(*cand);
          if (room != 0) keep = cand;
        }
        if (keep) {
          stream& s = *keep;
          channel_state& c = chan(s.channel);
          const std::uint64_t t = bench::now_ns();
          for (std::size_t i = 0; i < room; ++i) {
            detail::store64(s.batch.data() + s.tag_at[i], ++c.delivery_tag);
            bench::stamp_body(s.batch.data() + s.body_at[i], static_cast<std::uint32_t>(++seq_), t);
          }
          auto [ec, n] = co_await asio::async_write(
              sock_, asio::buffer(s.batch.data(), s.end_at[room - 1]), tuple_awaitable);
          if (ec) break;
          continue;
        }
      }
      wake_.expires_at(asio::steady_timer::time_point::max());
      waiting_ = true;
      co_await wake_.async_wait(tuple_awaitable);
      waiting_ = false;
    }
    std::error_code ignored;
    sock_.shutdown(tcp::socket::shutdown_both, ignored);
    sock_.close(ignored);
    beat_.cancel();
  }

  asio::awaitable<void> heartbeats(std::uint16_t seconds) {
    auto self = shared_from_this();
    const auto period = std::chrono::milliseconds(500 * std::uint32_t{seconds});
    while (!closing_ && sock_.is_open()) {
      beat_.expires_after(period);
      auto [ec] = co_await beat_.async_wait(tuple_awaitable);
      if (ec || closing_) break;
      write_heartbeat(out_);
      kick();
    }
  }

  // Triplets the stream may send now.
  std::size_t window(const stream& s) {
    const channel_state& c = chan(s.channel);
    if (s.no_ack || c.prefetch == 0) return s.tag_at.size();
    const std::uint64_t unacked = c.delivery_tag - c.settled;
    if (unacked >= c.prefetch) return 0;
    return std::min<std::size_t>(s.tag_at.size(), c.prefetch - unacked);
  }

  void kick() {
    bool streams_ready = false;
    for (const auto& s : streams_) streams_ready = streams_ready || window(*s) != 0;
    if (waiting_ && (!out_.empty() || closing_ || streams_ready)) wake_.cancel();
  }

  void settle(std::uint16_t ch, std::uint64_t tag, bool multiple) {
    channel_state& c = chan(ch);
    if (multiple || tag == c.settled + 1)
      c.settled = std::max(c.settled, tag);
    else
      ++c.settled;  // out of order: count it, the window is what matters here
  }

  void finish() {
    closing_ = true;
    streams_.clear();
    kick();
  }

  channel_state& chan(std::uint16_t ch) {
    if (ch >= channels_.size()) channels_.resize(std::size_t{ch} + 1);
    return channels_[ch];
  }

  template <class M>
  bool decode(bytes_view payload, M& m) {
    if (decode_method_as(payload, m)) {
      closing_ = true;
      return false;
    }
    return true;
  }

  void add_stream(std::uint16_t ch, const std::string& tag, const std::string& queue, bool no_ack) {
    auto s = std::make_shared<stream>();
    s->channel = ch;
    s->tag = tag;
    s->no_ack = no_ack;
    const std::string body = bench::make_body(opts_.deliver_size);
    const std::size_t max_payload = our_frame_max - frame_overhead;
    basic_deliver d;
    d.consumer_tag = tag;
    d.exchange = "";
    d.routing_key = queue;
    basic_properties props;
    // About 256 KiB per batch, and never fewer than one triplet.
    const std::size_t per = 64 + tag.size() + queue.size() + body.size();
    const std::size_t count =
        std::max<std::size_t>(1, std::min<std::size_t>(4096, (256u << 10) / per));
    for (std::size_t i = 0; i < count; ++i) {
      const std::size_t method_at = s->batch.size();
      put_method(s->batch, ch, d);
      // key (4), consumer tag (1 + n), then the delivery tag.
      s->tag_at.push_back(
          static_cast<std::uint32_t>(method_at + frame_header_size + 4 + 1 + tag.size()));
      warren::writer w(s->batch);
      const std::size_t at = begin_frame(w, frame_type::header, ch);
      encode_content_header(w, body.size(), props);
      finish_frame(w, at);
      s->body_at.push_back(static_cast<std::uint32_t>(s->batch.size() + frame_header_size));
      for (std::size_t off = 0; off < body.size(); off += max_payload) {
        const std::size_t n = std::min(max_payload, body.size() - off);
        write_frame(s->batch, frame_type::body, ch,
                    bytes_view(reinterpret_cast<const std::uint8_t*>(body.data()) + off, n));
      }
      s->end_at.push_back(static_cast<std::uint32_t>(s->batch.size()));
    }
    streams_.push_back(std::move(s));
  }

  void drop_streams(std::uint16_t ch, const std::string* tag) {
    std::erase_if(streams_, [&](const std::shared_ptr<stream>& s) {
      return s->channel == ch && (tag == nullptr || s->tag == *tag);
    });
  }

  void on_method(std::uint16_t ch, bytes_view payload) {
    const std::uint32_t key = peek_method_key(payload);
    if (key == basic_publish::key) {
      ++published_total;
      channel_state& c = chan(ch);
      if (c.confirm) {
        ++c.published;
        c.ack_due = true;
      }
      return;
    }
    switch (key) {
      case basic_ack::key: {
        basic_ack m;
        if (decode(payload, m)) settle(ch, m.delivery_tag, m.multiple);
        return;
      }
      case basic_nack::key: {
        basic_nack m;
        if (decode(payload, m)) settle(ch, m.delivery_tag, m.multiple);
        return;
      }
      case basic_reject::key: {
        basic_reject m;
        if (decode(payload, m)) settle(ch, m.delivery_tag, false);
        return;
      }
      case channel_close_ok::key:
      case connection_close_ok::key: return;
      case connection_start_ok::key: {
        connection_tune t;
        t.channel_max = 2047;
        t.frame_max = our_frame_max;
        t.heartbeat = 0;
        put_method(out_, 0, t);
        return;
      }
      case connection_tune_ok::key: {
        connection_tune_ok t;
        if (!decode(payload, t)) return;
        if (t.heartbeat != 0)
          asio::co_spawn(sock_.get_executor(), shared_from_this()->heartbeats(t.heartbeat),
                         asio::detached);
        return;
      }
      case connection_open::key: put_method(out_, 0, connection_open_ok{}); return;
      case connection_close::key:
        put_method(out_, 0, connection_close_ok{});
        closing_ = true;
        streams_.clear();
        return;
      case channel_open::key:
        chan(ch) = channel_state{};
        chan(ch).open = true;
        put_method(out_, ch, channel_open_ok{});
        return;
      case channel_close::key:
        drop_streams(ch, nullptr);
        chan(ch) = channel_state{};
        put_method(out_, ch, channel_close_ok{});
        return;
      case channel_flow::key: {
        channel_flow f;
        if (!decode(payload, f)) return;
        channel_flow_ok ok;
        ok.active = f.active;
        put_method(out_, ch, ok);
        return;
      }
      case exchange_declare::key: {
        exchange_declare m;
        if (decode(payload, m) && !m.no_wait) put_method(out_, ch, exchange_declare_ok{});
        return;
      }
      case exchange_delete::key: {
        exchange_delete m;
        if (decode(payload, m) && !m.no_wait) put_method(out_, ch, exchange_delete_ok{});
        return;
      }
      case queue_declare::key: {
        queue_declare m;
        if (!decode(payload, m) || m.no_wait) return;
        queue_declare_ok ok;
        ok.queue = m.queue.empty() ? "amq.gen-null-" + std::to_string(++names_) : m.queue;
        ok.message_count = static_cast<std::uint32_t>(published_total);
        put_method(out_, ch, ok);
        return;
      }
      case queue_bind::key: {
        queue_bind m;
        if (decode(payload, m) && !m.no_wait) put_method(out_, ch, queue_bind_ok{});
        return;
      }
      case queue_unbind::key: put_method(out_, ch, queue_unbind_ok{}); return;
      case queue_purge::key: {
        queue_purge m;
        if (decode(payload, m) && !m.no_wait) put_method(out_, ch, queue_purge_ok{});
        return;
      }
      case queue_delete::key: {
        queue_delete m;
        if (decode(payload, m) && !m.no_wait) put_method(out_, ch, queue_delete_ok{});
        return;
      }
      case basic_qos::key: {
        basic_qos m;
        if (!decode(payload, m)) return;
        chan(ch).prefetch = m.prefetch_count;
        put_method(out_, ch, basic_qos_ok{});
        return;
      }
      case confirm_select::key: {
        confirm_select m;
        if (!decode(payload, m)) return;
        chan(ch).confirm = true;
        if (!m.nowait) put_method(out_, ch, confirm_select_ok{});
        return;
      }
      case basic_consume::key: {
        basic_consume m;
        if (!decode(payload, m)) return;
        std::string tag =
            m.consumer_tag.empty() ? "amq.ctag-null-" + std::to_string(++names_) : m.consumer_tag;
        if (!m.no_wait) {
          basic_consume_ok ok;
          ok.consumer_tag = tag;
          put_method(out_, ch, ok);
        }
        add_stream(ch, tag, m.queue, m.no_ack);
        return;
      }
      case basic_cancel::key: {
        basic_cancel m;
        if (!decode(payload, m)) return;
        drop_streams(ch, &m.consumer_tag);
        if (!m.no_wait) {
          basic_cancel_ok ok;
          ok.consumer_tag = m.consumer_tag;
          put_method(out_, ch, ok);
        }
        return;
      }
      case basic_recover::key: put_method(out_, ch, basic_recover_ok{}); return;
      case tx_select::key: put_method(out_, ch, tx_select_ok{}); return;
      case tx_commit::key: put_method(out_, ch, tx_commit_ok{}); return;
      case tx_rollback::key: put_method(out_, ch, tx_rollback_ok{}); return;
      default:
        std::fprintf(stderr, "null-broker: ignoring method %u.%u\n", key >> 16, key & 0xFFFF);
        return;
    }
  }

  tcp::socket sock_;
  asio::steady_timer wake_;
  asio::steady_timer beat_;
  const options& opts_;
  byte_buffer out_;
  byte_buffer sending_;
  std::vector<channel_state> channels_;
  std::vector<std::shared_ptr<stream>> streams_;
  std::uint64_t names_ = 0;
  std::uint64_t seq_ = 0;
  bool waiting_ = false;
  bool closing_ = false;
};

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, const options& o) {
  for (;;) {
    auto [ec, sock] = co_await acceptor.async_accept(tuple_awaitable);
    if (ec) co_return;
    sock.set_option(tcp::no_delay(true));
    std::make_shared<session>(std::move(sock), o)->start();
  }
}

[[noreturn]] void usage(int code) {
  std::fprintf(code == 0 ? stdout : stderr,
               "usage: null-broker [--listen ADDR] [--port N] [--size BYTES]\n"
               "  --listen ADDR  address to listen on (default 127.0.0.1)\n"
               "  --port N       TCP port (default 5673; 0 picks a free one)\n"
               "  --size BYTES   body size of the deliveries it streams (default 64)\n");
  std::exit(code);
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(2);
      return argv[++i];
    };
    if (a == "--listen")
      o.listen = value();
    else if (a == "--port")
      o.port = static_cast<std::uint16_t>(std::stoul(value()));
    else if (a == "--size")
      o.deliver_size = std::stoul(value());
    else if (a == "-h" || a == "--help")
      usage(0);
    else
      usage(2);
  }
  try {
    asio::io_context io(1);
    tcp::endpoint ep(asio::ip::make_address(o.listen), o.port);
    tcp::acceptor acceptor(io, ep);
    std::printf("null-broker listening on %s:%u\n", o.listen.c_str(),
                static_cast<unsigned>(acceptor.local_endpoint().port()));
    std::fflush(stdout);
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](std::error_code, int) { io.stop(); });
    asio::co_spawn(io, accept_loop(acceptor, o), asio::detached);
    io.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "null-broker: %s\n", e.what());
    return 1;
  }
  return 0;
}
