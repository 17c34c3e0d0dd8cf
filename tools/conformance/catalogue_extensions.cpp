// RabbitMQ's extensions to 0-9-1, flagged as such: TTLs, dead-lettering,
// length limits, priorities, consumer priorities, the consumer-cancel
// notification, alternate exchanges, direct reply-to, single active consumer.
// A broker that refuses an extension's argument, or takes it and does nothing
// with it, gets `unsupported`: 0-9-1 leaves arguments to the implementation.
#include <thread>

#include "tools/conformance/support.hpp"

namespace warren::conformance {

namespace {

// Declares a queue with `args`; a refusal means the extension is unsupported.
std::string ext_queue(context& c, raw_session& s, std::string_view tag, const field_table& args,
                      std::string_view feature) {
  queue_declare d;
  d.queue = c.name(tag);
  d.arguments = args;
  c.cleanup_queue(d.queue);
  s.send(1, d);
  event e = s.pull_sync();
  if (e.as<queue_declare_ok>() != nullptr) return d.queue;
  if (e.is_channel_close() || e.is_connection_close())
    throw unsupported_feature{std::string(feature) + " refused: " + e.describe()};
  throw step_failed{e.describe() + " (waiting for queue.declare-ok)"};
}

[[noreturn]] void ignored(std::string_view feature) {
  throw unsupported_feature{std::string(feature) + " accepted but not applied"};
}

std::string dlx_setup(context& c, raw_session& s, field_table& args, std::string& dead) {
  const std::string dlx = make_exchange(c, s, "dlx", "fanout");
  dead = make_queue(c, s, "dead");
  bind_queue(s, dead, dlx, "");
  args.add("x-dead-letter-exchange", dlx);
  return dlx;
}

bool has_x_death(const event& e) {
  return e.properties.headers && e.properties.headers->find("x-death") != nullptr;
}

}  // namespace

void add_extensions(std::vector<scenario>& out) {
  auto ext = [&](std::string id, std::string checks, std::string expected,
                 std::function<std::string(context&)> run) -> scenario& {
    auto& sc = add(out, std::move(id), std::move(checks), std::move(expected), std::move(run));
    sc.extension = true;
    return sc;
  };

  ext("ext.ttl/queue-message-ttl", "queue argument x-message-ttl (messages expire in the queue)",
      "expired", [](context& c) {
        raw_session& s = c.open();
        const field_table args = table({{"x-message-ttl", std::int32_t{100}}});
        const std::string q = ext_queue(c, s, "q", args, "x-message-ttl");
        publish(s, "", q);
        std::this_thread::sleep_for(milliseconds(400));
        if (fetch(s, q, true, milliseconds(0))) ignored("x-message-ttl");
        return std::string("expired");
      });
  ext("ext.ttl/message-expiration", "basic property expiration (per-message TTL, milliseconds)",
      "expired", [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        basic_properties p;
        p.expiration = "100";
        publish(s, "", q, "m", p);
        std::this_thread::sleep_for(milliseconds(400));
        if (fetch(s, q, true, milliseconds(0))) ignored("expiration");
        return std::string("expired");
      });
  ext("ext.ttl/message-expiration-not-yet",
      "basic property expiration (not yet expired: delivered)", "delivered", [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        basic_properties p;
        p.expiration = "60000";
        publish(s, "", q, "m", p);
        return fetch(s, q) ? std::string("delivered") : std::string("lost");
      });
  ext("ext.ttl/expiration-invalid", "basic property expiration that is not a number",
      "channel.close 406", [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        basic_properties p;
        p.expiration = "soon";
        publish(s, "", q, "m", p);
        event e = s.next(milliseconds(500));
        if (e.what == event::kind::timeout) ignored("expiration");
        return e.describe();
      });
  ext("ext.ttl/queue-expires", "queue argument x-expires (an unused queue is deleted)",
      "channel.close 404", [](context& c) {
        raw_session& s = c.open();
        const field_table args = table({{"x-expires", std::int32_t{200}}});
        const std::string q = ext_queue(c, s, "q", args, "x-expires");
        std::this_thread::sleep_for(milliseconds(700));
        queue_declare d;
        d.queue = q;
        d.passive = true;
        const std::string r = answer(s, 1, d);
        if (r == "queue.declare-ok") ignored("x-expires");
        return r;
      });
  ext("ext.ttl/message-ttl-invalid", "queue argument x-message-ttl of a negative value",
      "channel.close 406", [](context& c) {
        raw_session& s = c.open();
        queue_declare d;
        d.queue = c.name("q");
        d.arguments.add("x-message-ttl", std::int32_t{-5});
        c.cleanup_queue(d.queue);
        const std::string r = answer(s, 1, d);
        if (r == "queue.declare-ok") ignored("x-message-ttl validation");
        return r;
      });

  ext("ext.dlx/reject", "queue argument x-dead-letter-exchange (a rejected message)",
      "dead-lettered with x-death", [](context& c) {
        raw_session& s = c.open();
        field_table args;
        std::string dead;
        dlx_setup(c, s, args, dead);
        const std::string q = ext_queue(c, s, "q", args, "x-dead-letter-exchange");
        publish(s, "", q);
        auto e = fetch(s, q, false);
        if (!e) return std::string("not routed");
        basic_reject r;
        r.delivery_tag = e->as<basic_get_ok>()->delivery_tag;
        s.send(1, r);
        auto d = fetch(s, dead);
        if (!d) ignored("x-dead-letter-exchange");
        return has_x_death(*d) ? std::string("dead-lettered with x-death")
                               : std::string("dead-lettered without x-death");
      });
  ext("ext.dlx/nack", "x-dead-letter-exchange (a nacked message, requeue=false)", "dead-lettered",
      [](context& c) {
        raw_session& s = c.open();
        field_table args;
        std::string dead;
        dlx_setup(c, s, args, dead);
        const std::string q = ext_queue(c, s, "q", args, "x-dead-letter-exchange");
        publish(s, "", q);
        auto e = fetch(s, q, false);
        if (!e) return std::string("not routed");
        basic_nack n;
        n.delivery_tag = e->as<basic_get_ok>()->delivery_tag;
        s.send(1, n);
        if (!fetch(s, dead)) ignored("x-dead-letter-exchange");
        return std::string("dead-lettered");
      });
  ext("ext.dlx/expired", "x-dead-letter-exchange with x-message-ttl (an expired message)",
      "dead-lettered", [](context& c) {
        raw_session& s = c.open();
        field_table args;
        std::string dead;
        dlx_setup(c, s, args, dead);
        args.add("x-message-ttl", std::int32_t{50});
        const std::string q = ext_queue(c, s, "q", args, "x-dead-letter-exchange");
        publish(s, "", q);
        if (!fetch(s, dead, true, milliseconds(1500)))
          ignored("dead-lettering of expired messages");
        return std::string("dead-lettered");
      });
  ext("ext.dlx/routing-key", "queue argument x-dead-letter-routing-key replaces the key",
      "routed by the new key", [](context& c) {
        raw_session& s = c.open();
        const std::string dlx = make_exchange(c, s, "dlx", "direct");
        const std::string dead = make_queue(c, s, "dead");
        bind_queue(s, dead, dlx, "dead-key");
        field_table args =
            table({{"x-dead-letter-exchange", dlx}, {"x-dead-letter-routing-key", "dead-key"}});
        const std::string q = ext_queue(c, s, "q", args, "x-dead-letter-routing-key");
        publish(s, "", q);
        auto e = fetch(s, q, false);
        if (!e) return std::string("not routed");
        basic_reject r;
        r.delivery_tag = e->as<basic_get_ok>()->delivery_tag;
        s.send(1, r);
        if (!fetch(s, dead)) ignored("x-dead-letter-routing-key");
        return std::string("routed by the new key");
      });
  ext("ext.dlx/requeue-not-dead-lettered",
      "x-dead-letter-exchange: a reject with requeue=true is not dead-lettered", "requeued",
      [](context& c) {
        raw_session& s = c.open();
        field_table args;
        std::string dead;
        dlx_setup(c, s, args, dead);
        const std::string q = ext_queue(c, s, "q", args, "x-dead-letter-exchange");
        publish(s, "", q);
        auto e = fetch(s, q, false);
        if (!e) return std::string("not routed");
        basic_reject r;
        r.delivery_tag = e->as<basic_get_ok>()->delivery_tag;
        r.requeue = true;
        s.send(1, r);
        if (fetch(s, dead, true, milliseconds(200))) return std::string("dead-lettered");
        return fetch(s, q) ? std::string("requeued") : std::string("lost");
      });

  ext("ext.max-length/drop-head", "queue argument x-max-length (the oldest is dropped)",
      "2 left, oldest gone", [](context& c) {
        raw_session& s = c.open();
        const field_table args = table({{"x-max-length", std::int32_t{2}}});
        const std::string q = ext_queue(c, s, "q", args, "x-max-length");
        for (const char* b : {"0", "1", "2"}) publish(s, "", q, b);
        const auto n = settled_depth(s, q, 2);
        if (n == 3) ignored("x-max-length");
        auto e = fetch(s, q);
        return std::to_string(n) + " left, " +
               (e && e->body == "1" ? "oldest gone" : "first is '" + (e ? e->body : "") + "'");
      });
  ext("ext.max-length/reject-publish",
      "queue arguments x-max-length with x-overflow reject-publish (confirm mode: nacked)",
      "1 nacked", [](context& c) {
        raw_session& s = c.open();
        const field_table args =
            table({{"x-max-length", std::int32_t{1}}, {"x-overflow", "reject-publish"}});
        const std::string q = ext_queue(c, s, "q", args, "x-overflow");
        s.call(1, confirm_select{});
        publish(s, "", q, "a");
        publish(s, "", q, "b");
        event first = s.next_async(1, basic_ack::key);
        if (first.as<basic_ack>() == nullptr) return first.describe();
        event second = s.next_async(1, basic_nack::key, milliseconds(1000));
        if (second.as<basic_nack>() == nullptr) ignored("x-overflow reject-publish");
        return std::string("1 nacked");
      });
  ext("ext.max-length/bytes", "queue argument x-max-length-bytes", "2 left", [](context& c) {
    raw_session& s = c.open();
    const field_table args = table({{"x-max-length-bytes", std::int32_t{10}}});
    const std::string q = ext_queue(c, s, "q", args, "x-max-length-bytes");
    for (int i = 0; i < 3; ++i) publish(s, "", q, "12345");
    const auto n = settled_depth(s, q, 2);
    if (n == 3) ignored("x-max-length-bytes");
    return std::to_string(n) + " left";
  });

  ext("ext.priority/max-priority", "queue argument x-max-priority (higher priority first)",
      "priority 9 first", [](context& c) {
        raw_session& s = c.open();
        const field_table args = table({{"x-max-priority", std::uint8_t{10}}});
        const std::string q = ext_queue(c, s, "q", args, "x-max-priority");
        basic_properties low, high;
        low.priority = 1;
        high.priority = 9;
        publish(s, "", q, "low", low);
        publish(s, "", q, "low", low);
        publish(s, "", q, "high", high);
        auto e = fetch(s, q);
        if (!e) return std::string("not routed");
        if (e->body != "high") ignored("x-max-priority");
        return std::string("priority 9 first");
      });
  ext("ext.consumer-priority/x-priority",
      "basic.consume argument x-priority (the higher-priority consumer is served first)",
      "all to the higher", [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        const field_table low = table({{"x-priority", std::int32_t{0}}});
        const field_table high = table({{"x-priority", std::int32_t{10}}});
        consume(s, q, "low", true, false, &low);
        consume(s, q, "high", true, false, &high);
        for (int i = 0; i < 20; ++i) publish(s, "", q);
        int to_high = 0, to_low = 0;
        for (const auto& e : drain(s, 1, milliseconds(500), 20))
          (e.as<basic_deliver>()->consumer_tag == "high" ? to_high : to_low)++;
        if (to_low > 0) ignored("x-priority");
        return to_high == 20 ? std::string("all to the higher")
                             : std::to_string(to_high) + " delivered";
      });
  ext("ext.single-active-consumer",
      "queue argument x-single-active-consumer (one consumer gets all)", "all to the first",
      [](context& c) {
        raw_session& s = c.open();
        const field_table args = table({{"x-single-active-consumer", true}});
        const std::string q = ext_queue(c, s, "q", args, "x-single-active-consumer");
        consume(s, q, "first", true);
        consume(s, q, "second", true);
        for (int i = 0; i < 4; ++i) publish(s, "", q);
        int first = 0, second = 0;
        for (const auto& e : drain(s, 1, milliseconds(500), 4))
          (e.as<basic_deliver>()->consumer_tag == "first" ? first : second)++;
        if (second > 0) ignored("x-single-active-consumer");
        return first == 4 ? std::string("all to the first") : std::to_string(first) + " delivered";
      });

  ext("ext.cancel-notify/queue-deleted",
      "consumer_cancel_notify: the broker sends basic.cancel when the queue is deleted",
      "basic.cancel",
      [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        consume(s, q, "watched");
        raw_session& other = c.open();
        queue_delete d;
        d.queue = q;
        other.call(1, d);
        event e = s.next_async(1, basic_cancel::key);
        if (const auto* b = e.as<basic_cancel>())
          return b->consumer_tag == "watched" ? std::string("basic.cancel")
                                              : "basic.cancel for '" + b->consumer_tag + "'";
        return e.describe();
      })
      .capability = "consumer_cancel_notify";
  ext("ext.alternate-exchange",
      "exchange argument alternate-exchange (unroutable messages go there)",
      "routed to the alternate", [](context& c) {
        raw_session& s = c.open();
        const std::string ae = make_exchange(c, s, "ae", "fanout");
        const std::string q = make_queue(c, s, "q");
        bind_queue(s, q, ae, "");
        const field_table args = table({{"alternate-exchange", ae}});
        exchange_declare d;
        d.exchange = c.name("x");
        d.type = "direct";
        d.arguments = args;
        c.cleanup_exchange(d.exchange);
        const std::string r = answer(s, 1, d);
        if (r != "exchange.declare-ok")
          throw unsupported_feature{"alternate-exchange refused: " + r};
        publish(s, d.exchange, "nowhere");
        if (!fetch(s, q)) ignored("alternate-exchange");
        return std::string("routed to the alternate");
      });
  ext("ext.direct-reply-to",
      "direct reply-to (amq.rabbitmq.reply-to): a reply reaches the consumer", "reply delivered",
      [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        consume(s, "amq.rabbitmq.reply-to", "replies", true);
        basic_properties p;
        p.reply_to = "amq.rabbitmq.reply-to";
        publish(s, "", q, "request", p);
        auto req = fetch(s, q);
        if (!req) return std::string("request not routed");
        const std::string to = req->properties.reply_to.value_or("");
        if (to.rfind("amq.rabbitmq.reply-to.", 0) != 0) return "reply-to '" + to + "'";
        publish(s, "", to, "reply");
        event e = deliver(s);
        return e.body == "reply" ? std::string("reply delivered") : "body '" + e.body + "'";
      })
      .capability = "direct_reply_to";
  ext("ext.queue-arguments/invalid-max-length", "queue argument x-max-length of the wrong type",
      "channel.close 406", [](context& c) {
        raw_session& s = c.open();
        queue_declare d;
        d.queue = c.name("q");
        d.arguments.add("x-max-length", "many");
        c.cleanup_queue(d.queue);
        const std::string r = answer(s, 1, d);
        if (r == "queue.declare-ok") ignored("x-max-length validation");
        return r;
      });
}

}  // namespace warren::conformance
