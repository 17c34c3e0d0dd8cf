// The basic class: qos, consume, cancel, publish, return, deliver, get, ack,
// reject, nack, recover; and the delivery semantics they promise.
#include "tools/conformance/support.hpp"

namespace warren::conformance {

namespace {

void qos(raw_session& s, std::uint16_t count, bool global = false, std::uint16_t channel = 1) {
  basic_qos q;
  q.prefetch_count = count;
  q.global = global;
  s.call(channel, q);
}

bool redelivered(const event& e) {
  if (const auto* d = e.as<basic_deliver>()) return d->redelivered;
  if (const auto* g = e.as<basic_get_ok>()) return g->redelivered;
  return false;
}

std::uint64_t tag_of(const event& e) {
  if (const auto* d = e.as<basic_deliver>()) return d->delivery_tag;
  if (const auto* g = e.as<basic_get_ok>()) return g->delivery_tag;
  return 0;
}

// A queue with `n` messages "0", "1"...
std::string filled_queue(context& c, raw_session& s, int n, const queue_options& o = {}) {
  const std::string q = make_queue(c, s, "q", o);
  for (int i = 0; i < n; ++i) publish(s, "", q, std::to_string(i));
  return q;
}

std::string flag(bool b) { return b ? "true" : "false"; }

bool same_entries(const field_table& a, const field_table& b) {
  if (a.size() != b.size()) return false;
  for (const auto& e : a.entries) {
    const field_value* other = b.find(e.name);
    if (other == nullptr || !(*other == e.value)) return false;
  }
  return true;
}

// Re-reads the first message after `undo` ran on a fetched, unacked one.
template <class Undo>
std::string refetch_after(context& c, Undo undo) {
  raw_session& s = c.open();
  const std::string q = filled_queue(c, s, 1);
  auto first = fetch(s, q, false);
  if (!first) return std::string("nothing fetched");
  undo(s, tag_of(*first));
  auto again = fetch(s, q, false);
  if (!again) return std::string("gone");
  return "redelivered=" + flag(redelivered(*again));
}

}  // namespace

void add_basic(std::vector<scenario>& out) {
  add(out, "basic.qos/qos-ok", "basic.qos prefetch-count", "basic.qos-ok", [](context& c) {
    raw_session& s = c.open();
    basic_qos q;
    q.prefetch_count = 10;
    return answer(s, 1, q);
  });
  add(out, "basic.qos/prefetch-size", "basic.qos prefetch-size (a window in octets)",
      "basic.qos-ok",
      [](context& c) {
        raw_session& s = c.open();
        basic_qos q;
        q.prefetch_size = 65536;
        return answer(s, 1, q);
      })
      .deviations = {{"connection.close 540",
                      "RabbitMQ does not implement prefetch-size: a non-zero value is 540 "
                      "NOT_IMPLEMENTED"}};
  add(out, "basic.qos/global", "basic.qos global", "basic.qos-ok", [](context& c) {
    raw_session& s = c.open();
    basic_qos q;
    q.prefetch_count = 10;
    q.global = true;
    return answer(s, 1, q);
  });
  add(out, "basic.qos/prefetch-count-enforced",
      "basic.qos prefetch-count, rule 01 (never more unacked than the window)",
      "2, then 1 more after an ack", [](context& c) {
        raw_session& s = c.open();
        const std::string q = filled_queue(c, s, 5);
        qos(s, 2);
        consume(s, q);
        auto got = drain(s, 1, milliseconds(400));
        if (got.empty()) return std::string("0");
        ack(s, tag_of(got.front()));
        auto more = drain(s, 1, milliseconds(400));
        return std::to_string(got.size()) + ", then " + std::to_string(more.size()) +
               " more after an ack";
      });
  add(out, "basic.qos/channel-wide",
      "basic.qos global=false: the window is the channel's, shared by its consumers",
      "2 deliveries",
      [](context& c) {
        raw_session& s = c.open();
        const std::string a = filled_queue(c, s, 3);
        const std::string b = make_queue(c, s, "q2");
        for (int i = 0; i < 3; ++i) publish(s, "", b);
        qos(s, 2);
        consume(s, a);
        consume(s, b);
        return std::to_string(drain(s, 1, milliseconds(500)).size()) + " deliveries";
      })
      .deviations = {{"4 deliveries",
                      "RabbitMQ (per_consumer_qos) applies a global=false prefetch to each "
                      "consumer; global=true is its channel-wide window"}};
  add(out, "basic.qos/global-shared",
      "basic.qos global=true: one window for every consumer on the channel (and connection)",
      "2 deliveries", [](context& c) {
        raw_session& s = c.open();
        const std::string a = filled_queue(c, s, 3);
        const std::string b = make_queue(c, s, "q2");
        for (int i = 0; i < 3; ++i) publish(s, "", b);
        qos(s, 2, true);
        consume(s, a);
        consume(s, b);
        return std::to_string(drain(s, 1, milliseconds(500)).size()) + " deliveries";
      });
  add(out, "basic.qos/ignored-with-no-ack",
      "basic.qos prefetch-count is ignored for a no-ack consumer", "3 deliveries", [](context& c) {
        raw_session& s = c.open();
        const std::string q = filled_queue(c, s, 3);
        qos(s, 1);
        consume(s, q, {}, true);
        return std::to_string(drain(s, 1, milliseconds(500), 3).size()) + " deliveries";
      });

  add(out, "basic.consume/consume-ok", "basic.consume-ok echoes the client's consumer tag",
      "same tag", [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        const std::string tag = consume(s, q, "ctag-1");
        return tag == "ctag-1" ? std::string("same tag") : "tag '" + tag + "'";
      });
  add(out, "basic.consume/server-tag", "basic.consume consumer-tag empty: the server makes one",
      "a non-empty tag", [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        return consume(s, q).empty() ? std::string("an empty tag") : std::string("a non-empty tag");
      });
  add(out, "basic.consume/duplicate-tag",
      "basic.consume consumer-tag, rule 01 (a tag in use: not-allowed)", "connection.close 530",
      [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        consume(s, q, "same");
        basic_consume b;
        b.queue = q;
        b.consumer_tag = "same";
        return answer(s, 1, b);
      });
  add(out, "basic.consume/missing-queue-404", "basic.consume of a missing queue (not-found)",
      "channel.close 404", [](context& c) {
        raw_session& s = c.open();
        basic_consume b;
        b.queue = c.name("missing");
        return answer(s, 1, b);
      });
  add(out, "basic.consume/exclusive-with-consumers",
      "basic.consume exclusive, rule 01 (the queue has consumers: access-refused)",
      "channel.close 403", [](context& c) {
        raw_session& a = c.open();
        const std::string q = make_queue(c, a, "q");
        consume(a, q);
        raw_session& b = c.open();
        basic_consume bc;
        bc.queue = q;
        bc.exclusive = true;
        return answer(b, 1, bc);
      });
  add(out, "basic.consume/exclusive-blocks-others",
      "basic.consume exclusive (request exclusive access: a second consumer is refused)",
      "channel.close 403", [](context& c) {
        raw_session& a = c.open();
        const std::string q = make_queue(c, a, "q");
        consume(a, q, {}, false, true);
        raw_session& b = c.open();
        basic_consume bc;
        bc.queue = q;
        return answer(b, 1, bc);
      });
  add(out, "basic.consume/exclusive-queue-other-connection-405",
      "queue.declare exclusive, rule exclusive (consume from another connection)",
      "channel.close 405", [](context& c) {
        raw_session& a = c.open();
        const std::string q = make_queue(c, a, "q", {.exclusive = true});
        raw_session& b = c.open();
        basic_consume bc;
        bc.queue = q;
        return answer(b, 1, bc);
      });
  add(out, "basic.consume/no-local",
      "basic.consume no-local (no messages published on this connection)", "not delivered",
      [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        basic_consume b;
        b.queue = q;
        b.no_local = true;
        b.no_ack = true;
        s.call(1, b);
        publish(s, "", q);
        return drain(s, 1, milliseconds(300)).empty() ? std::string("not delivered")
                                                      : std::string("delivered");
      })
      .deviations = {{"delivered", "RabbitMQ does not implement no-local: the flag is ignored"}};
  add(out, "basic.consume/no-wait", "basic.consume no-wait (no consume-ok; deliveries come)",
      "no reply, delivered", [](context& c) {
        raw_session& s = c.open();
        const std::string q = filled_queue(c, s, 1);
        basic_consume b;
        b.queue = q;
        b.consumer_tag = "nw";
        b.no_ack = true;
        b.no_wait = true;
        s.send(1, b);
        event e = s.next(milliseconds(1000));
        if (e.as<basic_deliver>() != nullptr) return std::string("no reply, delivered");
        return e.describe();
      });
  add(out, "basic.consume/current-queue",
      "basic.consume queue blank: the queue last declared on the channel", "delivered",
      [](context& c) {
        raw_session& s = c.open();
        filled_queue(c, s, 1);
        basic_consume b;
        b.no_ack = true;
        const std::string r = answer(s, 1, b);
        if (r != "basic.consume-ok") return r;
        return drain(s, 1, milliseconds(500), 1).size() == 1 ? std::string("delivered")
                                                             : std::string("not delivered");
      });
  add(out, "basic.consume/order", "basic.deliver order (one queue, one consumer: FIFO)",
      "0..9 in order", [](context& c) {
        raw_session& s = c.open();
        const std::string q = filled_queue(c, s, 10);
        consume(s, q, {}, true);
        std::string got;
        for (const auto& e : drain(s, 1, milliseconds(1000), 10)) got += e.body;
        return got == "0123456789" ? std::string("0..9 in order") : "got '" + got + "'";
      });

  add(out, "basic.cancel/cancel-ok", "basic.cancel-ok echoes the consumer tag", "same tag",
      [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        basic_cancel b;
        b.consumer_tag = consume(s, q, "ctag");
        const auto ok = s.call(1, b);
        return ok.consumer_tag == "ctag" ? std::string("same tag")
                                         : "tag '" + ok.consumer_tag + "'";
      });
  add(out, "basic.cancel/unknown-tag", "basic.cancel of a tag that names no consumer",
      "basic.cancel-ok", [](context& c) {
        raw_session& s = c.open();
        basic_cancel b;
        b.consumer_tag = "no-such-consumer";
        return answer(s, 1, b);
      });
  add(out, "basic.cancel/stops-deliveries",
      "basic.cancel (no more messages for the consumer; they stay queued)",
      "not delivered, 1 queued", [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        basic_cancel b;
        b.consumer_tag = consume(s, q, {}, true);
        s.call(1, b);
        publish(s, "", q);
        const bool got = !drain(s, 1, milliseconds(300)).empty();
        return std::string(got ? "delivered" : "not delivered") + ", " +
               std::to_string(settled_depth(s, q, 1)) + " queued";
      });
  add(out, "basic.cancel/queue-deleted",
      "basic.cancel rule 01 (the queue is gone: the cancel is still answered)", "basic.cancel-ok",
      [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        const std::string tag = consume(s, q, "gone");
        raw_session& other = c.open();
        queue_delete d;
        d.queue = q;
        other.call(1, d);
        basic_cancel b;
        b.consumer_tag = tag;
        return answer(s, 1, b);
      });

  add(out, "basic.publish/missing-exchange-404", "basic.publish exchange, rule must-exist",
      "channel.close 404", [](context& c) {
        raw_session& s = c.open();
        publish(s, c.name("missing"), "k");
        return s.observe();
      });
  add(out, "basic.publish/default-exchange",
      "basic.publish exchange, rule default-exchange (blank name)", "routed", [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        publish(s, "", q);
        return fetch(s, q) ? std::string("routed") : std::string("not routed");
      });
  add(out, "basic.publish/mandatory-unroutable", "basic.publish mandatory, rule 01 (basic.return)",
      "basic.return 312", [](context& c) {
        raw_session& s = c.open();
        publish(s, "amq.direct", c.name("nobody"), "m", {}, true);
        event e = s.next_async(1, basic_return::key);
        if (const auto* r = e.as<basic_return>())
          return "basic.return " + std::to_string(r->reply_code);
        return e.describe();
      });
  add(out, "basic.publish/mandatory-return-fields",
      "basic.return exchange, routing-key and content echo the publish", "echoed", [](context& c) {
        raw_session& s = c.open();
        const std::string key = c.name("nobody");
        basic_properties p;
        p.message_id = "m-1";
        publish(s, "amq.direct", key, "body!", p, true);
        event e = s.next_async(1, basic_return::key);
        const auto* r = e.as<basic_return>();
        if (r == nullptr) return e.describe();
        if (r->exchange != "amq.direct") return "exchange '" + r->exchange + "'";
        if (r->routing_key != key) return "routing key '" + r->routing_key + "'";
        if (e.body != "body!") return "body '" + e.body + "'";
        if (e.properties.message_id != p.message_id) return std::string("properties differ");
        return std::string("echoed");
      });
  add(out, "basic.publish/mandatory-routable", "basic.publish mandatory, routed: no return",
      "no return", [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        publish(s, "", q, "m", {}, true);
        return s.quiet(milliseconds(300)) ? std::string("no return") : s.next().describe();
      });
  add(out, "basic.publish/unroutable-dropped",
      "basic.publish mandatory unset: an unroutable message is dropped silently", "nothing",
      [](context& c) {
        raw_session& s = c.open();
        publish(s, "amq.direct", c.name("nobody"));
        return s.quiet(milliseconds(300)) ? std::string("nothing") : s.next().describe();
      });
  add(out, "basic.publish/immediate",
      "basic.publish immediate, rule 01 (no consumer: basic.return 313 no-consumers)",
      "basic.return 313",
      [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        basic_publish p;
        p.routing_key = q;
        p.immediate = true;
        s.publish(1, p, {}, "m");
        event e = s.next();
        if (const auto* r = e.as<basic_return>())
          return "basic.return " + std::to_string(r->reply_code);
        return e.describe();
      })
      .deviations = {{"connection.close 540",
                      "RabbitMQ removed the immediate flag in 3.0: it is 540 NOT_IMPLEMENTED"}};
  add(out, "basic.publish/properties-round-trip",
      "basic content properties (all 13, reserved cluster-id left out) reach the consumer "
      "unchanged",
      "equal", [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        basic_properties p;
        p.content_type = "text/plain";
        p.content_encoding = "identity";
        p.headers = table({{"h", "v"}, {"n", std::int32_t{7}}});
        p.delivery_mode = 2;
        p.priority = 3;
        p.correlation_id = "corr";
        p.reply_to = "reply";
        p.expiration = "600000";
        p.message_id = "mid";
        p.timestamp = timestamp{1700000000};
        p.type = "kind";
        p.user_id = c.config().params.username;
        p.app_id = "warren-conformance";
        publish(s, "", q, "payload", p);
        auto e = fetch(s, q);
        if (!e) return std::string("not routed");
        if (e->body != "payload") return std::string("body differs");
        const basic_properties& g = e->properties;
        std::string differ;
        auto check = [&](const char* name, bool same) {
          if (!same) differ += std::string(differ.empty() ? "" : ",") + name;
        };
        check("content-type", g.content_type == p.content_type);
        check("content-encoding", g.content_encoding == p.content_encoding);
        // A field table is a set of names: a broker may reorder it.
        check("headers", g.headers.has_value() == p.headers.has_value() &&
                             (!g.headers || same_entries(*g.headers, *p.headers)));
        check("delivery-mode", g.delivery_mode == p.delivery_mode);
        check("priority", g.priority == p.priority);
        check("correlation-id", g.correlation_id == p.correlation_id);
        check("reply-to", g.reply_to == p.reply_to);
        check("expiration", g.expiration == p.expiration);
        check("message-id", g.message_id == p.message_id);
        check("timestamp", g.timestamp == p.timestamp);
        check("type", g.type == p.type);
        check("user-id", g.user_id == p.user_id);
        check("app-id", g.app_id == p.app_id);
        check("cluster-id", g.cluster_id == p.cluster_id);
        return differ.empty() ? std::string("equal") : differ + " differ";
      });
  add(out, "basic.publish/header-field-types",
      "field-table values of every type in headers survive the broker", "equal", [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        field_array arr;
        arr.items = {field_value(std::int32_t{1}), field_value("two")};
        basic_properties p;
        p.headers = table({{"bool", true},
                           {"i8", std::int8_t{-8}},
                           {"u8", std::uint8_t{8}},
                           {"i16", std::int16_t{-16}},
                           {"u16", std::uint16_t{16}},
                           {"i32", std::int32_t{-32}},
                           {"u32", std::uint32_t{32}},
                           {"i64", std::int64_t{-64}},
                           {"f32", 1.5f},
                           {"f64", 2.25},
                           {"dec", decimal{2, 12345}},
                           {"str", "text"},
                           {"bytes", byte_array{std::string("\x00\x01", 2)}},
                           {"ts", timestamp{1600000000}},
                           {"arr", arr},
                           {"tbl", table({{"inner", "x"}})},
                           {"void", void_value{}}});
        publish(s, "", q, "m", p);
        auto e = fetch(s, q);
        if (!e) return std::string("not routed");
        if (!e->properties.headers) return std::string("headers lost");
        for (const auto& entry : p.headers->entries) {
          const field_value* got = e->properties.headers->find(entry.name);
          if (got == nullptr) return "'" + entry.name + "' lost";
          if (!(*got == entry.value))
            return "'" + entry.name + "' came back as type " + std::string(1, got->type_letter());
        }
        return std::string("equal");
      });
  add(out, "basic.publish/empty-body", "a content with body-size 0 and no body frame",
      "empty body delivered", [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        publish(s, "", q, "");
        auto e = fetch(s, q);
        if (!e) return std::string("not routed");
        return e->body.empty() ? std::string("empty body delivered")
                               : std::string("a body appeared");
      });
  add(out, "basic.publish/multi-frame-body",
      "a 300000-octet body in several body frames is reassembled", "equal", [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        std::string body(300000, 'x');
        for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 26);
        publish(s, "", q, body);
        auto e = fetch(s, q);
        if (!e) return std::string("not routed");
        return e->body == body ? std::string("equal")
                               : "differs (" + std::to_string(e->body.size()) + " octets)";
      });
  add(out, "basic.publish/priority-levels",
      "basic class rule 06 (priority 0-4 and 5-9 are two levels: 9 overtakes 0)",
      "priority 9 first",
      [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        basic_properties low;
        low.priority = 0;
        basic_properties high;
        high.priority = 9;
        publish(s, "", q, "low", low);
        publish(s, "", q, "low", low);
        publish(s, "", q, "high", high);
        auto e = fetch(s, q);
        if (!e) return std::string("not routed");
        return e->body == "high" ? std::string("priority 9 first") : std::string("FIFO order");
      })
      .deviations = {{"FIFO order",
                      "RabbitMQ orders by priority only in queues declared with x-max-priority; "
                      "others are FIFO"}};

