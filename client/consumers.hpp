// A consumer's delivery stream: a ring of reused message slots and the state
// the core and the user's handle share. Private to the library.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "warren/client/completion.hpp"
#include "warren/client/types.hpp"

namespace warren::detail {

// A FIFO of deliveries over a ring of reused slots: no allocation per message
// once warm (a std::deque allocates a node per message this large). A popped
// slot is left in place, moved from by its reader, and stays valid until the
// next push.
class delivery_ring {
 public:
  bool empty() const noexcept { return size_ == 0; }
  std::size_t size() const noexcept { return size_; }
  message& front() noexcept { return slots_[head_]; }
  const message& operator[](std::size_t i) const noexcept {
    return slots_[(head_ + i) & (slots_.size() - 1)];
  }
  // The slot to fill next; it may hold an earlier, moved-from message.
  message& push() {
    if (size_ == slots_.size()) grow();
    return slots_[(head_ + size_++) & (slots_.size() - 1)];
  }
  void push_back(message&& m) { push() = std::move(m); }
  message& pop_front() noexcept {
    message& m = slots_[head_];
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
    std::vector<message> bigger(slots_.empty() ? 16 : slots_.size() * 2);
    for (std::size_t i = 0; i < size_; ++i)
      bigger[i] = std::move(slots_[(head_ + i) & (slots_.size() - 1)]);
    slots_ = std::move(bigger);
    head_ = 0;
  }

  std::vector<message> slots_;  // a power of two in size
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

}  // namespace warren::detail
