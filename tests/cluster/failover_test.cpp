// Failover across the local cluster (scripts/cluster): a confirmed publisher
// and a consumer with manual acks, each connected with all three endpoints and
// recovery on, work a quorum queue while the node the publisher is connected
// to is killed (kill -9). Both carry on from another node within 5 s, and
// every confirmed message reaches the consumer. The killed node is started
// again at the end, and rejoins.
#include <doctest/doctest.h>

#include <asio/this_coro.hpp>
#include <chrono>
#include <cstdint>
#include <iomanip>
#include <iterator>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cluster.hpp"

using namespace warren;
using namespace std::chrono_literals;
namespace cluster = warren::test::cluster;
using clock_type = std::chrono::steady_clock;

namespace {

connect_options recovering(const std::string& name) {
  connect_options o;
  o.connection_name = name;
  o.recovery.enabled = true;
  o.recovery.initial_backoff = 100ms;
  o.recovery.max_backoff = 1000ms;
  o.recovery.republish_unconfirmed = true;
  return o;
}

// The recovery notices of one connection, with the time each arrived.
struct notice_log {
  std::vector<connection_notice> notices;
  std::vector<clock_type::time_point> times;
  // The time of the first notice of `type` at or after `since`, if any.
  std::optional<clock_type::time_point> first(connection_event_type type,
                                              clock_type::time_point since) const {
    for (std::size_t i = 0; i < notices.size(); ++i)
      if (notices[i].type == type && times[i] >= since) return times[i];
    return std::nullopt;
  }
};

// Records every notice until the connection is closed (next_notice() throws).
asio::awaitable<void> watch(connection c, std::shared_ptr<notice_log> log) {
  for (;;) {
    connection_notice n;
    try {
      n = co_await c.next_notice();
    } catch (const error&) {
      co_return;
    }
    log->notices.push_back(std::move(n));
    log->times.push_back(clock_type::now());
  }
}

double seconds(clock_type::duration d) { return std::chrono::duration<double>(d).count(); }

// "lost +0.021 s, reconnecting +0.105 s, recovered +0.115 s (amqp://...)": the
// notices since `since`.
std::string describe(const notice_log& log, clock_type::time_point since) {
  static constexpr const char* names[] = {"blocked",   "unblocked", "lost",         "reconnecting",
                                          "recovered", "gave up",   "replay failed"};
  std::ostringstream out;
  for (std::size_t i = 0; i < log.notices.size(); ++i) {
    if (log.times[i] < since) continue;
    const auto& n = log.notices[i];
    if (out.tellp() > 0) out << ", ";
    const auto type = static_cast<std::size_t>(n.type);
    out << (type < std::size(names) ? names[type] : "?") << " +" << std::fixed
        << std::setprecision(3) << seconds(log.times[i] - since) << " s";
    if (n.type == connection_event_type::recovered) out << " (" << n.endpoint << ")";
    if (n.type == connection_event_type::lost) out << " (" << n.reason << ")";
  }
  return out.tellp() > 0 ? out.str() : "no notice";
}

// Restarts the killed node however the test ends, so the next test finds
// the whole cluster.
struct restart_at_exit {
  bool armed = false;
  ~restart_at_exit() {
    if (armed && cluster::script("start") != 0)
      MESSAGE("scripts/cluster start failed after the test");
  }
};

// Per sequence number: published, confirmed, and how often received.
struct tally {
  std::uint64_t next = 0;
  std::uint64_t confirmed = 0, unknown = 0, nacked = 0, republished = 0, interrupted = 0;
  std::uint64_t abandoned = 0;  // failed while the publishers' channel was reopened (none expected)
  std::uint64_t received = 0, duplicates = 0, stale_acks = 0;
  std::vector<char> acked, seen;
  std::vector<clock_type::time_point> confirmed_at;
  bool stop = false;
  error_info publish_error, consume_error;

