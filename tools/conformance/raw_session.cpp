#include "tools/conformance/raw_session.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "warren/client/handshake.hpp"
#include "warren/client/wire.hpp"
#include "warren/proto/constants.hpp"

namespace warren::conformance {

namespace {

int remaining_ms(clock::time_point until) {
  const auto left = std::chrono::duration_cast<milliseconds>(until - clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

}  // namespace

bool is_async_method(std::uint32_t key) noexcept {
  switch (key) {
    case basic_deliver::key:
    case basic_return::key:
    case basic_ack::key:
    case basic_nack::key:
    case basic_cancel::key:
    case channel_flow::key:
    case connection_blocked::key:
    case connection_unblocked::key: return true;
    default: return false;
  }
}

std::uint16_t event::close_code() const noexcept {
  if (const auto* c = as<channel_close>()) return c->reply_code;
  if (const auto* c = as<connection_close>()) return c->reply_code;
  return 0;
}

std::string event::describe() const {
  switch (what) {
    case kind::method: {
      std::string s(method_name(static_cast<std::uint16_t>(key >> 16),
                                static_cast<std::uint16_t>(key & 0xFFFF)));
      if (is_channel_close() || is_connection_close()) s += " " + std::to_string(close_code());
      return s;
    }
    case kind::heartbeat:
      return channel == 0 ? "heartbeat" : "heartbeat on channel " + std::to_string(channel);
    case kind::frame: return detail + " frame on channel " + std::to_string(channel);
    case kind::header: return "protocol header " + detail;
    case kind::closed: return "socket closed";
    case kind::timeout: return "no reply in time";
    case kind::bad: return "bad frame (" + detail + ")";
  }
  return "?";
}

raw_session::raw_session(const connection_params& params, milliseconds reply_timeout,
                         clock::time_point deadline)
    : params_(params), reply_timeout_(reply_timeout), deadline_(deadline) {
  parser_.set_frame_max(1u << 20);
}

raw_session::~raw_session() {
  if (fd_ >= 0) ::close(fd_);
}

void raw_session::set_frame_max(std::uint32_t f) noexcept {
  frame_max_ = f == 0 ? 131072 : f;
  parser_.set_frame_max(std::max<std::uint32_t>(frame_max_ * 2, 1u << 20));
}

clock::time_point raw_session::until(std::optional<milliseconds> wait) const {
  return std::min(clock::now() + wait.value_or(reply_timeout_), deadline_);
}

void raw_session::connect_tcp() {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(params_.host.c_str(), std::to_string(params_.port).c_str(), &hints, &res) != 0 ||
      res == nullptr)
    throw step_failed{"cannot resolve " + params_.host};
  std::string why = "cannot connect to " + params_.host + ":" + std::to_string(params_.port);
  for (addrinfo* a = res; a != nullptr && fd_ < 0; a = a->ai_next) {
    int fd = ::socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) continue;
    int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, remaining_ms(until(std::nullopt))) == 1) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        rc = err == 0 ? 0 : -1;
      }
    }
    if (rc == 0) {
      fd_ = fd;
      int one = 1;
      setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    } else {
      ::close(fd);
    }
  }
  freeaddrinfo(res);
  if (fd_ < 0) throw step_failed{why};
}

void raw_session::open(const session_options& o) {
  connect_tcp();
  if (!o.handshake) return;
  handshake(o);
  if (o.open_channel) open_channel(1);
}

void raw_session::handshake(const session_options& o) {
  connection_params p = params_;
  p.heartbeat = o.heartbeat;
  p.frame_max = o.frame_max;
  p.channel_max = o.channel_max;
  if (!o.vhost_override.empty()) p.vhost = o.vhost_override;
  if (!o.password_override.empty()) p.password = o.password_override;
  detail::handshake hs(p, {}, o.product);
  byte_buffer out;
  hs.begin(out);
  while (hs.running()) {
    send_raw(out);
    out.clear();
    event e = next_raw();
    if (e.what != event::kind::method) throw step_failed{"handshake: " + e.describe()};
    if (e.channel != 0) continue;
    if (const auto* s = e.as<connection_start>()) {
      mechanisms = s->mechanisms;
      locales = s->locales;
      version_major = s->version_major;
      version_minor = s->version_minor;
      server_properties_ = s->server_properties;
    }
    if (const auto* t = e.as<connection_tune>()) {
      tuned_heartbeat = t->heartbeat;
      tuned_frame_max = t->frame_max;
      tuned_channel_max = t->channel_max;
    }
    if (e.is_connection_close()) {
      answer_close(e);
      throw step_failed{"handshake: " + e.describe()};
    }
    if (hs.on_method(e.key, e.method, out) == detail::handshake::step::failed)
      throw step_failed{"handshake: " + hs.error().text};
  }
  send_raw(out);
  set_frame_max(hs.frame_max());
}

