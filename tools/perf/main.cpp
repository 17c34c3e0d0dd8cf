// warren-perf: RabbitMQ PerfTest's workloads and report, on warren.
//
// Every producer and consumer has its own connection, as in PerfTest; all of
// them, the reporter and the signal handler run on one io_context driven by
// one thread. On a small machine that leaves the other cores to the broker,
// needs no locks or atomics on the per-message path, and makes the process's
// CPU time the cost of the client itself; one warren connection moves several
// hundred thousand messages a second on one core, more than a broker on the
// same machine takes.

#include <unistd.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "tools/perf/latency.hpp"
#include "tools/perf/measure.hpp"
#include "tools/perf/options.hpp"
#include "tools/redact.hpp"
#include "warren/client/connection.hpp"
#include "warren/client/timeout.hpp"
#include "warren/client/uri.hpp"
#include "warren/codec/bytes.hpp"

namespace warren::perf {
namespace {

using asio::use_awaitable;
constexpr auto tuple_awaitable = asio::experimental::as_tuple(asio::use_awaitable);

// "warren-perf: TEXT" on stderr, any password in TEXT hidden: errors can
// echo what was typed.
void complain(std::string_view text) {
  const std::string line = "warren-perf: " + tools::redact_passwords(text) + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
}

// An exception's text; warren::error's what() repeats its code's message.
std::string reason(const std::exception& e) {
  if (const auto* w = dynamic_cast<const error*>(&e)) return w->info().describe();
  return e.what();
}

struct producer {
  connection conn;
  channel ch;
  bool done = false;
};

struct consumer_slot {
  connection conn;
  channel ch;
  consumer stream;
  std::uint64_t received = 0;
  bool done = false;
};

struct counters {
  std::uint64_t sent = 0, confirmed = 0, nacked = 0, received = 0;
  // Published in confirm mode, and neither confirmed nor nacked when the
  // producer's connection failed.
  std::uint64_t failed = 0;
};

class run {
 public:
  run(asio::io_context& io, options o)
      : io_(io),
        o_(std::move(o)),
        wake_(io),
        interval_timer_(io),
        limit_timer_(io),
        taken_timer_(io) {}

  asio::awaitable<int> main() {
    try {
      co_await setup();
    } catch (const std::exception& e) {
      complain("setup failed: " + reason(e));
      co_return 2;
    }
    asio::signal_set signals(io_, SIGINT, SIGTERM);
    signals.async_wait([this](std::error_code ec, int) {
      if (!ec) stop("interrupted");
    });

    t0_ = now_ns();
    last_report_ = t0_;
    cpu0_ = cpu_now();
    for (auto& p : producers_) {
      asio::co_spawn(io_, produce(p), asio::detached);
      // Unroutable mandatory messages come back; left unread they would
      // fill the returns queue and pause the connection.
      if (o_.mandatory) asio::co_spawn(io_, drain_returns(p), asio::detached);
    }
    for (auto& c : consumers_) asio::co_spawn(io_, consume(c), asio::detached);
    asio::co_spawn(io_, report_intervals(), asio::detached);
    if (o_.time_limit > 0) {
      limit_timer_.expires_after(
          std::chrono::nanoseconds(static_cast<std::int64_t>(o_.time_limit * 1e9)));
      limit_timer_.async_wait([this](std::error_code ec) {
        if (!ec) stop("time limit");
      });
    }

    while (!stopping_ && !finished()) {
      wake_.expires_at(asio::steady_timer::time_point::max());
      co_await wake_.async_wait(tuple_awaitable);
    }
    // After a failure the other producers settle what they have in flight
    // (see produce), so that the summary counts it: wait for them, 10 s at most.
    const auto settle_by = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (failures_ != 0 && !producers_finished() &&
           std::chrono::steady_clock::now() < settle_by) {
      wake_.expires_at(settle_by);
      co_await wake_.async_wait(tuple_awaitable);
    }
    const std::uint64_t end = now_ns();
    if (!stopping_) stop("done");
    if (send_end_ == 0) send_end_ = end;
    if (producers_end_ == 0) producers_end_ = end;
    if (receive_end_ == 0 || !consumers_finished()) receive_end_ = end;
    // Ctrl-C from here on ends the wait for the queue count (the closes
    // that follow are bounded by the library).
    signals.cancel();
    signals.async_wait([this](std::error_code ec, int) {
      if (ec) return;
      interrupted_wait_ = true;
      taken_timer_.cancel();
    });
    limit_timer_.cancel();
    interval_timer_.cancel();

    // Rates end when the broker holds every message sent, not when the
    // socket took the bytes.
    if (o_.taken && !producers_.empty()) {
      try {
        co_await wait_taken();
      } catch (const std::exception& e) {
        complain("waiting for the queue count failed: " + reason(e));
      }
    }
    signals.clear();
    const cpu_times cpu = cpu_now() - cpu0_;
    report_interval(true);
    summary(cpu);

    for (auto& p : producers_) co_await close_quietly(p.conn);
    for (auto& c : consumers_) co_await close_quietly(c.conn);
    co_await close_quietly(setup_conn_);
    co_return failures_ != 0 ? 1 : 0;
  }

