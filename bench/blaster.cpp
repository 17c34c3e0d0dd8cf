// The ceiling for publishing: a real AMQP handshake, then basic.publish
// triplets encoded once and written again and again in large batches, one
// write() per batch. No per-message work at all, so its rate is what the
// machine (against the null broker) or the broker (against RabbitMQ) can take
// for those bytes.
//
//   blaster [--uri amqp://user:pass@host:port/vhost] [--queue NAME] [--size BYTES]
//           [--count N] [--batch BYTES] [--confirm WINDOW] [--json]
//
// Messages go to the default exchange with the queue's name as routing key.
// The queue is declared (non-durable, not exclusive, not auto-delete) and its
// message count read first. After the last write (and, with --confirm, the
// last ack) the queue is declared passively until it holds every message:
// "taken" is that moment, so bytes still in socket buffers do not count as
// delivered. With --confirm W at most W publishes are unconfirmed; acks are
// read between batches.
//
// --asio sends through Asio instead of plain blocking calls: after the
// handshake the socket is adopted by an io_context, and one C++20 coroutine
// writes each batch (write_some on the non-blocking socket, as warren does)
// and reads acks with async_read_some.
// With --confirm 1 --batch 1 that is the least any client built on Asio and
// coroutines does per synchronous confirm (bench/callgrind.sh counts it as
// "asio-floor"); without --asio, the least a blocking client does
// ("blocking-floor").
//
// --consume turns it into the floor for consuming: basic.qos (--prefetch,
// default 1000), basic.consume on the queue, then blocking reads of 64 KiB
// that are split into frames and looked at no further than the delivery tag
// and the body's size, and one multiple basic.ack per --multi-ack messages
// (default 100; 1 acks each), until --count messages have arrived whole. No
// client that reads what arrives as it arrives spends less per message.

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "raw_amqp.hpp"
#include "warren/client/handshake.hpp"
#include "warren/client/uri.hpp"
#include "warren/client/wire.hpp"

namespace {

using namespace warren;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "blaster: %s\n", what.c_str());
  std::exit(1);
}

class raw_connection {
 public:
  void connect(const connection_params& p) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (getaddrinfo(p.host.c_str(), std::to_string(p.port).c_str(), &hints, &res) != 0 || !res)
      die("cannot resolve " + p.host);
    fd_ = ::socket(res->ai_family, SOCK_STREAM, 0);
    if (fd_ < 0 || ::connect(fd_, res->ai_addr, res->ai_addrlen) != 0)
      die("cannot connect to " + p.host + ":" + std::to_string(p.port));
    freeaddrinfo(res);
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    parser_.set_frame_max(131072);

