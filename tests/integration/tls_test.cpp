// amqps against RabbitMQ's own TLS listener on 127.0.0.1:5671 (scripts/tls
// sets it up, with certificates made at run time): verification, the host
// name check, EXTERNAL with a client certificate, large messages, dead-peer
// detection, endpoint lists, and errors that never show a password.
#include <doctest/doctest.h>

#include <asio/this_coro.hpp>
#include <string>
#include <vector>

#include "harness.hpp"
#include "proxy.hpp"
#include "tls_server.hpp"

using namespace warren;
using namespace std::chrono_literals;
using test::tls_file;

namespace {

using clock_type = std::chrono::steady_clock;
constexpr std::uint16_t tls_port = 5671;
// Used wherever a connection fails before the login: no error may show it.
const std::string secret = "Pw-Never-Shown-7731";

std::string amqps(const std::string& host, const std::string& query,
                  const std::string& password = "guest") {
  std::string u = "amqps://guest:" + password + "@" + host + ":" + std::to_string(tls_port) + "/";
  if (!query.empty()) u += "?" + query;
  return u;
}
std::string ca_query(const std::string& ca = "ca.pem") { return "cacertfile=" + tls_file(ca); }

// The error a failed connect throws, checked for the secret password.
// (References, and the caller names every argument: g++ 12 may destroy a
// temporary inside a co_await expression twice.)
asio::awaitable<error_info> connect_error(const std::string& uri, const connect_options& options) {
  auto pending = test::error_of(connect(uri, options));
  auto e = co_await std::move(pending);
  INFO("error: ", e.describe());
  CHECK(e.describe().find(secret) == std::string::npos);
  CHECK(e.text.find(secret) == std::string::npos);
  co_return e;
}
asio::awaitable<error_info> connect_error(const std::string& uri) {
  static const connect_options defaults;
  return connect_error(uri, defaults);
}

// A confirmed publish and a consume over `conn`, through an exclusive queue.
asio::awaitable<void> round_trip(connection& conn, std::string_view body) {
  auto ch = co_await conn.open_channel();
  auto q = co_await ch.queue_declare("", {.exclusive = true});
  co_await ch.confirm_select();
  auto outcome = co_await ch.publish("", q.queue, body);
  CHECK(outcome.status == publish_status::acked);
  auto cons = co_await ch.consume(q.queue);
  auto m = co_await with_timeout(cons.next(), 20s);
  REQUIRE(m.has_value());
  CHECK(m->body.size() == body.size());
  CHECK(m->body == body);
  ch.ack(m->delivery_tag);
  co_await ch.close();
}

}  // namespace

TEST_CASE("tls: a round trip with full verification (declare, confirmed publish, consume)") {
  test::run([]() -> asio::awaitable<void> {
    REQUIRE(tls_supported());
    const std::string uri = amqps("localhost", ca_query());
    auto pending = connect(uri);
    auto conn = co_await std::move(pending);
    CHECK(conn.is_open());
    const std::string shown = conn.endpoint();
    CHECK(shown.rfind("amqps://guest:***@localhost:5671/", 0) == 0);
    co_await round_trip(conn, "over TLS");
    co_await conn.close();
  });
}

TEST_CASE("tls: 16 MiB at frame_max 4096") {
  test::run([]() -> asio::awaitable<void> {
    const std::string uri = amqps("localhost", ca_query() + "&frame_max=4096");
    auto pending = connect(uri);
    auto conn = co_await std::move(pending);
    REQUIRE(conn.frame_max() == 4096);
    std::string body(16u << 20, '\0');
    for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>((i * 131) >> 3);
    co_await round_trip(conn, body);
    co_await conn.close();
  });
}

