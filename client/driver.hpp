// The driver: runs one connection_core over one transport on one executor.
// It moves bytes between the two, flushes output, ticks heartbeats and
// request deadlines, and batches reads. Private to the library.
//
// Every loop is a chain of completion callbacks on the executor, each step
// guarded: an exception anywhere fails the connection with
// errc::internal_error and closes the transport, so nothing dies silently.
#pragma once

#include <asio/async_result.hpp>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <chrono>
#include <functional>
#include <exception>
#include <memory>
#include <type_traits>
#include <variant>
#include <vector>

#include "warren/client/connection.hpp"
#include "warren/client/core.hpp"
#include "warren/client/transport.hpp"

namespace warren::detail {

[[noreturn]] void throw_error(error_info e);
// A loss recovery may repair: the socket failed, the peer went silent, or
// the broker closed the connection with 320 CONNECTION_FORCED.
bool is_connection_loss(const error_info& e) noexcept;
error_info make_info(std::error_code ec, std::string text);

// The core reports what it needs (core_listener); the driver answers with one
// posted service pass: write the output, resume reading, or close.
class driver final : public transport_sink,
                     public core_listener,
                     public std::enable_shared_from_this<driver> {
 public:
  driver(asio::any_io_executor ex, core_config cfg, connect_options opts);
  ~driver();

  // Starts the loops over `t` and runs the handshake; completes after
  // connection.open-ok, or throws warren::error (the transport is closed).
  // `timeout` (0: none) bounds the handshake.
  asio::awaitable<void> open(std::unique_ptr<transport> t, std::chrono::milliseconds timeout);

  // Runs one core operation: `init(id, completion)` starts it; the result is
  // delivered on the caller's executor, never inline from the parser (at the
  // end of the read handler that completed it, when that handler runs on the
  // caller's executor; posted otherwise).
  // g++ 12 destroys temporaries with captures inside a co_await expression
  // twice; every awaitable here is built as a named object first.
  // Checked: a failed operation throws its error instead of returning it.
  template <bool Checked = false, class Init>
  asio::awaitable<op_result> op(Init init) {
    // Not a coroutine itself: the awaitable is Asio's. A checked failure
    // travels as the exception the awaiting coroutine rethrows.
    using signature =
        std::conditional_t<Checked, void(std::exception_ptr, op_result), void(op_result)>;
    auto initiation = [self = shared_from_this(), init = std::move(init)](auto handler) mutable {
      const std::uint64_t id = self->watch_cancellation(handler);
      auto done = [h = std::move(handler), d = self.get()](op_result&& r) mutable {
        if constexpr (Checked) {
          std::exception_ptr failure;
          if (r.error) failure = d->failure(std::move(r.error));
          d->resume(held_resumption::checked{std::move(h), std::move(failure), std::move(r)});
        } else {
          d->resume(held_resumption::plain{std::move(h), std::move(r)});
        }
      };
      init(id, completion(std::move(done)));
      self->flush_for_wait();
    };
    return asio::async_initiate<decltype(asio::use_awaitable), signature>(std::move(initiation),
                                                                          asio::use_awaitable);
  }

  // The same for an operation that only wakes its caller (a detail::wake),
  // such as waiting for room to publish: no op_result to carry. A failure is
  // thrown in the awaiting coroutine.
  template <class Init>
  asio::awaitable<void> wake_op(Init init) {
    auto initiation = [self = shared_from_this(), init = std::move(init)](auto handler) mutable {
      const std::uint64_t id = self->watch_cancellation(handler);
      auto done = [h = std::move(handler), d = self.get()](const error_info* why) mutable {
        std::exception_ptr failure;
        if (why != nullptr) failure = d->failure(*why);
        d->resume(held_resumption::woken{std::move(h), std::move(failure)});
      };
      init(id, wake(std::move(done)));
      self->flush_for_wait();
    };
    return asio::async_initiate<decltype(asio::use_awaitable), void(std::exception_ptr)>(
        std::move(initiation), asio::use_awaitable);
  }

  // Not a coroutine itself: one frame per operation, not two.
  template <class Init>
  asio::awaitable<op_result> checked_op(Init init) {
    return op<true>(std::move(init));
  }

  // The last user handle is gone: close politely, and in any case soon.
  void abandon();

  // transport_sink
  void on_read(std::error_code ec, std::size_t n) override;
  void on_written(std::error_code ec) override;
  // core_listener
  void core_needs_service() override;

  asio::any_io_executor ex_;
  // A finished operation and the coroutine awaiting it, of one of the three
  // kinds op() and wake_op() make. Only the kind's own parts are moved.
  struct held_resumption {
    template <class Signature>
    using handler = typename asio::async_result<asio::use_awaitable_t<>, Signature>::handler_type;
    struct plain {
      handler<void(op_result)> h;
      op_result result;
    };
    struct checked {
      handler<void(std::exception_ptr, op_result)> h;
      std::exception_ptr error;
      op_result result;
    };
    struct woken {
      handler<void(std::exception_ptr)> h;
      std::exception_ptr error;
    };
    std::variant<plain, checked, woken> kind;
    void run() {
      if (auto* w = std::get_if<woken>(&kind)) {
        std::move(w->h)(std::move(w->error));
      } else if (auto* c = std::get_if<checked>(&kind)) {
        std::move(c->h)(std::move(c->error), std::move(c->result));
      } else {
        auto& p = std::get<plain>(kind);
        std::move(p.h)(std::move(p.result));
      }
    }
  };
  // Resumptions the read handler holds back until it ends, and whether a
  // service pass is due then. Declared before core_, whose pending
  // completions may still run while it is destroyed.
  struct held_resumptions {
    bool holding = false;   // inside on_read: completions queue here
    bool resuming = false;  // running them: service requests wait
    bool service_due = false;
    std::vector<held_resumption> queue;
  } held_;
  connection_core core_;
  connect_options opts_;
  // The endpoint reached, as a URI without the password (set by connect()).
  std::string endpoint;
  // Run (posted, once) when the transport closes, for whatever reason: how
  // recovery learns of a loss.
  std::function<void()> on_closed;
  // With recovery on, an operation cut short by a loss of the connection
  // fails with errc::interrupted (the loss named in its text), not with the
  // loss itself: it may be retried once the connection is back.
  bool recoverable = false;
  error_info user_error(error_info e) const;

 private:
  // Completed by the read handler, for a coroutine on the driver's own
  // executor: resumed when that handler ends (see on_read), without a trip
  // through the scheduler. Otherwise posted.
  // (The completion keeps only the handler and the driver, small enough to be
  // held inside it; the handler's executor is looked up here.)
  template <class Kind>
  void resume(Kind&& kind) {
    const auto ex = asio::get_associated_executor(kind.h, ex_);
    if (held_.holding && ex == ex_) {
      held_.queue.push_back(held_resumption{std::move(kind)});
    } else {
      held_resumption next{std::move(kind)};
      asio::post(ex, [next = std::move(next)]() mutable { next.run(); });
    }
  }
  // An operation's id, cancelled in the core when the handler's slot fires.
  template <class Handler>
  std::uint64_t watch_cancellation(Handler& handler) {
    auto slot = asio::get_associated_cancellation_slot(handler);
    const std::uint64_t id = core_.next_op_id();
    if (slot.is_connected()) {
      std::weak_ptr<driver> weak = shared_from_this();
      slot.assign([weak, id](asio::cancellation_type) {
        if (auto s = weak.lock()) s->core_.cancel_op(id);
      });
    }
    return id;
  }
  // A failed operation's error as the exception its caller rethrows.
  std::exception_ptr failure(error_info why) const {
    return std::make_exception_ptr(error(user_error(std::move(why))));
  }
  // The caller now waits on the broker, so nothing would join its bytes
  // before the posted service pass: they go out at once.
  void flush_for_wait() {
    if (core_.has_output() && !writing_) service();
  }

  template <class F>
  void guarded(F&& step) noexcept;
  void internal_failure(const char* what) noexcept;

  void start_read();
  void resume_held();
  void service_if_due();
  void schedule_service();
  void service();
  void write_failed(const std::error_code& ec);
  void close_transport();

  void arm_heartbeat();
  void arm_deadline_tick();
  void batch_after_read(std::size_t n);
  void arm_batch_guard();

  std::unique_ptr<transport> transport_;
  asio::steady_timer heartbeat_timer_;
  asio::steady_timer deadline_timer_;
  asio::steady_timer linger_timer_;
  asio::steady_timer batch_timer_;
  std::size_t batch_bytes_ = 0;  // 0: receive batching off
  std::chrono::steady_clock::time_point last_read_{};
  bool batching_ = false;
  byte_buffer write_buf_;
  bool service_posted_ = false;  // a service() is queued on ex_
  bool writing_ = false;       // an asynchronous write holds write_buf_
  bool reading_ = false;       // a read is pending on the transport
  bool read_paused_ = false;   // a stream is full: no read until it drains
  bool closed_ = false;        // the transport is closed
};

// The connection handle over a driver that is open (tests build one over an
// in-memory transport this way).
connection make_connection(std::shared_ptr<driver> d);

}  // namespace warren::detail