    // The same handshake as the client's, capped at 128 KiB frames and
    // without heartbeats.
    connection_params tuned = p;
    tuned.frame_max = 131072;
    tuned.heartbeat = 0;
    detail::handshake hs(tuned, {}, "warren-blaster");
    byte_buffer out;
    hs.begin(out);
    while (hs.running()) {
      send_all(out.data(), out.size());
      out.clear();
      frame_view f = next_frame(true);
      if (f.type != frame_type::method || f.channel != 0) continue;
      any_method m;
      if (auto ec = decode_method(f.payload, m)) die("handshake: " + ec.message());
      if (hs.on_method(peek_method_key(f.payload), m, out) == detail::handshake::step::failed)
        die("handshake: " + hs.error().text);
    }
    send_all(out.data(), out.size());
    frame_max_ = hs.frame_max() == 0 ? 131072 : hs.frame_max();
    send_method(1, channel_open{});
    expect<channel_open_ok>(1);
  }

  void send_all(const void* data, std::size_t n) {
    const auto* p = static_cast<const std::uint8_t*>(data);
    while (n != 0) {
      const ssize_t k = ::send(fd_, p, n, MSG_NOSIGNAL);
      if (k < 0) {
        if (errno == EINTR) continue;
        die(std::string("write failed: ") + std::strerror(errno));
      }
      p += k;
      n -= static_cast<std::size_t>(k);
    }
  }

  template <class M>
  void send_method(std::uint16_t ch, const M& m) {
    byte_buffer b;
    bench::put_method(b, ch, m);
    send_all(b.data(), b.size());
  }

  // Reads frames until method M arrives on channel ch; acks on the way are
  // counted. Fails on connection.close / channel.close.
  template <class M>
  M expect(std::uint16_t ch) {
    for (;;) {
      frame_view f = next_frame(true);
      if (f.type != frame_type::method) continue;
      if (handle_common(f)) continue;
      if (f.channel == ch && peek_method_key(f.payload) == M::key) {
        M m;
        if (decode_method_as(f.payload, m)) die("cannot decode " + std::string(M::name));
        return m;
      }
    }
  }

  // Processes whatever frames are already readable without blocking.
  void poll() {
    for (;;) {
      frame_view f = next_frame(false);
      if (f.type != frame_type::method) return;
      handle_common(f);
    }
  }

  // Blocks for at least one frame, then takes what else is buffered.
  void wait() {
    frame_view f = next_frame(true);
    if (f.type == frame_type::method) handle_common(f);
    poll();
  }

  // The send loop of main(), on Asio (see --asio). Returns what was sent.
  std::uint64_t run_asio(const byte_buffer& batch, std::size_t one, std::uint64_t per_batch,
                         std::uint64_t count, std::uint64_t window) {
    asio::io_context io(1);
    asio::ip::tcp::socket sock(io, asio::ip::tcp::v4(), fd_);
    std::uint64_t sent = 0;
    std::exception_ptr failed;
    asio::co_spawn(io, asio_loop(sock, batch, one, per_batch, count, window, sent),
                   [&](std::exception_ptr e) { failed = e; });
    io.run();
    // Back to a plain blocking descriptor for what follows.
    fd_ = sock.release();
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) & ~O_NONBLOCK);
    if (failed) {
      try {
        std::rethrow_exception(failed);
      } catch (const std::exception& e) {
        die(std::string("asio: ") + e.what());
      }
    }
    return sent;
  }

  // --consume: returns how many messages arrived whole.
  std::uint64_t consume(std::uint64_t count, std::uint64_t multi_ack) {
    // One basic.ack, encoded once; each ack patches its delivery tag in.
    basic_ack a;
    a.multiple = multi_ack > 1;
    byte_buffer ack;
    bench::put_method(ack, 1, a);
    constexpr std::size_t tag_at = frame_header_size + 4;
    std::uint64_t received = 0, unacked = 0, last_tag = 0, body_left = 0;
    auto arrived = [&] {
      ++received;
      if (++unacked >= multi_ack) {
        detail::store64(ack.data() + tag_at, last_tag);
        send_all(ack.data(), ack.size());
        unacked = 0;
      }
    };
    while (received < count) {
      const frame_view f = next_frame(true);
      if (f.type == frame_type::method) {
        if (peek_method_key(f.payload) != basic_deliver::key) {
          handle_common(f);
          continue;
        }
        // method id (4), consumer tag (shortstr), delivery tag (u64)
        const bytes_view p = f.payload;
        if (p.size() < 5 || p.size() < 5u + p[4] + 8) die("basic.deliver too short");
        last_tag = detail::load64(p.data() + 5 + p[4]);
      } else if (f.type == frame_type::header) {
        if (f.payload.size() < 12) die("content header too short");
        body_left = detail::load64(f.payload.data() + 4);
        if (body_left == 0) arrived();
      } else if (f.type == frame_type::body) {
        if (f.payload.size() > body_left) die("body frame larger than the header said");
        body_left -= f.payload.size();
        if (body_left == 0) arrived();
      }
    }
    if (unacked != 0) {
      a.multiple = true;
      a.delivery_tag = last_tag;
      send_method(1, a);
    }
    return received;
  }

  std::uint64_t acked = 0;
  std::uint64_t nacked = 0;
  std::uint64_t confirmed_upto = 0;
  std::uint32_t frame_max_ = 131072;

 private:
  bool handle_common(const frame_view& f) {
    const std::uint32_t key = peek_method_key(f.payload);
    if (key == basic_ack::key || key == basic_nack::key) {
      basic_ack a;
      basic_nack n;
      std::uint64_t tag = 0;
      bool multiple = false;
      if (key == basic_ack::key) {
        if (decode_method_as(f.payload, a)) die("bad basic.ack");
        tag = a.delivery_tag;
        multiple = a.multiple;
      } else {
        if (decode_method_as(f.payload, n)) die("bad basic.nack");
        tag = n.delivery_tag;
        multiple = n.multiple;
      }
      const std::uint64_t count = multiple ? tag - confirmed_upto : 1;
      (key == basic_ack::key ? acked : nacked) += count;
      if (tag > confirmed_upto) confirmed_upto = tag;
      return true;
    }
    if (key == connection_close::key || key == channel_close::key) {
      connection_close c;
      channel_close cc;
      std::string text;
      if (key == connection_close::key && !decode_method_as(f.payload, c)) text = c.reply_text;
      if (key == channel_close::key && !decode_method_as(f.payload, cc)) text = cc.reply_text;
      die("the broker closed: " + text);
    }
    return false;
  }

  // A frame, or a frame_view of type 0 when none is available and !block.
  frame_view next_frame(bool block) {
    for (;;) {
      frame_view f;
      std::error_code ec;
      auto st = parser_.next(f, ec);
      if (st == frame_parser::status::frame) return f;
      if (st == frame_parser::status::error) die("bad frame from the broker: " + ec.message());
      auto room = parser_.prepare(64 * 1024);
      const ssize_t n = ::recv(fd_, room.data(), room.size(), block ? 0 : MSG_DONTWAIT);
      if (n == 0) die("the broker closed the connection");
      if (n < 0) {
        if (errno == EINTR) continue;
        if (!block && (errno == EAGAIN || errno == EWOULDBLOCK)) return frame_view{};
        die(std::string("read failed: ") + std::strerror(errno));
      }
      parser_.commit(static_cast<std::size_t>(n));
    }
  }

  // Writes go out as warren's do, straight from the caller with write_some on
  // the non-blocking socket (async_write only for what the kernel would not
  // take): an async_write per message would add a completion handler, and a
  // poll of the reactor for it, to every round trip. Reads are the only
  // awaited operation, from one place, in one coroutine frame.
  asio::awaitable<void> asio_loop(asio::ip::tcp::socket& sock, const byte_buffer& batch,
                                  std::size_t one, std::uint64_t per_batch, std::uint64_t count,
                                  std::uint64_t window, std::uint64_t& sent) {
    sock.non_blocking(true);
    while (sent < count || (window != 0 && confirmed_upto < sent)) {
      if (sent < count && (window == 0 || sent - confirmed_upto < window)) {
        std::uint64_t k = std::min<std::uint64_t>(per_batch, count - sent);
        if (window != 0) k = std::min<std::uint64_t>(k, window - (sent - confirmed_upto));
        const std::size_t n = k * one;
        std::error_code ec;
        const std::size_t w = sock.write_some(asio::buffer(batch.data(), n), ec);
        if (ec && ec != asio::error::would_block) throw std::system_error(ec);
        if (w < n)
          co_await asio::async_write(sock, asio::buffer(batch.data() + w, n - w),
                                     asio::use_awaitable);
        sent += k;
        continue;
      }
      auto room = parser_.prepare(64 * 1024);
      const std::size_t n = co_await sock.async_read_some(
          asio::buffer(room.data(), room.size()), asio::use_awaitable);
      parser_.commit(n);
      for (;;) {
        frame_view f;
        std::error_code ec;
        auto st = parser_.next(f, ec);
        if (st == frame_parser::status::error) die("bad frame from the broker: " + ec.message());
        if (st != frame_parser::status::frame) break;
        if (f.type == frame_type::method) handle_common(f);
      }
    }
  }

  int fd_ = -1;
  frame_parser parser_;
};