  add(out, "basic.deliver/fields",
      "basic.deliver consumer-tag, delivery-tag (rule non-zero), exchange, routing-key", "correct",
      [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        bind_queue(s, q, "amq.direct", "rk");
        consume(s, q, "dtag", true);
        publish(s, "amq.direct", "rk", "m");
        event e = deliver(s);
        const auto* d = e.as<basic_deliver>();
        if (d->consumer_tag != "dtag") return "consumer tag '" + d->consumer_tag + "'";
        if (d->delivery_tag == 0) return std::string("delivery tag 0");
        if (d->exchange != "amq.direct") return "exchange '" + d->exchange + "'";
        if (d->routing_key != "rk") return "routing key '" + d->routing_key + "'";
        if (d->redelivered) return std::string("redelivered set");
        return std::string("correct");
      });
  add(out, "basic.deliver/tags-dense", "delivery tags count up from 1 on a channel", "1,2,3",
      [](context& c) {
        raw_session& s = c.open();
        const std::string q = filled_queue(c, s, 3);
        consume(s, q, {}, true);
        std::string tags;
        for (const auto& e : drain(s, 1, milliseconds(1000), 3))
          tags += (tags.empty() ? "" : ",") + std::to_string(tag_of(e));
        return tags;
      });

  add(out, "basic.get/get-empty", "basic.get on an empty queue", "basic.get-empty", [](context& c) {
    raw_session& s = c.open();
    basic_get g;
    g.queue = make_queue(c, s, "q");
    return answer(s, 1, g);
  });
  add(out, "basic.get/message-count", "basic.get-ok message-count (messages left)", "1",
      [](context& c) {
        raw_session& s = c.open();
        const std::string q = filled_queue(c, s, 2);
        auto e = fetch(s, q);
        if (!e) return std::string("nothing");
        return std::to_string(e->as<basic_get_ok>()->message_count);
      });
  add(out, "basic.get/missing-queue-404", "basic.get of a missing queue (not-found)",
      "channel.close 404", [](context& c) {
        raw_session& s = c.open();
        basic_get g;
        g.queue = c.name("missing");
        return answer(s, 1, g);
      });
  add(out, "basic.get/no-ack", "basic.get no-ack (the message is gone at once)", "0 left",
      [](context& c) {
        raw_session& s = c.open();
        const std::string q = filled_queue(c, s, 1);
        fetch(s, q, true);
        s.close_channel(1);
        s.open_channel(1);
        return std::to_string(settled_depth(s, q, 0)) + " left";
      });
  add(out, "basic.get/unacked-returns",
      "basic.get-ok without no-ack must be acked; unacked it comes back redelivered",
      "redelivered=true", [](context& c) {
        return refetch_after(c, [](raw_session& s, std::uint64_t) {
          s.close_channel(1);
          s.open_channel(1);
        });
      });
  add(out, "basic.get/current-queue", "basic.get queue blank: the queue last declared",
      "basic.get-ok", [](context& c) {
        raw_session& s = c.open();
        filled_queue(c, s, 1);
        basic_get g;
        g.no_ack = true;
        s.send(1, g);
        return s.observe();
      });

