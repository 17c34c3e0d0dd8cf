// The rabbitmq-c peer of warren-perf: the workloads of scripts/bench written
// the way a rabbitmq-c user writes them, with the library's own calls only.
//
//   rabbitmq-c-perf --mode publish|confirm|consume [--uri URI] [--queue NAME]
//                   [--size BYTES] [--count N] [--window N] [--prefetch N]
//                   [--multi-ack N]
//
//   publish   amqp_basic_publish in a loop, no confirms
//   confirm   confirm.select; at most --window publishes unconfirmed
//             (--window 1: wait for each publish's ack before the next)
//   consume   basic.qos(--prefetch), basic.consume, amqp_consume_message in a
//             loop, basic.ack(multiple) every --multi-ack messages (1 = each)
//
// Bodies follow PerfTest: sequence number, send time in ns, padding. Publish
// runs end when a passive queue.declare counts every message in the queue
// ("taken"). Prints one JSON line; cpu_s is the whole process's user + system
// time over the timed part (getrusage).

#if __has_include(<rabbitmq-c/amqp.h>)
#include <rabbitmq-c/amqp.h>
#include <rabbitmq-c/framing.h>
#include <rabbitmq-c/tcp_socket.h>
#else
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#endif

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tools/perf/measure.hpp"

namespace {

using warren::perf::cpu_now;
using warren::perf::cpu_times;
using warren::perf::now_ns;

void put32(std::uint8_t* p, std::uint32_t v) {
  for (int i = 3; i >= 0; --i, v >>= 8) p[i] = static_cast<std::uint8_t>(v);
}
void put64(std::uint8_t* p, std::uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<std::uint8_t>(v);
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "rabbitmq-c-perf: %s\n", what.c_str());
  std::exit(1);
}

void check(amqp_rpc_reply_t r, const char* what) {
  if (r.reply_type == AMQP_RESPONSE_NORMAL) return;
  if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
    die(std::string(what) + ": " + amqp_error_string2(r.library_error));
  die(std::string(what) + ": the broker closed the channel or connection");
}

void check_reply(amqp_connection_state_t conn, const char* what) {
  check(amqp_get_rpc_reply(conn), what);
}

struct options {
  std::string uri = "amqp://guest:guest@127.0.0.1:5672/";
  std::string mode = "publish";
  std::string queue = "warren-perf";
  std::size_t size = 64;
  std::uint64_t count = 100000;
  std::uint64_t window = 1000;
  std::uint16_t prefetch = 1000;
  std::uint64_t multi_ack = 100;
};

amqp_bytes_t bytes_of(const std::string& s) { return {s.size(), const_cast<char*>(s.data())}; }

