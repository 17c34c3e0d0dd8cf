#include "warren/client/recovery.hpp"

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/use_awaitable.hpp>
#include <random>

#include "warren/client/dial.hpp"
#include "warren/client/log.hpp"

namespace warren::detail {

namespace {
constexpr auto tuple_awaitable = asio::experimental::as_tuple(asio::use_awaitable);
constexpr std::size_t max_notices = 64;

// A synchronous request on `d`, its result not thrown.
template <class M>
asio::awaitable<op_result> raw_request(driver& d, std::uint16_t ch, const M& m) {
  auto pending = d.op([&d, ch, &m](std::uint64_t id, completion done) {
    d.core_.request(ch, m, id, std::move(done));
  });
  co_return co_await std::move(pending);
}

asio::awaitable<std::uint16_t> raw_open_channel(driver& d) {
  std::uint16_t ch = 0;
  auto pending = d.op([&d, &ch](std::uint64_t id, completion done) {
    ch = d.core_.open_channel(id, std::move(done));
  });
  op_result r = co_await std::move(pending);
  if (r.error) throw_error(std::move(r.error));
  co_return ch;
}

// Only the loss of a connection that had opened is recovered: a refusal
// (403, 530) or an error of the client's own is not something to retry.
bool refused(const error_info& e) {
  const auto rc = e.reply_code();
  return e.code == errc::authentication_failed || rc == 403 || rc == 530 ||
         e.code == errc::tls_setup_failed || e.code == errc::bad_uri;
}

}  // namespace

connection_handle::~connection_handle() {
  if (rec) rec->stop();
  if (impl) impl->abandon();
}

void logical_channel::lost(const confirm_tracker* t, bool republish) {
  if (t == nullptr) {
    kept.clear();
    return;
  }
  const confirm_summary& s = t->tallies();
  carried.acked += s.acked;
  carried.nacked += s.nacked;
  carried.returned += s.returned;
  (republish ? carried.republished : carried.unknown) += t->unconfirmed();
  std::erase_if(kept, [t](const kept_publish& k) { return t->settled(k.seq); });
  seq_offset += t->last();
}

logical_channel::~logical_channel() {
  // A channel nobody can reach any more is closed so its id is reused.
  if (conn && conn->impl && core().is_channel_open(id)) core().close_channel(id, 0, {});
}

// ---- topology -----------------------------------------------------------------

void topology::declared(const exchange_declare& m) {
  if (m.passive) return;
  std::erase_if(entries_, [&](const entry& e) {
    auto* x = std::get_if<exchange_declare>(&e);
    return x && x->exchange == m.exchange;
  });
  entries_.emplace_back(m);
}

void topology::declared(const queue_declare& m, const std::string& name) {
  if (m.passive) return;
  std::erase_if(entries_, [&](const entry& e) {
    auto* q = std::get_if<queue_entry>(&e);
    return q && q->name == name;
  });
  entries_.emplace_back(queue_entry{m, name});
}

void topology::bound(const queue_bind& m) { entries_.emplace_back(m); }
void topology::bound(const exchange_bind& m) { entries_.emplace_back(m); }

void topology::unbound(const queue_unbind& m) {
  std::erase_if(entries_, [&](const entry& e) {
    auto* b = std::get_if<queue_bind>(&e);
    return b && b->queue == m.queue && b->exchange == m.exchange &&
           b->routing_key == m.routing_key && b->arguments == m.arguments;
  });
}

void topology::unbound(const exchange_unbind& m) {
  std::erase_if(entries_, [&](const entry& e) {
    auto* b = std::get_if<exchange_bind>(&e);
    return b && b->destination == m.destination && b->source == m.source &&
           b->routing_key == m.routing_key && b->arguments == m.arguments;
  });
}

void topology::exchange_deleted(const std::string& name) {
  std::erase_if(entries_, [&](const entry& e) {
    if (auto* x = std::get_if<exchange_declare>(&e)) return x->exchange == name;
    if (auto* b = std::get_if<queue_bind>(&e)) return b->exchange == name;
    if (auto* b = std::get_if<exchange_bind>(&e)) return b->source == name || b->destination == name;
    return false;
  });
}

void topology::queue_deleted(const std::string& name) {
  std::erase_if(entries_, [&](const entry& e) {
    if (auto* q = std::get_if<queue_entry>(&e)) return q->name == name;
    if (auto* b = std::get_if<queue_bind>(&e)) return b->queue == name;
    return false;
  });
}

void topology::renamed(std::string from, std::string to) {
  for (auto& e : entries_) {
    if (auto* q = std::get_if<queue_entry>(&e); q && q->name == from) q->name = to;
    if (auto* b = std::get_if<queue_bind>(&e); b && b->queue == from) b->queue = to;
  }
  // Every name the queue had maps to the newest: a user may hold any of them.
  bool known = false;
  for (auto& [earlier, now] : renames_) {
    if (now == from) now = to;
    if (earlier == from) known = true;
  }
  if (!known) renames_.emplace_back(from, to);
}

std::string topology::current(const std::string& queue) const {
  for (const auto& [earlier, now] : renames_) {
    if (earlier == queue) return now;
  }
  return queue;
}

// ---- recovery -----------------------------------------------------------------

recovery::recovery(asio::any_io_executor ex, std::vector<connection_params> candidates,
                   connect_options options)
    : ex_(ex),
      candidates_(std::move(candidates)),
      options_(std::move(options)),
      signal_(ex, std::chrono::steady_clock::time_point::max()),
      backoff_(ex) {}

void recovery::watch(const std::shared_ptr<connection_handle>& handle, driver& d) {
  d.recoverable = true;
  std::weak_ptr<connection_handle> weak_handle = handle;
  std::weak_ptr<driver> weak_driver = d.shared_from_this();
  std::weak_ptr<recovery> self = weak_from_this();
  d.on_closed = [self, weak_handle, weak_driver] {
    if (auto r = self.lock()) r->on_closed(weak_handle, weak_driver);
  };
}

void recovery::channel_opened(const std::shared_ptr<logical_channel>& ch) {
  std::erase_if(channels_, [](const std::weak_ptr<logical_channel>& w) { return w.expired(); });
  channels_.push_back(ch);
}

void recovery::on_closed(std::weak_ptr<connection_handle> weak_handle, std::weak_ptr<driver> weak_driver) {
  auto handle = weak_handle.lock();
  auto d = weak_driver.lock();
  if (!handle || !d || state_ != state::running || handle->impl != d) return;
  const error_info why = d->core_.close_reason();
  if (!is_connection_loss(why)) return;
  state_ = state::recovering;
  for (auto& w : channels_) {
    if (auto lc = w.lock(); lc && lc->confirm && !lc->closed_by_user)
      lc->lost(d->core_.lost_confirms(lc->id), options_.recovery.republish_unconfirmed);
  }
  connection_notice n;
  n.type = connection_event_type::lost;
  n.reason = why.describe();
  notice(std::move(n));
  asio::co_spawn(ex_, run(weak_handle), asio::detached);
}

std::chrono::milliseconds recovery::backoff(std::uint32_t attempt) {
  const auto& o = options_.recovery;
  double ms = static_cast<double>(o.initial_backoff.count());
  for (std::uint32_t i = 1; i < attempt && ms < static_cast<double>(o.max_backoff.count()); ++i) ms *= 2;
  ms = std::min(ms, static_cast<double>(o.max_backoff.count()));
  if (o.jitter > 0) {
    static thread_local std::minstd_rand rng(std::random_device{}());
    std::uniform_real_distribution<double> scale(1.0 - o.jitter, 1.0 + o.jitter);
    ms *= scale(rng);
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::max(ms, 0.0)));
}

