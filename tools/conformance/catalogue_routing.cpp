// Routing semantics: direct, fanout, topic (with '*' and '#' edge cases),
// headers (x-match all and any), the pre-declared exchanges, and
// exchange-to-exchange chains.
#include <thread>

#include "tools/conformance/support.hpp"

namespace warren::conformance {

namespace {

struct binding_spec {
  std::string key;
  field_table arguments;
};

// Binds one queue per binding to a new exchange of `type` (or to `exchange`
// when given), publishes once, and says which bindings' queues got a copy:
// "1,3", or "none". A second copy in one queue shows as "2x".
std::string route(context& c, std::string_view type, const std::vector<binding_spec>& binds,
                  std::string_view key, const basic_properties& props = {},
                  std::string exchange = {}) {
  raw_session& s = c.open();
  if (exchange.empty()) exchange = make_exchange(c, s, "x", type);
  std::vector<std::string> queues;
  for (std::size_t i = 0; i < binds.size(); ++i) {
    queues.push_back(make_queue(c, s, "q" + std::to_string(i)));
    bind_queue(s, queues.back(), exchange, binds[i].key, &binds[i].arguments);
  }
  publish(s, exchange, key, "m", props);
  // One round trip, then a moment for a broker that routes in the background.
  s.call(1, queue_declare{.queue = queues.front(), .passive = true});
  std::this_thread::sleep_for(milliseconds(100));
  std::string got;
  for (std::size_t i = 0; i < queues.size(); ++i) {
    if (!fetch(s, queues[i], true, milliseconds(0))) continue;
    got += (got.empty() ? "" : ",") + std::to_string(i + 1);
    if (fetch(s, queues[i], true, milliseconds(0))) got += " 2x";
  }
  return got.empty() ? "none" : got;
}

std::string topic(context& c, std::string binding, std::string_view key) {
  return route(c, "topic", {{std::move(binding), {}}}, key) == "1" ? "routed" : "not routed";
}

basic_properties with_headers(field_table h) {
  basic_properties p;
  p.headers = std::move(h);
  return p;
}

std::string headers_route(context& c, field_table binding, field_table message) {
  return route(c, "headers", {{"", std::move(binding)}}, "ignored",
               with_headers(std::move(message))) == "1"
             ? "routed"
             : "not routed";
}

// src -> ... -> last exchange -> queue; publishes to the first.
std::string chain(context& c, std::vector<std::string> types, std::vector<bool> internal,
                  bool unbind_first = false) {
  raw_session& s = c.open();
  std::vector<std::string> xs;
  for (std::size_t i = 0; i < types.size(); ++i)
    xs.push_back(make_exchange(c, s, "x" + std::to_string(i), types[i], {.internal = internal[i]}));
  for (std::size_t i = 0; i + 1 < xs.size(); ++i) {
    exchange_bind b;
    b.source = xs[i];
    b.destination = xs[i + 1];
    b.routing_key = "k";
    s.call(1, b);
  }
  if (unbind_first) {
    exchange_unbind u;
    u.source = xs[0];
    u.destination = xs[1];
    u.routing_key = "k";
    s.call(1, u);
  }
  const std::string q = make_queue(c, s, "q");
  bind_queue(s, q, xs.back(), "k");
  publish(s, xs.front(), "k");
  auto got = fetch(s, q, true, milliseconds(unbind_first ? 200 : 1000));
  if (!got) return "not routed";
  return fetch(s, q, true, milliseconds(0)) ? "routed twice" : "routed";
}

}  // namespace

void add_routing(std::vector<scenario>& out) {
  add(out, "route.direct/equal-key", "queue.bind rule direct-exchange-key-matching (K = R)",
      "routed", [](context& c) {
        return route(c, "direct", {{"key", {}}}, "key") == "1" ? "routed" : "not routed";
      });
  add(out, "route.direct/other-key", "direct exchange: K != R is not routed", "not routed",
      [](context& c) {
        return route(c, "direct", {{"key", {}}}, "other") == "1" ? "routed" : "not routed";
      });
  add(out, "route.direct/case-sensitive", "direct exchange: keys compare case-sensitively",
      "not routed", [](context& c) {
        return route(c, "direct", {{"Key", {}}}, "key") == "1" ? "routed" : "not routed";
      });
  add(out, "route.direct/empty-key", "direct exchange: an empty binding key matches an empty key",
      "routed", [](context& c) {
        return route(c, "direct", {{"", {}}}, "") == "1" ? "routed" : "not routed";
      });
  add(out, "route.direct/two-queues", "direct exchange: every queue bound with the key gets a copy",
      "1,2", [](context& c) {
        return route(c, "direct", {{"k", {}}, {"k", {}}, {"j", {}}}, "k");
      });
  add(out, "route.fanout/ignores-key", "fanout exchange: every bound queue, whatever the keys",
      "1,2", [](context& c) {
        return route(c, "fanout", {{"a", {}}, {"b", {}}}, "zzz");
      });
  add(out, "route.fanout/no-bindings", "fanout exchange with no queues: dropped", "nothing",
      [](context& c) {
        raw_session& s = c.open();
        const std::string x = make_exchange(c, s, "x", "fanout");
        publish(s, x, "k");
        return s.quiet(milliseconds(200)) ? std::string("nothing") : s.next().describe();
      });
  add(out, "route.topic/unique",
      "queue.bind rule unique (several matching bindings on amq.topic: one copy per queue)", "1",
      [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        const std::string a = c.name("a"), b = c.name("b");
        bind_queue(s, q, "amq.topic", a + ".*");
        bind_queue(s, q, "amq.topic", a + ".#");
        bind_queue(s, q, "amq.topic", "#." + b);
        publish(s, "amq.topic", a + "." + b);
        int n = 0;
        if (fetch(s, q)) ++n;
        if (fetch(s, q, true, milliseconds(200))) ++n;
        return std::to_string(n);
      });

  struct topic_case {
    const char* id;
    const char* binding;
    const char* key;
    bool routed;
  };
  for (const topic_case& t : {
           topic_case{"star-one-word", "a.*.c", "a.b.c", true},
           topic_case{"star-not-zero-words", "a.*.c", "a.c", false},
           topic_case{"star-not-two-words", "a.*.c", "a.b.b.c", false},
           topic_case{"star-empty-word", "a.*.c", "a..c", true},
           topic_case{"star-trailing-empty-word", "a.*", "a.", true},
           topic_case{"star-first-word", "*.b", "a.b", true},
           topic_case{"star-prefix-only", "*.b", "a.b.c", false},
           topic_case{"hash-zero-words-after", "a.#", "a", true},
           topic_case{"hash-many-words", "a.#", "a.b.c.d", true},
           topic_case{"hash-zero-words-before", "#.c", "c", true},
           topic_case{"hash-zero-words-middle", "a.#.c", "a.c", true},
           topic_case{"hash-several-middle", "a.#.c", "a.b.x.c", true},
           topic_case{"hash-alone-empty-key", "#", "", true},
           topic_case{"hash-alone-any-key", "#", "x.y.z", true},
           topic_case{"hash-hash", "#.#", "a", true},
           topic_case{"hash-then-star", "#.*", "a.b", true},
           topic_case{"hash-then-star-needs-one", "#.*", "", false},
           topic_case{"literal-exact", "a.b.c", "a.b.c", true},
           topic_case{"literal-case", "a.b", "a.B", false},
           topic_case{"literal-longer-key", "a.b", "a.b.c", false},
       }) {
    add(out, std::string("route.topic/") + t.id,
        std::string("topic exchange: binding '") + t.binding + "', routing key '" + t.key + "'",
        t.routed ? "routed" : "not routed",
        [binding = std::string(t.binding), key = std::string(t.key)](context& c) {
          return topic(c, binding, key);
        });
  }

  add(out, "route.headers/all-match", "headers exchange x-match all: every pair present", "routed",
      [](context& c) {
        return headers_route(c, table({{"x-match", "all"}, {"a", "1"}, {"b", "2"}}),
                             table({{"a", "1"}, {"b", "2"}, {"c", "3"}}));
      });
  add(out, "route.headers/all-one-missing", "headers exchange x-match all: one pair missing",
      "not routed", [](context& c) {
        return headers_route(c, table({{"x-match", "all"}, {"a", "1"}, {"b", "2"}}),
                             table({{"a", "1"}}));
      });
  add(out, "route.headers/all-value-differs", "headers exchange x-match all: one value differs",
      "not routed", [](context& c) {
        return headers_route(c, table({{"x-match", "all"}, {"a", "1"}, {"b", "2"}}),
                             table({{"a", "1"}, {"b", "3"}}));
      });
  add(out, "route.headers/any-one-match", "headers exchange x-match any: one pair matches",
      "routed", [](context& c) {
        return headers_route(c, table({{"x-match", "any"}, {"a", "1"}, {"b", "2"}}),
                             table({{"b", "2"}}));
      });
  add(out, "route.headers/any-none", "headers exchange x-match any: no pair matches", "not routed",
      [](context& c) {
        return headers_route(c, table({{"x-match", "any"}, {"a", "1"}, {"b", "2"}}),
                             table({{"a", "2"}, {"c", "1"}}));
      });
  add(out, "route.headers/default-is-all", "headers exchange without x-match: all is the default",
      "not routed", [](context& c) {
        return headers_route(c, table({{"a", "1"}, {"b", "2"}}), table({{"a", "1"}}));
      });
  add(out, "route.headers/type-matters",
      "headers exchange: a value of another type (int 1 against string \"1\") does not match",
      "not routed", [](context& c) {
        return headers_route(c, table({{"x-match", "all"}, {"a", std::int32_t{1}}}),
                             table({{"a", "1"}}));
      });
  add(out, "route.headers/no-headers", "headers exchange x-match all: a message with no headers",
      "not routed", [](context& c) {
        return route(c, "headers", {{"", table({{"x-match", "all"}, {"a", "1"}})}}, "k") == "1"
                   ? "routed"
                   : "not routed";
      });
  add(out, "route.headers/ignores-key", "headers exchange: the routing key plays no part", "routed",
      [](context& c) {
        return route(c, "headers", {{"some-key", table({{"x-match", "all"}, {"a", "1"}})}},
                     "other-key", with_headers(table({{"a", "1"}}))) == "1"
                   ? "routed"
                   : "not routed";
      });

  for (const char* type : {"direct", "fanout", "topic", "headers"}) {
    add(out, std::string("route.amq/") + type,
        std::string("the pre-declared amq.") + type + " routes like any " + type + " exchange",
        "routed", [type = std::string(type)](context& c) {
          const std::string key = c.name("k");
          field_table args;
          basic_properties props;
          if (type == "headers") {
            args = table({{"x-match", "all"}, {"id", key}});
            props.headers = table({{"id", key}});
          }
          return route(c, type, {{key, args}}, key, props, "amq." + type) == "1" ? "routed"
                                                                                 : "not routed";
        });
  }

  auto e2e = [&](std::string id, std::string checks, std::string expected,
                 std::function<std::string(context&)> run) {
    auto& sc = add(out, std::move(id), std::move(checks), std::move(expected), std::move(run));
    sc.capability = "exchange_exchange_bindings";
    sc.extension = true;
  };
  e2e("route.e2e/two-hops", "exchange.bind: direct -> fanout -> queue", "routed", [](context& c) {
    return chain(c, {"direct", "fanout"}, {false, false});
  });
  e2e("route.e2e/three-hops", "exchange.bind: topic -> direct -> fanout -> queue", "routed",
      [](context& c) {
        return chain(c, {"topic", "direct", "fanout"}, {false, false, false});
      });
  e2e("route.e2e/through-internal", "exchange.bind into an internal exchange routes on", "routed",
      [](context& c) {
        return chain(c, {"direct", "fanout"}, {false, true});
      });
  e2e("route.e2e/unbound", "exchange.unbind ends the route", "not routed", [](context& c) {
    return chain(c, {"direct", "fanout"}, {false, false}, true);
  });
  e2e("route.e2e/cycle", "exchange.bind cycle: a message reaches a queue once", "routed",
      [](context& c) {
        raw_session& s = c.open();
        const std::string a = make_exchange(c, s, "a", "fanout");
        const std::string b = make_exchange(c, s, "b", "fanout");
        exchange_bind ab;
        ab.source = a;
        ab.destination = b;
        s.call(1, ab);
        exchange_bind ba;
        ba.source = b;
        ba.destination = a;
        s.call(1, ba);
        const std::string q = make_queue(c, s, "q");
        bind_queue(s, q, b, "");
        publish(s, a, "k");
        if (!fetch(s, q)) return std::string("not routed");
        return fetch(s, q, true, milliseconds(200)) ? std::string("routed twice")
                                                    : std::string("routed");
      });
  e2e("route.e2e/queue-on-both", "a queue bound to both ends of an exchange binding: one copy", "1",
      [](context& c) {
        raw_session& s = c.open();
        const std::string a = make_exchange(c, s, "a", "fanout");
        const std::string b = make_exchange(c, s, "b", "fanout");
        exchange_bind ab;
        ab.source = a;
        ab.destination = b;
        s.call(1, ab);
        const std::string q = make_queue(c, s, "q");
        bind_queue(s, q, a, "");
        bind_queue(s, q, b, "");
        publish(s, a, "k");
        int n = 0;
        if (fetch(s, q)) ++n;
        if (fetch(s, q, true, milliseconds(200))) ++n;
        return std::to_string(n);
      });
}

}  // namespace warren::conformance