 private:
  static asio::awaitable<void> close_quietly(connection& c) {
    if (!c || !c.is_open()) co_return;
    try {
      co_await c.close();
    } catch (const std::exception&) {
    }
  }

  bool producers_finished() const {
    for (const auto& p : producers_)
      if (!p.done) return false;
    return true;
  }
  bool consumers_finished() const {
    if (shared_target_ != 0 && totals_.received >= shared_target_) return true;
    for (const auto& c : consumers_)
      if (!c.done) return false;
    return true;
  }
  bool finished() const {
    const bool producers_bounded = producers_.empty() || o_.producer_count != 0;
    const bool consumers_bounded =
        consumers_.empty() || consumer_limit_ != 0 || shared_target_ != 0;
    if (!producers_bounded || !consumers_bounded) return false;
    return producers_finished() && consumers_finished();
  }

  void stop(const char* why) {
    if (stopping_) return;
    stopping_ = true;
    stop_reason_ = why;
    wake_.cancel();
    // Consumers waiting in next() end when their connection closes.
    for (auto& c : consumers_)
      if (!c.done) asio::co_spawn(io_, close_quietly(c.conn), asio::detached);
  }

  void wake() { wake_.cancel(); }

  asio::awaitable<connection> open_connection(const std::string& name, bool consumer = false) {
    connect_options co;
    co.connection_name = name;
    if (consumer) {
      co.receive_batch_bytes = o_.receive_batch_bytes;
      co.receive_batch_wait = std::chrono::microseconds(o_.receive_batch_wait_us);
    }
    auto pending = connect(o_.uris, co);
    connection c = co_await std::move(pending);
    note_fallback(c);
    co_return c;
  }

  // With several URIs, say once per endpoint when connections land past the
  // first one: the brokers before it did not answer.
  void note_fallback(const connection& c) {
    if (o_.uris.size() < 2) return;
    const std::string reached = c.endpoint();
    connection_params first;
    if (!parse_uri(o_.uris.front(), first) && to_uri(first, true) == reached) return;
    if (std::find(fallbacks_.begin(), fallbacks_.end(), reached) != fallbacks_.end()) return;
    fallbacks_.push_back(reached);
    complain("connected to " + reached + ", not to the first URI given");
  }