  add(out, "basic.ack/ack", "basic.ack of a fetched message (it is gone)", "0 left",
      [](context& c) {
        raw_session& s = c.open();
        const std::string q = filled_queue(c, s, 1);
        auto e = fetch(s, q, false);
        if (!e) return std::string("nothing");
        ack(s, tag_of(*e));
        s.close_channel(1);
        s.open_channel(1);
        return std::to_string(settled_depth(s, q, 0)) + " left";
      });
  add(out, "basic.ack/unknown-tag", "basic.ack multiple, rule exists (unknown tag)",
      "channel.close 406", [](context& c) {
        raw_session& s = c.open();
        ack(s, 99);
        return s.observe();
      });
  add(out, "basic.ack/twice", "basic.ack rule exists (the same message acked twice)",
      "channel.close 406", [](context& c) {
        raw_session& s = c.open();
        const std::string q = filled_queue(c, s, 1);
        auto e = fetch(s, q, false);
        if (!e) return std::string("nothing");
        ack(s, tag_of(*e));
        ack(s, tag_of(*e));
        return s.observe();
      });
  add(out, "basic.ack/multiple", "basic.ack multiple (up to and including the tag)", "0 left",
      [](context& c) {
        raw_session& s = c.open();
        const std::string q = filled_queue(c, s, 3);
        std::uint64_t last = 0;
        for (int i = 0; i < 3; ++i)
          if (auto e = fetch(s, q, false)) last = tag_of(*e);
        ack(s, last, true);
        s.close_channel(1);
        s.open_channel(1);
        return std::to_string(settled_depth(s, q, 0)) + " left";
      });
  add(out, "basic.ack/multiple-zero", "basic.ack multiple with tag 0 (all outstanding)", "0 left",
      [](context& c) {
        raw_session& s = c.open();
        const std::string q = filled_queue(c, s, 3);
        for (int i = 0; i < 3; ++i) fetch(s, q, false);
        ack(s, 0, true);
        s.close_channel(1);
        s.open_channel(1);
        return std::to_string(settled_depth(s, q, 0)) + " left";
      });
  add(out, "basic.ack/other-channel", "delivery-tag rule channel-local (acked on another channel)",
      "channel.close 406", [](context& c) {
        raw_session& s = c.open();
        s.open_channel(2);
        const std::string q = filled_queue(c, s, 1);
        auto e = fetch(s, q, false);
        if (!e) return std::string("nothing");
        ack(s, tag_of(*e), false, 2);
        return s.observe();
      });

