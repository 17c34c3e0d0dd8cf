// The channel and exchange classes: normal paths and each documented error.
#include "tools/conformance/support.hpp"

namespace warren::conformance {

namespace {

exchange_declare declare_of(std::string name, std::string type) {
  exchange_declare d;
  d.exchange = std::move(name);
  d.type = std::move(type);
  return d;
}

exchange_declare passive_of(std::string name) {
  exchange_declare d;
  d.exchange = std::move(name);
  d.passive = true;
  return d;
}

// Declares an exchange, then declares it again changed by `tweak`.
template <class Tweak>
std::string redeclare(context& c, std::string_view type, Tweak tweak) {
  raw_session& s = c.open();
  exchange_declare d = declare_of(c.name("x"), std::string(type));
  c.cleanup_exchange(d.exchange);
  s.call(1, d);
  tweak(d);
  return answer(s, 1, d);
}

}  // namespace

void add_channel_exchange(std::vector<scenario>& out) {
  add(out, "channel.open/open-ok", "channel.open", "channel.open-ok", [](context& c) {
    raw_session& s = c.open({.open_channel = false});
    return answer(s, 1, channel_open{});
  });
  add(out, "channel.open/sixteen-channels", "channel.open on channels 1 to 16 of one connection",
      "16 open", [](context& c) {
        raw_session& s = c.open({.open_channel = false});
        for (std::uint16_t ch = 1; ch <= 16; ++ch) s.open_channel(ch);
        return std::string("16 open");
      });
  add(out, "channel.close/close-ok", "channel.close from the client", "channel.close-ok",
      [](context& c) {
        raw_session& s = c.open();
        channel_close cl;
        cl.reply_code = 200;
        cl.reply_text = "done";
        return answer(s, 1, cl);
      });
  add(out, "channel.close/reopen", "channel.open of an id freed by close-ok", "channel.open-ok",
      [](context& c) {
        raw_session& s = c.open();
        s.close_channel(1);
        return answer(s, 1, channel_open{});
      });
  add(out, "channel.close/soft-error-isolated",
      "a channel exception closes that channel only (soft error)", "channel 2 still works",
      [](context& c) {
        raw_session& s = c.open();
        s.open_channel(2);
        queue_declare d;
        d.queue = c.name("missing");
        d.passive = true;
        const std::string first = answer(s, 1, d);
        if (first != "channel.close 404") return "channel 1: " + first;
        queue_declare other;
        other.queue = c.name("q");
        c.cleanup_queue(other.queue);
        const std::string second = answer(s, 2, other);
        return second == "queue.declare-ok" ? std::string("channel 2 still works")
                                            : "channel 2: " + second;
      });
  add(out, "channel.flow/stop", "channel.flow active=false from the client, rule initial-state",
      "channel.flow-ok active=false",
      [](context& c) {
        raw_session& s = c.open();
        channel_flow f;
        f.active = false;
        s.send(1, f);
        event e = s.pull_sync();
        if (const auto* ok = e.as<channel_flow_ok>())
          return std::string("channel.flow-ok active=") + (ok->active ? "true" : "false");
        return e.describe();
      })
      .deviations = {{"connection.close 540",
                      "RabbitMQ does not implement client-initiated channel.flow: active=false is "
                      "540 NOT_IMPLEMENTED"}};
  add(out, "channel.flow/start", "channel.flow active=true from the client",
      "channel.flow-ok active=true", [](context& c) {
        raw_session& s = c.open();
        channel_flow f;
        f.active = true;
        s.send(1, f);
        event e = s.pull_sync();
        if (const auto* ok = e.as<channel_flow_ok>())
          return std::string("channel.flow-ok active=") + (ok->active ? "true" : "false");
        return e.describe();
      });

  for (const char* type : {"direct", "fanout", "topic", "headers"}) {
    const bool required = std::string_view(type) == "direct" || std::string_view(type) == "fanout";
    add(out, std::string("exchange.declare/type-") + type,
        std::string("exchange.declare type ") + type + ", rule " +
            (required ? "required-types" : "recommended-types"),
        "exchange.declare-ok", [type = std::string(type)](context& c) {
          raw_session& s = c.open();
          exchange_declare d = declare_of(c.name("x"), type);
          c.cleanup_exchange(d.exchange);
          return answer(s, 1, d);
        });
    add(out, std::string("exchange.declare/amq.") + type,
        std::string("exchange class rule required-instances (amq.") + type + ", passive)",
        "exchange.declare-ok", [type = std::string(type)](context& c) {
          raw_session& s = c.open();
          return answer(s, 1, passive_of("amq." + type));
        });
  }
  add(out, "exchange.declare/unknown-type", "exchange.declare type, rule support (command-invalid)",
      "connection.close 503", [](context& c) {
        raw_session& s = c.open();
        exchange_declare d = declare_of(c.name("x"), "no-such-type");
        c.cleanup_exchange(d.exchange);
        return answer(s, 1, d);
      });
  add(out, "exchange.declare/passive-existing", "exchange.declare passive on an existing exchange",
      "exchange.declare-ok", [](context& c) {
        raw_session& s = c.open();
        const std::string x = make_exchange(c, s, "x", "direct");
        return answer(s, 1, passive_of(x));
      });
  add(out, "exchange.declare/passive-missing-404", "exchange.declare passive, rule not-found",
      "channel.close 404", [](context& c) {
        raw_session& s = c.open();
        return answer(s, 1, passive_of(c.name("missing")));
      });
  add(out, "exchange.declare/redeclare-equivalent",
      "exchange.declare rule equivalent (same fields)", "exchange.declare-ok",
      [](context& c) { return redeclare(c, "direct", [](auto&) {}); });
  add(out, "exchange.declare/redeclare-other-type",
      "exchange.declare type, rule typed (not-allowed)", "connection.close 530",
      [](context& c) {
        return redeclare(c, "direct", [](exchange_declare& d) { d.type = "fanout"; });
      })
      .deviations = {{"channel.close 406",
                      "RabbitMQ reports any inequivalent redeclaration, a type change included, as "
                      "406 PRECONDITION_FAILED on the channel"}};
  add(out, "exchange.declare/redeclare-other-durable",
      "exchange.declare passive, rule equivalent (durable differs: channel exception)",
      "channel.close 406", [](context& c) {
        return redeclare(c, "direct", [](exchange_declare& d) { d.durable = true; });
      });
  add(out, "exchange.declare/redeclare-other-auto-delete",
      "exchange.declare rule equivalent (auto-delete differs)", "channel.close 406",
      [](context& c) {
        return redeclare(c, "direct", [](exchange_declare& d) { d.auto_delete = true; });
      });
  add(out, "exchange.declare/redeclare-other-arguments",
      "exchange.declare rule equivalent (arguments differ: alternate-exchange)",
      "channel.close 406", [](context& c) {
        return redeclare(c, "direct", [](exchange_declare& d) {
          d.arguments.add("alternate-exchange", "amq.fanout");
        });
      });
  add(out, "exchange.declare/passive-ignores-type",
      "exchange.declare passive: all fields but the name are ignored", "exchange.declare-ok",
      [](context& c) {
        raw_session& s = c.open();
        const std::string x = make_exchange(c, s, "x", "direct");
        exchange_declare d = passive_of(x);
        d.type = "fanout";
        d.durable = true;
        return answer(s, 1, d);
      });
  add(out, "exchange.declare/reserved-amq-prefix",
      "exchange.declare exchange, rule reserved (amq. prefix: access-refused)", "channel.close 403",
      [](context& c) {
        raw_session& s = c.open();
        exchange_declare d = declare_of("amq." + c.name("x"), "direct");
        c.cleanup_exchange(d.exchange);
        return answer(s, 1, d);
      });
  add(out, "exchange.declare/amq-existing-redeclare",
      "exchange.declare rule reserved (an existing amq. exchange MAY be declared)",
      "exchange.declare-ok",
      [](context& c) {
        raw_session& s = c.open();
        exchange_declare d = declare_of("amq.direct", "direct");
        d.durable = true;
        return answer(s, 1, d);
      })
      .deviations = {{"channel.close 403",
                      "RabbitMQ refuses every non-passive declare of an amq. name, even of an "
                      "existing exchange with the same fields (403 ACCESS_REFUSED)"}};
  add(out, "exchange.declare/bad-name-syntax",
      "exchange.declare exchange, rule syntax (letters, digits, - _ . : only)", "channel.close 406",
      [](context& c) {
        raw_session& s = c.open();
        exchange_declare d = declare_of(c.name("bad name#"), "direct");
        c.cleanup_exchange(d.exchange);
        return answer(s, 1, d);
      })
      .deviations = {
      {"exchange.declare-ok", "RabbitMQ accepts any UTF-8 exchange name up to 255 bytes"}};
  add(out, "exchange.declare/default-exchange-name",
      "exchange.declare of the default exchange (empty name) by name, rule default-access",
      "channel.close 403|channel.close 406", [](context& c) {
        raw_session& s = c.open();
        return answer(s, 1, declare_of("", "direct"));
      });
  add(out, "exchange.declare/durable", "exchange.declare durable, rule support",
      "exchange.declare-ok", [](context& c) {
        raw_session& s = c.open();
        exchange_declare d = declare_of(c.name("x"), "fanout");
        d.durable = true;
        c.cleanup_exchange(d.exchange);
        return answer(s, 1, d);
      });
  add(out, "exchange.declare/no-wait", "exchange.declare no-wait (no reply; the next call works)",
      "no reply, then exchange.declare-ok", [](context& c) {
        raw_session& s = c.open();
        exchange_declare d = declare_of(c.name("x"), "direct");
        d.no_wait = true;
        c.cleanup_exchange(d.exchange);
        s.send(1, d);
        if (!s.quiet(milliseconds(300))) return "a reply: " + s.observe();
        return "no reply, then " + answer(s, 1, passive_of(d.exchange));
      });
  add(out, "exchange.declare/internal-publish-403",
      "exchange.declare internal; basic.publish exchange, rule 02 (access-refused)",
      "channel.close 403",
      [](context& c) {
        raw_session& s = c.open();
        const std::string x = make_exchange(c, s, "x", "fanout", {.internal = true});
        publish(s, x, "k");
        return s.observe();
      })
      .extension = true;
  add(out, "exchange.declare/auto-delete",
      "exchange.declare auto-delete (RabbitMQ: deleted when its last binding goes)",
      "channel.close 404",
      [](context& c) {
        raw_session& s = c.open();
        const std::string x = make_exchange(c, s, "x", "direct", {.auto_delete = true});
        const std::string q = make_queue(c, s, "q");
        bind_queue(s, q, x, "k");
        queue_unbind u;
        u.queue = q;
        u.exchange = x;
        u.routing_key = "k";
        s.call(1, u);
        return answer(s, 1, passive_of(x));
      })
      .extension = true;

  add(out, "exchange.delete/delete-ok", "exchange.delete", "exchange.delete-ok, then 404",
      [](context& c) {
        raw_session& s = c.open();
        const std::string x = make_exchange(c, s, "x", "topic");
        exchange_delete d;
        d.exchange = x;
        const std::string first = answer(s, 1, d);
        return first + ", then " +
               std::string(answer(s, 1, passive_of(x)) == "channel.close 404" ? "404"
                                                                              : "still there");
      });
  add(out, "exchange.delete/missing-404", "exchange.delete exchange, rule exists (not-found)",
      "channel.close 404",
      [](context& c) {
        raw_session& s = c.open();
        exchange_delete d;
        d.exchange = c.name("missing");
        return answer(s, 1, d);
      })
      .deviations = {{"exchange.delete-ok",
                      "RabbitMQ deletes idempotently: deleting a missing exchange succeeds"}};
  add(out, "exchange.delete/if-unused-in-use",
      "exchange.delete if-unused, rule in-use (precondition-failed)", "channel.close 406",
      [](context& c) {
        raw_session& s = c.open();
        const std::string x = make_exchange(c, s, "x", "direct");
        const std::string q = make_queue(c, s, "q");
        bind_queue(s, q, x, "k");
        exchange_delete d;
        d.exchange = x;
        d.if_unused = true;
        return answer(s, 1, d);
      });
  add(out, "exchange.delete/if-unused-unused", "exchange.delete if-unused with no bindings",
      "exchange.delete-ok", [](context& c) {
        raw_session& s = c.open();
        const std::string x = make_exchange(c, s, "x", "direct");
        exchange_delete d;
        d.exchange = x;
        d.if_unused = true;
        return answer(s, 1, d);
      });
  add(out, "exchange.delete/removes-bindings",
      "exchange.delete: all queue bindings on the exchange are cancelled", "not routed",
      [](context& c) {
        raw_session& s = c.open();
        const std::string x = make_exchange(c, s, "x", "direct");
        const std::string q = make_queue(c, s, "q");
        bind_queue(s, q, x, "k");
        exchange_delete d;
        d.exchange = x;
        s.call(1, d);
        s.call(1, declare_of(x, "direct"));
        publish(s, x, "k");
        return fetch(s, q, true, milliseconds(200)) ? std::string("routed")
                                                    : std::string("not routed");
      });
  add(out, "exchange.delete/default-exchange",
      "exchange.delete of the default exchange, exchange class rule default-access",
      "channel.close 403|channel.close 406", [](context& c) {
        raw_session& s = c.open();
        exchange_delete d;
        d.exchange = "";
        return answer(s, 1, d);
      });
  add(out, "exchange.delete/no-wait", "exchange.delete no-wait (no reply; the exchange is gone)",
      "no reply, then channel.close 404", [](context& c) {
        raw_session& s = c.open();
        const std::string x = make_exchange(c, s, "x", "direct");
        exchange_delete d;
        d.exchange = x;
        d.no_wait = true;
        s.send(1, d);
        if (!s.quiet(milliseconds(300))) return "a reply: " + s.observe();
        return "no reply, then " + answer(s, 1, passive_of(x));
      });

  // exchange.bind / exchange.unbind: RabbitMQ's exchange-to-exchange bindings.
  auto e2e = [&](std::string id, std::string checks, std::string expected,
                 std::function<std::string(context&)> run) {
    auto& sc = add(out, std::move(id), std::move(checks), std::move(expected), std::move(run));
    sc.capability = "exchange_exchange_bindings";
    sc.extension = true;
  };
  e2e("exchange.bind/bind-ok", "exchange.bind", "exchange.bind-ok", [](context& c) {
    raw_session& s = c.open();
    exchange_bind b;
    b.destination = make_exchange(c, s, "dst", "fanout");
    b.source = make_exchange(c, s, "src", "direct");
    b.routing_key = "k";
    return answer(s, 1, b);
  });
  e2e("exchange.bind/missing-source-404", "exchange.bind source missing (not-found)",
      "channel.close 404", [](context& c) {
        raw_session& s = c.open();
        exchange_bind b;
        b.destination = make_exchange(c, s, "dst", "fanout");
        b.source = c.name("missing");
        return answer(s, 1, b);
      });
  e2e("exchange.bind/missing-destination-404", "exchange.bind destination missing (not-found)",
      "channel.close 404", [](context& c) {
        raw_session& s = c.open();
        exchange_bind b;
        b.source = make_exchange(c, s, "src", "fanout");
        b.destination = c.name("missing");
        return answer(s, 1, b);
      });
  e2e("exchange.unbind/unbind-ok", "exchange.unbind of an existing binding", "exchange.unbind-ok",
      [](context& c) {
        raw_session& s = c.open();
        exchange_bind b;
        b.destination = make_exchange(c, s, "dst", "fanout");
        b.source = make_exchange(c, s, "src", "direct");
        b.routing_key = "k";
        s.call(1, b);
        exchange_unbind u;
        u.destination = b.destination;
        u.source = b.source;
        u.routing_key = "k";
        return answer(s, 1, u);
      });
  e2e("exchange.unbind/missing-binding", "exchange.unbind of a binding that does not exist",
      "exchange.unbind-ok|channel.close 404", [](context& c) {
        raw_session& s = c.open();
        exchange_unbind u;
        u.destination = make_exchange(c, s, "dst", "fanout");
        u.source = make_exchange(c, s, "src", "direct");
        u.routing_key = "k";
        return answer(s, 1, u);
      });
  e2e("exchange.delete/if-unused-as-source",
      "exchange.delete if-unused of an exchange that is the source of an exchange binding",
      "channel.close 406", [](context& c) {
        raw_session& s = c.open();
        exchange_bind b;
        b.destination = make_exchange(c, s, "dst", "fanout");
        b.source = make_exchange(c, s, "src", "direct");
        s.call(1, b);
        exchange_delete d;
        d.exchange = b.source;
        d.if_unused = true;
        return answer(s, 1, d);
      });
}

}  // namespace warren::conformance