asio::awaitable<void> recovery::run(std::weak_ptr<connection_handle> weak_handle) {
  auto self = shared_from_this();
  const auto& o = options_.recovery;
  for (std::uint32_t attempt = 1;; ++attempt) {
    backoff_.expires_after(backoff(attempt));
    co_await backoff_.async_wait(tuple_awaitable);
    if (state_ != state::recovering) co_return;
    auto handle = weak_handle.lock();
    if (!handle) co_return;

    connection_notice n;
    n.type = connection_event_type::reconnecting;
    n.attempt = attempt;
    n.endpoint = to_uri(candidates_.front(), true);
    if (candidates_.size() > 1) n.endpoint += " (and " + std::to_string(candidates_.size() - 1) + " more)";
    notice(std::move(n));

    error_info failed;
    std::vector<std::shared_ptr<logical_channel>> channels;
    try {
      std::size_t chosen = 0;
      auto pending = open_first(candidates_, options_, &chosen);
      attempt_ = co_await std::move(pending);
      attempt_->endpoint = to_uri(candidates_[chosen], true);
      if (state_ != state::recovering) {
        attempt_->abandon();
        attempt_.reset();
        co_return;
      }
      for (auto& w : channels_) {
        if (auto ch = w.lock(); ch && !ch->closed_by_user) channels.push_back(std::move(ch));
      }
      auto replaying = replay(*attempt_, channels);
      co_await std::move(replaying);
    } catch (const error& e) {
      failed = e.info();
    }
    if (state_ != state::recovering) {
      if (attempt_) attempt_->abandon();
      attempt_.reset();
      co_return;
    }
    if (!failed) {
      // The new connection takes over: the handles now reach it.
      auto d = std::move(attempt_);
      auto old = std::exchange(handle->impl, d);
      handle->earlier += old->core_.counters();
      ++handle->earlier.recoveries;
      watch(handle, *d);
      state_ = state::running;
      connection_notice done;
      done.type = connection_event_type::recovered;
      done.endpoint = d->endpoint;
      notice(std::move(done));
      co_return;
    }
    if (attempt_) attempt_->abandon();
    attempt_.reset();
    if (refused(failed) || (o.max_attempts != 0 && attempt >= o.max_attempts)) {
      state_ = state::gave_up;
      failure_ = failed;
      connection_notice end;
      end.type = connection_event_type::gave_up;
      end.reason = failed.describe();
      notice(std::move(end));
      co_return;
    }
  }
}

