// Publisher confirms of one channel: sequence numbers, the broker's acks and
// nacks (one step for a multiple ack), returns matched to the publish they
// report, tallies and waiters. Sans-io; private to the library.
//
// Only publishes that need more than a count keep an entry: those with a
// completion (publish() awaiting its outcome) and mandatory ones (a return
// must find them). A pipelined publish is one increment, and a multiple ack
// over any number of them is one step.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "warren/client/completion.hpp"

namespace warren::detail {

class confirm_tracker {
 public:
  bool enabled() const noexcept { return enabled_; }
  void enable() noexcept { enabled_ = true; }

  // At most `window` unconfirmed publishes (0 = no bound). Once a publisher
  // has had to wait for a full window, the window stays shut until an eighth
  // of it is free (a low-water mark): publishers then resume together and
  // their publishes leave in one write, rather than a few after each ack.
  // Below 8 there is no gap: the window opens at the first free place.
  void set_window(std::size_t window) noexcept {
    window_ = window;
    low_water_ = window - window / 8;
    shut_at_ = open_limit();
  }
  bool window_full() const noexcept { return unconfirmed() >= shut_at_; }
  // A publisher is about to wait for room: if the window is why, it shuts
  // until the low-water mark.
  void window_waited() noexcept { shut_at_ = window_full() ? low_water_ : open_limit(); }
  std::uint64_t unconfirmed() const noexcept { return next_ - base_ - early_.size(); }
  // The highest sequence number published (0: none).
  std::uint64_t last() const noexcept { return next_ - 1; }
  // Whether the broker acked or nacked publish `seq`.
  bool settled(std::uint64_t seq) const noexcept {
    return seq < base_ || std::binary_search(early_.begin(), early_.end(), seq);
  }
  // The tallies a wait() would report now.
  const confirm_summary& tallies() const noexcept { return tallies_; }

  // Records a publish; returns its sequence number. `done` (may be empty)
  // completes with the outcome.
  std::uint64_t add(bool mandatory, std::string_view exchange, std::string_view routing_key,
                    std::uint64_t id, completion done);
  // The common case: no completion, not mandatory.
  std::uint64_t add() noexcept { return next_++; }

  // basic.ack / basic.nack. False (nothing changed) when the tag names no
  // publish: a protocol error.
  bool on_confirm(std::uint64_t tag, bool multiple, bool ack);
  // basic.return: marks the earliest unsettled mandatory publish to the same
  // exchange and routing key as returned. True when its outcome reaches an
  // awaiting publish(), so the return need not be queued for next_return().
  bool on_return(std::uint16_t reply_code, const std::string& reply_text,
                 const std::string& exchange, const std::string& routing_key);

  // wait_for_confirms: completes with the tallies once nothing is unconfirmed.
  void wait(std::uint64_t id, completion done);
  bool cancel(std::uint64_t id);
  void fail(const error_info& why);

 private:
  struct tracked {
    std::uint64_t seq = 0;
    std::uint64_t id = 0;
    completion done;
    publish_outcome outcome;
    std::string where;  // mandatory: exchange + '\0' + routing key
    bool mandatory = false;
    bool settled = false;
  };

  void settle_range(std::uint64_t end, publish_status status);
  void settle(tracked& t, publish_status status);
  void count(publish_status status, std::uint64_t n) noexcept;
  void finish_waiters();

  bool enabled_ = false;
  // Where an open window is full: at window_, never when it is 0.
  std::uint64_t open_limit() const noexcept { return window_ != 0 ? window_ : UINT64_MAX; }

  std::size_t window_ = 0;
  std::size_t low_water_ = 0;
  // The unconfirmed count at which the window is full: open_limit(), or
  // low_water_ from a wait for room until the count is back under it.
  std::uint64_t shut_at_ = UINT64_MAX;
  std::uint64_t next_ = 1;  // sequence number of the next publish
  std::uint64_t base_ = 1;  // every sequence below it is settled
  std::vector<std::uint64_t> early_;  // settled above base_ by single acks, sorted
  std::deque<tracked> tracked_;       // in sequence order
  confirm_summary tallies_;
  std::vector<waiter> waiters_;
};

}  // namespace warren::detail