  asio::awaitable<void> setup() {
    std::random_device rd;
    char tag[32];
    std::snprintf(tag, sizeof tag, "%08x", rd());
    run_id_ = tag;
    if (o_.exchange.empty() && o_.queue.empty() && o_.consumers > 0 && o_.producers > 0)
      throw std::runtime_error("the default exchange (-e \"\") needs a named queue (-u)");
    routing_key_ = !o_.routing_key.empty() ? o_.routing_key
                   : !o_.queue.empty()     ? o_.queue
                                           : "warren-perf-" + run_id_;

    setup_conn_ = co_await open_connection("warren-perf setup");
    setup_ch_ = co_await setup_conn_.open_channel();
    if (!o_.exchange.empty() && o_.exchange.rfind("amq.", 0) != 0)
      co_await setup_ch_.exchange_declare(o_.exchange, {.type = o_.exchange_type});
    if (!o_.queue.empty()) {
      // An existing queue is used as it is, whatever it was declared with.
      bool exists = true;
      try {
        auto r = co_await setup_ch_.queue_declare(o_.queue, {.passive = true});
        baseline_ = r.message_count;
      } catch (const error&) {
        exists = false;
      }
      if (!exists) {
        setup_ch_ = co_await setup_conn_.open_channel();
        auto r = co_await setup_ch_.queue_declare(
            o_.queue, {.durable = o_.persistent, .auto_delete = o_.auto_delete});
        baseline_ = r.message_count;
      }
      if (!o_.exchange.empty()) co_await setup_ch_.queue_bind(o_.queue, o_.exchange, routing_key_);
    }

    if (o_.persistent) properties_.delivery_mode = 2;
    flags_.mandatory = o_.mandatory;
    for (int i = 0; i < o_.producers; ++i) {
      producer p;
      p.conn = co_await open_connection("warren-perf producer " + std::to_string(i));
      p.ch = co_await p.conn.open_channel();
      if (o_.confirm > 0) co_await p.ch.confirm_select(static_cast<std::size_t>(o_.confirm));
      producers_.push_back(std::move(p));
    }

    consumer_limit_ = o_.consumer_count;
    if (consumer_limit_ == 0 && o_.producer_count != 0 && o_.producers > 0) {
      const std::uint64_t all = o_.producer_count * static_cast<std::uint64_t>(o_.producers);
      if (o_.queue.empty())
        consumer_limit_ = all;  // every consumer's own queue gets every message
      else
        shared_target_ = all;
    }
    for (int i = 0; i < o_.consumers; ++i) {
      consumer_slot c;
      c.conn = co_await open_connection("warren-perf consumer " + std::to_string(i), true);
      c.ch = co_await c.conn.open_channel();
      std::string queue = o_.queue;
      if (queue.empty()) {
        auto r = co_await c.ch.queue_declare("", {.exclusive = true, .auto_delete = true});
        queue = r.queue;
        co_await c.ch.queue_bind(queue, o_.exchange, routing_key_);
      }
      c.stream = co_await c.ch.consume(queue, {.no_ack = o_.auto_ack, .prefetch = o_.prefetch});
      consumers_.push_back(std::move(c));
    }
  }