// Handles one frame that is not a delivery: confirms count up, anything
// closing the channel or connection ends the run.
void on_frame(const amqp_frame_t& f, std::uint64_t& confirmed, std::uint64_t& nacked) {
  if (f.frame_type != AMQP_FRAME_METHOD) return;
  switch (f.payload.method.id) {
    case AMQP_BASIC_ACK_METHOD: {
      auto* a = static_cast<amqp_basic_ack_t*>(f.payload.method.decoded);
      confirmed = a->multiple ? a->delivery_tag : confirmed + 1;
      return;
    }
    case AMQP_BASIC_NACK_METHOD: {
      auto* n = static_cast<amqp_basic_nack_t*>(f.payload.method.decoded);
      const std::uint64_t upto = n->multiple ? n->delivery_tag : confirmed + 1;
      nacked += upto - confirmed;
      confirmed = upto;
      return;
    }
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD: die("the broker closed the channel or connection");
    default: return;
  }
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value for " + a);
      return argv[++i];
    };
    if (a == "--uri")
      o.uri = value();
    else if (a == "--mode")
      o.mode = value();
    else if (a == "--queue")
      o.queue = value();
    else if (a == "--size")
      o.size = std::stoul(value());
    else if (a == "--count")
      o.count = std::stoull(value());
    else if (a == "--window")
      o.window = std::stoull(value());
    else if (a == "--prefetch")
      o.prefetch = static_cast<std::uint16_t>(std::stoul(value()));
    else if (a == "--multi-ack")
      o.multi_ack = std::stoull(value());
    else
      die("unknown argument " + a);
  }
  if (o.size < 12) o.size = 12;
  if (o.multi_ack == 0) o.multi_ack = 1;
  if (o.window == 0) o.window = 1;

  std::vector<char> url(o.uri.begin(), o.uri.end());
  url.push_back('\0');
  amqp_connection_info info;
  amqp_default_connection_info(&info);
  if (amqp_parse_url(url.data(), &info) != AMQP_STATUS_OK) die("bad URI " + o.uri);
  // amqp_parse_url reads "host:port/" as the vhost "", where AMQP URIs mean "/".
  static char default_vhost[] = "/";
  if (info.vhost == nullptr || info.vhost[0] == '\0') info.vhost = default_vhost;

  amqp_connection_state_t conn = amqp_new_connection();
  amqp_socket_t* sock = amqp_tcp_socket_new(conn);
  if (sock == nullptr || amqp_socket_open(sock, info.host, info.port) != AMQP_STATUS_OK)
    die("cannot connect");
  check(amqp_login(conn, info.vhost, 0, AMQP_DEFAULT_FRAME_SIZE, 0, AMQP_SASL_METHOD_PLAIN,
                   info.user, info.password),
        "login");
  amqp_channel_open(conn, 1);
  check_reply(conn, "channel.open");
  const amqp_bytes_t queue = bytes_of(o.queue);
  auto* declared = amqp_queue_declare(conn, 1, queue, 0, 0, 0, 0, amqp_empty_table);
  check_reply(conn, "queue.declare");
  const std::uint64_t baseline = declared->message_count;

  std::string body(o.size, 'x');
  auto* b = reinterpret_cast<std::uint8_t*>(body.data());
  const amqp_bytes_t body_bytes = bytes_of(body);

  std::uint64_t sent = 0, confirmed = 0, nacked = 0, received = 0;
  cpu_times cpu0;
  std::uint64_t t0 = 0, t_sent = 0, t_end = 0;
  const bool publishing = o.mode == "publish" || o.mode == "confirm";

  if (publishing) {
    const bool confirm = o.mode == "confirm";
    if (confirm) {
      amqp_confirm_select(conn, 1);
      check_reply(conn, "confirm.select");
    }
    cpu0 = cpu_now();
    t0 = now_ns();
    amqp_frame_t frame;
    while (sent < o.count) {
      // Full window: block for acks. Acks already read into the library's
      // buffer are taken on the way without a syscall.
      while (confirm && sent - confirmed >= o.window) {
        if (amqp_simple_wait_frame(conn, &frame) != AMQP_STATUS_OK) die("reading confirms");
        on_frame(frame, confirmed, nacked);
      }
      put32(b, static_cast<std::uint32_t>(sent));
      put64(b + 4, now_ns());
      if (amqp_basic_publish(conn, 1, amqp_empty_bytes, queue, 0, 0, nullptr, body_bytes) !=
          AMQP_STATUS_OK)
        die("basic.publish failed");
      ++sent;
      while (confirm && (amqp_frames_enqueued(conn) || amqp_data_in_buffer(conn))) {
        if (amqp_simple_wait_frame(conn, &frame) != AMQP_STATUS_OK) die("reading confirms");
        on_frame(frame, confirmed, nacked);
      }
      amqp_maybe_release_buffers(conn);
    }
    t_sent = now_ns();
    while (confirm && confirmed < sent) {
      if (amqp_simple_wait_frame(conn, &frame) != AMQP_STATUS_OK) die("reading confirms");
      on_frame(frame, confirmed, nacked);
    }
    for (;;) {
      auto* ok = amqp_queue_declare(conn, 1, queue, 1, 0, 0, 0, amqp_empty_table);
      check_reply(conn, "passive queue.declare");
      if (ok->message_count >= baseline + o.count) break;
      amqp_maybe_release_buffers(conn);
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    t_end = now_ns();
  } else if (o.mode == "consume") {
    amqp_basic_qos(conn, 1, 0, o.prefetch, 0);
    check_reply(conn, "basic.qos");
    cpu0 = cpu_now();
    t0 = now_ns();
    amqp_basic_consume(conn, 1, queue, amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    check_reply(conn, "basic.consume");
    std::uint64_t unacked = 0;
    std::uint64_t last_tag = 0;
    while (received < o.count) {
      amqp_maybe_release_buffers(conn);
      amqp_envelope_t env;
      amqp_rpc_reply_t r = amqp_consume_message(conn, &env, nullptr, 0);
      if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
          amqp_frame_t frame;
          if (amqp_simple_wait_frame(conn, &frame) != AMQP_STATUS_OK) die("reading frames");
          on_frame(frame, confirmed, nacked);
          continue;
        }
        die("amqp_consume_message failed");
      }
      ++received;
      last_tag = env.delivery_tag;
      if (++unacked >= o.multi_ack) {
        amqp_basic_ack(conn, 1, last_tag, o.multi_ack > 1);
        unacked = 0;
      }
      amqp_destroy_envelope(&env);
    }
    if (unacked != 0) amqp_basic_ack(conn, 1, last_tag, 1);
    t_end = now_ns();
    t_sent = t_end;
  } else {
    die("unknown mode " + o.mode);
  }
  const cpu_times cpu1 = cpu_now();
  const double user = cpu1.user - cpu0.user, sys = cpu1.sys - cpu0.sys;
  amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
  amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(conn);

  std::printf(
      "{\"client\":\"rabbitmq-c\",\"mode\":\"%s\",\"size\":%zu,\"count\":%llu,\"sent\":%llu,"
      "\"received\":%llu,\"nacked\":%llu,\"send_s\":%.6f,\"taken_s\":%.6f,\"cpu_s\":%.6f,\"user_"
      "s\":%.6f,\"sys_s\":%.6f}\n",
      o.mode.c_str(), o.size, static_cast<unsigned long long>(o.count),
      static_cast<unsigned long long>(sent), static_cast<unsigned long long>(received),
      static_cast<unsigned long long>(nacked), (t_sent - t0) / 1e9, (t_end - t0) / 1e9, user + sys,
      user, sys);
  return 0;
}