  add(out, "basic.reject/requeue", "basic.reject requeue (redelivered)", "redelivered=true",
      [](context& c) {
        return refetch_after(c, [](raw_session& s, std::uint64_t tag) {
          basic_reject r;
          r.delivery_tag = tag;
          r.requeue = true;
          s.send(1, r);
        });
      });
  add(out, "basic.reject/discard", "basic.reject requeue=false (discarded)", "gone",
      [](context& c) {
        return refetch_after(c, [](raw_session& s, std::uint64_t tag) {
          basic_reject r;
          r.delivery_tag = tag;
          s.send(1, r);
        });
      });
  add(out, "basic.reject/unknown-tag", "basic.reject of an unknown delivery tag",
      "channel.close 406", [](context& c) {
        raw_session& s = c.open();
        basic_reject r;
        r.delivery_tag = 42;
        s.send(1, r);
        return s.observe();
      });
  auto nack_case = [&](std::string id, std::string checks, std::string expected,
                       std::function<std::string(context&)> run) {
    auto& sc = add(out, std::move(id), std::move(checks), std::move(expected), std::move(run));
    sc.capability = "basic.nack";
    sc.extension = true;
  };
  nack_case("basic.nack/requeue", "basic.nack requeue (redelivered)", "redelivered=true",
            [](context& c) {
              return refetch_after(c, [](raw_session& s, std::uint64_t tag) {
                basic_nack n;
                n.delivery_tag = tag;
                n.requeue = true;
                s.send(1, n);
              });
            });
  nack_case("basic.nack/discard", "basic.nack requeue=false (discarded)", "gone", [](context& c) {
    return refetch_after(c, [](raw_session& s, std::uint64_t tag) {
      basic_nack n;
      n.delivery_tag = tag;
      s.send(1, n);
    });
  });
  nack_case("basic.nack/multiple", "basic.nack multiple requeue (all back)", "3 back",
            [](context& c) {
              raw_session& s = c.open();
              const std::string q = filled_queue(c, s, 3);
              std::uint64_t last = 0;
              for (int i = 0; i < 3; ++i)
                if (auto e = fetch(s, q, false)) last = tag_of(*e);
              basic_nack n;
              n.delivery_tag = last;
              n.multiple = true;
              n.requeue = true;
              s.send(1, n);
              return std::to_string(settled_depth(s, q, 3)) + " back";
            });
  nack_case("basic.nack/unknown-tag", "basic.nack of an unknown delivery tag", "channel.close 406",
            [](context& c) {
              raw_session& s = c.open();
              basic_nack n;
              n.delivery_tag = 42;
              s.send(1, n);
              return s.observe();
            });

