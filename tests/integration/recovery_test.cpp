// Automatic recovery against the real broker: a connection cut by the
// network (a relay that drops every socket), closed by the broker
// (rabbitmqctl close_connection) or lost to a restart of the broker comes
// back under the same handles, with its topology, channels and consumers.
#include <doctest/doctest.h>

#include <asio/this_coro.hpp>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "proxy.hpp"

using namespace warren;
using namespace std::chrono_literals;

namespace {

connect_options recovering_options(const std::string& name) {
  connect_options o;
  o.connection_name = name;
  o.recovery.enabled = true;
  o.recovery.initial_backoff = 100ms;
  o.recovery.max_backoff = 1000ms;
  return o;
}

// The next notice within `limit`.
asio::awaitable<connection_notice> notice_within(connection& c, std::chrono::milliseconds limit = 15000ms) {
  auto n = co_await with_timeout(c.next_notice(), limit);
  co_return n;
}

// Waits until a `recovered` notice, checking the sequence lost → reconnecting... → recovered.
asio::awaitable<void> expect_recovery(connection& c) {
  auto lost = co_await notice_within(c);
  CHECK(lost.type == connection_event_type::lost);
  MESSAGE("lost: " << lost.reason);
  for (;;) {
    auto n = co_await notice_within(c);
    if (n.type == connection_event_type::reconnecting) {
      CHECK(n.attempt >= 1);
      CHECK(n.endpoint.find("***") != std::string::npos);
      continue;
    }
    INFO("notice: ", static_cast<int>(n.type), " ", n.reason);
    REQUIRE(n.type == connection_event_type::recovered);
    break;
  }
}

}  // namespace

TEST_CASE("recovery: a forced close is recovered; topology, channel, consumer and tags carry on") {
  test::run([]() -> asio::awaitable<void> {
    const std::string name = test::unique_name("recover-forced");
    const auto options = recovering_options(name);
    const std::string uri = test::broker_uri();
    auto pending = connect(uri, options);
    auto conn = co_await std::move(pending);
    auto ch = co_await conn.open_channel();
    const std::string ex = test::unique_name("rx");
    co_await ch.exchange_declare(ex, {.type = "direct", .auto_delete = true});
    auto q = co_await ch.queue_declare("", {.exclusive = true});  // server-named
    co_await ch.queue_bind(q.queue, ex, "k");
    co_await ch.confirm_select();
    auto cons = co_await ch.consume(q.queue, {.prefetch = 10});
    const std::string tag = cons.tag();

    auto before = co_await ch.publish(ex, "k", "before");
    CHECK(before.status == publish_status::acked);
    auto m1 = co_await test::next_within(cons, 10000ms);
    CHECK(m1.body == "before");

    const std::string pid = test::connection_pid(name);
    REQUIRE_FALSE(pid.empty());
    auto r = test::rabbitmqctl("close_connection '" + pid + "' 'recovery test'");
    REQUIRE(r.status == 0);
    co_await expect_recovery(conn);
    CHECK(conn.is_open());
    CHECK(ch.is_open());

    // The server-named queue came back under a new name, bound and consumed.
    const std::string renamed = conn.current_queue_name(q.queue);
    CHECK(renamed != q.queue);
    CHECK(renamed.rfind("amq.gen-", 0) == 0);
    CHECK(cons.tag() == tag);

    // A tag from before is stale: not sent, so the new channel stays open.
    CHECK_FALSE(ch.ack(m1.delivery_tag));
    CHECK(ch.stale_acks() == 1);

    CHECK(ch.in_confirm_mode());
    auto after = co_await ch.publish(ex, "k", "after");
    CHECK(after.status == publish_status::acked);
    auto m2 = co_await test::next_within(cons, 10000ms);
    CHECK(m2.body == "after");
    CHECK(m2.delivery_tag > m1.delivery_tag);
    CHECK(ch.ack(m2.delivery_tag));
    // Still open: a 406 for an unknown tag would have closed it.
    auto again = co_await ch.publish(ex, "k", "again");
    CHECK(again.status == publish_status::acked);
    auto m3 = co_await test::next_within(cons, 10000ms);
    CHECK(m3.body == "again");
    CHECK(ch.ack(m3.delivery_tag));
    co_await ch.queue_declare(renamed, {.passive = true});
    CHECK(ch.is_open());
    co_await conn.close();
  });
}