  asio::awaitable<void> produce(producer& p) {
    std::string body(o_.size, '\0');
    for (std::size_t i = 12; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 26);
    const bool confirms = o_.confirm > 0;
    const auto window = static_cast<std::uint64_t>(confirms ? o_.confirm : 0);
    // Publish times by sequence number, for confirm latency.
    std::size_t ring_size = 1;
    while (ring_size < window + 2) ring_size <<= 1;
    std::vector<std::uint64_t> ring(confirms ? ring_size : 0);
    const std::uint64_t mask = ring_size - 1;
    std::uint64_t last_seq = 0;  // highest sequence number published
    std::uint64_t tracked = 1;   // lowest whose confirm is not yet counted
    std::uint64_t tally_epoch = 0;
    // Let the connection's writer run every so often: a publish that needs
    // not wait completes without suspending.
    const std::uint64_t yield_every = std::max<std::uint64_t>(1, (64u << 10) / (o_.size + 64));
    std::uint64_t yield_in = yield_every;
    std::uint64_t t = 0;
    int fresh_for = 1;
    bool waited = false;
    const double period_ns = o_.rate > 0 ? 1e9 / o_.rate : 0;
    asio::steady_timer pace(io_);
    prepared_publish prepared;
    try {
      // Exchange, routing key and properties never change: encode them once.
      if (o_.prepared)
        prepared = p.ch.prepare_publish(o_.exchange, routing_key_, properties_, flags_);
      for (std::uint64_t i = 0; !stopping_ && (o_.producer_count == 0 || i < o_.producer_count);
           ++i) {
        if (period_ns > 0) {
          // Ahead of schedule by more than half a millisecond: sleep. Less is
          // not worth a timer per message; the rate holds over any interval.
          const auto due = t0_ + static_cast<std::uint64_t>(static_cast<double>(i) * period_ns);
          const std::uint64_t now = now_ns();
          if (due > now + 500000) {
            pace.expires_after(std::chrono::nanoseconds(due - now));
            co_await pace.async_wait(tuple_awaitable);
            if (stopping_) break;
          }
        }
        // The send time is read afresh every 16 messages (and after any
        // wait): a clock read costs as much as a publish, and 16 publishes
        // take about a microsecond, the resolution latencies are reported in.
        if (period_ns > 0 || --fresh_for == 0 || waited) {
          t = now_ns();
          fresh_for = 16;
        }
        auto* stamp = reinterpret_cast<std::uint8_t*>(body.data());
        detail::store32(stamp, static_cast<std::uint32_t>(i));
        detail::store64(stamp + 4, t);
        std::uint64_t seq = 0;
        waited = false;
        if (!o_.prepared) {
          waited = confirms && p.ch.unconfirmed() >= window;
          seq =
              co_await p.ch.publish_pipelined(o_.exchange, routing_key_, body, properties_, flags_);
        } else if (!p.ch.try_publish(prepared, body, &seq)) {
          waited = true;
          seq = co_await p.ch.publish_pipelined(prepared, body);
        }
        ++totals_.sent;
        if (confirms) {
          if (waited) t = now_ns();
          ring[seq & mask] = t;
          last_seq = seq;
          settle(p, last_seq, tracked, ring, mask);
          // Nacks are only known from the channel's tallies, which can be
          // read without waiting when nothing is outstanding.
          if (tally_epoch != epoch_ && p.ch.unconfirmed() == 0) {
            tally_epoch = epoch_;
            const confirm_summary s = co_await p.ch.wait_for_confirms();
            count_nacks(s);
          }
        }
        if (--yield_in == 0) {
          yield_in = yield_every;
          co_await asio::post(io_, use_awaitable);
        }
      }
      send_end_ = std::max(send_end_, now_ns());
      if (confirms && !stopping_) {
        const confirm_summary s = co_await p.ch.wait_for_confirms();
        settle(p, last_seq, tracked, ring, mask);
        count_nacks(s);
      }
      // Stopped by another's failure: settle what this producer has in
      // flight, within a bound, so that the counts add up; its connection
      // may be failing too (the same broker killed, say).
      if (confirms && stopping_ && failures_ != 0) {
        if (!p.conn.is_open()) throw error(p.conn.close_reason());
        auto pending = with_timeout(p.ch.wait_for_confirms(), std::chrono::seconds(5));
        const confirm_summary s = co_await std::move(pending);
        settle(p, last_seq, tracked, ring, mask);
        count_nacks(s);
      }
    } catch (const std::exception& e) {
      // Nothing stops a producer by closing its connection: this is a real
      // failure (a lost connection, say). What the broker never settled
      // failed with it; the run ends with the summary and a non-zero exit.
      if (confirms) totals_.failed += last_seq + 1 - tracked;
      ++failures_;
      complain("producer failed: " + reason(e));
      stop("failure");
    }
    producers_end_ = std::max(producers_end_, now_ns());
    p.done = true;
    wake();
  }

  asio::awaitable<void> drain_returns(producer& p) {
    try {
      for (;;) {
        returned_message r = co_await p.ch.next_return();
        ++returned_;
      }
    } catch (const std::exception&) {
    }
  }

  void settle(producer& p, std::uint64_t last_seq, std::uint64_t& tracked,
              const std::vector<std::uint64_t>& ring, std::uint64_t mask) {
    // Everything below the oldest unconfirmed publish is settled.
    const std::uint64_t settled_end = last_seq + 1 - p.ch.unconfirmed();
    if (tracked >= settled_end) return;
    const std::uint64_t now = now_ns();
    totals_.confirmed += settled_end - tracked;
    for (; tracked < settled_end; ++tracked) confirm_latency_.add(now - ring[tracked & mask]);
  }