void raw_session::send_raw(const void* data, std::size_t n) {
  if (fd_ < 0) throw step_failed{"socket closed"};
  const auto* p = static_cast<const std::uint8_t*>(data);
  const auto stop = until(std::nullopt);
  while (n != 0) {
    const ssize_t k = ::send(fd_, p, n, MSG_NOSIGNAL);
    if (k > 0) {
      p += k;
      n -= static_cast<std::size_t>(k);
      continue;
    }
    if (k < 0 && errno == EINTR) continue;
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd pf{fd_, POLLOUT, 0};
      if (::poll(&pf, 1, remaining_ms(stop)) <= 0) throw step_failed{"the broker stopped reading"};
      continue;
    }
    throw step_failed{"socket closed"};
  }
}

void raw_session::send_frame(std::uint8_t type, std::uint16_t channel, std::string_view payload) {
  byte_buffer b;
  std::uint8_t* h = b.extend(frame_header_size);
  h[0] = type;
  detail::store16(h + 1, channel);
  detail::store32(h + 3, static_cast<std::uint32_t>(payload.size()));
  b.append(payload.data(), payload.size());
  const std::uint8_t end = frame_end_octet;
  b.append(&end, 1);
  send_raw(b);
}

void raw_session::publish(std::uint16_t channel, const basic_publish& p,
                          const basic_properties& props, std::string_view body) {
  byte_buffer b;
  write_method_frame(b, channel, p);
  {
    writer w(b);
    const std::size_t start = begin_frame(w, frame_type::header, channel);
    encode_content_header(w, body.size(), props);
    finish_frame(w, start);
  }
  const std::size_t chunk = frame_max_ - frame_overhead;
  for (std::size_t off = 0; off < body.size(); off += chunk) {
    const auto piece = body.substr(off, chunk);
    write_frame(b, frame_type::body, channel,
                bytes_view(reinterpret_cast<const std::uint8_t*>(piece.data()), piece.size()));
  }
  send_raw(b);
}

std::size_t raw_session::receive(clock::time_point stop, std::uint8_t* buf, std::size_t size,
                                 std::string& why) {
  if (fd_ < 0 || eof_) {
    why = "closed";
    return 0;
  }
  for (;;) {
    pollfd pf{fd_, POLLIN, 0};
    const int rc = ::poll(&pf, 1, remaining_ms(stop));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) {
      why = "timeout";
      return 0;
    }
    const ssize_t n = ::recv(fd_, buf, size, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) {
      eof_ = true;
      why = "closed";
      return 0;
    }
    return static_cast<std::size_t>(n);
  }
}

bool raw_session::fill(clock::time_point stop, std::string& why) {
  std::uint8_t buf[65536];
  const std::size_t n = receive(stop, buf, sizeof buf, why);
  if (n == 0) return false;
  parser_.feed(bytes_view(buf, n));
  return true;
}

event raw_session::read_event(clock::time_point stop) {
  event e;
  for (;;) {
    // A broker refusing our protocol version answers with its own header,
    // which is no frame: recognise it before the frame parser does.
    if (!started_) {
      std::string why;
      while (head_.size() < protocol_header.size()) {
        std::uint8_t buf[64];
        const std::size_t n = receive(stop, buf, protocol_header.size() - head_.size(), why);
        if (n == 0) break;
        head_.append(reinterpret_cast<const char*>(buf), n);
      }
      if (head_.size() >= 4 && head_.compare(0, 4, "AMQP") == 0) {
        e.what = event::kind::header;
        for (std::size_t i = 4; i < head_.size(); ++i)
          e.detail += (i > 4 ? "-" : "") + std::to_string(static_cast<unsigned char>(head_[i]));
        // What follows (a close, most likely) is read as frames.
        started_ = true;
        head_.clear();
        return e;
      }
      if (head_.size() < protocol_header.size() && (why == "timeout" || head_.empty())) {
        e.what = why == "timeout" ? event::kind::timeout : event::kind::closed;
        return e;
      }
      started_ = true;
      parser_.feed(bytes_view(reinterpret_cast<const std::uint8_t*>(head_.data()), head_.size()));
      head_.clear();
    }
    frame_view f;
    std::error_code ec;
    const auto st = parser_.next(f, ec);
    if (st == frame_parser::status::error) {
      e.what = event::kind::bad;
      e.detail = ec.message();
      eof_ = true;
      return e;
    }
    if (st == frame_parser::status::need_more) {
      std::string why;
      if (!fill(stop, why)) {
        e.what = why == "closed" ? event::kind::closed : event::kind::timeout;
        return e;
      }
      continue;
    }
    e.channel = f.channel;
    if (f.type == frame_type::heartbeat) {
      e.what = event::kind::heartbeat;
      return e;
    }
    if (f.type != frame_type::method) {
      e.what = event::kind::frame;
      e.detail = f.type == frame_type::header ? "content header" : "content body";
      return e;
    }
    e.key = peek_method_key(f.payload);
    if (auto dec = decode_method(f.payload, e.method)) {
      e.what = event::kind::bad;
      e.detail = method_name(static_cast<std::uint16_t>(e.key >> 16),
                             static_cast<std::uint16_t>(e.key & 0xFFFF)) +
                 ": " + dec.message();
      return e;
    }
    e.what = event::kind::method;
    const auto* info = find_method(static_cast<std::uint16_t>(e.key >> 16),
                                   static_cast<std::uint16_t>(e.key & 0xFFFF));
    if (info == nullptr || !info->has_content) return e;
    // The content: a header frame, then body frames up to its size.
    e.has_content = true;
    std::uint64_t want = 0;
    bool have_header = false;
    for (;;) {
      if (have_header && e.body.size() >= want) break;
      frame_view c;
      const auto cs = parser_.next(c, ec);
      if (cs == frame_parser::status::error) {
        e.what = event::kind::bad;
        e.detail = ec.message();
        eof_ = true;
        return e;
      }
      if (cs == frame_parser::status::need_more) {
        std::string why;
        if (!fill(stop, why)) {
          e.what = event::kind::bad;
          e.detail = "content of " + std::string(info->name) + " incomplete (" + why + ")";
          return e;
        }
        continue;
      }
      if (c.channel != e.channel || (c.type != frame_type::header && c.type != frame_type::body) ||
          (c.type == frame_type::header) == have_header) {
        e.what = event::kind::bad;
        e.detail = "content of " + std::string(info->name) + " interrupted";
        return e;
      }
      if (c.type == frame_type::header) {
        content_header h;
        if (auto hec = decode_content_header(c.payload, h)) {
          e.what = event::kind::bad;
          e.detail = "content header: " + hec.message();
          return e;
        }
        want = h.body_size;
        e.properties = std::move(h.properties);
        have_header = true;
      } else {
        e.body.append(reinterpret_cast<const char*>(c.payload.data()), c.payload.size());
        if (e.body.size() > want) {
          e.what = event::kind::bad;
          e.detail = "content body longer than its header says";
          return e;
        }
      }
    }
    return e;
  }
}