TEST_CASE("recovery: a cut socket; in-flight operations are interrupted, publishes unknown or republished") {
  test::run([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    for (bool republish : {false, true}) {
      test::tcp_proxy proxy(ex);
      auto options = recovering_options(test::unique_name("recover-cut"));
      options.recovery.republish_unconfirmed = republish;
      auto params = proxy.params();
      auto pending = connect(params, options);
      auto conn = co_await std::move(pending);
      auto ch = co_await conn.open_channel();
      const std::string queue = test::unique_name("rq");
      co_await ch.queue_declare(queue, {.auto_delete = false});
      co_await ch.confirm_select();

      // Nothing gets through: the publish waits for its confirm, the
      // declare for its reply, when the socket drops.
      proxy.freeze();
      auto publishing = test::start(ex, ch.publish("", queue, "in flight"));
      const std::string other = test::unique_name("rq2");
      auto declaring = test::start(ex, ch.queue_declare(other));
      co_await test::sleep_for(200ms);
      proxy.unfreeze();
      proxy.cut();

      const bool declared = co_await test::wait_done(*declaring, 10s);
      REQUIRE(declared);
      CHECK(declaring->error.code == errc::interrupted);
      const bool published = co_await test::wait_done(*publishing, 15s);
      REQUIRE(published);
      CHECK_FALSE(publishing->error);
      co_await expect_recovery(conn);
      // Retried, the declare works on the recovered connection.
      co_await ch.queue_declare(other, {.auto_delete = true});
      auto q = co_await ch.queue_declare(queue, {.passive = true});
      MESSAGE("republish=" << republish << ": " << q.message_count << " in the queue");
      CHECK(q.message_count == (republish ? 1u : 0u));
      co_await ch.queue_delete(queue);
      co_await ch.queue_delete(other);
      co_await conn.close();
    }
  });
}

TEST_CASE("recovery: pipelined publishes across a loss: sequence numbers go on, unconfirmed ones unknown or republished") {
  test::run([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    for (bool republish : {false, true}) {
      CAPTURE(republish);
      test::tcp_proxy proxy(ex);
      auto options = recovering_options(test::unique_name("recover-pipelined"));
      options.recovery.republish_unconfirmed = republish;
      auto params = proxy.params();
      auto pending = connect(params, options);
      auto conn = co_await std::move(pending);
      // A channel closed before the loss is not re-opened, so the one in use
      // gets another number: its prepared publish must follow.
      auto first = co_await conn.open_channel();
      auto ch = co_await conn.open_channel();
      co_await first.close();
      const std::string queue = test::unique_name("rpq");
      co_await ch.queue_declare(queue, {.auto_delete = false});
      co_await ch.confirm_select();
      const auto prepared = ch.prepare_publish("", queue, {});

      std::vector<std::uint64_t> seqs;
      for (int i = 0; i < 3; ++i) seqs.push_back(co_await ch.publish_pipelined("", queue, "before"));
      for (int i = 0; i < 2; ++i) seqs.push_back(co_await ch.publish_pipelined(prepared, "before"));
      auto settled = co_await ch.wait_for_confirms();
      CHECK(settled.acked == 5);
      CHECK(settled.unknown == 0);

      // Sent into a frozen relay, then the socket is cut: never confirmed.
      proxy.freeze();
      for (int i = 0; i < 2; ++i) seqs.push_back(co_await ch.publish_pipelined("", queue, "lost"));
      seqs.push_back(co_await ch.publish_pipelined(prepared, "lost"));
      co_await test::sleep_for(200ms);
      CHECK(ch.unconfirmed() == 3);
      proxy.unfreeze();
      proxy.cut();
      co_await expect_recovery(conn);

      seqs.push_back(co_await ch.publish_pipelined("", queue, "after"));
      seqs.push_back(co_await ch.publish_pipelined(prepared, "after"));
      std::uint64_t seq = 0;
      for (int i = 0; i < 100 && !ch.try_publish(prepared, "after", &seq); ++i)
        co_await test::sleep_for(10ms);
      REQUIRE(seq != 0);
      seqs.push_back(seq);
      // One sequence, rising across the recovery; republished publishes took
      // the next three numbers on the new channel.
      const std::vector<std::uint64_t> want =
          republish ? std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 14}
                    : std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
      CHECK(seqs == want);

      auto after = co_await ch.wait_for_confirms();
      CHECK(after.nacked == 0);
      if (republish) {
        CHECK(after.republished == 3);
        CHECK(after.unknown == 0);
        CHECK(after.acked == 6);  // the three republished and the three new
      } else {
        CHECK(after.unknown == 3);
        CHECK(after.republished == 0);
        CHECK(after.acked == 3);
      }
      auto q = co_await ch.queue_declare(queue, {.passive = true});
      CHECK(q.message_count == (republish ? 11u : 8u));
      // Whatever is in the queue is whole: the republished frames went to
      // the channel's new number.
      std::size_t lost = 0;
      while (auto m = co_await ch.get(queue, true)) {
        CHECK((m->body == "before" || m->body == "lost" || m->body == "after"));
        if (m->body == "lost") ++lost;
      }
      CHECK(lost == (republish ? 3u : 0u));
      co_await ch.queue_delete(queue);
      co_await conn.close();
    }
  });
}