  void count_nacks(const confirm_summary& s) {
    // settle() counted every settled publish as confirmed.
    totals_.nacked += s.nacked;
    totals_.confirmed -= std::min(totals_.confirmed, s.nacked);
  }

  asio::awaitable<void> consume(consumer_slot& c) {
    std::uint64_t unacked = 0;
    std::uint64_t last_tag = 0;
    const std::uint64_t every = o_.multi_ack_every;
    std::uint64_t now = 0;
    int fresh_for = 1;
    // One message, read into again and again: its storage circulates with
    // the stream's, so nothing is allocated per delivery.
    message m;
    try {
      while (!stopping_) {
        if (consumer_limit_ != 0 && c.received >= consumer_limit_) break;
        if (shared_target_ != 0 && totals_.received >= shared_target_) break;
        // What one read brought in is taken without a coroutine per message;
        // only an empty buffer waits.
        bool waited = false;
        if (!c.stream.try_next(m)) {
          if (!co_await c.stream.next(m)) break;
          waited = true;
        }
        // As for send times: the clock is read afresh after a wait for a
        // delivery and every 16 deliveries taken from the buffer.
        if (waited || --fresh_for == 0) {
          now = now_ns();
          fresh_for = 16;
        }
        if (m.body.size() >= 12) {
          const auto* stamp = reinterpret_cast<const std::uint8_t*>(m.body.data());
          const std::uint64_t sent = detail::load64(stamp + 4);
          if (sent != 0 && sent <= now) consumer_latency_.add(now - sent);
        }
        ++c.received;
        ++totals_.received;
        receive_end_ = now;
        if (!o_.auto_ack) {
          last_tag = m.delivery_tag;
          if (every > 1) {
            if (++unacked >= every) {
              c.ch.ack(last_tag, true);
              unacked = 0;
            }
          } else {
            c.ch.ack(last_tag);
          }
        }
      }
      if (unacked != 0) c.ch.ack(last_tag, true);
    } catch (const std::exception& e) {
      // stop() closes the consumers' connections: only a failure before it counts.
      if (!stopping_) {
        ++failures_;
        complain("consumer failed: " + reason(e));
        stop("failure");
      }
    }
    c.done = true;
    wake();
  }

  // Polls the -u queue until it holds every message sent that was neither
  // nacked nor returned. Gives up (no taken rate) when the count stands still
  // for 10 s or on Ctrl-C: something else is taking from the queue.
  asio::awaitable<void> wait_taken() {
    const std::uint64_t landed = totals_.sent - std::min(totals_.sent, totals_.nacked + returned_);
    const std::uint64_t want = baseline_ + landed;
    constexpr auto patience = std::chrono::seconds(10);
    std::uint32_t last = 0;
    auto moved = std::chrono::steady_clock::now();
    while (!interrupted_wait_) {
      auto r = co_await setup_ch_.queue_declare(o_.queue, {.passive = true});
      if (r.message_count >= want) {
        taken_end_ = now_ns();
        co_return;
      }
      const auto t = std::chrono::steady_clock::now();
      if (r.message_count != last) {
        last = r.message_count;
        moved = t;
      } else if (t - moved >= patience) {
        break;
      }
      taken_timer_.expires_after(std::chrono::microseconds(500));
      co_await taken_timer_.async_wait(tuple_awaitable);
    }
    std::fprintf(stderr,
                 "warren-perf: the queue holds %" PRIu32 " of the %" PRIu64
                 " messages expected; no taken rate\n",
                 last, want);
  }

  asio::awaitable<void> report_intervals() {
    const auto step = std::chrono::nanoseconds(static_cast<std::int64_t>(o_.interval * 1e9));
    auto next = std::chrono::steady_clock::time_point(std::chrono::nanoseconds(t0_)) + step;
    while (!stopping_ && !finished()) {
      interval_timer_.expires_at(next);
      auto [ec] = co_await interval_timer_.async_wait(tuple_awaitable);
      if (ec || stopping_) break;
      report_interval(false);
      next += step;
    }
  }