  void grow(std::uint64_t i) {
    if (i >= acked.size()) {
      acked.resize(i + 1024);
      seen.resize(i + 1024);
    }
  }
  std::uint64_t missing() const {
    std::uint64_t m = 0;
    for (std::size_t i = 0; i < acked.size(); ++i)
      if (acked[i] && !seen[i]) ++m;
    return m;
  }
};

// The publishers' channel. RabbitMQ 3.10 nacks every publish to a quorum
// queue on a channel that first reached the queue while its leader's node
// was down, for as long as that channel lives; a new channel publishes
// fine. So, as README "Recovery" advises, the publishers reopen their
// channel (channel::reopen, same handle) after a nack; the other
// publishers' calls wait for it. A channel reopened before the new leader
// is elected is spoilt again, nacks again, and is reopened again.
struct publishing {
  connection conn;
  channel ch;
  std::uint64_t generation = 0;
  std::uint64_t replaced = 0;
};

asio::awaitable<void> reopen_channel(std::shared_ptr<publishing> p) {
  ++p->generation;
  for (int attempt = 0; attempt < 100; ++attempt) {
    try {
      co_await p->ch.reopen();
      break;
    } catch (const error&) {
      // Lost meanwhile (errc::interrupted): once more when recovered.
    }
    co_await test::sleep_for(50ms);
  }
  ++p->replaced;
}

// One of several publishers sharing the channel: each takes the next
// sequence number and waits for its confirm.
asio::awaitable<void> publish_loop(std::shared_ptr<publishing> p, std::string queue,
                                   std::shared_ptr<tally> t) {
  basic_properties persistent;
  persistent.delivery_mode = 2;
  while (!t->stop) {
    const std::uint64_t i = t->next++;
    t->grow(i);
    const std::string body = std::to_string(i);
    auto ch = p->ch;
    const auto generation = p->generation;
    try {
      auto o = co_await ch.publish("", queue, body, persistent);
      if (o.republished) ++t->republished;
      if (o.status == publish_status::acked) {
        ++t->confirmed;
        t->acked[i] = 1;
        t->confirmed_at.push_back(clock_type::now());
      } else if (o.status == publish_status::unknown) {
        ++t->unknown;
      } else if (o.status == publish_status::nacked) {
        ++t->nacked;
        if (generation == p->generation) co_await reopen_channel(p);
      }
    } catch (const error& e) {
      // A publish started while the connection is lost fails with
      // errc::interrupted.
      if (e.code() == errc::interrupted) {
        ++t->interrupted;
        continue;
      }
      if (generation != p->generation) {
        ++t->abandoned;
        continue;
      }
      t->publish_error = e.info();
      co_return;
    }
  }
}

asio::awaitable<void> consume_loop(channel ch, consumer cons, std::shared_ptr<tally> t) {
  try {
    message m;
    while (co_await cons.next(m)) {
      const std::uint64_t i = std::stoull(m.body);
      t->grow(i);
      if (t->seen[i]) ++t->duplicates;
      t->seen[i] = 1;
      ++t->received;
      if (!ch.ack(m.delivery_tag)) ++t->stale_acks;
    }
  } catch (const error& e) {
    t->consume_error = e.info();
  }
}

}  // namespace