TEST_CASE("recovery: gives up after max_attempts, and a user close stops it") {
  test::run([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    test::tcp_proxy proxy(ex);
    auto options = recovering_options(test::unique_name("recover-give-up"));
    options.recovery.max_attempts = 2;
    auto params = proxy.params();
    params.connection_timeout = 300ms;
    auto pending = connect(params, options);
    auto conn = co_await std::move(pending);
    auto ch = co_await conn.open_channel();
    proxy.freeze();  // every new connection hangs in its handshake
    proxy.cut();
    auto lost = co_await notice_within(conn);
    CHECK(lost.type == connection_event_type::lost);
    int attempts = 0;
    for (;;) {
      auto n = co_await notice_within(conn);
      if (n.type == connection_event_type::reconnecting) {
        ++attempts;
        continue;
      }
      CHECK(n.type == connection_event_type::gave_up);
      CHECK(n.reason.find("within 300 ms") != std::string::npos);
      break;
    }
    CHECK(attempts == 2);
    auto e = co_await test::error_of(ch.queue_declare(""));
    CHECK(e.code);
    co_await conn.close();

    // A close while recovering ends it: no more attempts.
    test::tcp_proxy proxy2(ex);
    auto options2 = recovering_options(test::unique_name("recover-close"));
    auto params2 = proxy2.params();
    params2.connection_timeout = 300ms;
    auto pending2 = connect(params2, options2);
    auto conn2 = co_await std::move(pending2);
    proxy2.freeze();
    proxy2.cut();
    auto lost2 = co_await notice_within(conn2);
    CHECK(lost2.type == connection_event_type::lost);
    co_await test::sleep_for(500ms);
    CHECK(conn2.recovering());
    co_await conn2.close();
    CHECK_FALSE(conn2.recovering());
    const auto tried = proxy2.accepted();
    co_await test::sleep_for(1500ms);
    CHECK(proxy2.accepted() == tried);
  });
}

