// The rabbitmq-c peer of warren-perf: the workloads of scripts/bench written
// the way a rabbitmq-c user writes them, with the library's own calls only.
//
//   rabbitmq-c-perf --mode publish|confirm|consume [--uri URI] [--queue NAME]
//                   [--size BYTES] [--count N] [--window N] [--prefetch N]
//                   [--multi-ack N]
//
// amqps URIs connect with rabbitmq-c's own TLS socket (amqp_ssl_socket_new),
// the broker's certificate and host name verified; the query parameters
// cacertfile, certfile, keyfile and verify (verify_peer, verify_none) mean
// what they mean to warren (amqp_parse_url itself takes no query).
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

// rabbitmq-c 0.12 moved its headers under rabbitmq-c/; Debian 12 ships 0.11.
#if __has_include(<rabbitmq-c/amqp.h>)
#include <rabbitmq-c/amqp.h>
#include <rabbitmq-c/framing.h>
#include <rabbitmq-c/ssl_socket.h>
#include <rabbitmq-c/tcp_socket.h>
#else
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#endif

#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tools/perf/measure.hpp"
#include "tools/redact.hpp"

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
  std::fprintf(stderr, "rabbitmq-c-perf: %s\n", warren::tools::redact_passwords(what).c_str());
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

// The TLS settings of an amqps URI's query.
struct tls_options {
  std::string cacertfile, certfile, keyfile;
  bool verify = true;
};

std::string percent_decoded(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Splits the query off `uri` (amqp_parse_url would take it for part of the
// vhost) and reads the TLS parameters in it.
tls_options take_query(std::string& uri) {
  tls_options t;
  const std::size_t q = uri.find('?');
  if (q == std::string::npos) return t;
  const std::string query = uri.substr(q + 1);
  uri.resize(q);
  for (std::size_t from = 0; from <= query.size();) {
    std::size_t amp = query.find('&', from);
    if (amp == std::string::npos) amp = query.size();
    const std::string item = query.substr(from, amp - from);
    from = amp + 1;
    if (item.empty()) continue;
    const std::size_t eq = item.find('=');
    const std::string name = item.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : percent_decoded(item.substr(eq + 1));
    if (name == "cacertfile")
      t.cacertfile = value;
    else if (name == "certfile")
      t.certfile = value;
    else if (name == "keyfile")
      t.keyfile = value;
    else if (name == "verify" && (value == "verify_peer" || value == "verify_none"))
      t.verify = value == "verify_peer";
    else
      die("URI query parameter '" + item + "' is not supported");
  }
  return t;
}

// rabbitmq-c's TLS socket as its documentation sets it up: the CA file (else
// OpenSSL's default paths), peer and host name verification, and a client
// certificate when one is given.
amqp_socket_t* tls_socket(amqp_connection_state_t conn, const tls_options& t) {
  amqp_socket_t* sock = amqp_ssl_socket_new(conn);
  if (sock == nullptr) die("cannot create a TLS socket");
  if (!t.cacertfile.empty() &&
      amqp_ssl_socket_set_cacert(sock, t.cacertfile.c_str()) != AMQP_STATUS_OK)
    die("cannot read the CA file " + t.cacertfile);
  if (!t.certfile.empty()) {
    const std::string& key = t.keyfile.empty() ? t.certfile : t.keyfile;
    if (amqp_ssl_socket_set_key(sock, t.certfile.c_str(), key.c_str()) != AMQP_STATUS_OK)
      die("cannot read the client certificate " + t.certfile + " or its key");
  }
  amqp_ssl_socket_set_verify_peer(sock, t.verify ? 1 : 0);
  amqp_ssl_socket_set_verify_hostname(sock, t.verify ? 1 : 0);
  return sock;
}

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

  std::string bare = o.uri;
  const tls_options tls = take_query(bare);
  std::vector<char> url(bare.begin(), bare.end());
  url.push_back('\0');
  amqp_connection_info info;
  amqp_default_connection_info(&info);
  if (amqp_parse_url(url.data(), &info) != AMQP_STATUS_OK) die("bad URI " + o.uri);
  // amqp_parse_url reads "host:port/" as the vhost "", where AMQP URIs mean "/".
  static char default_vhost[] = "/";
  if (info.vhost == nullptr || info.vhost[0] == '\0') info.vhost = default_vhost;

  amqp_connection_state_t conn = amqp_new_connection();
  if (!info.ssl && (!tls.cacertfile.empty() || !tls.certfile.empty() || !tls.keyfile.empty()))
    die("cacertfile, certfile and keyfile are for amqps URIs");
  amqp_socket_t* sock = info.ssl ? tls_socket(conn, tls) : amqp_tcp_socket_new(conn);
  if (sock == nullptr) die("cannot create a socket");
  if (const int st = amqp_socket_open(sock, info.host, info.port); st != AMQP_STATUS_OK)
    die(std::string("cannot connect to ") + info.host + ":" + std::to_string(info.port) + ": " +
        amqp_error_string2(st));
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
