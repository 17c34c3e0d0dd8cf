#include "warren/client/core.hpp"

#include <algorithm>
#include <bit>

#include "warren/client/log.hpp"


namespace warren::detail {

namespace {

error_info info(std::error_code ec, std::string text = {}) {
  error_info e;
  e.code = ec;
  e.text = text.empty() ? ec.message() : std::move(text);
  return e;
}

template <class M>
error_info from_close(const M& close) {
  error_info e;
  e.code = std::error_code(close.reply_code, amqp_category());
  e.text = close.reply_text;
  e.class_id = close.class_id;
  e.method_id = close.method_id;
  return e;
}

}  // namespace

error_info connection_core::encode_failure(std::string_view method, std::error_code ec,
                                           std::size_t size) const {
  std::string text = "cannot send " + std::string(method) + ": ";
  if (ec == errc::string_too_long)
    text += "a name, routing key or tag is longer than 255 bytes";
  else if (ec == errc::frame_too_large)
    text += "its frame is " + std::to_string(size) + " bytes, over the negotiated frame_max of " +
            std::to_string(frame_max_);
  else
    text += ec.message();
  return info(ec, std::move(text));
}

void connection_core::log(log_level level, std::string_view text) const noexcept {
  emit(cfg_.log, level, text);
}

connection_core::connection_core(core_config cfg)
    : cfg_(std::move(cfg)), handshake_(cfg_.params, cfg_.connection_name) {
  handshake_.set_client_properties(cfg_.client_properties);
  channels_.push_back(std::make_unique<channel_state>(cfg_.max_body_size));
}

void connection_core::start(completion on_open, std::uint64_t id) {
  on_open_ = std::move(on_open);
  open_id_ = id;
  phase_ = phase::start;
  handshake_.begin(out());
}

void connection_core::on_read(std::size_t n) {
  parser_.commit(n);
  counters_.bytes_in += n;
  if (n != 0) read_since_tick_ = true;
  process_frames();
  if (owed_ > cfg_.max_owed_output && phase_ != phase::closed)
    fail_all(info(errc::output_overflow,
                  "the broker keeps sending methods that need replies but does not read them: " +
                      std::to_string(owed_) + " bytes of replies unsent"));
}

void connection_core::feed(bytes_view bytes) {
  auto room = read_buffer(bytes.size());
  if (!bytes.empty()) std::memcpy(room.data(), bytes.data(), bytes.size());
  on_read(bytes.size());
}

void connection_core::take_output(byte_buffer& into) {
  // Publishers held back by the output's high-water mark can go on now (the
  // output only ever shrinks here).
  const bool was_full = output_.size() >= cfg_.output_high_water;
  std::swap(into, output_);
  output_.clear();
  service_requested_ = false;
  owed_ = 0;
  counters_.bytes_out += into.size();
  if (!into.empty()) wrote_since_tick_ = true;
  if (was_full) notify_writable();
}

void connection_core::process_frames() {
  frame_view f;
  std::error_code ec;
  while (phase_ != phase::closed) {
    auto st = parser_.next(f, ec);
    if (st == frame_parser::status::need_more) return;
    if (st == frame_parser::status::error) {
      if (ec == errc::protocol_mismatch)
        fail_all(info(ec, "the server rejected AMQP 0-9-1 and answered with its own protocol header"));
      else
        protocol_error(reply_code::frame_error, ec, ec.message());
      return;
    }
    ++counters_.frames_in;
    on_frame(f);
  }
}

void connection_core::on_frame(const frame_view& f) {
  // The common case first: a frame on an open channel of an open connection.
  if (f.channel != 0 && f.channel < channels_.size() && phase_ == phase::open &&
      f.type != frame_type::heartbeat) {
    channel_state* c = channels_[f.channel].get();
    if (c != nullptr && c->state == channel_state::status::open) {
      on_channel_frame(*c, f);
      return;
    }
  }
  on_other_frame(f);
}

void connection_core::on_other_frame(const frame_view& f) {
  if (f.type == frame_type::heartbeat) {
    if (f.channel != 0)
      protocol_error(reply_code::command_invalid, errc::unexpected_frame,
                     "heartbeat frame on a channel other than 0");
    return;
  }
  if (f.channel == 0) {
    if (f.type != frame_type::method) {
      protocol_error(reply_code::command_invalid, errc::unexpected_frame,
                     "content frame on channel 0");
      return;
    }
    on_connection_method(f.payload);
    return;
  }
  if (phase_ != phase::open && phase_ != phase::closing) {
    protocol_error(reply_code::channel_error, errc::unexpected_frame,
                   "channel frame before the connection is open");
    return;
  }
  // After our connection.close only close/close-ok matter; close() already
  // freed every channel, so frames still in flight on them are discarded.
  if (phase_ == phase::closing) return;
  channel_state* c = find_channel(f.channel);
  if (c != nullptr && c->state == channel_state::status::abandoned) {
    on_abandoned_channel_frame(f);
    return;
  }
  if (c == nullptr || c->state == channel_state::status::free) {
    // A peer may finish frames it queued before our close-ok freed the id.
    if (f.type == frame_type::method && (peek_method_key(f.payload) == channel_close_ok::key))
      return;
    protocol_error(reply_code::channel_error, errc::unexpected_frame,
                   "frame on channel " + std::to_string(f.channel) + ", which is not open");
    return;
  }
  on_channel_frame(*c, f);
}

void connection_core::on_channel_frame(channel_state& c, const frame_view& f) {
  std::error_code ec;
  switch (f.type) {
    case frame_type::method:
      if (!c.content.idle()) {
        protocol_error(reply_code::unexpected_frame, errc::unexpected_frame,
                       "method frame in the middle of a message's content");
        return;
      }
      on_channel_method(f.channel, c, f.payload);
      return;
    case frame_type::header:
      if (c.content.on_header(f.payload, ec)) on_content_complete(f.channel, c);
      break;
    case frame_type::body:
      if (c.content.on_body(f.payload, ec)) on_content_complete(f.channel, c);
      break;
    default: break;
  }
  if (!ec) [[likely]]
    return;  // tested first: comparing with an errc value costs a call per frame
  if (ec == errc::message_too_large) {
    refuse_content(f.channel, c);
    return;
  }
  auto code = ec == errc::unexpected_frame ? reply_code::unexpected_frame : reply_code::frame_error;
  protocol_error(code, ec, ec.message());
}

void connection_core::on_abandoned_channel_frame(const frame_view& f) {
  // Only the answer to our channel.close matters; the broker requeues what
  // it delivered here once the channel is closed.
  if (f.type != frame_type::method) return;
  const std::uint32_t key = peek_method_key(f.payload);
  if (key == channel_close::key) reply(f.channel, channel_close_ok{});
  if (key == channel_close::key || key == channel_close_ok::key) {
    const error_info why = channels_[f.channel]->closed_reason;
    fail_channel(f.channel, why);  // frees the id, fails what still waited on it
  }
}

void connection_core::on_handshake_step(handshake::step st) {
  switch (handshake_.current()) {
    case handshake::state::tune: phase_ = phase::tune; break;
    case handshake::state::opening: phase_ = phase::opening; break;
    default: break;
  }
  if (st == handshake::step::failed) {
    fail_all(handshake_.error());
    return;
  }
  if (st != handshake::step::open) return;
  channel_max_ = handshake_.channel_max();
  frame_max_ = handshake_.frame_max();
  heartbeat_ = handshake_.heartbeat();
  if (logging())
    log(log_level::debug, "tuned: channel_max " + std::to_string(channel_max_) + ", frame_max " +
                              std::to_string(frame_max_) + ", heartbeat " +
                              std::to_string(heartbeat_) + " s");
  // "No limit" from both sides still gets a client limit: one frame header
  // must not be able to make the parser expect gigabytes.
  parser_.set_frame_max(frame_max_ == 0 ? cfg_.unlimited_frame_cap : frame_max_);
  phase_ = phase::open;
  op_result ok;
  on_open_.consume(std::move(ok));
}

void connection_core::on_connection_method(bytes_view payload) {
  any_method m;
  if (auto ec = decode_method(payload, m)) {
    protocol_error(ec == errc::unknown_class || ec == errc::unknown_method
                       ? reply_code::command_invalid
                       : reply_code::syntax_error,
                   ec, "connection method: " + ec.message());
    return;
  }
  const std::uint32_t key = peek_method_key(payload);
  auto wrong_phase = [&] {
    protocol_error(reply_code::unexpected_frame, errc::unexpected_frame,
                   std::string(find_method(key >> 16, key & 0xFFFF)->name) +
                       " is not expected now");
  };
  switch (key) {
    case connection_start::key:
    case connection_secure::key:
    case connection_tune::key:
    case connection_open_ok::key:
      if (!handshake_.expects(key)) return wrong_phase();
      {
        const std::uint64_t before = handshake_.frames_written();
        const handshake::step st = handshake_.on_method(key, m, out());
        counters_.frames_out += handshake_.frames_written() - before;
        on_handshake_step(st);
      }
      return;
    case connection_close::key: {
      const auto& close = std::get<connection_close>(m);
      error_info why = from_close(close);
      // With authentication_failure_close the broker answers bad credentials
      // with connection.close instead of dropping the socket.
      if (phase_ == phase::tune && close.reply_code == static_cast<std::uint16_t>(reply_code::access_refused)) {
        why.code = errc::authentication_failed;
        // Keep the broker's code visible: the error is now a client-side one.
        why.text = std::to_string(close.reply_code) + " " + why.text;
      }
      reply(0, connection_close_ok{});
      if (phase_ == phase::closing) {
        // Both sides closed at once: our close is answered by theirs.
        phase_ = phase::closed;
        op_result ok;
        close_waiter_.done.consume(std::move(ok));
        if (logging()) log(log_level::info, "connection closed (the broker closed it too: " +
                                                escaped(why.describe()) + ")");
      } else if (phase_ == phase::open && logging()) {
        log(log_level::warning, "the broker closed the connection: " + escaped(why.describe()));
      }
      fail_all(why, false);
      return;
    }
    case connection_close_ok::key: {
      if (phase_ != phase::closing) return wrong_phase();
      phase_ = phase::closed;
      op_result ok;
      close_waiter_.done.consume(std::move(ok));
      log(log_level::info, "connection closed");
      fail_all(close_reason_, false);
      return;
    }
    case connection_blocked::key:
      if (logging())
        log(log_level::warning, "the broker blocked publishing: " +
                                    escaped(std::get<connection_blocked>(m).reason));
      blocked_ = true;
      event_ = connection_notice{connection_event_type::blocked,
                                std::move(std::get<connection_blocked>(m).reason)};
      break;
    case connection_unblocked::key:
      log(log_level::info, "the broker unblocked publishing");
      blocked_ = false;
      event_ = connection_notice{connection_event_type::unblocked, {}};
      notify_writable();
      break;
    case connection_update_secret_ok::key:
      on_reply(0, *channels_[0], key, std::move(m));
      return;
    default:
      protocol_error(reply_code::command_invalid, errc::unexpected_frame,
                     method_name(key >> 16, key & 0xFFFF) + " on channel 0");
      return;
  }
  if (event_waiter_.done && event_) {
    op_result r;
    r.event = std::move(*event_);
    event_.reset();
    event_waiter_.done.consume(std::move(r));
  }
}

void connection_core::on_channel_method(std::uint16_t ch, channel_state& c, bytes_view payload) {
  const std::uint32_t key = peek_method_key(payload);
  std::error_code ec;
  if (c.state == channel_state::status::closing) {
    // After our channel.close the spec has us discard everything but close,
    // close-ok and the replies still owed to requests on the wire: no
    // deliveries, no confirms, and no answers of ours (flow-ok, cancel-ok,
    // rejects) on a channel we are closing.
    switch (key) {
      case basic_deliver::key:
      case basic_return::key:
        c.content_for = channel_state::target::discarded;
        c.content.expect_header();
        return;
      case basic_ack::key:
      case basic_nack::key:
      case channel_flow::key:
      case basic_cancel::key: return;
      default: break;
    }
  }
  switch (key) {
    case basic_deliver::key:
      ec = expect_delivery(c, payload);
      break;
    case basic_ack::key: {
      basic_ack a;
      ec = decode_method_as(payload, a);
      if (!ec) on_confirm(c, a.delivery_tag, a.multiple, true);
      break;
    }
    case basic_nack::key: {
      basic_nack n;
      ec = decode_method_as(payload, n);
      if (!ec) on_confirm(c, n.delivery_tag, n.multiple, false);
      break;
    }
    case basic_return::key:
      ec = expect_content(c, payload, c.returned, channel_state::target::returned);
      break;
    case basic_get_ok::key:
      if (!c.requests.answers(basic_get_ok::key)) {
        protocol_error(reply_code::unexpected_frame, errc::unexpected_frame,
                       "basic.get-ok without a basic.get");
        return;
      }
      ec = expect_content(c, payload, c.get_ok, channel_state::target::get_ok);
      break;
    case channel_close::key: {
      channel_close close;
      ec = decode_method_as(payload, close);
      if (ec) break;
      reply(ch, channel_close_ok{});
      error_info why = from_close(close);
      if (logging())
        log(log_level::warning, "the broker closed channel " + std::to_string(ch) + ": " +
                                    escaped(why.describe()));
      if (c.state == channel_state::status::closing && !c.requests.empty() &&
          c.requests.back().key == channel_close::key) {
        // Closed from both sides at once: theirs answers ours.
        op_result ok;
        c.requests.back().done.consume(std::move(ok));
        c.requests.pop_back();
      }
      fail_channel(ch, why);
      return;
    }
    case channel_flow::key: {
      channel_flow flow;
      ec = decode_method_as(payload, flow);
      if (ec) break;
      c.flow_active = flow.active;
      channel_flow_ok ok;
      ok.active = flow.active;
      reply(ch, ok);
      if (flow.active) notify_writable();
      return;
    }
    case basic_cancel::key: {
      // consumer_cancel_notify: the broker ended a consumer (its queue went away).
      basic_cancel cancel;
      ec = decode_method_as(payload, cancel);
      if (ec) break;
      if (logging())
        log(log_level::warning, "the broker cancelled consumer '" + escaped(cancel.consumer_tag) +
                                    "' on channel " + std::to_string(ch));
      c.consumers.end(cancel.consumer_tag,
                      info(errc::consumer_cancelled,
                           "the broker cancelled consumer '" + cancel.consumer_tag + "'"));
      if (!cancel.no_wait) {
        basic_cancel_ok ok;
        ok.consumer_tag = cancel.consumer_tag;
        reply(ch, ok);
      }
      return;
    }
    default: {
      any_method m;
      ec = decode_method(payload, m);
      if (ec) break;
      on_reply(ch, c, key, std::move(m));
      return;
    }
  }
  if (ec) {
    protocol_error(ec == errc::unknown_class || ec == errc::unknown_method
                       ? reply_code::command_invalid
                       : reply_code::syntax_error,
                   ec, method_name(key >> 16, key & 0xFFFF) + ": " + ec.message());
  }
}

void connection_core::on_reply(std::uint16_t ch, channel_state& c, std::uint32_t key,
                               any_method&& m) {
  if (!c.requests.answers(key)) {
    protocol_error(reply_code::unexpected_frame, errc::unexpected_frame,
                   method_name(key >> 16, key & 0xFFFF) + " does not answer anything pending on channel " +
                       std::to_string(ch));
    return;
  }
  if (key == basic_consume_ok::key &&
      c.consumers.find(std::get<basic_consume_ok>(m).consumer_tag) != nullptr) {
    // Two streams under one tag could not be told apart: fails every
    // request, this one included.
    protocol_error(reply_code::command_invalid, errc::unexpected_frame,
                   "basic.consume-ok names consumer tag '" +
                       std::get<basic_consume_ok>(m).consumer_tag + "', already in use on channel " +
                       std::to_string(ch));
    return;
  }
  pending_request req = c.requests.pop_front();
  switch (key) {
    case channel_open_ok::key:
      c.state = channel_state::status::open;
      if (!req.done) {
        // Opened for nobody (the open was cancelled): close it again so the
        // id is not lost.
        pump(c);
        close_channel(ch, 0, {});
        return;
      }
      break;
    case confirm_select_ok::key:
      c.confirms.enable();
      break;
    case basic_consume_ok::key: {
      c.consumers.add(std::get<basic_consume_ok>(m).consumer_tag, ch, req.consumer);
      if (!req.done) {
        // The user gave up waiting: do not leave a consumer nobody reads.
        // Its cancel is queued behind this reply, below.
        pump(c);
        abandon_consumer(req.consumer);
        return;
      }
      break;
    }
    case basic_cancel_ok::key: {
      c.consumers.end(std::get<basic_cancel_ok>(m).consumer_tag);
      break;
    }
    default: break;
  }
  op_result r;
  r.reply = std::move(m);
  req.done.consume(std::move(r));
  if (key == channel_close_ok::key) {
    fail_channel(ch, info(errc::channel_closed, "channel closed by the client"));
    return;
  }
  pump(c);
}

void connection_core::on_content_complete(std::uint16_t ch, channel_state& c) {
  const auto target = c.content_for;
  c.content_for = channel_state::target::none;
  // Content that began before our channel.close and ends after it: dropped
  // like any delivery to a channel we are closing.
  if (target == channel_state::target::discarded ||
      (target == channel_state::target::deliver && c.state == channel_state::status::closing)) {
    c.content.take_body();
    return;
  }
  if (target == channel_state::target::deliver) {
    ++counters_.deliveries;
    consumer_state* s = c.consumers.find(c.incoming->consumer_tag);
    if (s == nullptr) {
      // A consumer nobody registered (RabbitMQ sends none after cancel-ok):
      // dropping it would leave its tag unacknowledged for good.
      requeue(ch, c.incoming->delivery_tag);
      return;
    }
    deliver(c, *s);
    return;
  }
  message msg;
  msg.properties = std::move(c.content.properties());
  msg.body = c.content.take_body();
  switch (target) {
    case channel_state::target::deliver:
    case channel_state::target::discarded: return;
    case channel_state::target::get_ok: {
      msg.delivery_tag = c.get_ok.delivery_tag;
      msg.redelivered = c.get_ok.redelivered;
      msg.exchange = c.get_ok.exchange;
      msg.routing_key = c.get_ok.routing_key;
      msg.message_count = c.get_ok.message_count;
      pending_request req = c.requests.pop_front();
      if (req.done) {
        op_result r;
        r.reply = any_method(c.get_ok);
        r.msg = std::move(msg);
        req.done.consume(std::move(r));
      } else if (c.state != channel_state::status::closing) {
        // Nobody waits for this message any more: give it back to the queue
        // (closing the channel gives it back anyway).
        requeue(ch, msg.delivery_tag);
      }
      pump(c);
      return;
    }
    case channel_state::target::returned: {
      returned_message r;
      r.reply_code = c.returned.reply_code;
      r.reply_text = c.returned.reply_text;
      r.exchange = c.returned.exchange;
      r.routing_key = c.returned.routing_key;
      r.properties = std::move(msg.properties);
      r.body = std::move(msg.body);
      on_return(c, std::move(r));
      return;
    }
    case channel_state::target::none: return;
  }
}

std::error_code connection_core::expect_delivery(channel_state& c, bytes_view payload) {
  if (!c.incoming) c.incoming = std::make_unique<message>();
  message& m = *c.incoming;
  // basic.deliver's arguments (as basic_deliver::decode_arguments reads them),
  // into the message that will carry them.
  reader r(payload);
  r.u32();  // the method key, already matched
  r.shortstr_into(m.consumer_tag);
  m.delivery_tag = r.u64();
  m.redelivered = (r.u8() & 1u) != 0;
  r.shortstr_into(m.exchange);
  r.shortstr_into(m.routing_key);
  if (!r.ok()) return r.error();
  if (!r.empty()) return errc::trailing_bytes;
  m.message_count = 0;
  c.content_for = channel_state::target::deliver;
  c.content.expect_header(m.properties, m.body);
  return {};
}

void connection_core::deliver(channel_state& c, consumer_state& s) {
  if (s.orphan) {
    // Nobody will read it: hand it back rather than leave it unacked.
    if (!s.no_ack) requeue(s.channel, c.incoming->delivery_tag);
    return;
  }
  // Straight into the stream's ring: no fields copied in between.
  if (push_delivery(s, c.incoming)) ++full_streams_;
}

message* connection_core::take_delivery(const std::shared_ptr<consumer_state>& c) {
  bool drained = false;
  message* m = pop_delivery(*c, drained);
  if (drained) stream_drained(true);
  return m;
}

bool connection_core::take_delivery(const std::shared_ptr<consumer_state>& c, message& out) {
  message* m = take_delivery(c);
  if (m == nullptr) return false;
  hand_over(*m, out);
  return true;
}

void connection_core::wait_delivery(const std::shared_ptr<consumer_state>& c, std::uint64_t id,
                                    completion done) {
  detail::wait_delivery(*c, id, std::move(done));
}

void connection_core::stream_drained(bool was_full) {
  if (was_full && full_streams_ > 0 && --full_streams_ == 0) needs_service();  // reading can go on
}

void connection_core::on_confirm(channel_state& c, std::uint64_t tag, bool multiple, bool ack) {
  if (!c.confirms.enabled()) {
    protocol_error(reply_code::unexpected_frame, errc::unexpected_frame,
                   "basic.ack/nack on a channel not in confirm mode");
    return;
  }
  const std::uint64_t before = c.confirms.unconfirmed();
  if (!c.confirms.on_confirm(tag, multiple, ack)) {
    protocol_error(reply_code::precondition_failed, errc::unexpected_frame,
                   "confirm for unknown publish sequence number " + std::to_string(tag));
    return;
  }
  (ack ? counters_.acks : counters_.nacks) += before - c.confirms.unconfirmed();
  if (!c.writable_waiters.empty()) notify_writable(c);
}

void connection_core::on_return(channel_state& c, returned_message&& r) {
  ++counters_.returns;
  // A publish() awaiting its outcome learns of the return there.
  const bool reported = c.confirms.enabled() &&
                        c.confirms.on_return(r.reply_code, r.reply_text, r.exchange, r.routing_key);
  if (reported) return;
  if (c.return_waiter.done) {
    op_result res;
    res.returned = std::move(r);
    c.return_waiter.done.consume(std::move(res));
    return;
  }
  // Never a reason to stop reading: the ack the publisher waits for may be
  // right behind the returns nobody reads.
  if (c.returns.size() >= cfg_.max_returns_buffered) {
    // Logged at the 1st, 2nd, 4th, 8th... drop: a flood of returns is not
    // a flood of lines.
    if (std::has_single_bit(++c.returns_dropped) && logging())
      log(log_level::warning, std::to_string(c.returns_dropped) +
                                  " basic.return messages dropped so far: " +
                                  std::to_string(cfg_.max_returns_buffered) +
                                  " wait unread (channel::next_return)");
    return;
  }
  c.returns.push_back(std::move(r));
}

std::uint64_t connection_core::returns_dropped(std::uint16_t ch) const noexcept {
  const channel_state* c = find_channel(ch);
  return c == nullptr ? 0 : c->returns_dropped;
}

void connection_core::requeue(std::uint16_t ch, std::uint64_t delivery_tag) {
  basic_reject reject;
  reject.delivery_tag = delivery_tag;
  reject.requeue = true;
  reply(ch, reject);
}

void connection_core::next_return(std::uint16_t ch, std::uint64_t id, completion done) {
  channel_state* c = find_channel(ch);
  if (c == nullptr || c->state == channel_state::status::free ||
      c->state == channel_state::status::abandoned) {
    done.consume(failed_result(channel_error(ch)));
    return;
  }
  if (!c->returns.empty()) {
    op_result r;
    r.returned = std::move(c->returns.front());
    c->returns.pop_front();
    done.consume(std::move(r));
    return;
  }
  if (c->return_waiter.done) {
    done.consume(failed_result(info(std::make_error_code(std::errc::operation_in_progress),
                                    "another next_return() is already waiting")));
    return;
  }
  c->return_waiter = {id, std::move(done)};
}

void connection_core::next_event(std::uint64_t id, completion done) {
  if (event_) {
    op_result r;
    r.event = std::move(*event_);
    event_.reset();
    done.consume(std::move(r));
    return;
  }
  if (phase_ == phase::closed) {
    done.consume(failed_result(close_reason_));
    return;
  }
  if (event_waiter_.done) {
    done.consume(failed_result(info(std::make_error_code(std::errc::operation_in_progress),
                                    "another next_notice() is already waiting")));
    return;
  }
  event_waiter_ = {id, std::move(done)};
}

connection_core::channel_state* connection_core::find_channel(std::uint16_t ch) noexcept {
  return ch < channels_.size() ? channels_[ch].get() : nullptr;
}
const connection_core::channel_state* connection_core::find_channel(
    std::uint16_t ch) const noexcept {
  return ch < channels_.size() ? channels_[ch].get() : nullptr;
}

bool connection_core::is_channel_open(std::uint16_t ch) const noexcept {
  const channel_state* c = find_channel(ch);
  return phase_ == phase::open && c != nullptr && c->state == channel_state::status::open;
}

error_info connection_core::channel_error(std::uint16_t ch) const {
  if (phase_ != phase::open) {
    if (close_reason_) return close_reason_;
    return info(errc::connection_closed, "connection is not open");
  }
  const channel_state* c = find_channel(ch);
  if (c == nullptr) return info(errc::channel_closed, "no such channel");
  if (c->state == channel_state::status::open) return {};
  if (c->closed_reason) return c->closed_reason;
  return info(errc::channel_closed);
}

std::error_code connection_core::check_channel(std::uint16_t ch) const {
  if (phase_ != phase::open) return close_reason_ ? close_reason_.code : errc::connection_closed;
  const channel_state* c = find_channel(ch);
  if (ch == 0) return {};
  if (c == nullptr || c->state != channel_state::status::open) return errc::channel_closed;
  return {};
}

void connection_core::enqueue_request(std::uint16_t ch, std::uint32_t key,
                                      std::span<const std::uint32_t> replies, byte_buffer frame,
                                      std::uint64_t id, completion done,
                                      std::shared_ptr<consumer_state> consumer) {
  channel_state* c = find_channel(ch);
  const bool opening = key == channel_open::key && c != nullptr &&
                       c->state == channel_state::status::opening;
  const bool closing = key == channel_close::key && c != nullptr &&
                       c->state == channel_state::status::closing;
  if (!opening && !closing && check_channel(ch)) {
    done.consume(failed_result(channel_error(ch)));
    return;
  }
  pending_request req;
  req.id = id;
  req.key = key;
  req.replies = replies;
  req.frame = std::move(frame);
  req.done = std::move(done);
  req.consumer = std::move(consumer);
  if (c->requests.push(std::move(req), out())) ++counters_.frames_out;
}

std::uint16_t connection_core::open_channel(std::uint64_t id, completion done) {
  if (phase_ != phase::open) {
    done.consume(failed_result(channel_error(0)));
    return 0;
  }
  const std::uint32_t limit = channel_max_ == 0 ? 0xFFFF : channel_max_;
  std::uint16_t found = 0;
  for (std::uint32_t i = 0; i < limit && found == 0; ++i) {
    const std::uint32_t cand = (channel_hint_ - 1 + i) % limit + 1;
    if (cand >= channels_.size() || channels_[cand]->state == channel_state::status::free)
      found = static_cast<std::uint16_t>(cand);
  }
  if (found == 0) {
    done.consume(failed_result(
        info(errc::channel_limit, "all " + std::to_string(limit) + " channels are in use")));
    return 0;
  }
  channel_hint_ = static_cast<std::uint16_t>(found % limit + 1);
  while (channels_.size() <= found)
    channels_.push_back(std::make_unique<channel_state>(cfg_.max_body_size));
  channels_[found] = std::make_unique<channel_state>(cfg_.max_body_size);
  channels_[found]->state = channel_state::status::opening;
  request(found, warren::channel_open{}, id, std::move(done));
  return found;
}

void connection_core::close_channel(std::uint16_t ch, std::uint64_t id, completion done) {
  channel_state* c = find_channel(ch);
  if (ch == 0 || c == nullptr || c->state != channel_state::status::open || phase_ != phase::open) {
    // Already closed: closing again is not an error.
    op_result ok;
    done.consume(std::move(ok));
    return;
  }
  // Requests not yet sent will never be: fail them now.
  error_info why = info(errc::channel_closed, "channel closed by the client");
  c->requests.fail_unsent(why);
  c->state = channel_state::status::closing;
  c->closed_reason = why;
  channel_close close;
  close.reply_code = static_cast<std::uint16_t>(reply_code::reply_success);
  close.reply_text = "closed by the client";
  byte_buffer frame;
  encode_method_frame(frame, ch, close);
  enqueue_request(ch, channel_close::key, std::span<const std::uint32_t>(channel_close::responses),
                  std::move(frame), id, std::move(done), nullptr);
}

void connection_core::consume(std::uint16_t ch, const basic_consume& m,
                              std::shared_ptr<consumer_state> consumer, std::uint64_t id,
                              completion done) {
  byte_buffer frame;
  if (error_info e = encode_method(frame, ch, m)) {
    done.consume(failed_result(e));
    return;
  }
  consumer->channel = ch;
  consumer->no_ack = m.no_ack;
  enqueue_request(ch, basic_consume::key, std::span<const std::uint32_t>(basic_consume::responses),
                  std::move(frame), id, std::move(done), std::move(consumer));
}

void connection_core::cancel(std::uint16_t ch, const std::string& tag, std::uint64_t id,
                             completion done) {
  channel_state* c = find_channel(ch);
  if (c == nullptr || check_channel(ch)) {
    op_result ok;  // the channel is gone, so is the consumer
    done.consume(std::move(ok));
    return;
  }
  consumer_state* s = c->consumers.find(tag);
  if (s == nullptr) {
    op_result ok;
    done.consume(std::move(ok));
    return;
  }
  s->state = consumer_state::status::cancelling;
  basic_cancel m;
  m.consumer_tag = tag;
  request(ch, m, id, std::move(done));
}

void connection_core::abandon_consumer(const std::shared_ptr<consumer_state>& c) {
  if (c->orphan) return;
  c->orphan = true;
  channel_state* ch = find_channel(c->channel);
  const bool live = ch != nullptr && check_channel(c->channel) == std::error_code{};
  // Buffered deliveries were never seen: give them back to the queue.
  if (live && !c->no_ack)
    for (std::size_t i = 0; i < c->buffer.size(); ++i) requeue(c->channel, c->buffer[i].delivery_tag);
  c->buffer.clear();
  if (c->full) {
    c->full = false;
    stream_drained(true);
  }
  if (live && c->state == consumer_state::status::active) {
    c->state = consumer_state::status::cancelling;
    basic_cancel m;
    m.consumer_tag = c->tag;
    request(c->channel, m, 0, {});
  }
}

void connection_core::confirm_select(std::uint16_t ch, std::uint64_t id, completion done) {
  request(ch, warren::confirm_select{}, id, std::move(done));
}

bool connection_core::confirm_mode(std::uint16_t ch) const noexcept {
  const channel_state* c = find_channel(ch);
  return c != nullptr && c->confirms.enabled();
}

std::uint64_t connection_core::unconfirmed(std::uint16_t ch) const noexcept {
  const channel_state* c = find_channel(ch);
  return c == nullptr ? 0 : c->confirms.unconfirmed();
}

const confirm_tracker* connection_core::lost_confirms(std::uint16_t ch) const noexcept {
  const channel_state* c = find_channel(ch);
  return c == nullptr ? nullptr : c->lost_confirms.get();
}

bool connection_core::confirm_settled(std::uint16_t ch, std::uint64_t seq) const noexcept {
  const channel_state* c = find_channel(ch);
  return c != nullptr && c->confirms.settled(seq);
}

std::error_code connection_core::publish_encoded(std::uint16_t ch, bytes_view frames,
                                                 bool mandatory, std::string_view exchange,
                                                 std::string_view routing_key,
                                                 std::uint64_t* sequence) {
  completion none;
  std::error_code ec;
  channel_state* c = publish_channel(ch, none, ec);
  if (c == nullptr) return ec;
  // Each frame: type, channel (2), size (4), payload, frame-end.
  for (std::size_t at = 0; at < frames.size();) {
    if (frames.size() - at < frame_overhead) return errc::bad_frame_end;
    const std::uint32_t size = detail::load32(frames.data() + at + 3);
    if (size > frames.size() - at - frame_overhead) return errc::bad_frame_end;
    if (size + frame_overhead > publish_frame_max()) return errc::frame_too_large;
    at += frame_overhead + size;
  }
  std::uint8_t* p = out().extend(frames.size());
  std::memcpy(p, frames.data(), frames.size());
  for (std::size_t at = 0; at < frames.size(); at += frame_overhead + detail::load32(p + at + 3))
    detail::store16(p + at + 1, ch);
  return published(*c, mandatory, exchange, routing_key, 0, {}, sequence);
}

connection_core::channel_state* connection_core::publish_channel(std::uint16_t ch, completion& done,
                                                                 std::error_code& ec) {
  // The common case first, without building an error_code.
  if (phase_ == phase::open && ch != 0 && ch < channels_.size() &&
      channels_[ch]->state == channel_state::status::open)
    return channels_[ch].get();
  error_info why = channel_error(ch);
  if (!why) why = info(errc::channel_closed);
  fail_completion(done, why);
  ec = why.code;
  return nullptr;
}

std::error_code connection_core::published(channel_state& c, bool mandatory,
                                           std::string_view exchange, std::string_view routing_key,
                                           std::uint64_t id, completion done,
                                           std::uint64_t* sequence) {
  if (!c.confirms.enabled()) {
    if (done) {
      op_result ok;
      done.consume(std::move(ok));
    }
    if (sequence) *sequence = 0;
    return detail::no_error;
  }
  const std::uint64_t seq = c.confirms.add(mandatory, exchange, routing_key, id, std::move(done));
  if (sequence) *sequence = seq;
  return detail::no_error;
}

std::error_code connection_core::publish(const publish_frame_args& args,
                                         const basic_properties& props, bytes_view body,
                                         std::uint64_t id, completion done,
                                         std::uint64_t* sequence) {
  std::error_code ec;
  channel_state* c = publish_channel(args.channel, done, ec);
  if (c == nullptr) return ec;
  if ((ec = encode_publish(out(), args, props, body, publish_frame_max()))) {
    done.consume(failed_result(info(ec)));
    return ec;
  }
  ++counters_.publishes;
  // Modulo 2^64: an empty body is one frame less than three.
  publish_frames_other_than_three_ +=
      body_frame_count(body.size(), std::max(frame_max_, frame_min_size) - frame_overhead) - 1;
  return published(*c, args.mandatory, args.exchange, args.routing_key, id, std::move(done),
                   sequence);
}

std::error_code connection_core::publish(const prepared_publish& prepared, bytes_view body,
                                         std::uint64_t id, completion done,
                                         std::uint64_t* sequence) {
  std::error_code ec;
  channel_state* c = publish_channel(prepared.channel(), done, ec);
  if (c == nullptr) return ec;
  if (!prepared.ready() || prepared.frame_max() != publish_frame_max()) {
    ec = std::make_error_code(std::errc::invalid_argument);
    done.consume(failed_result(info(ec, "the prepared publish was made for another connection")));
    return ec;
  }
  prepared.encode(out(), body, publish_frames_other_than_three_);
  ++counters_.publishes;
  return published(*c, prepared.mandatory(), prepared.exchange(), prepared.routing_key(), id,
                   std::move(done), sequence);
}

std::error_code connection_core::publish(const prepared_publish& prepared, bytes_view body,
                                         std::uint64_t* sequence) {
  const std::uint16_t ch = prepared.channel();
  if (phase_ != phase::open || ch == 0 || ch >= channels_.size() ||
      channels_[ch]->state != channel_state::status::open || !prepared.ready() ||
      prepared.frame_max() != publish_frame_max()) [[unlikely]]
    return publish(prepared, body, 0, {}, sequence);  // reports what is wrong
  channel_state& c = *channels_[ch];
  prepared.encode(out(), body, publish_frames_other_than_three_);
  ++counters_.publishes;
  if (!c.confirms.enabled()) {
    if (sequence) *sequence = 0;
    return detail::no_error;
  }
  if (!prepared.mandatory()) {
    const std::uint64_t seq = c.confirms.add();
    if (sequence) *sequence = seq;
    return detail::no_error;
  }
  return published(c, true, prepared.exchange(), prepared.routing_key(), 0, {}, sequence);
}

bool connection_core::writable(std::uint16_t ch) const noexcept {
  const channel_state* c = find_channel(ch);
  return c != nullptr && writable(*c);
}

bool connection_core::writable(const channel_state& c) const noexcept {
  return phase_ == phase::open && !blocked_ && c.flow_active &&
         output_.size() < cfg_.output_high_water && !c.confirms.window_full();
}

void connection_core::set_confirm_window(std::uint16_t ch, std::size_t window) {
  channel_state* c = find_channel(ch);
  if (c == nullptr) return;
  c->confirms.set_window(window);
  if (!c->writable_waiters.empty()) notify_writable(*c);  // a wider window may let them on
}

void connection_core::wait_writable(std::uint16_t ch, std::uint64_t id, wake done) {
  channel_state* c = find_channel(ch);
  if (auto ec = check_channel(ch); ec || c == nullptr) {
    const error_info why = channel_error(ch);
    done.consume(&why);
    return;
  }
  if (writable(*c)) {
    done.consume(nullptr);
    return;
  }
  c->confirms.window_waited();
  c->writable_waiters.push_back({id, std::move(done)});
}

void connection_core::notify_writable() {
  for (std::size_t ch = 1; ch < channels_.size(); ++ch)
    if (!channels_[ch]->writable_waiters.empty()) notify_writable(*channels_[ch]);
}

void connection_core::notify_writable(channel_state& c) {
  if (!writable(c)) return;
  auto waiters = std::move(c.writable_waiters);
  c.writable_waiters.clear();
  for (auto& w : waiters) w.done.consume(nullptr);
  if (c.writable_waiters.empty()) {  // the storage serves the next wait
    waiters.clear();
    c.writable_waiters.swap(waiters);
  }
}

void connection_core::wait_for_confirms(std::uint16_t ch, std::uint64_t id, completion done) {
  channel_state* c = find_channel(ch);
  if (check_channel(ch) || c == nullptr) {
    done.consume(failed_result(channel_error(ch)));
    return;
  }
  if (!c->confirms.enabled()) {
    done.consume(failed_result(info(errc::not_in_confirm_mode)));
    return;
  }
  c->confirms.wait(id, std::move(done));
}

void connection_core::close(std::uint16_t code, std::string text, std::uint64_t id,
                            completion done) {
  if (phase_ == phase::closed || phase_ == phase::idle) {
    op_result ok;
    done.consume(std::move(ok));
    return;
  }
  if (phase_ == phase::closing) {
    done.consume(failed_result(info(errc::connection_closed, "close already in progress")));
    return;
  }
  error_info why = info(errc::connection_closed, "connection closed by the client");
  connection_close m;
  m.reply_code = code;
  m.reply_text = std::move(text);
  if (error_info e = encode_method(out(), 0, m, &counters_.frames_out)) {
    done.consume(failed_result(e));
    return;
  }
  if (logging())
    log(log_level::info, "closing the connection (" + std::to_string(code) + " " +
                             escaped(m.reply_text) + ")");
  close_waiter_ = {id, std::move(done)};
  if (phase_ != phase::open) {
    // Mid-handshake: nothing to wait for.
    phase_ = phase::closed;
    op_result ok;
    close_waiter_.done.consume(std::move(ok));
    fail_all(why);
    return;
  }
  // Everything but close-ok is discarded from now on: fail what is pending.
  for (std::size_t ch = 1; ch < channels_.size(); ++ch)
    if (channels_[ch]->state != channel_state::status::free)
      fail_channel(static_cast<std::uint16_t>(ch), why);
  phase_ = phase::closing;
  close_reason_ = why;
}

void connection_core::update_secret(std::string secret, std::string reason, std::uint64_t id,
                                    completion done) {
  connection_update_secret m;
  m.new_secret = std::move(secret);
  m.reason = std::move(reason);
  request(0, m, id, std::move(done));
}

void connection_core::tick(clock::time_point now) {
  if (cfg_.request_timeout.count() <= 0) return;
  if (phase_ == phase::closing) {
    if (close_deadline_ == clock::time_point{})
      close_deadline_ = now + cfg_.request_timeout;
    else if (now >= close_deadline_)
      fail_all(info(errc::timeout, "the broker did not answer connection.close within " +
                                       std::to_string(cfg_.request_timeout.count()) + " ms"));
    return;
  }
  if (phase_ != phase::open) return;
  for (std::size_t ch = 0; ch < channels_.size() && phase_ == phase::open; ++ch) {
    channel_state& c = *channels_[ch];
    pending_request* outstanding = c.requests.outstanding();
    if (outstanding == nullptr) continue;
    pending_request& req = *outstanding;
    if (req.deadline == clock::time_point{})
      req.deadline = now + cfg_.request_timeout;
    else if (now >= req.deadline)
      request_expired(static_cast<std::uint16_t>(ch), req);
  }
}

void connection_core::request_expired(std::uint16_t ch, const pending_request& req) {
  std::string text = "the broker did not answer " + method_name(req.key >> 16, req.key & 0xFFFF) +
                     " within " + std::to_string(cfg_.request_timeout.count()) + " ms";
  if (ch == 0) {
    fail_all(info(errc::timeout, std::move(text)));
    return;
  }
  const bool closing = req.key == channel_close::key;
  abandon_channel(ch, info(errc::timeout, text + "; the channel is closed"),
                  "closed by the client: a reply timed out", !closing);
}

void connection_core::abandon_channel(std::uint16_t ch, const error_info& why,
                                      std::string close_text, bool send_close) {
  if (logging()) log(log_level::warning, "channel " + std::to_string(ch) + ": " + why.text);
  fail_channel(ch, why);
  // The broker may still answer: the id stays taken until it answers our
  // close, and everything else it sends there is dropped.
  channels_[ch]->state = channel_state::status::abandoned;
  if (send_close) {
    channel_close close;
    close.reply_code = static_cast<std::uint16_t>(reply_code::reply_success);
    close.reply_text = std::move(close_text);
    encode_method_frame(out(), ch, close);
    ++counters_.frames_out;
  }
}

void connection_core::refuse_content(std::uint16_t ch, channel_state& c) {
  // The body frames that follow can be skipped, so the connection need not
  // end: a channel we are closing drops the content anyway (failing the
  // basic.get it answers, if any); any other closes with the error (the
  // broker requeues what it delivered there, this message included, once it
  // has closed).
  const std::string size = std::to_string(c.content.declared_size());
  const std::string limit = std::to_string(c.content.max_body_size());
  const std::string what = "a message of " + size + " bytes on channel " + std::to_string(ch) +
                           " is larger than max_body_size (" + limit + " bytes)";
  if (c.state == channel_state::status::closing) {
    const bool for_get = c.content_for == channel_state::target::get_ok;
    c.content_for = channel_state::target::discarded;
    c.content.skip_body();
    if (for_get) {
      // The basic.get this answers still waits, and our channel.close waits
      // behind it: the get fails, and the close goes out.
      pending_request req = c.requests.pop_front();
      fail_completion(req.done, info(errc::message_too_large, what));
      pump(c);
    }
    return;
  }
  abandon_channel(
      ch, info(errc::message_too_large, what + "; the channel is closed"),
      "closed by the client: a message of " + size + " bytes exceeds its limit of " + limit, true);
}

void connection_core::heartbeat_tick(bool unread_waiting) {
  if (heartbeat_ == 0 || (phase_ != phase::open && phase_ != phase::closing)) return;
  if (!wrote_since_tick_ && output_.empty()) {
    write_heartbeat(out());
    ++counters_.frames_out;
    ++counters_.heartbeats_sent;
  }
  wrote_since_tick_ = false;
  // Paused, the driver does not read: bytes waiting unread are the peer's
  // sign of life. Pausing alone proves nothing.
  if (read_since_tick_ || (reading_paused() && unread_waiting))
    silent_ticks_ = 0;
  else if (++silent_ticks_ % 2 == 0) {
    // Another whole interval without a byte from the broker.
    ++counters_.heartbeats_missed;
    if (silent_ticks_ < 4 && logging())
      log(log_level::warning, "heartbeat missed: nothing from the broker for " +
                                  std::to_string(heartbeat_) + " s");
  }
  if (silent_ticks_ >= 4)
    fail_all(info(errc::heartbeat_timeout, "no data from the broker for " +
                                               std::to_string(2 * heartbeat_) + " s"));
  read_since_tick_ = false;
}

bool connection_core::cancel_op(std::uint64_t id) {
  if (id == 0) return false;
  if (open_id_ == id && on_open_) {
    fail_all(aborted_info());
    return true;
  }
  if (cancel_waiter(close_waiter_, id) || cancel_waiter(event_waiter_, id)) return true;
  for (auto& channel : channels_)
    if (channel->cancel(id)) return true;
  return false;
}

bool connection_core::channel_state::cancel(std::uint64_t id) {
  if (requests.cancel(id) || confirms.cancel(id) || cancel_waiter(writable_waiters, id) ||
      cancel_waiter(return_waiter, id))
    return true;
  return consumers.cancel(id);
}

void connection_core::fail_channel(std::uint16_t ch, const error_info& why) {
  channel_state* c = find_channel(ch);
  if (c == nullptr) return;
  auto old = std::make_unique<channel_state>(cfg_.max_body_size);
  std::swap(old, channels_[ch]);
  channels_[ch]->closed_reason = why;
  if (old->confirms.enabled() && ch != 0) {
    old->confirms.fail(why);
    channels_[ch]->lost_confirms = std::make_unique<confirm_tracker>(std::move(old->confirms));
  }
  // channel 0 stays usable for connection-level requests until the end.
  if (ch == 0) channels_[0]->state = channel_state::status::open;

  for (std::size_t full = old->fail(why); full != 0; --full) stream_drained(true);
}

std::size_t connection_core::channel_state::fail(const error_info& why) {
  requests.fail(why);
  confirms.fail(why);
  fail_waiters(writable_waiters, why);
  fail_waiter(return_waiter, why);
  return consumers.fail(why);
}

void connection_core::fail_all(const error_info& why, bool report) {
  if (report && (phase_ == phase::open || phase_ == phase::closing) && logging())
    log(log_level::error, "connection failed: " + escaped(why.describe()));
  if (phase_ != phase::closing || !close_reason_) close_reason_ = why;
  phase_ = phase::closed;
  fail_completion(on_open_, why);
  fail_completion(close_waiter_.done, why);
  for (std::size_t ch = 0; ch < channels_.size(); ++ch)
    fail_channel(static_cast<std::uint16_t>(ch), why);
  fail_completion(event_waiter_.done, why);
  full_streams_ = 0;
  needs_service();  // the transport is to be closed
}

void connection_core::protocol_error(reply_code code, std::error_code ec, std::string text) {
  if (phase_ == phase::closed) return;
  if (phase_ == phase::closing) {
    // Our connection.close is on the wire: nothing but close-ok may follow it.
    fail_all(info(ec, std::move(text)));
    return;
  }
  connection_close m;
  m.reply_code = static_cast<std::uint16_t>(code);
  m.reply_text = text.substr(0, 255);
  encode_method_frame(out(), 0, m);
  ++counters_.frames_out;
  error_info why = info(ec, std::move(text));
  fail_all(why);
}

void connection_core::abort(const error_info& why) {
  if (phase_ != phase::closed) fail_all(why);
}

void connection_core::on_transport_error(std::error_code ec, std::string text) {
  if (phase_ == phase::closed) return;
  const bool closing = phase_ == phase::closing;
  if (closing) {
    // The broker may drop the socket right after close-ok: that is a close.
    op_result ok;
    close_waiter_.done.consume(std::move(ok));
    log(log_level::info, "connection closed (the broker dropped the socket)");
  }
  fail_all(info(errc::connection_lost,
                text.empty() ? "connection lost: " + ec.message() : std::move(text)),
           !closing);
}

}  // namespace warren::detail