TEST_CASE("cluster: the publisher's node killed under a quorum queue workload" *
          doctest::skip(!cluster::wanted())) {
  test::run(
      []() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        const auto uris = cluster::uris();
        const std::string queue = test::unique_name("failover");

        // connect() is lazy: its arguments must outlive the co_await.
        const auto pub_options = recovering(test::unique_name("failover-pub"));
        const auto sub_options = recovering(test::unique_name("failover-sub"));
        auto p1 = connect(uris, pub_options);
        auto pub_conn = co_await std::move(p1);
        auto p2 = connect(uris, sub_options);
        auto sub_conn = co_await std::move(p2);
        const std::string pub_endpoint = pub_conn.endpoint();
        const int victim = cluster::node_of(pub_endpoint);
        REQUIRE(victim != 0);
        MESSAGE("publisher on " << pub_endpoint << ", consumer on " << sub_conn.endpoint());

        auto pub_log = std::make_shared<notice_log>();
        auto sub_log = std::make_shared<notice_log>();
        auto pub_watch = test::start(ex, watch(pub_conn, pub_log));
        auto sub_watch = test::start(ex, watch(sub_conn, sub_log));

        auto pub = co_await pub_conn.open_channel();
        field_table quorum;
        quorum.set("x-queue-type", "quorum");
        co_await pub.queue_declare(queue, {.durable = true, .arguments = &quorum});
        co_await pub.confirm_select();
        auto sub = co_await sub_conn.open_channel();
        auto cons = co_await sub.consume(queue, {.prefetch = 200});

        const long pid = cluster::os_pid(victim);
        REQUIRE(pid > 0);
        restart_at_exit restart;

        auto t = std::make_shared<tally>();
        // However the test ends, the publishers stop.
        struct stop_at_exit {
          std::shared_ptr<tally> t;
          ~stop_at_exit() { t->stop = true; }
        } stop_publishers{t};
        constexpr int publishers = 8;
        std::vector<std::shared_ptr<test::background>> pubs;
        auto shared = std::make_shared<publishing>();
        shared->conn = pub_conn;
        shared->ch = pub;
        for (int i = 0; i < publishers; ++i)
          pubs.push_back(test::start(ex, publish_loop(shared, queue, t)));
        auto subs = test::start(ex, consume_loop(sub, std::move(cons), t));

        co_await test::sleep_for(2s);
        const std::uint64_t confirmed_before = t->confirmed;
        REQUIRE(confirmed_before > 0);
        const auto killed_at = clock_type::now();
        restart.armed = true;
        REQUIRE(cluster::kill_hard(pid));
        MESSAGE("killed " << cluster::node_name(victim) << " (pid " << pid << ") after "
                          << confirmed_before << " confirmed publishes");

        // Recovered, and the first confirm after the kill.
        // (A confirm after the recovered notice comes through the new connection.)
        auto first_confirm_after = [&]() -> std::optional<clock_type::time_point> {
          const auto recovered = pub_log->first(connection_event_type::recovered, killed_at);
          if (!recovered) return std::nullopt;
          std::optional<clock_type::time_point> first;
          for (auto it = t->confirmed_at.rbegin(); it != t->confirmed_at.rend() && *it > *recovered;
               ++it)
            first = *it;
          return first;
        };
        for (int i = 0; i < 600 && !first_confirm_after(); ++i) co_await test::sleep_for(50ms);
        MESSAGE("publisher: " << describe(*pub_log, killed_at));
        MESSAGE("consumer: " << describe(*sub_log, killed_at));
        const auto pub_recovered = pub_log->first(connection_event_type::recovered, killed_at);
        REQUIRE(pub_recovered.has_value());
        const auto first_confirm = first_confirm_after();
        REQUIRE(first_confirm.has_value());
        const double failover = seconds(*pub_recovered - killed_at);
        const double confirm_gap = seconds(*first_confirm - killed_at);
        const std::string new_endpoint = pub_conn.endpoint();
        CHECK(cluster::node_of(new_endpoint) != victim);
        CHECK(pub_log->first(connection_event_type::lost, killed_at).has_value());

        // The workload carries on for a while on the surviving nodes.
        co_await test::sleep_for(3s);
        t->stop = true;
        for (auto& p : pubs) {
          const bool done = co_await test::wait_done(*p, 60s);
          REQUIRE(done);
        }
        for (int i = 0; i < 600 && t->missing() != 0; ++i) co_await test::sleep_for(50ms);
        const std::uint64_t missing = t->missing();

        MESSAGE("failover: the publisher recovered on "
                << new_endpoint << " " << failover
                << " s after the kill; first confirm (through the new connection) " << confirm_gap
                << " s after the kill");
        MESSAGE("confirmed " << t->confirmed << ", received " << t->received << ", missing "
                             << missing << ", duplicates " << t->duplicates << "; published "
                             << t->next << ", republished " << t->republished << ", unknown "
                             << t->unknown << ", nacked " << t->nacked << " (channel reopened "
                             << shared->replaced << " times), interrupted " << t->interrupted
                             << ", stale acks " << t->stale_acks << ", abandoned " << t->abandoned);
        CHECK(failover < 5.0);
        CHECK(confirm_gap < 5.0);
        CHECK(t->confirmed > confirmed_before);
        CHECK(missing == 0);
        // A reopen makes the other publishers' calls wait, not fail.
        CHECK(t->abandoned == 0);
        CHECK_FALSE(t->publish_error);
        CHECK_FALSE(t->consume_error);
        CHECK_FALSE(subs->done);
        CHECK(shared->ch.is_open());
        CHECK(sub.is_open());

        co_await shared->ch.queue_delete(queue);
        co_await pub_conn.close();
        co_await sub_conn.close();
        co_await test::wait_done(*subs, 10s);
        co_await test::wait_done(*pub_watch, 10s);
        co_await test::wait_done(*sub_watch, 10s);
      },
      std::chrono::seconds(240));
}