struct options {
  std::string uri = "amqp://guest:guest@127.0.0.1:5672/";
  std::string queue = "warren-perf";
  std::size_t size = 64;
  std::uint64_t count = 1000000;
  std::size_t batch = 256 * 1024;
  std::uint64_t window = 0;
  bool json = false;
  bool asio = false;
  bool consume = false;
  std::uint16_t prefetch = 1000;
  std::uint64_t multi_ack = 100;
};

[[noreturn]] void usage(int code) {
  std::fprintf(code == 0 ? stdout : stderr,
               "usage: blaster [--uri URI] [--queue NAME] [--size BYTES] [--count N]\n"
               "               [--batch BYTES] [--confirm WINDOW] [--asio] [--json]\n"
               "       blaster --consume [--uri URI] [--queue NAME] [--count N]\n"
               "               [--prefetch N] [--multi-ack N] [--json]\n");
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
    if (a == "--uri")
      o.uri = value();
    else if (a == "--queue")
      o.queue = value();
    else if (a == "--size")
      o.size = std::stoul(value());
    else if (a == "--count")
      o.count = std::stoull(value());
    else if (a == "--batch")
      o.batch = std::stoul(value());
    else if (a == "--confirm")
      o.window = std::stoull(value());
    else if (a == "--json")
      o.json = true;
    else if (a == "--asio")
      o.asio = true;
    else if (a == "--consume")
      o.consume = true;
    else if (a == "--prefetch") {
      const unsigned long n = std::stoul(value());
      if (n > 65535) die("--prefetch takes 0 to 65535");
      o.prefetch = static_cast<std::uint16_t>(n);
    }
    else if (a == "--multi-ack")
      o.multi_ack = std::max<std::uint64_t>(1, std::stoull(value()));
    else if (a == "-h" || a == "--help")
      usage(0);
    else
      usage(2);
  }
  connection_params params;
  std::string why;
  if (parse_uri(o.uri, params, &why)) die("bad URI: " + why);
  // Its raw socket speaks plain AMQP only; to a TLS listener it would send
  // the protocol header in the clear.
  if (params.tls) die("amqps is not supported: the blaster writes to a plain TCP socket");

  if (o.consume && (o.asio || o.window != 0)) die("--consume takes neither --asio nor --confirm");

  raw_connection c;
  c.connect(params);
  if (o.consume) {
    basic_qos qos;
    qos.prefetch_count = o.prefetch;
    c.send_method(1, qos);
    c.expect<basic_qos_ok>(1);
    const bench::cpu_times cpu0 = bench::cpu_now();
    const std::uint64_t t0 = bench::now_ns();
    basic_consume bc;
    bc.queue = o.queue;
    c.send_method(1, bc);
    const std::uint64_t received = c.consume(o.count, o.multi_ack);
    const double receive_s = (bench::now_ns() - t0) / 1e9;
    const bench::cpu_times cpu = bench::cpu_now() - cpu0;
    c.send_method(0, connection_close{});
    c.expect<connection_close_ok>(0);
    if (o.json) {
      std::printf(
          "{\"client\":\"blaster\",\"mode\":\"consume\",\"count\":%llu,\"received\":%llu,"
          "\"receive_s\":%.6f,\"cpu_s\":%.6f,\"user_s\":%.6f,\"sys_s\":%.6f}\n",
          static_cast<unsigned long long>(o.count), static_cast<unsigned long long>(received),
          receive_s, cpu.total(), cpu.user, cpu.sys);
    } else {
      std::printf("blaster: consumed %llu messages\nreceiving rate avg: %.0f msg/s\n",
                  static_cast<unsigned long long>(received), received / receive_s);
      std::printf("client CPU: %.3f us/msg\n", cpu.total() * 1e6 / received);
    }
    return 0;
  }
  if (o.window != 0) {
    c.send_method(1, confirm_select{});
    c.expect<confirm_select_ok>(1);
  }
  queue_declare declare;
  declare.queue = o.queue;
  c.send_method(1, declare);
  const std::uint64_t baseline = c.expect<queue_declare_ok>(1).message_count;

  // One message's frames, then as many copies as make a batch.
  const std::string body = bench::make_body(o.size);
  publish_frame_args args;
  args.channel = 1;
  args.exchange = "";
  args.routing_key = o.queue;
  basic_properties props;
  byte_buffer one;
  if (encode_publish(one, args, props, as_bytes(body), c.frame_max_)) die("cannot encode");
  const std::size_t per_batch = std::max<std::size_t>(1, o.batch / one.size());
  byte_buffer batch;
  for (std::size_t i = 0; i < per_batch; ++i) batch.append(one.data(), one.size());

  const bench::cpu_times cpu0 = bench::cpu_now();
  const std::uint64_t t0 = bench::now_ns();
  std::uint64_t sent = 0;
  if (o.asio) sent = c.run_asio(batch, one.size(), per_batch, o.count, o.window);
  while (sent < o.count) {
    std::uint64_t k = std::min<std::uint64_t>(per_batch, o.count - sent);
    if (o.window != 0) {
      while (sent - c.confirmed_upto >= o.window) c.wait();
      k = std::min<std::uint64_t>(k, o.window - (sent - c.confirmed_upto));
    }
    c.send_all(batch.data(), k * one.size());
    sent += k;
    if (o.window != 0) c.poll();
  }
  const std::uint64_t t_sent = bench::now_ns();
  while (o.window != 0 && c.confirmed_upto < sent) c.wait();
  const std::uint64_t t_confirmed = bench::now_ns();
  queue_declare passive;
  passive.queue = o.queue;
  passive.passive = true;
  std::uint64_t polls = 0;
  for (;;) {
    c.send_method(1, passive);
    ++polls;
    if (c.expect<queue_declare_ok>(1).message_count >= baseline + o.count) break;
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  const std::uint64_t t_taken = bench::now_ns();
  const bench::cpu_times cpu = bench::cpu_now() - cpu0;
  c.send_method(0, connection_close{});
  c.expect<connection_close_ok>(0);

  const double send_s = (t_sent - t0) / 1e9;
  const double confirm_s = (t_confirmed - t0) / 1e9;
  const double taken_s = (t_taken - t0) / 1e9;
  if (o.json) {
    std::printf(
        "{\"client\":\"blaster\",\"size\":%zu,\"count\":%llu,\"window\":%llu,\"sent\":%llu,"
        "\"acked\":%llu,\"nacked\":%llu,\"send_s\":%.6f,\"confirm_s\":%.6f,\"taken_s\":%.6f,"
        "\"cpu_s\":%.6f,\"user_s\":%.6f,\"sys_s\":%.6f,\"polls\":%llu}\n",
        o.size, static_cast<unsigned long long>(o.count), static_cast<unsigned long long>(o.window),
        static_cast<unsigned long long>(sent), static_cast<unsigned long long>(c.acked),
        static_cast<unsigned long long>(c.nacked), send_s, confirm_s, taken_s, cpu.total(),
        cpu.user, cpu.sys, static_cast<unsigned long long>(polls));
  } else {
    std::printf("blaster: %llu messages of %zu bytes (%zu per batch, %zu bytes on the wire each%s)\n",
                static_cast<unsigned long long>(sent), o.size, per_batch, one.size(),
                o.asio ? ", through Asio" : "");
    std::printf("sending rate avg: %.0f msg/s\n", sent / send_s);
    if (o.window != 0) std::printf("confirmed rate avg: %.0f msg/s\n", sent / confirm_s);
    std::printf("taken rate avg: %.0f msg/s (%.3f s)\n", sent / taken_s, taken_s);
    std::printf("client CPU: %.3f us/msg\n", cpu.total() * 1e6 / sent);
  }
  return 0;
}
