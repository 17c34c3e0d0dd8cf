// The raw session against a scripted peer on a loopback socket: what it
// makes of a protocol header, a close, a frame it cannot parse, and silence;
// every wait ends by its deadline.
#include "tools/conformance/raw_session.hpp"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "warren/codec/frame.hpp"

using namespace warren;
using namespace warren::conformance;

namespace {

// A one-connection server on 127.0.0.1: accepts, reads what the client says
// first (the protocol header, or nothing), writes `script`, then either keeps
// the socket open for `hold` or closes it.
class scripted_peer {
 public:
  scripted_peer(std::string script, milliseconds hold) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(listener_, 1);
    socklen_t len = sizeof a;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this, script = std::move(script), hold] {
      const int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) return;
      char buf[64];
      (void)::recv(fd, buf, sizeof buf, 0);
      (void)::send(fd, script.data(), script.size(), MSG_NOSIGNAL);
      std::this_thread::sleep_for(hold);
      // Reads what the client answered before closing, for the test to see.
      timeval tv{0, 200000};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n > 0) answer_.assign(buf, static_cast<std::size_t>(n));
      ::close(fd);
    });
  }
  ~scripted_peer() {
    if (thread_.joinable()) thread_.join();
    ::close(listener_);
  }
  void join() { thread_.join(); }
  connection_params params() const {
    connection_params p;
    p.host = "127.0.0.1";
    p.port = port_;
    return p;
  }
  std::string answer_;

 private:
  int listener_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

std::string frame_bytes(const byte_buffer& b) { return std::string(b.str()); }

}  // namespace

TEST_CASE("a protocol header from the broker is an event, then the close") {
  scripted_peer peer(std::string("AMQP\x00\x00\x09\x01", 8), milliseconds(0));
  raw_session s(peer.params(), milliseconds(2000), clock::now() + milliseconds(5000));
  s.open({.handshake = false});
  s.send_raw(protocol_header.data(), protocol_header.size());
  event e = s.next_raw();
  CHECK(e.what == event::kind::header);
  CHECK(e.describe() == "protocol header 0-0-9-1");
  CHECK(s.next_raw().what == event::kind::closed);
}

TEST_CASE("a connection.close is answered with close-ok and described with its code") {
  byte_buffer b;
  connection_close c;
  c.reply_code = 501;
  c.reply_text = "frame error";
  write_method_frame(b, 0, c);
  scripted_peer peer(frame_bytes(b), milliseconds(100));
  {
    raw_session s(peer.params(), milliseconds(2000), clock::now() + milliseconds(5000));
    s.open({.handshake = false});
    s.send_raw(protocol_header.data(), protocol_header.size());
    CHECK(s.observe() == "connection.close 501");
  }
  peer.join();
  byte_buffer ok;
  write_method_frame(ok, 0, connection_close_ok{});
  CHECK(peer.answer_ == frame_bytes(ok));
}

TEST_CASE("silence ends at the reply timeout, and bytes that are no frame are reported") {
  {
    scripted_peer peer("", milliseconds(600));
    raw_session s(peer.params(), milliseconds(150), clock::now() + milliseconds(5000));
    s.open({.handshake = false});
    s.send_raw(protocol_header.data(), protocol_header.size());
    const auto start = clock::now();
    CHECK(s.observe() == "no reply in time");
    CHECK(clock::now() - start < milliseconds(1000));
  }
  {
    // Type 1, channel 0, size 4, then a frame-end octet that is wrong.
    scripted_peer peer(std::string("\x01\x00\x00\x00\x00\x00\x04\x00\x0a\x00\x0a\x00", 12),
                       milliseconds(0));
    raw_session s(peer.params(), milliseconds(1000), clock::now() + milliseconds(5000));
    s.open({.handshake = false});
    s.send_raw(protocol_header.data(), protocol_header.size());
    CHECK(s.next_raw().what == event::kind::bad);
  }
}

TEST_CASE("the scenario deadline caps every wait") {
  scripted_peer peer("", milliseconds(800));
  raw_session s(peer.params(), milliseconds(5000), clock::now() + milliseconds(200));
  s.open({.handshake = false});
  s.send_raw(protocol_header.data(), protocol_header.size());
  const auto start = clock::now();
  CHECK(s.next_raw().what == event::kind::timeout);
  CHECK(clock::now() - start < milliseconds(700));
}
