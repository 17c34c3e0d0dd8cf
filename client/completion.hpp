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

// The one-shot callback of an operation that hands back nothing but whether
// it failed: the error, or null when it did not. A publisher waiting for room
// in its confirm window waits on one, once per window (with window 1, once
// per message); an op_result would be built, moved and destroyed for nothing.
using wake = unique_function<void(const error_info*)>;

// A pending operation: the id cancel_op() knows it by, and its completion.
// Every kind of pending operation is one of these (or holds one), so
// cancelling and failing are written once.
struct waiter {
  std::uint64_t id = 0;
  completion done;
};
struct wake_waiter {
  std::uint64_t id = 0;
  wake done;
};

inline op_result failed_result(error_info why) {
  op_result r;
  r.error = std::move(why);
  return r;
}

inline error_info aborted_info() {
  error_info e;
  e.code = std::make_error_code(std::errc::operation_canceled);
  e.text = "operation cancelled";
  return e;
}

inline op_result aborted_result() { return failed_result(aborted_info()); }

// Runs a pending completion with a failure.
inline void fail_completion(completion& done, const error_info& why) {
  done.consume(failed_result(why));
}
inline void fail_completion(wake& done, const error_info& why) { done.consume(&why); }

// The same for a single waiter slot.
inline bool cancel_waiter(waiter& w, std::uint64_t id) {
  if (w.id != id || !w.done) return false;
  w.done.consume(aborted_result());
  return true;
}
inline void fail_waiter(waiter& w, const error_info& why) { fail_completion(w.done, why); }

// Completes waiter `id` of `list` with operation_aborted and removes it.
template <class Waiter>
bool cancel_waiter(std::vector<Waiter>& list, std::uint64_t id) {
  for (auto it = list.begin(); it != list.end(); ++it)
    if (it->id == id && it->done) {
      auto done = std::move(it->done);
      list.erase(it);
      fail_completion(done, aborted_info());
      return true;
    }
  return false;
}

// Completes every waiter of `list` with `why` and empties it.
template <class Waiter>
void fail_waiters(std::vector<Waiter>& list, const error_info& why) {
  auto all = std::move(list);
  list.clear();
  for (auto& w : all) fail_completion(w.done, why);
}

}  // namespace warren::detail