asio::awaitable<void> recovery::replay(driver& d, std::vector<std::shared_ptr<logical_channel>>& channels) {
  // Topology first, on a channel of its own; a declaration the broker
  // refuses is reported and skipped (the channel is opened again).
  std::uint16_t ch = co_await raw_open_channel(d);
  auto refused_one = [&](const error_info& e) -> asio::awaitable<void> {
    connection_notice n;
    n.type = connection_event_type::replay_failed;
    n.reason = e.describe();
    notice(std::move(n));
    if (!d.core_.is_open()) throw_error(e);
    ch = co_await raw_open_channel(d);
  };
  for (auto& e : topo.entries()) {
    op_result r;
    if (auto* x = std::get_if<exchange_declare>(&e)) {
      r = co_await raw_request(d, ch, *x);
    } else if (auto* q = std::get_if<topology::queue_entry>(&e)) {
      r = co_await raw_request(d, ch, q->method);
      if (!r.error && q->method.queue.empty()) {
        auto ok = std::get<queue_declare_ok>(std::move(*r.reply));
        if (ok.queue != q->name) topo.renamed(q->name, ok.queue);
      }
    } else if (auto* b = std::get_if<queue_bind>(&e)) {
      r = co_await raw_request(d, ch, *b);
    } else if (auto* eb = std::get_if<exchange_bind>(&e)) {
      r = co_await raw_request(d, ch, *eb);
    }
    if (r.error) co_await refused_one(r.error);
  }
  {
    op_result r = co_await d.op([&d, ch](std::uint64_t id, completion done) {
      d.core_.close_channel(ch, id, std::move(done));
    });
    if (r.error && !d.core_.is_open()) throw_error(std::move(r.error));
  }

  // Then every channel, under its handle.
  for (auto& lc : channels) {
    auto reopening = replay_channel(d, *lc, topo);
    co_await std::move(reopening);
  }
}

asio::awaitable<void> replay_channel(driver& d, logical_channel& channel, topology& topo) {
  // qos, confirm mode, transactions, consumers with their tags. Deliveries
  // from before are stale from here on.
  logical_channel* lc = &channel;
  {
    const std::uint16_t id = co_await raw_open_channel(d);
    lc->id = id;
    lc->tag_offset = lc->last_tag;
    if (lc->qos) {
      op_result r = co_await raw_request(d, id, *lc->qos);
      if (r.error) throw_error(std::move(r.error));
    }
    if (lc->confirm) {
      op_result r = co_await d.op([&d, id](std::uint64_t op, completion done) {
        d.core_.confirm_select(id, op, std::move(done));
      });
      if (r.error) throw_error(std::move(r.error));
      d.core_.set_confirm_window(id, lc->confirm_window);
      // Pipelined publishes unconfirmed at the loss (republish_unconfirmed),
      // in their order, before anything new.
      std::erase_if(lc->kept, [&](logical_channel::kept_publish& k) {
        std::uint64_t seq = 0;
        const bytes_view frames(k.frames.data(), k.frames.size());
        if (d.core_.publish_encoded(id, frames, k.mandatory, k.exchange, k.routing_key, &seq)) {
          // Too large for this connection's frame_max: its outcome stays unknown.
          if (lc->carried.republished != 0) --lc->carried.republished;
          ++lc->carried.unknown;
          return true;
        }
        k.seq = seq;
        return false;
      });
    }
    if (lc->tx) {
      op_result r = co_await raw_request(d, id, tx_select{});
      if (r.error) throw_error(std::move(r.error));
    }
    std::erase_if(lc->consumers, [](const consumer_record& c) { return c.state.expired(); });
    for (auto& c : lc->consumers) {
      auto state = c.state.lock();
      if (!state) continue;
      // The old stream's deliveries died with the old channel: the broker
      // delivers them again.
      state->buffer.clear();
      state->full = false;
      state->orphan = false;
      state->end_reason = {};
      state->state = consumer_state::status::starting;
      basic_consume m = c.method;
      m.queue = topo.current(m.queue);
      m.consumer_tag = state->tag;
      op_result r = co_await d.op([&d, id, &m, &state](std::uint64_t op, completion done) {
        d.core_.consume(id, m, state, op, std::move(done));
      });
      if (r.error) throw_error(std::move(r.error));
    }
  }
}