TEST_CASE("tls: receive batching brings a stream, its tail and a late message through") {
  test::run([]() -> asio::awaitable<void> {
    // Batches larger than the stream's tail: the tail, a reply and a message
    // sent later must all come through the batch's deadline, in order.
    connect_options batched;
    batched.receive_batch_bytes = 256 * 1024;
    batched.receive_batch_wait = 20ms;
    const std::string uri = amqps("localhost", ca_query());
    auto pending = connect(uri, batched);
    auto conn = co_await std::move(pending);
    auto ch = co_await conn.open_channel();
    auto q = co_await ch.queue_declare("", {.exclusive = true});
    auto pub_conn = co_await test::open_connection();
    auto pub = co_await pub_conn.open_channel();
    co_await pub.confirm_select();
    const std::string pad(200, 'p');
    for (int i = 0; i < 3000; ++i) {
      const std::string body = pad + std::to_string(i);
      auto sent = pub.publish_pipelined("", q.queue, body);
      co_await std::move(sent);
    }
    auto settled = pub.wait_for_confirms();
    const confirm_summary confirms = co_await std::move(settled);
    CHECK(confirms.nacked == 0);
    co_await ch.qos({.prefetch_count = 1000});
    auto cons = co_await ch.consume(q.queue);
    message m;
    for (int i = 0; i < 3000; ++i) {
      const bool got = co_await with_timeout(cons.next(m), 5000ms);
      REQUIRE(got);
      REQUIRE(m.body == pad + std::to_string(i));
      if ((i + 1) % 100 == 0) ch.ack(m.delivery_tag, true);
    }
    auto declared = ch.queue_declare(q.queue, {.passive = true});
    const queue_declare_result left = co_await std::move(declared);
    CHECK(left.message_count == 0);
    auto late = pub.publish("", q.queue, "late");
    const publish_outcome late_outcome = co_await std::move(late);
    CHECK(late_outcome.status == publish_status::acked);
    const bool got = co_await with_timeout(cons.next(m), 5000ms);
    REQUIRE(got);
    CHECK(m.body == "late");
    ch.ack(m.delivery_tag);
    co_await cons.cancel();
    co_await conn.close();
    co_await pub_conn.close();
  });
}

TEST_CASE("tls: a certificate for another host is refused, and verify_none accepts it") {
  test::run([]() -> asio::awaitable<void> {
    // The broker's certificate names DNS:localhost only.
    const std::string uri_1 = amqps("127.0.0.1", ca_query(), secret);
    auto by_ip = co_await connect_error(uri_1);
    CHECK(by_ip.code == errc::certificate_rejected);
    CHECK(by_ip.text.find("mismatch") != std::string::npos);
    CHECK(by_ip.text.find("'127.0.0.1'") != std::string::npos);
    const std::string uri_2 = amqps("localhost", ca_query() + "&server_name_indication=wrong.example", secret);
    auto by_name =
        co_await connect_error(uri_2);
    CHECK(by_name.code == errc::certificate_rejected);
    CHECK(by_name.text.find("hostname mismatch") != std::string::npos);
    CHECK(by_name.text.find("'wrong.example'") != std::string::npos);

    // Turned off explicitly, the same connection goes through.
    const std::string lax = amqps("127.0.0.1", "verify=verify_none");
    auto pending = connect(lax);
    auto conn = co_await std::move(pending);
    co_await round_trip(conn, "unverified");
    co_await conn.close();
  });
}

TEST_CASE("tls: a CA that is not trusted is refused, and verify_none accepts it") {
  test::run([]() -> asio::awaitable<void> {
    const std::string uri_3 = amqps("localhost", ca_query("other-ca.pem"), secret);
    auto other = co_await connect_error(uri_3);
    CHECK(other.code == errc::certificate_rejected);
    CHECK(other.text.find("other-ca.pem") != std::string::npos);
    // The system's trust store does not know the test CA either.
    const std::string uri_4 = amqps("localhost", "", secret);
    auto system = co_await connect_error(uri_4);
    CHECK(system.code == errc::certificate_rejected);
    CHECK(system.text.find("trust store") != std::string::npos);

    const std::string lax = amqps("localhost", ca_query("other-ca.pem") + "&verify=verify_none");
    auto pending = connect(lax);
    auto conn = co_await std::move(pending);
    CHECK(conn.is_open());
    co_await conn.close();
  });
}

