// What a finished core operation hands back, and the one-shot callback that
// carries it. Private to the library.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "warren/client/types.hpp"
#include "warren/client/unique_function.hpp"
#include "warren/proto/methods.hpp"

namespace warren::detail {


// An optional value kept on the heap. The large, rare parts of an op_result
// cost one pointer when absent, so the common results (confirms, wake-ups,
// replies) stay small: small enough for the coroutine frames and posted
// handlers that carry them to come from Asio's recycled memory, not malloc.
template <class T>
class boxed {
 public:
  boxed() = default;
  boxed& operator=(T&& v) {
    p_ = std::make_unique<T>(std::move(v));
    return *this;
  }
  bool has_value() const noexcept { return p_ != nullptr; }
  explicit operator bool() const noexcept { return has_value(); }
  T& operator*() noexcept { return *p_; }
  const T& operator*() const noexcept { return *p_; }
  T* operator->() noexcept { return p_.get(); }
  const T* operator->() const noexcept { return p_.get(); }
  // The value moved out into an optional (empty if there was none).
  std::optional<T> take() {
    if (!p_) return std::nullopt;
    std::optional<T> v(std::move(*p_));
    p_.reset();
    return v;
  }

 private:
  std::unique_ptr<T> p_;
};

// A string moved only when it holds text: libstdc++ moves even an empty
// string by copying its local buffer (a memcpy call).
inline void move_text(std::string& to, std::string& from) noexcept {
  if (!from.empty()) to = std::move(from);
}

struct op_result {
  error_info error;
  // The method that answered a synchronous request. On the heap: the many
  // results without one (wake-ups, deliveries, confirms) stay small and cheap
  // to move, and synchronous requests are not a hot path.
  boxed<any_method> reply;
  boxed<message> msg;  // basic.get-ok
  boxed<returned_message> returned;  // next_return()
  publish_outcome outcome;     // publish confirms
  confirm_summary summary;     // wait_for_confirms()
  boxed<connection_notice> event;  // next_event()

  op_result() = default;
  // Member by member, the two strings (error.text, outcome.reply_text) only
  // when they hold text: most results carry none, and a result is moved
  // several times between the core and the coroutine that awaits it.
  op_result(op_result&& o) noexcept
      : reply(std::move(o.reply)),
        msg(std::move(o.msg)),
        returned(std::move(o.returned)),
        summary(o.summary),
        event(std::move(o.event)) {
    error.code = o.error.code;
    error.class_id = o.error.class_id;
    error.method_id = o.error.method_id;
    move_text(error.text, o.error.text);
    outcome.status = o.outcome.status;
    outcome.republished = o.outcome.republished;
    outcome.sequence = o.outcome.sequence;
    outcome.reply_code = o.outcome.reply_code;
    move_text(outcome.reply_text, o.outcome.reply_text);
  }
  op_result& operator=(op_result&&) = default;
};

// The move above names every member of error_info and publish_outcome: one
// added to either must be added there too (these layouts then no longer match).
namespace layout {
struct error_info {
  std::error_code code;
  std::string text;
  std::uint16_t class_id, method_id;
};
struct publish_outcome {
  publish_status status;
  bool republished;
  std::uint64_t sequence;
  std::uint16_t reply_code;
  std::string reply_text;
};
}  // namespace layout
static_assert(sizeof(error_info) == sizeof(layout::error_info), "update op_result's move");
static_assert(sizeof(publish_outcome) == sizeof(layout::publish_outcome), "update op_result's move");
using completion = unique_function<void(op_result&&)>;

// A pending operation: the id cancel_op() knows it by, and its completion.
// Every kind of pending operation is one of these (or holds one), so
// cancelling and failing are written once.
struct waiter {
  std::uint64_t id = 0;
  completion done;
};

inline op_result failed_result(error_info why) {
  op_result r;
  r.error = std::move(why);
  return r;
}

inline op_result aborted_result() {
  op_result r;
  r.error.code = std::make_error_code(std::errc::operation_canceled);
  r.error.text = "operation cancelled";
  return r;
}

// The same for a single waiter slot.
inline bool cancel_waiter(waiter& w, std::uint64_t id) {
  if (w.id != id || !w.done) return false;
  w.done.consume(aborted_result());
  return true;
}
inline void fail_waiter(waiter& w, const error_info& why) { w.done.consume(failed_result(why)); }

// Completes waiter `id` of `list` with operation_aborted and removes it.
inline bool cancel_waiter(std::vector<waiter>& list, std::uint64_t id) {
  for (auto it = list.begin(); it != list.end(); ++it)
    if (it->id == id && it->done) {
      completion done = std::move(it->done);
      list.erase(it);
      done.consume(aborted_result());
      return true;
    }
  return false;
}

// Completes every waiter of `list` with `why` and empties it.
inline void fail_waiters(std::vector<waiter>& list, const error_info& why) {
  auto all = std::move(list);
  list.clear();
  for (auto& w : all) w.done.consume(failed_result(why));
}

}  // namespace warren::detail