  add(out, "basic.recover/requeue", "basic.recover requeue=true, rule 01 (redelivered flag)",
      "basic.recover-ok, redelivered=true", [](context& c) {
        raw_session& s = c.open();
        const std::string q = filled_queue(c, s, 1);
        consume(s, q);
        deliver(s);
        basic_recover r;
        r.requeue = true;
        const std::string ok = answer(s, 1, r);
        if (ok != "basic.recover-ok") return ok;
        event e = deliver(s);
        return ok + ", redelivered=" + flag(redelivered(e));
      });
  add(out, "basic.recover/no-requeue",
      "basic.recover requeue=false, rule 01 (to the original recipient, redelivered flag)",
      "basic.recover-ok, redelivered=true",
      [](context& c) {
        raw_session& s = c.open();
        const std::string q = filled_queue(c, s, 1);
        consume(s, q);
        deliver(s);
        basic_recover r;
        r.requeue = false;
        const std::string ok = answer(s, 1, r);
        if (ok != "basic.recover-ok") return ok;
        event e = deliver(s);
        return ok + ", redelivered=" + flag(redelivered(e));
      })
      .deviations = {
      {"connection.close 540",
       "RabbitMQ implements basic.recover only with requeue=true; requeue=false is 540 "
       "NOT_IMPLEMENTED"}};
  add(out, "basic.recover-async/requeue",
      "basic.recover-async (deprecated; MAY be implemented), rule 01", "redelivered=true",
      [](context& c) {
        raw_session& s = c.open();
        const std::string q = filled_queue(c, s, 1);
        consume(s, q);
        deliver(s);
        basic_recover_async r;
        r.requeue = true;
        s.send(1, r);
        event e = s.next();
        if (e.as<basic_deliver>() == nullptr) return e.describe();
        return "redelivered=" + flag(redelivered(e));
      });
  add(out, "basic.deliver/redelivered-after-channel-close",
      "redelivered domain, rule implementation (unacked, the channel closed)", "redelivered=true",
      [](context& c) {
        raw_session& s = c.open();
        const std::string q = filled_queue(c, s, 1);
        consume(s, q);
        deliver(s);
        s.close_channel(1);
        s.open_channel(1);
        consume(s, q);
        return "redelivered=" + flag(redelivered(deliver(s)));
      });
  add(out, "basic.deliver/redelivered-after-reconnect",
      "redelivered domain, rule implementation (unacked, the connection closed)",
      "redelivered=true", [](context& c) {
        raw_session& s = c.open();
        const std::string q = filled_queue(c, s, 1);
        consume(s, q);
        deliver(s);
        s.close();
        raw_session& t = c.open();
        consume(t, q);
        return "redelivered=" + flag(redelivered(deliver(t)));
      });
  add(out, "basic.deliver/unacked-survive-cancel",
      "basic.cancel does not affect messages already delivered (still unacked, then back)",
      "1 back after close", [](context& c) {
        raw_session& s = c.open();
        const std::string q = filled_queue(c, s, 1);
        basic_cancel b;
        b.consumer_tag = consume(s, q);
        deliver(s);
        s.call(1, b);
        s.close_channel(1);
        s.open_channel(1);
        return std::to_string(settled_depth(s, q, 1)) + " back after close";
      });
}

}  // namespace warren::conformance