TEST_CASE("tls: a server that offers only TLS 1.1 or lower is refused, verify_none or not") {
  test::run([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    test::tls_server old(ex, test::tls_server::old_versions_only());
    const std::string port = std::to_string(old.port());

    // The server really speaks TLS 1.1: a client that allows it gets through.
    {
      asio::ssl::context ctx(asio::ssl::context::tls_client);
      SSL_CTX_set_security_level(ctx.native_handle(), 0);
      SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_VERSION);
      SSL_CTX_set_cipher_list(ctx.native_handle(), "DEFAULT:@SECLEVEL=0");
      asio::ssl::stream<asio::ip::tcp::socket> s(ex, ctx);
      co_await s.lowest_layer().async_connect(
          {asio::ip::make_address("127.0.0.1"), old.port()}, asio::use_awaitable);
      co_await s.async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
      CHECK(std::string(SSL_get_version(s.native_handle())) == "TLSv1.1");
    }

    const std::vector<std::string> queries{ca_query() + "&server_name_indication=localhost",
                                           "verify=verify_none"};
    for (const std::string& query : queries) {
      const std::string uri = "amqps://guest:" + secret + "@127.0.0.1:" + port + "/?" + query;
      auto e = co_await connect_error(uri);
      CHECK(e.code == errc::tls_handshake_failed);
      CHECK(e.text.find("1.2 or later") != std::string::npos);
    }
    REQUIRE(old.handshakes().size() == 3);
    CHECK_FALSE(old.handshakes()[0]);
    CHECK(old.handshakes()[1]);
    CHECK(old.handshakes()[2]);
  });
}

TEST_CASE("tls: EXTERNAL with a client certificate logs in as the certificate's user") {
  test::run([]() -> asio::awaitable<void> {
    const std::string cert = "&certfile=" + tls_file("client.pem") + "&keyfile=" + tls_file("client.key");
    // No user name or password in the URI: the certificate is the identity.
    const std::string uri = "amqps://localhost:5671/?" + ca_query() + cert + "&auth_mechanism=external";
    auto pending = connect(uri);
    auto conn = co_await std::move(pending);
    auto ch = co_await conn.open_channel();
    // The user may use tls-ext.* only; RabbitMQ names the user when it refuses.
    const std::string mine = "tls-ext." + test::unique_name("q");
    auto q = co_await ch.queue_declare(mine, {.auto_delete = true});
    CHECK(q.queue == mine);
    co_await ch.queue_delete(mine);
    const std::string not_mine = test::unique_name("not-mine");
    auto refused = co_await test::error_of(ch.queue_declare(not_mine));
    CHECK(refused.reply_code() == 403);
    CHECK(refused.text.find("warren-tls-client") != std::string::npos);
    co_await conn.close();

    // No client certificate: the broker has no identity to accept.
    const std::string uri_5 = amqps("localhost", ca_query() + "&auth_mechanism=external", secret);
    auto none = co_await connect_error(uri_5);
    MESSAGE("EXTERNAL without a certificate: " << none.describe());
    CHECK(none.code);
    CHECK((none.code == errc::authentication_failed || none.reply_code() == 403));
    // A certificate from a CA the broker does not trust: refused in the
    // handshake (TLS 1.2), or right after it (TLS 1.3 reports the client's
    // certificate after the client has finished).
    const std::string untrusted = "&certfile=" + tls_file("other-client.pem") + "&keyfile=" +
                                  tls_file("other-client.key") + "&auth_mechanism=external";
    const std::string uri_6 = amqps("localhost", ca_query() + untrusted, secret);
    auto bad = co_await connect_error(uri_6);
    CHECK(bad.code);
    MESSAGE("EXTERNAL with an untrusted certificate: " << bad.describe());
    CHECK((bad.text.find("unknown ca") != std::string::npos ||
           bad.text.find("closed the connection") != std::string::npos ||
           bad.text.find("connection lost") != std::string::npos));
  });
}

