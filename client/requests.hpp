// A channel's synchronous requests: one on the wire at a time, the rest
// waiting their turn, replies matched in order. Sans-io; private to the
// library.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>

#include "warren/client/completion.hpp"
#include "warren/client/consumers.hpp"
#include "warren/codec/bytes.hpp"
#include "warren/proto/methods.hpp"

namespace warren::detail {

struct pending_request {
  std::uint64_t id = 0;
  std::uint32_t key = 0;
  std::span<const std::uint32_t> replies;
  byte_buffer frame;  // until it goes on the wire
  completion done;
  bool sent = false;
  std::shared_ptr<consumer_state> consumer;  // basic.consume / basic.cancel
  std::chrono::steady_clock::time_point deadline{};  // set at the first tick after it was sent
};

class request_queue {
 public:
  bool empty() const noexcept { return queue_.empty(); }
  pending_request& front() noexcept { return queue_.front(); }
  pending_request& back() noexcept { return queue_.back(); }
  // The request on the wire, if any.
  pending_request* outstanding() noexcept {
    return !queue_.empty() && queue_.front().sent ? &queue_.front() : nullptr;
  }
  // Whether `reply` answers the request on the wire.
  bool answers(std::uint32_t reply) const noexcept {
    if (queue_.empty() || !queue_.front().sent) return false;
    const auto& r = queue_.front().replies;
    return std::find(r.begin(), r.end(), reply) != r.end();
  }

  // Queues a request; it goes on the wire (into `out`) once nothing else
  // is. True when it (or another) went on the wire now.
  bool push(pending_request req, byte_buffer& out) {
    queue_.push_back(std::move(req));
    return pump(out);
  }
  pending_request pop_front() {
    pending_request req = std::move(queue_.front());
    queue_.pop_front();
    return req;
  }
  void pop_back() { queue_.pop_back(); }
  // Puts the next request on the wire if none is outstanding; true when it
  // wrote one.
  bool pump(byte_buffer& out) {
    if (queue_.empty() || queue_.front().sent) return false;
    pending_request& req = queue_.front();
    out.append(req.frame.data(), req.frame.size());
    req.frame = byte_buffer();
    req.sent = true;
    return true;
  }

  // Fails the requests not yet on the wire (the channel is closing).
  void fail_unsent(const error_info& why) {
    while (!queue_.empty() && !queue_.back().sent) {
      pending_request req = pop_back_value();
      req.done.consume(failed_result(why));
    }
  }
  // A request not sent yet is withdrawn; one on the wire stays, so that its
  // reply is still matched, just without anyone waiting. channel.open and
  // channel.close always stay: the channel's state depends on them.
  bool cancel(std::uint64_t id) {
    for (auto it = queue_.begin(); it != queue_.end(); ++it) {
      if (it->id != id || !it->done) continue;
      completion done = std::move(it->done);
      if (!it->sent && it->key != channel_close::key && it->key != channel_open::key)
        queue_.erase(it);
      done.consume(aborted_result());
      return true;
    }
    return false;
  }
  // Everything fails with `why`; consumers waiting for consume-ok end.
  void fail(const error_info& why) {
    auto all = std::move(queue_);
    queue_.clear();
    for (auto& req : all) {
      if (req.consumer) {
        req.consumer->state = consumer_state::status::ended;
        req.consumer->end_reason = why;
      }
      req.done.consume(failed_result(why));
    }
  }

 private:
  pending_request pop_back_value() {
    pending_request req = std::move(queue_.back());
    queue_.pop_back();
    return req;
  }

  std::deque<pending_request> queue_;
};

}  // namespace warren::detail
