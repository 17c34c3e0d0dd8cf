// The queue class: declare, bind, unbind, purge and delete, with each error.
#include <thread>

#include "tools/conformance/support.hpp"

namespace warren::conformance {

namespace {

queue_declare passive_queue(std::string name) {
  queue_declare d;
  d.queue = std::move(name);
  d.passive = true;
  return d;
}

// Declares a queue exclusively on one connection and runs `m` against it
// from a second connection.
template <class M, class Fill>
std::string from_other_connection(context& c, Fill fill) {
  raw_session& owner = c.open();
  const std::string q = make_queue(c, owner, "q", {.exclusive = true});
  raw_session& other = c.open();
  M m;
  fill(m, q);
  return answer(other, 1, m);
}

template <class Tweak>
std::string redeclare(context& c, Tweak tweak) {
  raw_session& s = c.open();
  queue_declare d;
  d.queue = c.name("q");
  c.cleanup_queue(d.queue);
  s.call(1, d);
  tweak(d);
  return answer(s, 1, d);
}

// A passive declare, tried again for up to a second while the queue still
// exists: for a broker that deletes an auto-delete queue in the background.
std::string gone_soon(raw_session& s, const std::string& q) {
  const auto stop = clock::now() + milliseconds(1000);
  for (;;) {
    const std::string r = answer(s, 1, passive_queue(q));
    if (r != "queue.declare-ok" || clock::now() >= stop) return r;
    std::this_thread::sleep_for(milliseconds(50));
  }
}

std::string routed(raw_session& s, std::string_view q, milliseconds wait = milliseconds(1000)) {
  return fetch(s, q, true, wait) ? "routed" : "not routed";
}

}  // namespace

void add_queue(std::vector<scenario>& out) {
  add(out, "queue.declare/declare-ok", "queue.declare-ok (name, message-count 0, consumer-count 0)",
      "same name, 0 messages, 0 consumers", [](context& c) {
        raw_session& s = c.open();
        queue_declare d;
        d.queue = c.name("q");
        c.cleanup_queue(d.queue);
        const auto ok = s.call(1, d);
        if (ok.queue != d.queue) return "name '" + ok.queue + "'";
        return "same name, " + std::to_string(ok.message_count) + " messages, " +
               std::to_string(ok.consumer_count) + " consumers";
      });
  add(out, "queue.declare/server-named", "queue.declare queue, rule default-name",
      "two distinct names", [](context& c) {
        raw_session& s = c.open();
        queue_declare d;
        d.exclusive = true;
        const auto a = s.call(1, d);
        const auto b = s.call(1, d);
        c.cleanup_queue(a.queue);
        c.cleanup_queue(b.queue);
        if (a.queue.empty() || b.queue.empty()) return std::string("an empty name");
        return a.queue != b.queue ? std::string("two distinct names")
                                  : std::string("the same name twice");
      });
  add(out, "queue.declare/passive-existing", "queue.declare passive, rule passive (queue exists)",
      "queue.declare-ok", [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        return answer(s, 1, passive_queue(q));
      });
  add(out, "queue.declare/passive-missing-404", "queue.declare passive, rule passive (not-found)",
      "channel.close 404", [](context& c) {
        raw_session& s = c.open();
        return answer(s, 1, passive_queue(c.name("missing")));
      });
  add(out, "queue.declare/reserved-amq-prefix",
      "queue.declare queue, rule reserved (amq. prefix: access-refused)", "channel.close 403",
      [](context& c) {
        raw_session& s = c.open();
        queue_declare d;
        d.queue = "amq." + c.name("q");
        c.cleanup_queue(d.queue);
        return answer(s, 1, d);
      });
  add(out, "queue.declare/bad-name-syntax",
      "queue.declare queue, rule syntax (letters, digits, - _ . : only)", "channel.close 406",
      [](context& c) {
        raw_session& s = c.open();
        queue_declare d;
        d.queue = c.name("bad name#");
        c.cleanup_queue(d.queue);
        return answer(s, 1, d);
      })
      .deviations = {{"queue.declare-ok", "RabbitMQ accepts any UTF-8 queue name up to 255 bytes"}};
  add(out, "queue.declare/redeclare-equivalent",
      "queue.declare passive, rule equivalent (same fields)", "queue.declare-ok",
      [](context& c) { return redeclare(c, [](queue_declare&) {}); });
  add(out, "queue.declare/redeclare-other-durable",
      "queue.declare rule equivalent (durable differs: channel exception)", "channel.close 406",
      [](context& c) { return redeclare(c, [](queue_declare& d) { d.durable = true; }); });
  add(out, "queue.declare/redeclare-other-exclusive",
      "queue.declare rule equivalent (exclusive differs: channel exception)",
      "channel.close 405|channel.close 406",
      [](context& c) { return redeclare(c, [](queue_declare& d) { d.exclusive = true; }); });
  add(out, "queue.declare/redeclare-other-auto-delete",
      "queue.declare auto-delete, rule pre-existence (ignored for an existing queue)",
      "queue.declare-ok",
      [](context& c) { return redeclare(c, [](queue_declare& d) { d.auto_delete = true; }); })
      .deviations = {{"channel.close 406",
                      "RabbitMQ checks auto-delete for equivalence like durable and exclusive "
                      "(406 PRECONDITION_FAILED) instead of ignoring it"}};
  add(out, "queue.declare/redeclare-other-arguments",
      "queue.declare rule equivalent (arguments differ: x-max-length)", "channel.close 406",
      [](context& c) {
        return redeclare(
            c, [](queue_declare& d) { d.arguments.add("x-max-length", std::int32_t{5}); });
      });
  add(out, "queue.declare/durable-and-transient", "queue.declare durable, rule types",
      "both declared", [](context& c) {
        raw_session& s = c.open();
        make_queue(c, s, "durable", {.durable = true});
        make_queue(c, s, "transient");
        return std::string("both declared");
      });
  add(out, "queue.declare/exclusive-and-shared", "queue.declare exclusive, rule types",
      "both declared", [](context& c) {
        raw_session& s = c.open();
        make_queue(c, s, "exclusive", {.exclusive = true});
        make_queue(c, s, "shared");
        return std::string("both declared");
      });
  add(out, "queue.declare/exclusive-other-connection-405",
      "queue.declare exclusive, rule exclusive (another connection declares it: resource-locked)",
      "channel.close 405", [](context& c) {
        return from_other_connection<queue_declare>(
            c, [](queue_declare& d, const std::string& q) { d.queue = q; });
      });
  add(out, "queue.declare/exclusive-passive-other-connection-405",
      "queue.declare exclusive, rule exclusive (passive declare from another connection)",
      "channel.close 405", [](context& c) {
        return from_other_connection<queue_declare>(c, [](queue_declare& d, const std::string& q) {
          d.queue = q;
          d.passive = true;
        });
      });
  add(out, "queue.declare/exclusive-deleted-on-close",
      "queue.declare exclusive (deleted when its connection closes)", "channel.close 404",
      [](context& c) {
        std::string q;
        {
          raw_session& owner = c.open();
          q = make_queue(c, owner, "q", {.exclusive = true});
          owner.close();
        }
        raw_session& s = c.open();
        return answer(s, 1, passive_queue(q));
      });
  add(out, "queue.declare/exclusive-consumer-deleted-on-close",
      "queue.declare exclusive (deleted when its connection closes with a consumer on it)",
      "channel.close 404", [](context& c) {
        std::string q;
        {
          raw_session& owner = c.open();
          q = make_queue(c, owner, "q", {.exclusive = true});
          consume(owner, q);
          owner.close();
        }
        raw_session& s = c.open();
        return answer(s, 1, passive_queue(q));
      });
  add(out, "queue.declare/default-binding",
      "queue.declare rule default-binding (default exchange, queue name as key)", "routed",
      [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        publish(s, "", q);
        return routed(s, q);
      });
  add(out, "queue.declare/message-count", "queue.declare-ok message-count after 3 publishes", "3",
      [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        for (int i = 0; i < 3; ++i) publish(s, "", q);
        fetch(s, q, false, milliseconds(0));  // a round trip: the publishes are in
        s.close_channel(1);                   // the fetched one goes back
        s.open_channel(1);
        return std::to_string(settled_depth(s, q, 3));
      });
  add(out, "queue.declare/consumer-count", "queue.declare-ok consumer-count with one consumer", "1",
      [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        consume(s, q);
        return std::to_string(s.call(1, passive_queue(q)).consumer_count);
      });
  add(out, "queue.declare/no-wait", "queue.declare no-wait (no reply; the queue exists)",
      "no reply, then queue.declare-ok", [](context& c) {
        raw_session& s = c.open();
        queue_declare d;
        d.queue = c.name("q");
        d.no_wait = true;
        c.cleanup_queue(d.queue);
        s.send(1, d);
        if (!s.quiet(milliseconds(300))) return "a reply: " + s.observe();
        return "no reply, then " + answer(s, 1, passive_queue(d.queue));
      });
  add(out, "queue.declare/minimum-queues", "queue.declare rule minimum-queues (256 queues)",
      "256 declared", [](context& c) {
        raw_session& s = c.open();
        for (int i = 0; i < 256; ++i) {
          queue_declare d;
          d.queue = c.name("q" + std::to_string(i));
          d.exclusive = true;
          d.no_wait = true;
          s.send(1, d);
        }
        // One synchronous call after them: any failure would have closed the channel.
        const std::string last = answer(s, 1, passive_queue(c.name("q255")));
        return last == "queue.declare-ok" ? std::string("256 declared") : last;
      });
  add(out, "queue.declare/auto-delete-never-consumed",
      "queue.declare auto-delete (a queue never consumed from is not deleted)", "queue.declare-ok",
      [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q", {.auto_delete = true});
        s.close_channel(1);
        s.open_channel(1);
        return answer(s, 1, passive_queue(q));
      });
  add(out, "queue.declare/auto-delete-last-consumer",
      "queue.declare auto-delete (deleted when its last consumer is cancelled)",
      "channel.close 404", [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q", {.auto_delete = true});
        const std::string tag = consume(s, q);
        basic_cancel b;
        b.consumer_tag = tag;
        s.call(1, b);
        return gone_soon(s, q);
      });
  add(out, "queue.declare/auto-delete-channel-close",
      "queue.declare auto-delete (its last consumer's channel closes)", "channel.close 404",
      [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q", {.auto_delete = true});
        s.open_channel(2);
        consume(s, q, {}, false, false, nullptr, 2);
        s.close_channel(2);
        return gone_soon(s, q);
      });

  add(out, "queue.bind/bind-ok", "queue.bind", "queue.bind-ok", [](context& c) {
    raw_session& s = c.open();
    queue_bind b;
    b.queue = make_queue(c, s, "q");
    b.exchange = "amq.direct";
    b.routing_key = "k";
    return answer(s, 1, b);
  });
  add(out, "queue.bind/duplicate", "queue.bind rule duplicates (the same binding twice)",
      "queue.bind-ok, once routed", [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        const std::string x = make_exchange(c, s, "x", "direct");
        bind_queue(s, q, x, "k");
        queue_bind b;
        b.queue = q;
        b.exchange = x;
        b.routing_key = "k";
        const std::string second = answer(s, 1, b);
        publish(s, x, "k");
        fetch(s, q);
        const bool twice = fetch(s, q, true, milliseconds(200)).has_value();
        return second + (twice ? ", routed twice" : ", once routed");
      });
  add(out, "queue.bind/missing-queue-404", "queue.bind queue, rule must-exist (not-found)",
      "channel.close 404", [](context& c) {
        raw_session& s = c.open();
        queue_bind b;
        b.queue = c.name("missing");
        b.exchange = "amq.direct";
        return answer(s, 1, b);
      });
  add(out, "queue.bind/missing-exchange-404",
      "queue.bind exchange, rule exchange-existence (not-found)", "channel.close 404",
      [](context& c) {
        raw_session& s = c.open();
        queue_bind b;
        b.queue = make_queue(c, s, "q");
        b.exchange = c.name("missing");
        return answer(s, 1, b);
      });
  add(out, "queue.bind/default-exchange",
      "queue.bind exchange, rule default-exchange (a blank name means the default exchange)",
      "queue.bind-ok",
      [](context& c) {
        raw_session& s = c.open();
        queue_bind b;
        b.queue = make_queue(c, s, "q");
        b.exchange = "";
        b.routing_key = b.queue;
        return answer(s, 1, b);
      })
      .deviations = {{"channel.close 403",
                      "RabbitMQ refuses any binding to the default exchange (403 ACCESS_REFUSED): "
                      "its implicit bindings are the only ones"}};
  add(out, "queue.bind/current-queue",
      "queue.bind queue, rule queue-known (blank name: the queue last declared on the channel)",
      "queue.bind-ok, routed", [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        const std::string x = make_exchange(c, s, "x", "direct");
        queue_bind b;
        b.exchange = x;
        b.routing_key = "k";
        const std::string r = answer(s, 1, b);
        if (r != "queue.bind-ok") return r;
        publish(s, x, "k");
        return r + ", " + routed(s, q);
      });
  add(out, "queue.bind/no-current-queue",
      "queue.bind queue, rule queue-known (blank name, none declared: not-found)",
      "channel.close 404", [](context& c) {
        raw_session& s = c.open();
        queue_bind b;
        b.exchange = "amq.direct";
        b.routing_key = "k";
        return answer(s, 1, b);
      });
  add(out, "queue.bind/transient-exchange-durable-queue",
      "queue.bind rule transient-exchange (a durable queue on a transient exchange)",
      "queue.bind-ok", [](context& c) {
        raw_session& s = c.open();
        queue_bind b;
        b.queue = make_queue(c, s, "q", {.durable = true});
        b.exchange = make_exchange(c, s, "x", "direct");
        return answer(s, 1, b);
      });
  add(out, "queue.bind/binding-count", "queue.bind rule binding-count (4 exchanges)", "4 routed",
      [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        std::vector<std::string> xs;
        for (int i = 0; i < 4; ++i) {
          xs.push_back(make_exchange(c, s, "x" + std::to_string(i), "direct"));
          bind_queue(s, q, xs.back(), "k");
        }
        int n = 0;
        for (const auto& x : xs) {
          publish(s, x, "k");
          n += fetch(s, q).has_value() ? 1 : 0;
        }
        return std::to_string(n) + " routed";
      });
  add(out, "queue.bind/exclusive-other-connection-405",
      "queue.declare exclusive, rule exclusive (bind from another connection)", "channel.close 405",
      [](context& c) {
        return from_other_connection<queue_bind>(c, [](queue_bind& b, const std::string& q) {
          b.queue = q;
          b.exchange = "amq.fanout";
        });
      });
  add(out, "queue.unbind/unbind-ok", "queue.unbind (messages no longer routed)",
      "queue.unbind-ok, not routed", [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        const std::string x = make_exchange(c, s, "x", "direct");
        bind_queue(s, q, x, "k");
        queue_unbind u;
        u.queue = q;
        u.exchange = x;
        u.routing_key = "k";
        const std::string r = answer(s, 1, u);
        publish(s, x, "k");
        return r + ", " + routed(s, q, milliseconds(200));
      });
  add(out, "queue.unbind/missing-queue-404", "queue.unbind queue, rule must-exist (not-found)",
      "channel.close 404",
      [](context& c) {
        raw_session& s = c.open();
        queue_unbind u;
        u.queue = c.name("missing");
        u.exchange = "amq.direct";
        return answer(s, 1, u);
      })
      .deviations = {{"queue.unbind-ok",
                      "RabbitMQ unbinds idempotently: an unbind naming a missing queue succeeds"}};
  add(out, "queue.unbind/missing-exchange-404",
      "queue.unbind exchange, rule must-exist (not-found)", "channel.close 404",
      [](context& c) {
        raw_session& s = c.open();
        queue_unbind u;
        u.queue = make_queue(c, s, "q");
        u.exchange = c.name("missing");
        return answer(s, 1, u);
      })
      .deviations = {
      {"queue.unbind-ok",
       "RabbitMQ unbinds idempotently: an unbind naming a missing exchange succeeds"}};
  add(out, "queue.unbind/missing-binding", "queue.unbind of a binding that does not exist",
      "queue.unbind-ok|channel.close 404", [](context& c) {
        raw_session& s = c.open();
        queue_unbind u;
        u.queue = make_queue(c, s, "q");
        u.exchange = "amq.direct";
        u.routing_key = "never-bound";
        return answer(s, 1, u);
      });

  add(out, "queue.purge/purge-ok-count", "queue.purge-ok message-count", "3", [](context& c) {
    raw_session& s = c.open();
    const std::string q = make_queue(c, s, "q");
    for (int i = 0; i < 3; ++i) publish(s, "", q);
    queue_purge p;
    p.queue = q;
    return std::to_string(s.call(1, p).message_count);
  });
  add(out, "queue.purge/empty", "queue.purge of an empty queue", "0", [](context& c) {
    raw_session& s = c.open();
    queue_purge p;
    p.queue = make_queue(c, s, "q");
    return std::to_string(s.call(1, p).message_count);
  });
  add(out, "queue.purge/missing-404", "queue.purge queue, rule must-exist (not-found)",
      "channel.close 404", [](context& c) {
        raw_session& s = c.open();
        queue_purge p;
        p.queue = c.name("missing");
        return answer(s, 1, p);
      });
  add(out, "queue.purge/keeps-unacked",
      "queue.purge rule 02 (messages delivered but not acked are not purged)",
      "1 purged, 1 back after close", [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        publish(s, "", q, "a");
        publish(s, "", q, "b");
        if (!fetch(s, q, false)) return std::string("nothing to fetch");
        queue_purge p;
        p.queue = q;
        const auto purged = s.call(1, p).message_count;
        s.close_channel(1);
        s.open_channel(1);
        return std::to_string(purged) + " purged, " + std::to_string(settled_depth(s, q, 1)) +
               " back after close";
      });
  add(out, "queue.purge/exclusive-other-connection-405",
      "queue.declare exclusive, rule exclusive (purge from another connection)",
      "channel.close 405", [](context& c) {
        return from_other_connection<queue_purge>(
            c, [](queue_purge& p, const std::string& q) { p.queue = q; });
      });
  add(out, "queue.delete/delete-ok-count", "queue.delete-ok message-count", "2, then 404",
      [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        publish(s, "", q);
        publish(s, "", q);
        queue_delete d;
        d.queue = q;
        const auto n = s.call(1, d).message_count;
        return std::to_string(n) + ", then " +
               (answer(s, 1, passive_queue(q)) == "channel.close 404" ? "404" : "still there");
      });
  add(out, "queue.delete/missing-404", "queue.delete queue, rule must-exist (not-found)",
      "channel.close 404",
      [](context& c) {
        raw_session& s = c.open();
        queue_delete d;
        d.queue = c.name("missing");
        return answer(s, 1, d);
      })
      .deviations = {{"queue.delete-ok",
                      "RabbitMQ deletes idempotently: deleting a missing queue succeeds with "
                      "message-count 0"}};
  add(out, "queue.delete/if-unused-in-use",
      "queue.delete if-unused, rule in-use (precondition-failed)", "channel.close 406",
      [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        consume(s, q);
        queue_delete d;
        d.queue = q;
        d.if_unused = true;
        return answer(s, 1, d);
      });
  add(out, "queue.delete/if-unused-unused", "queue.delete if-unused with no consumers",
      "queue.delete-ok", [](context& c) {
        raw_session& s = c.open();
        queue_delete d;
        d.queue = make_queue(c, s, "q");
        d.if_unused = true;
        return answer(s, 1, d);
      });
  add(out, "queue.delete/if-empty-not-empty",
      "queue.delete if-empty, rule not-empty (precondition-failed)", "channel.close 406",
      [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        publish(s, "", q);
        queue_delete d;
        d.queue = q;
        d.if_empty = true;
        return answer(s, 1, d);
      });
  add(out, "queue.delete/if-empty-empty", "queue.delete if-empty of an empty queue",
      "queue.delete-ok", [](context& c) {
        raw_session& s = c.open();
        queue_delete d;
        d.queue = make_queue(c, s, "q");
        d.if_empty = true;
        return answer(s, 1, d);
      });
  add(out, "queue.delete/exclusive-other-connection-405",
      "queue.declare exclusive, rule exclusive (delete from another connection)",
      "channel.close 405", [](context& c) {
        return from_other_connection<queue_delete>(
            c, [](queue_delete& d, const std::string& q) { d.queue = q; });
      });
  add(out, "queue.delete/current-queue",
      "queue.delete queue, rule queue-known (blank name: the queue last declared)",
      "queue.delete-ok, then 404", [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        const std::string r = answer(s, 1, queue_delete{});
        if (r != "queue.delete-ok") return r;
        return r + ", then " +
               (answer(s, 1, passive_queue(q)) == "channel.close 404" ? "404" : "still there");
      });
}

}  // namespace warren::conformance
