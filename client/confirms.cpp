#include "warren/client/confirms.hpp"

#include <algorithm>

namespace warren::detail {

std::uint64_t confirm_tracker::add(bool mandatory, std::string_view exchange,
                                   std::string_view routing_key, std::uint64_t id,
                                   completion done) {
  const std::uint64_t seq = next_++;
  if (!done && !mandatory) return seq;
  tracked& t = tracked_.emplace_back();
  t.seq = seq;
  t.id = id;
  t.done = std::move(done);
  t.outcome.sequence = seq;
  t.mandatory = mandatory;
  if (mandatory) {
    t.where.reserve(exchange.size() + 1 + routing_key.size());
    t.where.append(exchange).push_back('\0');
    t.where.append(routing_key);
  }
  return seq;
}

bool confirm_tracker::on_confirm(std::uint64_t tag, bool multiple, bool ack) {
  const std::uint64_t last = next_ - 1;
  const auto status = ack ? publish_status::acked : publish_status::nacked;
  if (multiple) {
    const std::uint64_t end = tag == 0 ? last : tag;
    if (end > last) return false;
    if (end >= base_) settle_range(end, status);  // below base_: settled already
  } else {
    if (tag == 0 || tag > last || tag < base_) return false;
    auto at = std::lower_bound(early_.begin(), early_.end(), tag);
    if (at != early_.end() && *at == tag) return true;  // a repeat
    if (tag == base_) {
      settle_range(tag, status);
    } else {
      // Ahead of older unsettled publishes: remembered until base_ passes it.
      early_.insert(at, tag);
      auto t = std::lower_bound(tracked_.begin(), tracked_.end(), tag,
                                [](const tracked& x, std::uint64_t s) { return x.seq < s; });
      if (t != tracked_.end() && t->seq == tag)
        settle(*t, status);
      else
        count(status, 1);
    }
  }
  if (shut_at_ == low_water_ && unconfirmed() < low_water_) shut_at_ = open_limit();
  if (unconfirmed() == 0) finish_waiters();
  return true;
}

void confirm_tracker::settle_range(std::uint64_t end, publish_status status) {
  // Everything in [base_, end] not settled early: one count, plus a step
  // for each entry that has a completion or a return to report.
  const auto early_end = std::upper_bound(early_.begin(), early_.end(), end);
  std::uint64_t n = end - base_ + 1 - static_cast<std::uint64_t>(early_end - early_.begin());
  early_.erase(early_.begin(), early_end);
  for (tracked& t : tracked_) {
    if (t.seq > end) break;
    if (t.settled) continue;
    settle(t, status);
    --n;
  }
  count(status, n);
  base_ = end + 1;
  while (!early_.empty() && early_.front() == base_) {
    early_.erase(early_.begin());
    ++base_;
  }
  while (!tracked_.empty() && tracked_.front().seq < base_) tracked_.pop_front();
}

void confirm_tracker::settle(tracked& t, publish_status status) {
  t.settled = true;
  if (status == publish_status::acked && t.outcome.status == publish_status::returned) {
    ++tallies_.returned;
  } else {
    t.outcome.status = status;
    count(status, 1);
  }
  if (t.done) {
    op_result r;
    r.outcome = t.outcome;
    t.done.consume(std::move(r));
  }
}

void confirm_tracker::count(publish_status status, std::uint64_t n) noexcept {
  if (status == publish_status::acked)
    tallies_.acked += n;
  else
    tallies_.nacked += n;
}

bool confirm_tracker::on_return(std::uint16_t reply_code, const std::string& reply_text,
                                const std::string& exchange, const std::string& routing_key) {
  // basic.return comes before the ack of the same publish, and returns come
  // in publish order: the earliest unsettled mandatory publish to the same
  // exchange and routing key is the one returned.
  for (tracked& t : tracked_) {
    if (!t.mandatory || t.settled || t.outcome.status == publish_status::returned) continue;
    if (t.where.size() != exchange.size() + 1 + routing_key.size() ||
        t.where.compare(0, exchange.size(), exchange) != 0 ||
        t.where.compare(exchange.size() + 1, routing_key.size(), routing_key) != 0)
      continue;
    t.outcome.status = publish_status::returned;
    t.outcome.reply_code = reply_code;
    t.outcome.reply_text = reply_text;
    return static_cast<bool>(t.done);
  }
  return false;
}

void confirm_tracker::wait(std::uint64_t id, completion done) {
  if (unconfirmed() == 0) {
    op_result r;
    r.summary = tallies_;
    tallies_ = {};
    done.consume(std::move(r));
    return;
  }
  waiters_.push_back({id, std::move(done)});
}

void confirm_tracker::finish_waiters() {
  if (waiters_.empty()) return;
  auto waiters = std::move(waiters_);
  waiters_.clear();
  const confirm_summary summary = tallies_;
  tallies_ = {};
  for (auto& w : waiters) {
    op_result r;
    r.summary = summary;
    w.done.consume(std::move(r));
  }
}

bool confirm_tracker::cancel(std::uint64_t id) {
  for (tracked& t : tracked_)
    if (t.id == id && t.done) {
      t.done.consume(aborted_result());
      return true;
    }
  return cancel_waiter(waiters_, id);
}

void confirm_tracker::fail(const error_info& why) {
  for (tracked& t : tracked_) t.done.consume(failed_result(why));
  tracked_.clear();
  fail_waiters(waiters_, why);
}

}  // namespace warren::detail