  static std::string triple(const percentiles& p) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "%" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64, p[0],
                  p[1], p[2], p[3], p[4]);
    return buf;
  }
  static std::string json_array(const percentiles& p) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "[%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 "]",
                  p[0], p[1], p[2], p[3], p[4]);
    return buf;
  }

  // One interval line; `last` reports the partial interval at the end (only
  // if anything happened in it) so the histograms hold every sample.
  void report_interval(bool last) {
    const std::uint64_t now = now_ns();
    const double secs = static_cast<double>(now - last_report_) / 1e9;
    const counters d{totals_.sent - reported_.sent, totals_.confirmed - reported_.confirmed,
                     totals_.nacked - reported_.nacked, totals_.received - reported_.received};
    const bool any = d.sent || d.confirmed || d.nacked || d.received ||
                     !consumer_latency_.empty() || !confirm_latency_.empty();
    const percentiles cl = consumer_latency_.summarise();
    const percentiles fl = confirm_latency_.summarise();
    consumer_all_.add_all(consumer_latency_.samples());
    confirm_all_.add_all(confirm_latency_.samples());
    consumer_latency_.clear();
    confirm_latency_.clear();
    reported_ = totals_;
    last_report_ = now;
    ++epoch_;
    // The run's last, partial interval is reported only if it is long
    // enough for its rates to mean something.
    if (last && (!any || secs < 0.1 * o_.interval)) return;
    const double t = static_cast<double>(now - t0_) / 1e9;
    auto rate = [&](std::uint64_t n) { return secs > 0 ? static_cast<double>(n) / secs : 0.0; };
    if (o_.json) {
      std::printf(
          "{\"type\":\"interval\",\"time\":%.3f,\"sent\":%.0f,\"confirmed\":%.0f,"
          "\"nacked\":%.0f,\"received\":%.0f,\"consumer_latency_us\":%s,"
          "\"confirm_latency_us\":%s}\n",
          t, rate(d.sent), rate(d.confirmed), rate(d.nacked), rate(d.received),
          json_array(cl).c_str(), json_array(fl).c_str());
    } else {
      std::printf(
          "time %.3f s, sent: %.0f msg/s, confirmed: %.0f msg/s, nacked: %.0f msg/s, "
          "received: %.0f msg/s, min/median/75th/95th/99th consumer latency: %s \xC2\xB5s, "
          "confirm latency: %s \xC2\xB5s\n",
          t, rate(d.sent), rate(d.confirmed), rate(d.nacked), rate(d.received), triple(cl).c_str(),
          triple(fl).c_str());
    }
    std::fflush(stdout);
  }

  void summary(const cpu_times& cpu) {
    auto secs = [&](std::uint64_t end) {
      return end > t0_ ? static_cast<double>(end - t0_) / 1e9 : 0.0;
    };
    const double send_s = secs(send_end_);
    const double producers_s = secs(producers_end_);
    const double receive_s = secs(receive_end_);
    const double taken_s = taken_end_ != 0 ? secs(taken_end_) : producers_s;
    auto rate = [](std::uint64_t n, double s) { return s > 0 ? static_cast<double>(n) / s : 0.0; };
    const std::uint64_t moved = std::max(totals_.sent, totals_.received);
    const double cpu_us = moved != 0 ? cpu.total() * 1e6 / static_cast<double>(moved) : 0.0;
    const percentiles cl = consumer_all_.summarise();
    const percentiles fl = confirm_all_.summarise();
    if (o_.json) {
      std::printf(
          "{\"type\":\"summary\",\"client\":\"warren\",\"size\":%zu,\"producers\":%d,"
          "\"consumers\":%d,\"sent\":%" PRIu64 ",\"confirmed\":%" PRIu64 ",\"nacked\":%" PRIu64
          ",\"failed\":%" PRIu64 ",\"received\":%" PRIu64
          ",\"send_s\":%.6f,\"confirm_s\":%.6f,\"taken_s\":%.6f,"
          "\"receive_s\":%.6f,\"cpu_s\":%.6f,\"user_s\":%.6f,\"sys_s\":%.6f,\"sending_rate\":%.1f,"
          "\"receiving_rate\":%.1f,"
          "\"taken_rate\":%.1f,\"consumer_latency_us\":%s,\"confirm_latency_us\":%s,"
          "\"stopped_by\":\"%s\"}\n",
          o_.size, o_.producers, o_.consumers, totals_.sent, totals_.confirmed, totals_.nacked,
          totals_.failed, totals_.received, send_s, producers_s, taken_s, receive_s, cpu.total(), cpu.user, cpu.sys,
          rate(totals_.sent, send_s), rate(totals_.received, receive_s),
          rate(totals_.sent, taken_s), json_array(cl).c_str(), json_array(fl).c_str(),
          stop_reason_);
    } else {
      std::printf("messages: sent %" PRIu64 ", confirmed %" PRIu64 ", nacked %" PRIu64
                  ", failed %" PRIu64 ", received %" PRIu64 "\n",
                  totals_.sent, totals_.confirmed, totals_.nacked, totals_.failed,
                  totals_.received);
      std::printf("sending rate avg: %.0f msg/s\n", rate(totals_.sent, send_s));
      std::printf("receiving rate avg: %.0f msg/s\n", rate(totals_.received, receive_s));
      if (taken_end_ != 0)
        std::printf("taken rate avg: %.0f msg/s (the queue held every message after %.3f s)\n",
                    rate(totals_.sent, taken_s), taken_s);
      if (!consumers_.empty())
        std::printf("consumer latency min/median/75th/95th/99th %s \xC2\xB5s\n",
                    triple(cl).c_str());
      if (o_.confirm > 0)
        std::printf("confirm latency min/median/75th/95th/99th %s \xC2\xB5s\n", triple(fl).c_str());
      if (o_.mandatory) std::printf("returned (unroutable): %" PRIu64 "\n", returned_);
      std::printf("client CPU: %.3f s user + %.3f s system, %.3f \xC2\xB5s/msg\n", cpu.user,
                  cpu.sys, cpu_us);
    }
    std::fflush(stdout);
  }

  asio::io_context& io_;
  options o_;
  asio::steady_timer wake_;
  asio::steady_timer interval_timer_;
  asio::steady_timer limit_timer_;
  asio::steady_timer taken_timer_;
  std::string run_id_;
  std::string routing_key_;
  basic_properties properties_;
  publish_flags flags_;
  connection setup_conn_;
  channel setup_ch_;
  std::vector<std::string> fallbacks_;  // endpoints note_fallback has named
  std::uint64_t baseline_ = 0;
  std::vector<producer> producers_;
  std::vector<consumer_slot> consumers_;
  std::uint64_t consumer_limit_ = 0;
  std::uint64_t shared_target_ = 0;

  counters totals_;
  counters reported_;
  latency_samples consumer_latency_;
  latency_samples confirm_latency_;
  latency_histogram consumer_all_;
  latency_histogram confirm_all_;
  std::uint64_t epoch_ = 0;
  std::uint64_t returned_ = 0;

  bool stopping_ = false;
  const char* stop_reason_ = "";
  int failures_ = 0;  // producers and consumers whose connection failed
  std::uint64_t t0_ = 0;
  std::uint64_t last_report_ = 0;
  cpu_times cpu0_;
  std::uint64_t send_end_ = 0;
  std::uint64_t producers_end_ = 0;
  std::uint64_t receive_end_ = 0;
  std::uint64_t taken_end_ = 0;
  bool interrupted_wait_ = false;
};

}  // namespace
}  // namespace warren::perf

int main(int argc, char** argv) {
  using namespace warren::perf;
  std::vector<std::string> args(argv + 1, argv + argc);
  options o;
  bool help = false;
  std::string error;
  if (!parse_options(args, o, help, error)) {
    complain(error);
    std::fputs(usage_text(), stderr);
    return 2;
  }
  if (help) {
    std::fputs(usage_text(), stdout);
    return 0;
  }
  asio::io_context io(1);
  run r(io, std::move(o));
  int status = 1;
  asio::co_spawn(io, r.main(), [&](std::exception_ptr e, int s) {
    status = s;
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        complain(reason(x));
      }
      status = 1;
    }
  });
  io.run();
  return status;
}
