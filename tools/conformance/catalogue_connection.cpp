// Handshake, frame-level and channel scenarios: most of them speak raw bytes.
#include <algorithm>

#include "tools/conformance/support.hpp"

namespace warren::conformance {

namespace {

// Connects and sends a protocol header; returns the session.
raw_session& connect_only(context& c) { return c.open({.handshake = false}); }

void send_header(raw_session& s, std::string_view header) {
  s.send_raw(header.data(), header.size());
}

connection_start begin_login(raw_session& s) {
  send_header(s, std::string_view(reinterpret_cast<const char*>(protocol_header.data()),
                                  protocol_header.size()));
  return s.expect<connection_start>(0);
}

connection_start_ok start_ok(const connection_params& p, std::string_view mechanism,
                             std::string response, bool auth_failure_close) {
  connection_start_ok ok;
  field_table caps;
  caps.add("authentication_failure_close", auth_failure_close);
  ok.client_properties.add("product", "warren-conformance").add("capabilities", std::move(caps));
  ok.mechanism = std::string(mechanism);
  ok.response = std::move(response);
  ok.locale = "en_US";
  (void)p;
  return ok;
}

// A full login by hand up to connection.tune (returned).
connection_tune login_to_tune(raw_session& s, const connection_params& p) {
  begin_login(s);
  s.send(0, start_ok(p, "PLAIN", plain_response(p, p.password), true));
  return s.expect<connection_tune>(0);
}

connection_open open_of(const connection_params& p) {
  connection_open o;
  o.virtual_host = p.vhost;
  return o;
}

// The next event, heartbeats on channel 0 skipped. Brokers may hold a
// refused handshake open for a while before closing (RabbitMQ waits about
// 3 s), so this waits longer than for a reply.
event next_skipping_heartbeats(raw_session& s) {
  for (;;) {
    event e = s.next(std::max(s.reply_timeout(), milliseconds(6000)));
    if (e.what != event::kind::heartbeat || e.channel != 0) return e;
  }
}

std::string header_then_close(raw_session& s) {
  event e = s.next_raw();
  std::string obs = e.describe();
  if (e.what == event::kind::header) {
    event after = s.next_raw();
    obs += after.what == event::kind::closed ? ", then closed" : ", then " + after.describe();
  }
  return obs;
}

// Channel 1's queue.declare, with its payload cut to `keep` bytes.
std::string declare_payload(std::string_view name) {
  queue_declare d;
  d.queue = std::string(name);
  byte_buffer b;
  writer w(b);
  d.encode(w);
  return std::string(b.str());
}

std::string content_header_payload(std::uint16_t class_id, std::uint64_t size) {
  byte_buffer b;
  writer w(b);
  w.u16(class_id);
  w.u16(0);
  w.u64(size);
  w.u16(0);  // no properties
  return std::string(b.str());
}

std::string publish_payload(std::string_view exchange, std::string_view key) {
  basic_publish p;
  p.exchange = std::string(exchange);
  p.routing_key = std::string(key);
  byte_buffer b;
  writer w(b);
  p.encode(w);
  return std::string(b.str());
}

}  // namespace

void add_handshake(std::vector<scenario>& out) {
  add(out, "connection.start/protocol-header-bad-name",
      "protocol header; connection.start rule protocol-name",
      "protocol header 0-0-9-1, then closed", [](context& c) {
        raw_session& s = connect_only(c);
        send_header(s, std::string_view("AMQX\0\0\x09\x01", 8));
        return header_then_close(s);
      });
  add(out, "connection.start/protocol-version-higher",
      "protocol header; connection.start rule server-support (answers a version it supports)",
      "protocol header 0-0-9-1, then closed", [](context& c) {
        raw_session& s = connect_only(c);
        send_header(s, std::string_view("AMQP\0\0\x0a\x00", 8));
        return header_then_close(s);
      });
  add(out, "connection.start/protocol-header-garbage",
      "protocol header; connection.start rule protocol-name (not AMQP at all)",
      "protocol header 0-0-9-1, then closed", [](context& c) {
        raw_session& s = connect_only(c);
        send_header(s, "GET / HTTP/1.1\r\n\r\n");
        return header_then_close(s);
      });
  add(out, "connection.start/version-0-9", "connection.start version-major, version-minor",
      "version 0-9", [](context& c) {
        raw_session& s = connect_only(c);
        const auto st = begin_login(s);
        return "version " + std::to_string(st.version_major) + "-" +
               std::to_string(st.version_minor);
      });
  add(out, "connection.start/server-properties",
      "connection.start server-properties, rule required-fields (product, version, platform, "
      "information)",
      "present", [](context& c) {
        raw_session& s = connect_only(c);
        const auto st = begin_login(s);
        std::string missing;
        for (const char* k : {"product", "version", "platform", "information"})
          if (st.server_properties.find(k) == nullptr)
            missing += std::string(missing.empty() ? "" : ",") + k;
        return missing.empty() ? std::string("present") : "missing " + missing;
      });
  add(out, "connection.start/locales-en_US", "connection.start locales, rule required-support",
      "en_US offered", [](context& c) {
        raw_session& s = connect_only(c);
        const auto st = begin_login(s);
        return (" " + st.locales + " ").find(" en_US ") != std::string::npos
                   ? std::string("en_US offered")
                   : "locales '" + st.locales + "'";
      });
  add(out, "connection.start/mechanisms-plain", "connection.start mechanisms (PLAIN, RFC 4616)",
      "PLAIN offered", [](context& c) {
        raw_session& s = connect_only(c);
        const auto st = begin_login(s);
        return (" " + st.mechanisms + " ").find(" PLAIN ") != std::string::npos
                   ? std::string("PLAIN offered")
                   : "mechanisms '" + st.mechanisms + "'";
      });
  for (const char* cap : {"publisher_confirms", "exchange_exchange_bindings", "basic.nack",
                          "consumer_cancel_notify", "connection.blocked",
                          "authentication_failure_close", "per_consumer_qos", "direct_reply_to"}) {
    auto& sc = add(out, std::string("connection.start/capability-") + cap,
                   std::string("connection.start server-properties capabilities.") + cap,
                   "advertised", [](context&) { return std::string("advertised"); });
    sc.capability = cap;
    sc.extension = true;
  }
  add(out, "connection.start-ok/mechanism-invalid",
      "connection.start-ok mechanism, rule validity (close the socket, no connection.close)",
      "socket closed",
      [](context& c) {
        raw_session& s = connect_only(c);
        begin_login(s);
        s.send(0, start_ok(c.config().params, "NO-SUCH-MECHANISM", "x", false));
        return next_skipping_heartbeats(s).describe();
      })
      .deviations = {{"connection.close 540",
                      "RabbitMQ answers connection.close 540 NOT_IMPLEMENTED naming the "
                      "mechanism before closing, instead of closing the socket silently"}};
  add(out, "connection.start-ok/amqplain", "connection.start-ok mechanism AMQPLAIN",
      "connection.tune", [](context& c) {
        raw_session& s = connect_only(c);
        const auto st = begin_login(s);
        if ((" " + st.mechanisms + " ").find(" AMQPLAIN ") == std::string::npos)
          throw unsupported_feature{"AMQPLAIN is not offered"};
        const auto& p = c.config().params;
        byte_buffer b;
        writer w(b);
        w.shortstr("LOGIN");
        w.u8('S');
        w.longstr(p.username);
        w.shortstr("PASSWORD");
        w.u8('S');
        w.longstr(p.password);
        s.send(0, start_ok(p, "AMQPLAIN", std::string(b.str()), true));
        return s.observe();
      });
  add(out, "connection.start-ok/wrong-password",
      "connection.start-ok response (bad credentials, authentication_failure_close)",
      "connection.close 403",
      [](context& c) {
        raw_session& s = connect_only(c);
        begin_login(s);
        const auto& p = c.config().params;
        s.send(0, start_ok(p, "PLAIN", plain_response(p, p.password + "-wrong"), true));
        return next_skipping_heartbeats(s).describe();
      })
      .extension = true;
  add(out, "connection.start-ok/wrong-password-no-capability",
      "connection.start-ok response (bad credentials, client without authentication_failure_close)",
      "socket closed|connection.close 403", [](context& c) {
        raw_session& s = connect_only(c);
        begin_login(s);
        const auto& p = c.config().params;
        s.send(0, start_ok(p, "PLAIN", plain_response(p, p.password + "-wrong"), false));
        return next_skipping_heartbeats(s).describe();
      });
  add(out, "connection.start-ok/unknown-user",
      "connection.start-ok response (unknown user, authentication_failure_close)",
      "connection.close 403",
      [](context& c) {
        raw_session& s = connect_only(c);
        begin_login(s);
        connection_params p = c.config().params;
        p.username = c.name("nobody");
        s.send(0, start_ok(p, "PLAIN", plain_response(p, "x"), true));
        return next_skipping_heartbeats(s).describe();
      })
      .extension = true;
  add(out, "connection.start-ok/frame-min-size",
      "connection.tune frame-max, rule minimum (a 4096-octet frame before tuning is accepted)",
      "connection.tune", [](context& c) {
        raw_session& s = connect_only(c);
        begin_login(s);
        const auto& p = c.config().params;
        auto ok = start_ok(p, "PLAIN", plain_response(p, p.password), true);
        byte_buffer probe;
        write_method_frame(probe, 0, ok);
        // The entry adds its name (1 + 7), the type letter and a longstr (4 + pad).
        const std::size_t pad = frame_min_size - probe.size() - 8 - 1 - 4;
        ok.client_properties.add("padding", std::string(pad, 'p'));
        byte_buffer b;
        write_method_frame(b, 0, ok);
        if (b.size() != frame_min_size)
          return "built a " + std::to_string(b.size()) + "-octet frame";
        s.send_raw(b);
        return s.observe();
      });
  add(out, "connection.tune/frame-max", "connection.tune frame-max, rule minimum",
      "0 or at least 4096", [](context& c) {
        raw_session& s = connect_only(c);
        const auto t = login_to_tune(s, c.config().params);
        return t.frame_max == 0 || t.frame_max >= 4096 ? std::string("0 or at least 4096")
                                                       : std::to_string(t.frame_max);
      });
  add(out, "connection.tune-ok/frame-max-below-minimum",
      "connection.tune-ok frame-max, rule minimum (1024 < frame-min-size)", "refused*",
      [](context& c) {
        raw_session& s = connect_only(c);
        const auto& p = c.config().params;
        login_to_tune(s, p);
        connection_tune_ok t;
        t.frame_max = 1024;
        s.send(0, t);
        s.send(0, open_of(p));
        return refusal(next_skipping_heartbeats(s));
      });
  add(out, "connection.tune-ok/frame-max-above-server",
      "connection.tune-ok frame-max, rule upper-limit", "refused*", [](context& c) {
        raw_session& s = connect_only(c);
        const auto& p = c.config().params;
        const auto tune = login_to_tune(s, p);
        if (tune.frame_max == 0) throw unsupported_feature{"the broker sets no frame-max"};
        connection_tune_ok t;
        t.frame_max = tune.frame_max + 4096;
        t.channel_max = tune.channel_max;
        s.send(0, t);
        s.send(0, open_of(p));
        return refusal(next_skipping_heartbeats(s));
      });
  add(out, "connection.tune-ok/channel-max-above-server",
      "connection.tune-ok channel-max, rule upper-limit", "refused*", [](context& c) {
        raw_session& s = connect_only(c);
        const auto& p = c.config().params;
        const auto tune = login_to_tune(s, p);
        if (tune.channel_max == 0 || tune.channel_max == 0xFFFF)
          throw unsupported_feature{"the broker sets no channel-max"};
        connection_tune_ok t;
        t.frame_max = tune.frame_max;
        t.channel_max = static_cast<std::uint16_t>(tune.channel_max + 1);
        s.send(0, t);
        s.send(0, open_of(p));
        return refusal(next_skipping_heartbeats(s));
      });
  add(out, "connection.tune-ok/heartbeat-zero",
      "connection.tune-ok heartbeat 0 (the client wants no heartbeat)", "no heartbeat in 2.5 s",
      [](context& c) {
        raw_session& s = c.open({.heartbeat = 0});
        const auto stop = clock::now() + milliseconds(2500);
        while (clock::now() < stop) {
          event e = s.next_raw(std::chrono::duration_cast<milliseconds>(stop - clock::now()));
          if (e.what == event::kind::timeout) break;
          return e.describe();
        }
        return std::string("no heartbeat in 2.5 s");
      });
  add(out, "connection.tune-ok/heartbeat-1s",
      "connection.tune-ok heartbeat 1 (the broker sends heartbeats)", "heartbeat", [](context& c) {
        raw_session& s = c.open({.heartbeat = 1});
        event e = s.next_raw(milliseconds(3000));
        return e.what == event::kind::timeout ? std::string("no heartbeat in 3 s") : e.describe();
      });
  add(out, "connection.tune-ok/heartbeat-silence",
      "connection.tune-ok heartbeat 1; a silent client is dropped after missed heartbeats",
      "closed*", [](context& c) {
        raw_session& s = c.open({.heartbeat = 1});
        const auto stop = clock::now() + milliseconds(8000);
        while (clock::now() < stop) {
          event e = s.next_raw(std::chrono::duration_cast<milliseconds>(stop - clock::now()));
          if (e.what == event::kind::heartbeat) continue;
          if (e.what == event::kind::closed || e.is_connection_close())
            return "closed (" + e.describe() + ")";
          if (e.what == event::kind::timeout) break;
          return e.describe();
        }
        return std::string("still open after 8 s of silence");
      });
  add(out, "connection.open/unknown-vhost",
      "connection.open virtual-host (unknown: 402 invalid-path)", "connection.close 402",
      [](context& c) {
        raw_session& s = connect_only(c);
        connection_params p = c.config().params;
        const auto tune = login_to_tune(s, p);
        connection_tune_ok t;
        t.frame_max = tune.frame_max;
        t.channel_max = tune.channel_max;
        s.send(0, t);
        p.vhost = c.name("no-such-vhost");
        s.send(0, open_of(p));
        return next_skipping_heartbeats(s).describe();
      })
      .deviations = {{"connection.close 530",
                      "RabbitMQ refuses an unknown or forbidden vhost with 530 NOT_ALLOWED"}};
  add(out, "connection.open/before-tune-ok",
      "connection grammar: open-connection (connection.open before tune-ok)", "refused*",
      [](context& c) {
        raw_session& s = connect_only(c);
        const auto& p = c.config().params;
        login_to_tune(s, p);
        s.send(0, open_of(p));
        return refusal(next_skipping_heartbeats(s));
      });
  add(out, "connection.open/open-ok", "connection.open on the default vhost", "connection.open-ok",
      [](context& c) {
        raw_session& s = connect_only(c);
        const auto& p = c.config().params;
        const auto tune = login_to_tune(s, p);
        connection_tune_ok t;
        t.frame_max = tune.frame_max;
        t.channel_max = tune.channel_max;
        s.send(0, t);
        s.send(0, open_of(p));
        return s.observe();
      });
  add(out, "connection.close/close-ok", "connection.close from the client", "connection.close-ok",
      [](context& c) {
        raw_session& s = c.open();
        connection_close cl;
        cl.reply_code = 200;
        cl.reply_text = "done";
        return answer(s, 0, cl);
      });
  add(out, "connection.close/stability",
      "connection.close rule stability (methods after close are discarded)",
      "connection.close-ok, nothing after", [](context& c) {
        raw_session& s = c.open();
        connection_close cl;
        cl.reply_code = 200;
        cl.reply_text = "done";
        s.send(0, cl);
        s.send(2, channel_open{});
        std::string obs = s.observe();
        event e = s.next_raw(milliseconds(500));
        if (e.what == event::kind::timeout || e.what == event::kind::closed)
          return obs + ", nothing after";
        return obs + ", then " + e.describe();
      });
  add(out, "connection.update-secret/plain",
      "connection.update-secret (RabbitMQ extension) with the same password",
      "connection.update-secret-ok",
      [](context& c) {
        raw_session& s = c.open();
        connection_update_secret u;
        u.new_secret = c.config().params.password;
        u.reason = "conformance";
        event e = (s.send(0, u), s.pull_sync());
        if (e.is_connection_close() && e.close_code() == 540)
          throw unsupported_feature{"connection.update-secret: 540 not implemented"};
        return e.describe();
      })
      .extension = true;
}

void add_frames(std::vector<scenario>& out) {
  add(out, "frame/bad-frame-end", "frame-end octet not 0xCE (frame-error)", "connection.close 501",
      [](context& c) {
        raw_session& s = c.open();
        byte_buffer b;
        write_method_frame(b, 1, queue_declare{.queue = c.name("q")});
        b.data()[b.size() - 1] = 0x00;
        s.send_raw(b);
        return s.observe();
      });
  add(out, "frame/over-frame-max", "a frame larger than the negotiated frame-max (frame-error)",
      "connection.close 501", [](context& c) {
        raw_session& s = c.open({.frame_max = 4096});
        s.send_frame(1, 1, publish_payload("", c.name("nowhere")));
        s.send_frame(2, 1, content_header_payload(60, 6000));
        s.send_frame(3, 1, std::string(6000, 'x'));
        return s.observe();
      });
  add(out, "frame/unknown-type", "a frame of unknown type 9 (frame-error)", "connection.close 501",
      [](context& c) {
        raw_session& s = c.open();
        s.send_frame(9, 0, "xyz");
        return s.observe();
      });
  add(out, "frame/unknown-class",
      "a method of unknown class 99 (command-invalid / not-implemented)",
      "connection.close 503|connection.close 540",
      [](context& c) {
        raw_session& s = c.open();
        s.send_frame(1, 1, std::string("\x00\x63\x00\x0a", 4));
        return s.observe();
      })
      .deviations = {{"socket closed",
                      "RabbitMQ closes the socket without a connection.close when a method frame "
                      "names a class it does not know"}};
  add(out, "frame/unknown-method",
      "a method of a known class with unknown id queue.99 (command-invalid / not-implemented)",
      "connection.close 503|connection.close 540",
      [](context& c) {
        raw_session& s = c.open();
        s.send_frame(1, 1, std::string("\x00\x32\x00\x63", 4));
        return s.observe();
      })
      .deviations = {{"socket closed",
                      "RabbitMQ closes the socket without a connection.close when a method frame "
                      "names a method it does not know"}};
  add(out, "frame/body-without-header", "a content body frame with no method or header",
      "connection.close 505", [](context& c) {
        raw_session& s = c.open();
        s.send_frame(3, 1, "body");
        return s.observe();
      });
  add(out, "frame/header-without-method", "a content header frame with no method before it",
      "connection.close 505", [](context& c) {
        raw_session& s = c.open();
        s.send_frame(2, 1, content_header_payload(60, 4));
        return s.observe();
      });
  add(out, "frame/publish-body-before-header",
      "basic.publish followed by a body frame instead of its header", "connection.close 505",
      [](context& c) {
        raw_session& s = c.open();
        s.send_frame(1, 1, publish_payload("", c.name("nowhere")));
        s.send_frame(3, 1, "body");
        return s.observe();
      });
  add(out, "frame/method-inside-content", "a method frame between a content header and its body",
      "connection.close 505", [](context& c) {
        raw_session& s = c.open();
        s.send_frame(1, 1, publish_payload("", c.name("nowhere")));
        s.send_frame(2, 1, content_header_payload(60, 4));
        s.send_frame(1, 1, declare_payload(c.name("q")));
        return s.observe();
      });
  add(out, "frame/body-longer-than-header",
      "content body frames that overrun the header's body-size",
      "connection.close 505|connection.close 501",
      [](context& c) {
        raw_session& s = c.open();
        s.send_frame(1, 1, publish_payload("", c.name("nowhere")));
        s.send_frame(2, 1, content_header_payload(60, 4));
        s.send_frame(3, 1, "0123456789");
        const std::string first = s.observe();
        if (first != "no reply in time") return first;
        // Nothing said: is the connection still usable?
        return "ignored, then " + answer(s, 2, channel_open{});
      })
      .deviations = {{"ignored, then channel.open-ok",
                      "RabbitMQ does not check body frames against the header's body-size: the "
                      "overrun goes unreported and the connection stays up"}};
  add(out, "frame/header-wrong-class", "a content header whose class (50) is not the method's (60)",
      "connection.close 505|connection.close 501|connection.close 503", [](context& c) {
        raw_session& s = c.open();
        s.send_frame(1, 1, publish_payload("", c.name("nowhere")));
        s.send_frame(2, 1, content_header_payload(50, 4));
        s.send_frame(3, 1, "body");
        return s.observe();
      });
  add(out, "frame/method-on-unopened-channel", "a method on a channel never opened (channel-error)",
      "connection.close 504", [](context& c) {
        raw_session& s = c.open();
        return answer(s, 7, queue_declare{.queue = c.name("q")});
      });
  add(out, "frame/channel-method-on-channel-zero", "queue.declare on channel 0 (channel-error)",
      "connection.close 504|connection.close 503", [](context& c) {
        raw_session& s = c.open();
        return answer(s, 0, queue_declare{.queue = c.name("q")});
      });
  add(out, "frame/channel-above-channel-max",
      "channel.open above the negotiated channel-max (channel-error)",
      "connection.close 504|connection.close 530",
      [](context& c) {
        raw_session& s = c.open({.channel_max = 16});
        return answer(s, 17, channel_open{});
      })
      .deviations = {
      {"channel.open-ok",
       "RabbitMQ enforces its own channel_max (2047), not a lower one the client set in tune-ok"}};
  add(out, "frame/heartbeat-on-channel-1", "a heartbeat frame on channel 1 (frame-error)",
      "connection.close 501",
      [](context& c) {
        raw_session& s = c.open();
        s.send_frame(8, 1, "");
        return s.observe();
      })
      .deviations = {{"connection.close 505",
                      "RabbitMQ reports a heartbeat on a non-zero channel as 505 UNEXPECTED_FRAME, "
                      "not 501 FRAME_ERROR"}};
  add(out, "frame/heartbeat-with-payload", "a heartbeat frame with a payload (frame-error)",
      "connection.close 501", [](context& c) {
        raw_session& s = c.open();
        s.send_frame(8, 0, "xx");
        return s.observe();
      });
  add(out, "frame/heartbeat-accepted", "a heartbeat from the client on channel 0 is harmless",
      "channel.open-ok", [](context& c) {
        raw_session& s = c.open();
        s.send_frame(8, 0, "");
        return answer(s, 2, channel_open{});
      });
  add(out, "frame/truncated-method", "queue.declare cut short inside its fields (syntax-error)",
      "connection.close 502|connection.close 501", [](context& c) {
        raw_session& s = c.open();
        const std::string p = declare_payload(c.name("q"));
        s.send_frame(1, 1, p.substr(0, 9));
        return s.observe();
      });
  add(out, "frame/truncated-frame-then-close",
      "a frame cut short by the client hanging up leaves the broker serving others",
      "channel.open-ok", [](context& c) {
        {
          raw_session& s = c.open();
          s.send_raw("\x01\x00\x01\x00\x00\x10\x00", 7);
          s.close();
        }
        raw_session& t = c.open({.open_channel = false});
        return answer(t, 1, channel_open{});
      });
  add(out, "channel.open/state", "channel.open on an open channel, rule state (channel-error)",
      "connection.close 504", [](context& c) {
        raw_session& s = c.open();
        return answer(s, 1, channel_open{});
      });
  add(out, "channel.close/reuse-before-close-ok",
      "channel.close rule stability: after the broker's close only close/close-ok count; the id is "
      "free after close-ok",
      "open ignored, channel.open-ok after close-ok",
      [](context& c) {
        raw_session& s = c.open();
        queue_declare d;
        d.queue = c.name("missing");
        d.passive = true;
        // Both frames go out before the broker's channel.close can be read,
        // so the channel.open arrives while the channel is closing.
        byte_buffer b;
        write_method_frame(b, 1, d);
        write_method_frame(b, 1, channel_open{});
        s.send_raw(b);
        event first = s.pull_sync();  // channel.close; the session sends close-ok
        if (!first.is_channel_close()) return first.describe();
        if (!s.quiet(milliseconds(500))) {
          // A connection error is reported the same whichever came first.
          event e = s.next();
          return e.is_connection_close() ? e.describe() : "after close: " + e.describe();
        }
        return "open ignored, " + answer(s, 1, channel_open{}) + " after close-ok";
      })
      .deviations = {
      {"connection.close 504",
       "RabbitMQ does not discard a channel.open that arrives while it waits for close-ok: it "
       "takes it as a second open of a live channel (504 CHANNEL_ERROR)"}};
}

}  // namespace warren::conformance