void raw_session::answer_close(const event& e) {
  try {
    if (e.is_channel_close()) send(e.channel, channel_close_ok{});
    if (e.is_connection_close()) {
      send(0, connection_close_ok{});
      ::shutdown(fd_, SHUT_WR);
    }
  } catch (const step_failed&) {
    // The broker may already have gone: nothing left to answer.
  }
}

event raw_session::next_raw(std::optional<milliseconds> wait) {
  event e = read_event(until(wait));
  if (e.is_channel_close() || e.is_connection_close()) answer_close(e);
  return e;
}

event raw_session::next(std::optional<milliseconds> wait) {
  if (!aside_.empty()) {
    event e = std::move(aside_.front());
    aside_.pop_front();
    return e;
  }
  return next_raw(wait);
}

event raw_session::pull_sync() {
  // quiet() may have set aside an answer that came when none was expected.
  for (auto it = aside_.begin(); it != aside_.end(); ++it) {
    if (it->what == event::kind::method && is_async_method(it->key)) continue;
    event e = std::move(*it);
    aside_.erase(it);
    return e;
  }
  const auto stop = until(std::nullopt);
  for (;;) {
    event e = next_raw(std::chrono::duration_cast<milliseconds>(stop - clock::now()));
    if (e.what == event::kind::heartbeat && e.channel == 0) continue;
    if (e.what == event::kind::method && is_async_method(e.key)) {
      aside_.push_back(std::move(e));
      continue;
    }
    return e;
  }
}

event raw_session::next_async(std::uint16_t channel, std::uint32_t key,
                              std::optional<milliseconds> wait) {
  for (auto it = aside_.begin(); it != aside_.end(); ++it) {
    if (it->channel == channel && it->key == key) {
      event e = std::move(*it);
      aside_.erase(it);
      return e;
    }
  }
  const auto stop = until(wait);
  for (;;) {
    event e = next_raw(std::chrono::duration_cast<milliseconds>(stop - clock::now()));
    if (e.what == event::kind::heartbeat && e.channel == 0) continue;
    if (e.what == event::kind::method && e.channel == channel && e.key == key) return e;
    if (e.what == event::kind::method && is_async_method(e.key)) {
      aside_.push_back(std::move(e));
      continue;
    }
    return e;
  }
}

bool raw_session::quiet(milliseconds wait) {
  if (!aside_.empty()) return false;
  event e = next_raw(wait);
  for (;;) {
    if (e.what == event::kind::timeout) return true;
    if (e.what == event::kind::heartbeat && e.channel == 0) {
      e = next_raw(wait);
      continue;
    }
    aside_.push_back(std::move(e));
    return false;
  }
}

void raw_session::open_channel(std::uint16_t channel) { call(channel, channel_open{}); }

void raw_session::close_channel(std::uint16_t channel) {
  channel_close c;
  c.reply_code = 200;
  c.reply_text = "bye";
  call(channel, c);
}

void raw_session::close() {
  if (fd_ < 0 || eof_) return;
  try {
    connection_close c;
    c.reply_code = 200;
    c.reply_text = "bye";
    send(0, c);
    const auto stop = until(milliseconds(500));
    for (;;) {
      event e = read_event(stop);
      if (e.what != event::kind::method && e.what != event::kind::heartbeat &&
          e.what != event::kind::frame)
        break;
      if (e.as<connection_close_ok>() != nullptr) break;
    }
  } catch (const step_failed&) {
  }
  ::close(fd_);
  fd_ = -1;
}

}  // namespace warren::conformance