TEST_CASE("tls: files that cannot be used fail before connecting, naming the file but never its contents") {
  test::run([]() -> asio::awaitable<void> {
    const std::string uri_7 = amqps("localhost", "cacertfile=/nonexistent/ca.pem", secret);
    auto missing = co_await connect_error(uri_7);
    CHECK(missing.code == errc::tls_setup_failed);
    CHECK(missing.text.find("/nonexistent/ca.pem") != std::string::npos);
    // The CA's key with the client's certificate.
    const std::string mismatch = ca_query() + "&certfile=" + tls_file("client.pem") +
                                 "&keyfile=" + tls_file("ca.key");
    const std::string uri_8 = amqps("localhost", mismatch, secret);
    auto wrong_key = co_await connect_error(uri_8);
    CHECK(wrong_key.code == errc::tls_setup_failed);
    INFO("wrong key: ", wrong_key.text);
    CHECK(wrong_key.text.find("does not match") != std::string::npos);
    CHECK(wrong_key.text.find("PRIVATE KEY") == std::string::npos);
    // A certificate where the key should be.
    const std::string not_key = ca_query() + "&certfile=" + tls_file("client.pem") +
                                "&keyfile=" + tls_file("ca.pem");
    const std::string uri_9 = amqps("localhost", not_key, secret);
    auto not_a_key = co_await connect_error(uri_9);
    CHECK(not_a_key.code == errc::tls_setup_failed);
    CHECK(not_a_key.text.find("BEGIN") == std::string::npos);
  });
}

TEST_CASE("tls: a TLS context of the user's own") {
  test::run([]() -> asio::awaitable<void> {
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    ctx->load_verify_file(tls_file("ca.pem"));
    connect_options o;
    o.tls_context = ctx;
    const std::string uri = amqps("localhost", "");
    auto pending = connect(uri, o);
    auto conn = co_await std::move(pending);
    co_await round_trip(conn, "own context");
    co_await conn.close();
    // Still checks the host name.
    const std::string uri_10 = amqps("127.0.0.1", "", secret);
    auto by_ip = co_await connect_error(uri_10, o);
    CHECK(by_ip.code == errc::certificate_rejected);
    // Files and a context of one's own do not mix.
    const std::string uri_11 = amqps("localhost", ca_query(), secret);
    auto both = co_await connect_error(uri_11, o);
    CHECK(both.code == errc::tls_setup_failed);
  });
}

TEST_CASE("tls: a frozen peer is detected by missed heartbeats") {
  test::run([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    test::tcp_proxy proxy(ex, tls_port);
    // The relay is at 127.0.0.1; the certificate is checked for localhost.
    const std::string uri = "amqps://guest:guest@127.0.0.1:" + std::to_string(proxy.port()) + "/?" +
                            ca_query() + "&server_name_indication=localhost&heartbeat=2";
    auto pending = connect(uri);
    auto conn = co_await std::move(pending);
    REQUIRE(conn.heartbeat() == 2);
    auto ch = co_await conn.open_channel();
    auto q = co_await ch.queue_declare("", {.exclusive = true});
    auto cons = co_await ch.consume(q.queue);
    auto next = test::start(ex, cons.next());
    proxy.freeze();
    const auto t0 = clock_type::now();
    const bool done = co_await test::wait_done(*next, 10s);
    REQUIRE(done);
    const double waited = std::chrono::duration<double>(clock_type::now() - t0).count();
    MESSAGE("TLS dead peer detected after " << waited << " s (heartbeat 2 s)");
    CHECK(waited >= 2.0);
    CHECK(waited < 7.0);
    CHECK(next->error.code == errc::heartbeat_timeout);
    CHECK(conn.close_reason().code == errc::heartbeat_timeout);
  });
}

