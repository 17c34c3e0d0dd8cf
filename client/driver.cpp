#include "warren/client/driver.hpp"

#include <algorithm>
#include <exception>

#include "warren/client/timeout.hpp"

namespace warren::detail {

[[noreturn]] void throw_error(error_info e) { throw error(std::move(e)); }

error_info make_info(std::error_code ec, std::string text) {
  error_info e;
  e.code = ec;
  e.text = std::move(text);
  return e;
}

namespace {
core_config with_options(core_config cfg, const connect_options& opts) {
  cfg.request_timeout = opts.request_timeout;
  return cfg;
}
}  // namespace

driver::driver(asio::any_io_executor ex, core_config cfg, connect_options opts)
    : ex_(ex),
      core_(with_options(std::move(cfg), opts)),
      opts_(std::move(opts)),
      heartbeat_timer_(ex),
      deadline_timer_(ex),
      linger_timer_(ex),
      batch_timer_(ex) {
  core_.set_listener(this);
}

driver::~driver() = default;

template <class F>
void driver::guarded(F&& step) noexcept {
  try {
    step();
  } catch (const std::exception& e) {
    internal_failure(e.what());
  } catch (...) {
    internal_failure("unknown exception");
  }
}

void driver::internal_failure(const char* what) noexcept {
  try {
    core_.abort(make_info(errc::internal_error, std::string("the connection failed inside the client: ") + what));
  } catch (...) {
  }
  close_transport();
}

asio::awaitable<void> driver::open(std::unique_ptr<transport> t, std::chrono::milliseconds timeout) {
  transport_ = std::move(t);
  if (opts_.receive_batch_bytes != 0 && transport_->can_batch()) batch_bytes_ = opts_.receive_batch_bytes;
  start_read();
  arm_deadline_tick();
  if (batch_bytes_ != 0) arm_batch_guard();
  auto start = [this](std::uint64_t id, completion done) { core_.start(std::move(done), id); };
  op_result r;
  try {
    if (timeout.count() > 0) {
      auto pending = op(start);
      r = co_await with_timeout(std::move(pending), timeout);
    } else {
      auto pending = op(start);
      r = co_await std::move(pending);
    }
  } catch (const error& e) {
    if (e.code() != errc::timeout) {
      close_transport();
      throw;
    }
    core_.on_transport_error(e.code(), "connection attempt timed out");
    close_transport();
    throw_error(make_info(errc::timeout, "no AMQP connection to " + transport_->describe() +
                                             " within " + std::to_string(timeout.count()) + " ms"));
  }
  if (r.error) {
    // The service pass already posted writes close-ok, then closes the transport.
    if (core_.current_phase() == connection_core::phase::idle) close_transport();
    throw_error(std::move(r.error));
  }
  arm_heartbeat();
}

// ---- reading -----------------------------------------------------------------

void driver::start_read() {
  if (reading_ || closed_ || core_.is_closed()) return;
  if (core_.reading_paused()) {
    read_paused_ = true;
    return;
  }
  read_paused_ = false;
  auto room = core_.read_buffer(64 * 1024);
  reading_ = true;
  transport_->async_read_some(room, shared_from_this());
}

// Operations the frames complete are not resumed from inside the parser:
// their resumptions are held until the handler's work is done and then run
// here, in order, at the top of the handler (as a posted handler would run
// them, minus the trip through the scheduler). What the frames call for goes
// out before them; what they queue goes out in one service pass after them.
void driver::on_read(std::error_code ec, std::size_t n) {
  reading_ = false;
  if (closed_) return;
  const auto keep = shared_from_this();  // a resumed caller may drop the last handle
  held_.holding = true;
  guarded([&] {
    if (ec) {
      core_.on_transport_error(ec, ec == asio::error::eof ? "the broker closed the connection"
                                                          : "connection lost: " + ec.message());
      return;
    }
    core_.on_read(n);
    if (batch_bytes_ != 0) batch_after_read(n);
    start_read();
  });
  held_.holding = false;
  // What the frames call for (channel.close-ok, heartbeats) goes out first:
  // a resumed caller that blocks its thread must not hold back the protocol.
  service_if_due();
  resume_held();
}

// The service pass a schedule_service() asked for while the read handler
// held it back, run here rather than posted.
void driver::service_if_due() {
  if (!held_.service_due) return;
  held_.service_due = false;
  if (!service_posted_ && !closed_) guarded([&] { service(); });
}

void driver::resume_held() {
  if (held_.queue.empty()) return;
  held_.resuming = true;
  std::vector<held_resumption> batch;
  batch.swap(held_.queue);
  std::size_t i = 0;
  try {
    for (; i < batch.size(); ++i) batch[i].run();
  } catch (...) {
    // A completion handler threw: it leaves io_context::run() as it would
    // have from a posted handler. Those after it are posted, not lost.
    for (++i; i < batch.size(); ++i)
      asio::post(ex_, [next = std::move(batch[i])]() mutable { next.run(); });
    held_.resuming = false;
    if (held_.service_due) {
      held_.service_due = false;
      schedule_service();
    }
    throw;
  }
  held_.resuming = false;
  if (held_.queue.empty()) {  // keep the storage for the next read
    batch.clear();
    held_.queue.swap(batch);
  }
  service_if_due();  // what the resumed callers queued, in one pass
}

// Receive batching (connect_options::receive_batch_bytes). The reader notes
// when it last read and starts a batch on a big read; the guard ends the
// batch once receive_batch_wait has passed since the last read. Lowering
// SO_RCVLOWAT makes Linux signal the waiting read at once when data is
// already queued.
void driver::batch_after_read(std::size_t n) {
  last_read_ = std::chrono::steady_clock::now();
  if (batching_ || n < std::min<std::size_t>(batch_bytes_, 1024)) return;
  transport_->set_receive_low_watermark(static_cast<int>(batch_bytes_));
  batching_ = true;
  batch_timer_.cancel();  // the guard arms its deadline
}

void driver::arm_batch_guard() {
  if (core_.is_closed() || closed_) return;
  // Never long enough to make a heartbeat look late: at most a quarter of
  // the negotiated interval.
  auto wait = opts_.receive_batch_wait;
  if (const std::uint16_t hb = core_.heartbeat(); hb != 0)
    wait = std::min<std::chrono::microseconds>(wait, std::chrono::milliseconds(250) * hb);
  if (batching_)
    batch_timer_.expires_at(last_read_ + wait);
  else
    batch_timer_.expires_at(asio::steady_timer::time_point::max());
  batch_timer_.async_wait([self = shared_from_this(), wait](std::error_code) {
    self->guarded([&] {
      if (self->batching_ && std::chrono::steady_clock::now() >= self->last_read_ + wait) {
        self->batching_ = false;
        self->transport_->set_receive_low_watermark(1);
      }
      self->arm_batch_guard();
    });
  });
}

// ---- writing -----------------------------------------------------------------

// The core reports its needs as they arise; the first report after a pass
// posts one service pass, so everything queued until it runs goes out in
// one send, made right there (non-blocking). Only what the transport cannot
// take at once is left to an asynchronous write. Once the core is closed and
// everything is written, the pass closes the transport; a write still
// pending then is abandoned, since a peer that does not read must not keep
// the connection alive.
void driver::core_needs_service() { schedule_service(); }

void driver::schedule_service() {
  if (service_posted_ || closed_) return;
  if (held_.holding || held_.resuming) {  // on_read runs the pass when it ends
    held_.service_due = true;
    return;
  }
  service_posted_ = true;
  asio::post(ex_, [self = shared_from_this()] { self->guarded([&] { self->service(); }); });
}

void driver::service() {
  service_posted_ = false;
  core_.service_started();
  if (closed_) return;
  if (read_paused_ && !core_.reading_paused()) start_read();
  if (writing_) {
    if (core_.is_closed()) close_transport();
    return;
  }
  if (!core_.has_output()) {
    if (core_.is_closed()) close_transport();
    return;
  }
  core_.take_output(write_buf_);
  std::error_code ec;
  std::size_t n = transport_->write_some(write_buf_.view(), ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) {
    ec.clear();
    n = 0;
  }
  if (ec) return write_failed(ec);
  if (n == write_buf_.size()) {
    write_buf_.clear();
    // Completions the write released may have queued more; closed, the
    // transport goes now.
    if (core_.is_closed() && !core_.has_output()) close_transport();
    return;
  }
  writing_ = true;
  transport_->async_write(write_buf_.view().subspan(n), shared_from_this());
}

void driver::on_written(std::error_code ec) {
  writing_ = false;
  write_buf_.clear();
  if (closed_) return;
  guarded([&] {
    if (ec) return write_failed(ec);
    service();
  });
}

void driver::write_failed(const std::error_code& ec) {
  write_buf_.clear();
  core_.on_transport_error(ec, "connection lost while writing: " + ec.message());
  close_transport();
}

void driver::close_transport() {
  if (closed_) return;
  closed_ = true;
  if (transport_) transport_->close();
  if (on_closed) asio::post(ex_, std::move(on_closed));
  heartbeat_timer_.cancel();
  deadline_timer_.cancel();
  linger_timer_.cancel();
  batch_timer_.cancel();
}

// ---- timers ------------------------------------------------------------------

void driver::arm_heartbeat() {
  if (core_.heartbeat() == 0 || core_.is_closed() || closed_) return;
  heartbeat_timer_.expires_after(std::chrono::milliseconds(500 * std::uint32_t{core_.heartbeat()}));
  heartbeat_timer_.async_wait([self = shared_from_this()](std::error_code ec) {
    if (ec || self->closed_ || self->core_.is_closed()) return;
    self->guarded([&] {
      // Paused, the driver reads nothing: what waits unread is the proof of life.
      const bool unread = self->core_.reading_paused() && self->transport_->unread() > 0;
      self->core_.heartbeat_tick(unread);
      self->arm_heartbeat();
    });
  });
}

void driver::arm_deadline_tick() {
  if (!core_.has_deadlines() || core_.is_closed() || closed_) return;
  const auto period = std::clamp<std::chrono::milliseconds>(core_.request_timeout() / 4,
                                                            std::chrono::milliseconds(10),
                                                            std::chrono::milliseconds(1000));
  deadline_timer_.expires_after(period);
  deadline_timer_.async_wait([self = shared_from_this()](std::error_code ec) {
    if (ec || self->closed_ || self->core_.is_closed()) return;
    self->guarded([&] {
      self->core_.tick(connection_core::clock::now());
      self->arm_deadline_tick();
    });
  });
}

bool is_connection_loss(const error_info& e) noexcept {
  return e.code == errc::connection_lost || e.code == errc::heartbeat_timeout ||
         e.reply_code() == 320;
}

error_info driver::user_error(error_info e) const {
  if (!recoverable || !is_connection_loss(e)) return e;
  error_info out;
  out.code = errc::interrupted;
  out.text = "interrupted by the loss of the connection (" + e.describe() +
             "); it may be retried once the connection is recovered";
  return out;
}

void driver::abandon() {
  guarded([&] {
    if (core_.is_closed()) {
      schedule_service();
      return;
    }
    core_.close(200, "connection released by the client", 0, {});
    linger_timer_.expires_after(std::chrono::seconds(5));
    linger_timer_.async_wait([self = shared_from_this()](std::error_code) { self->close_transport(); });
  });
}

}  // namespace warren::detail