namespace {

// Runs `command` (a shell command line) on a thread of its own, so the
// connections keep running meanwhile; returns its exit status.
asio::awaitable<int> run_aside(std::string command) {
  auto status = std::make_shared<std::atomic<int>>(-2);
  std::thread t([command, status] {
    const int st = std::system(command.c_str());
    status->store(WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  });
  while (status->load() == -2) co_await test::sleep_for(100ms);
  t.join();
  co_return status->load();
}

// A confirmed publisher of persistent messages to a durable queue and a
// consumer with manual acks, both with recovery on, while `disrupt` breaks
// the broker. Checks that every confirmed message is received at least
// once and that nothing throws; prints the counts.
asio::awaitable<void> survive(const std::string& what, std::string disrupt) {
  auto ex = co_await asio::this_coro::executor;
  const std::string queue = test::unique_name("survive");
  auto options = recovering_options(test::unique_name("recover-" + what));
  const std::string uri = test::broker_uri_with("connection_timeout=5000");
  auto p1 = connect(uri, options);
  auto pub_conn = co_await std::move(p1);
  auto p2 = connect(uri, options);
  auto sub_conn = co_await std::move(p2);
  auto pub = co_await pub_conn.open_channel();
  co_await pub.queue_declare(queue, {.durable = true});
  co_await pub.confirm_select();
  auto sub = co_await sub_conn.open_channel();
  auto cons = co_await sub.consume(queue, {.prefetch = 50});

  constexpr std::size_t limit = 200000;
  struct tally {
    std::uint64_t confirmed = 0, unknown = 0, received = 0, duplicates = 0, stale = 0;
    std::vector<bool> seen = std::vector<bool>(limit), acked = std::vector<bool>(limit);
    bool stop = false;
    bool ended = false;
  };
  auto t = std::make_shared<tally>();
  basic_properties persistent;
  persistent.delivery_mode = 2;
  auto publisher = [&pub, &queue, t, persistent]() -> asio::awaitable<void> {
    for (std::size_t i = 0; i < limit && !t->stop; ++i) {
      const std::string body = std::to_string(i);
      auto o = co_await pub.publish("", queue, body, persistent);
      if (o.status == publish_status::acked) {
        ++t->confirmed;
        t->acked[i] = true;
      } else if (o.status == publish_status::unknown) {
        ++t->unknown;
      }
    }
  };
  auto take = [t, &sub](const message& m) {
    const auto i = std::stoull(m.body);
    if (t->seen[i]) ++t->duplicates;
    t->seen[i] = true;
    ++t->received;
    if (!sub.ack(m.delivery_tag)) ++t->stale;
  };
  auto subscriber = [&cons, t, take]() -> asio::awaitable<void> {
    for (;;) {
      auto m = co_await cons.next();
      if (!m) break;
      take(*m);
    }
    t->ended = true;
  };
  auto pubs = test::start(ex, publisher());
  auto subs = test::start(ex, subscriber());
  co_await test::sleep_for(1s);
  const auto t0 = std::chrono::steady_clock::now();
  const int rc = co_await run_aside(disrupt);
  CHECK(rc == 0);
  // Both come back by themselves.
  for (int i = 0; i < 600 && (pub_conn.recovering() || sub_conn.recovering() || !pub.is_open() ||
                              !sub.is_open());
       ++i)
    co_await test::sleep_for(100ms);
  const double back = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(pub.is_open());
  CHECK(sub.is_open());
  co_await test::sleep_for(2s);
  t->stop = true;
  const bool pub_done = co_await test::wait_done(*pubs, 60s);
  REQUIRE(pub_done);
  CHECK_FALSE(pubs->error);
  auto all_seen = [t] {
    for (std::size_t i = 0; i < limit; ++i)
      if (t->acked[i] && !t->seen[i]) return false;
    return true;
  };
  for (int i = 0; i < 300 && !all_seen(); ++i) co_await test::sleep_for(100ms);
  std::uint64_t missing = 0;
  for (std::size_t i = 0; i < limit; ++i)
    if (t->acked[i] && !t->seen[i]) ++missing;
  MESSAGE(what << ": back after " << back << " s; confirmed " << t->confirmed << ", unknown "
               << t->unknown << ", received " << t->received << ", duplicates " << t->duplicates
               << ", stale acks " << t->stale << ", missing " << missing);
  CHECK(t->confirmed > 0);
  CHECK(missing == 0);
  CHECK_FALSE(t->ended);
  CHECK_FALSE(subs->done);
  co_await pub.queue_delete(queue);
  co_await pub_conn.close();
  co_await sub_conn.close();
}

std::string ctl() { return std::string(::geteuid() == 0 ? "" : "sudo -n ") + "env PATH=\"$PATH:/usr/sbin:/sbin\" timeout 120 rabbitmqctl "; }

}  // namespace

TEST_CASE("recovery: a graceful broker restart (stop_app / start_app) under a confirmed publisher and a consumer") {
  test::run([]() -> asio::awaitable<void> {
    co_await survive("stop_app", ctl() + "stop_app >/dev/null && sleep 1 && " + ctl() + "start_app >/dev/null");
  }, std::chrono::seconds(180));
}

TEST_CASE("recovery: the broker killed (kill -9) and started again under a confirmed publisher and a consumer") {
  test::run([]() -> asio::awaitable<void> {
    // The node's OS pid, from the node itself.
    auto r = test::rabbitmqctl("eval 'os:getpid().'");
    std::string pid;
    for (char c : r.output)
      if (c >= '0' && c <= '9') pid += c;
    REQUIRE_FALSE(pid.empty());
    // Started again as scripts/rabbitmq starts it, with the same
    // configuration (the TLS listener included); recovery finds it once it
    // answers.
    const std::string start = std::string(::geteuid() == 0 ? "" : "sudo -n ") +
                              "env PATH=\"$PATH:/usr/sbin:/sbin\" rabbitmq-server -detached";
    co_await survive("kill -9", "kill -9 " + pid + " && sleep 1 && " + start);
  }, std::chrono::seconds(300));
}
