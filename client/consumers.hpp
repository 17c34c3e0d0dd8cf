// A consumer's delivery stream: a ring of reused message slots and the state
// the core and the user's handle share. Private to the library.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "warren/client/completion.hpp"
#include "warren/client/types.hpp"
#include "warren/client/wire.hpp"
#include "warren/proto/methods.hpp"

namespace warren::detail {

// A FIFO of deliveries over a ring of reused message slots: no allocation per
// message once warm (a std::deque allocates a node per message this large).
// A slot holds its message by pointer, so a delivery assembled elsewhere goes
// in by trading pointers, not by copying or swapping its fields. A popped
// slot is left in place, moved from by its reader, and stays valid until the
// next push.
class delivery_ring {
 public:
  bool empty() const noexcept { return size_ == 0; }
  std::size_t size() const noexcept { return size_; }
  message& front() noexcept { return *slots_[head_]; }
  const message& operator[](std::size_t i) const noexcept {
    return *slots_[(head_ + i) & (slots_.size() - 1)];
  }
  // Appends `m` and hands back in it the slot's earlier message (a popped,
  // moved-from one whose storage the next delivery reuses), or nullptr for a
  // slot not used before.
  void push(std::unique_ptr<message>& m) {
    if (size_ == slots_.size()) grow();
    slots_[(head_ + size_++) & (slots_.size() - 1)].swap(m);
  }
  void push_back(message&& m) {
    auto p = std::make_unique<message>(std::move(m));
    push(p);
  }
  message& pop_front() noexcept {
    message& m = *slots_[head_];
    head_ = (head_ + 1) & (slots_.size() - 1);
    // Emptied: start again at slot 0, so that a reader keeping up cycles
    // through a few slots that stay in cache rather than the whole ring.
    if (--size_ == 0) head_ = 0;
    return m;
  }
  void clear() noexcept {
    slots_.clear();
    slots_.shrink_to_fit();
    head_ = size_ = 0;
  }

 private:
  void grow() {
    std::vector<std::unique_ptr<message>> bigger(slots_.empty() ? 16 : slots_.size() * 2);
    for (std::size_t i = 0; i < slots_.size(); ++i)
      bigger[i] = std::move(slots_[(head_ + i) & (slots_.size() - 1)]);
    slots_ = std::move(bigger);
    head_ = 0;
  }

  std::vector<std::unique_ptr<message>> slots_;  // a power of two in size
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

// A consumer's delivery stream, shared by the core and the user's handle.
struct consumer_state {
  enum class status : std::uint8_t { starting, active, cancelling, ended };
  std::string tag;
  std::uint16_t channel = 0;
  status state = status::starting;
  std::size_t capacity = 1024;
  delivery_ring buffer;
  waiter reader;  // the next() waiting for a delivery
  bool full = false;      // counted in connection_core's paused-stream tally
  bool no_ack = false;
  bool orphan = false;    // its reader is gone: deliveries are handed back
  error_info end_reason;  // set when the broker or a failure ended the stream
};

// The deliveries of one channel's consumers, by consumer tag.
class consumer_set {
 public:
  // The last stream found is remembered: deliveries mostly come in runs for
  // one consumer, and comparing one tag costs less than hashing it.
  consumer_state* find(std::string_view tag) noexcept {
    if (last_ != nullptr && last_->tag == tag) return last_;
    auto it = map_.find(tag);
    if (it == map_.end()) return nullptr;
    last_ = it->second.get();
    return last_;
  }
  // consume-ok: the stream runs under the broker's tag.
  void add(const std::string& tag, std::uint16_t channel, std::shared_ptr<consumer_state> s);
  // The stream ends (cancel-ok, or the broker's own cancel, with `reason`):
  // it leaves the set, and a reader waiting on it wakes.
  void end(const std::string& tag, error_info reason = {});
  bool cancel(std::uint64_t id);
  // The channel is gone: every stream ends with `why`. Returns how many of
  // them were over their capacity (and so held reading paused).
  std::size_t fail(const error_info& why);

 private:
  struct tag_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view tag) const noexcept {
      return std::hash<std::string_view>{}(tag);
    }
  };
  std::unordered_map<std::string, std::shared_ptr<consumer_state>, tag_hash, std::equal_to<>> map_;
  consumer_state* last_ = nullptr;  // in map_, or nullptr
};

// The delivery a channel has just assembled in `m`, straight into the
// stream's ring; `m` gets back a reused slot's message (or nullptr). True when
// the stream has just gone over its capacity: the connection then stops
// reading.
inline bool push_delivery(consumer_state& s, std::unique_ptr<message>& m) {
  s.buffer.push(m);
  if (s.reader.done) s.reader.done.consume(op_result{});
  // Holding `capacity` deliveries is the normal state of an unread consumer
  // with that prefetch; only a delivery beyond it pauses reading.
  if (s.full || s.buffer.size() <= s.capacity) return false;
  s.full = true;
  return true;
}

// The oldest delivery, removed from the stream, for the caller to move from
// before the stream is touched again; nullptr when none is buffered.
// `drained` is set when the stream came back within its capacity.
inline message* pop_delivery(consumer_state& s, bool& drained) noexcept {
  if (s.buffer.empty()) return nullptr;
  message& m = s.buffer.pop_front();
  if (s.full && s.buffer.size() <= s.capacity) {
    s.full = false;
    drained = true;
  }
  return &m;
}

// Moves a popped delivery into `out`, trading storage: the short strings are
// copied into out's own (a swap of two short strings costs more), the body
// and properties swapped.
inline void hand_over(message& from, message& out) {
  assign_chars(out.consumer_tag, from.consumer_tag);
  out.delivery_tag = from.delivery_tag;
  out.redelivered = from.redelivered;
  assign_chars(out.exchange, from.exchange);
  assign_chars(out.routing_key, from.routing_key);
  out.message_count = from.message_count;
  swap(out.properties, from.properties);
  out.body.swap(from.body);
}

// Completes (empty result) once a delivery is buffered or the stream has
// ended, at once if either is so already; fails when another reader waits.
void wait_delivery(consumer_state& s, std::uint64_t id, completion done);

}  // namespace warren::detail