asio::awaitable<void> reopen_channel(logical_channel& lc) {
  // Held: a recovery may replace the connection's driver meanwhile.
  const std::shared_ptr<driver> keep = lc.conn->impl;
  auto& d = *keep;
  auto rec = lc.conn->rec;
  lc.reopening = true;
  ++lc.reopens;
  rec->changed();
  error_info failed;
  try {
    if (d.core_.is_channel_open(lc.id)) {
      op_result r = co_await d.op([&d, &lc](std::uint64_t op, completion done) {
        d.core_.close_channel(lc.id, op, std::move(done));
      });
      if (r.error && !d.core_.is_open()) throw_error(std::move(r.error));
    }
    // What was unconfirmed on the closed channel, as after a loss.
    if (lc.confirm) lc.lost(d.core_.lost_confirms(lc.id), d.opts_.recovery.republish_unconfirmed);
    auto replaying = replay_channel(d, lc, rec->topo);
    co_await std::move(replaying);
  } catch (const error& e) {
    failed = e.info();
  }
  lc.reopening = false;
  rec->changed();
  if (failed) throw_error(d.user_error(std::move(failed)));
}

void recovery::stop() {
  if (state_ == state::stopped) return;
  state_ = state::stopped;
  backoff_.cancel();
  if (attempt_) attempt_->abandon();
  changed();
}

asio::awaitable<void> recovery::wait_recovered(std::chrono::milliseconds limit) {
  auto self = shared_from_this();
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (state_ == state::recovering) {
    if (limit.count() > 0 && std::chrono::steady_clock::now() >= deadline)
      throw_error(make_info(errc::timeout, "the connection was not recovered within " +
                                               std::to_string(limit.count()) + " ms"));
    if (limit.count() > 0) {
      asio::steady_timer guard(ex_, deadline);
      guard.async_wait([self](std::error_code ec) {
        if (!ec) self->changed();
      });
      co_await signal_.async_wait(tuple_awaitable);
    } else {
      co_await signal_.async_wait(tuple_awaitable);
    }
  }
  if (state_ == state::gave_up)
    throw_error(make_info(errc::recovery_failed, "connection recovery gave up: " + failure_.describe()));
}

std::optional<connection_notice> recovery::take_notice() {
  if (notices_.empty()) return std::nullopt;
  auto n = std::move(notices_.front());
  notices_.pop_front();
  return n;
}

asio::awaitable<void> recovery::wait_change() {
  auto self = shared_from_this();
  co_await signal_.async_wait(tuple_awaitable);
}

asio::awaitable<void> recovery::wait_change_for(std::chrono::milliseconds limit) {
  auto self = shared_from_this();
  asio::steady_timer guard(ex_, limit);
  guard.async_wait([self](std::error_code ec) {
    if (!ec) self->changed();
  });
  co_await signal_.async_wait(tuple_awaitable);
}

void recovery::notice(connection_notice n) {
  if (options_.log) {
    switch (n.type) {
      case connection_event_type::lost:
        emit(options_.log, log_level::warning,
             "connection lost, recovering: " + escaped(n.reason));
        break;
      case connection_event_type::reconnecting:
        emit(options_.log, log_level::info,
             "recovery: attempt " + std::to_string(n.attempt) + " to " + n.endpoint);
        break;
      case connection_event_type::recovered:
        emit(options_.log, log_level::info, "recovery: recovered on " + n.endpoint);
        break;
      case connection_event_type::gave_up:
        emit(options_.log, log_level::error, "recovery gave up: " + escaped(n.reason));
        break;
      case connection_event_type::replay_failed:
        emit(options_.log, log_level::warning,
             "recovery: could not declare again: " + escaped(n.reason));
        break;
      case connection_event_type::blocked:
      case connection_event_type::unblocked: break;
    }
  }
  if (notices_.size() == max_notices) notices_.pop_front();
  notices_.push_back(std::move(n));
  changed();
}

void recovery::changed() { signal_.cancel(); }

}  // namespace warren::detail