TEST_CASE("endpoints: the first two refuse or time out, the third answers") {
  test::run([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    // Accepts and never answers: the handshake runs into connection_timeout.
    test::tcp_proxy silent(ex);
    silent.freeze();
    const std::string q = "connection_timeout=1000";
    const std::string refused = "amqp://guest:" + secret + "@127.0.0.1:1/?" + q;
    const std::string mute = "amqp://guest:" + secret + "@127.0.0.1:" + std::to_string(silent.port()) + "/?" + q;
    const std::string good = amqps("localhost", ca_query() + "&" + q);
    connect_options o;
    const auto t0 = clock_type::now();
    const std::vector<std::string> list{refused, mute, good};
    auto pending = connect(list, o);
    auto conn = co_await std::move(pending);
    const double took = std::chrono::duration<double>(clock_type::now() - t0).count();
    MESSAGE("connected to the third endpoint after " << took << " s");
    CHECK(took >= 0.9);
    CHECK(took < 5.0);
    CHECK(conn.endpoint().find("localhost:5671") != std::string::npos);
    co_await round_trip(conn, "third time lucky");
    co_await conn.close();

    // None answers: every endpoint is named with its reason.
    const std::string bad_tls = amqps("127.0.0.1", ca_query() + "&" + q, secret);
    const std::vector<std::string> none{refused, mute, bad_tls};
    auto e = co_await test::error_of(connect(none, o));
    INFO("error: ", e.describe());
    CHECK(e.code == errc::no_endpoint);
    CHECK(e.text.find("all 3 endpoints failed") != std::string::npos);
    CHECK(e.text.find("[1] 127.0.0.1:1: ") != std::string::npos);
    CHECK(e.text.find("[2] 127.0.0.1:" + std::to_string(silent.port()) + ": ") != std::string::npos);
    CHECK(e.text.find("within 1000 ms") != std::string::npos);
    CHECK(e.text.find("[3] 127.0.0.1:5671: ") != std::string::npos);
    CHECK(e.text.find("mismatch") != std::string::npos);
    CHECK(e.describe().find(secret) == std::string::npos);

    // Host and port pairs sharing the credentials, and the same reason for
    // every one: that reason's code.
    auto shared = parse_uri("amqp://guest:" + secret + "@127.0.0.1/");
    const std::vector<endpoint> dead{{"127.0.0.1", 1}, {"127.0.0.1", 2}};
    auto e2 = co_await test::error_of(connect(shared, dead, o));
    CHECK(e2.code == asio::error::connection_refused);
    CHECK(e2.text.find("[2] 127.0.0.1:2") != std::string::npos);
    CHECK(e2.describe().find(secret) == std::string::npos);
  });
}

TEST_CASE("endpoints: shuffled, every endpoint is still tried") {
  test::run([]() -> asio::awaitable<void> {
    connect_options o;
    o.shuffle_endpoints = true;
    auto good = test::broker_params();
    std::vector<connection_params> list;
    for (std::uint16_t port : {1, 2, 3}) {
      auto p = good;
      p.port = port;
      list.push_back(p);
    }
    list.push_back(good);
    for (int i = 0; i < 5; ++i) {
      auto pending = connect(list, o);
      auto conn = co_await std::move(pending);
      CHECK(conn.is_open());
      co_await conn.close();
    }
  });
}

TEST_CASE("tls: a wrong password over TLS is refused without showing it") {
  test::run([]() -> asio::awaitable<void> {
    const std::string uri_12 = amqps("localhost", ca_query(), secret);
    auto e = co_await connect_error(uri_12);
    CHECK(e.code == errc::authentication_failed);
  });
}
