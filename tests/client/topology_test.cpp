// What recovery re-declares (detail::topology), without a broker: the order
// kept, deletes and unbinds forgotten, server-named queues renamed with
// their bindings.
#include <doctest/doctest.h>

#include "warren/client/recovery.hpp"

using namespace warren;
using detail::topology;

namespace {

exchange_declare exchange(const std::string& name, bool passive = false) {
  exchange_declare m;
  m.exchange = name;
  m.type = "direct";
  m.passive = passive;
  return m;
}
queue_declare queue(const std::string& name, bool passive = false) {
  queue_declare m;
  m.queue = name;
  m.passive = passive;
  return m;
}
queue_bind qbind(const std::string& q, const std::string& x, const std::string& key) {
  queue_bind m;
  m.queue = q;
  m.exchange = x;
  m.routing_key = key;
  return m;
}
exchange_bind xbind(const std::string& to, const std::string& from, const std::string& key) {
  exchange_bind m;
  m.destination = to;
  m.source = from;
  m.routing_key = key;
  return m;
}

// A short description of the entries, in order: "x:a q:b qb:b<-a/k xb:c<-a/k".
std::string shape(topology& t) {
  std::string s;
  for (auto& e : t.entries()) {
    if (!s.empty()) s += ' ';
    if (auto* x = std::get_if<exchange_declare>(&e)) s += "x:" + x->exchange;
    if (auto* q = std::get_if<topology::queue_entry>(&e)) s += "q:" + q->name + (q->method.queue.empty() ? "*" : "");
    if (auto* b = std::get_if<queue_bind>(&e)) s += "qb:" + b->queue + "<-" + b->exchange + "/" + b->routing_key;
    if (auto* b = std::get_if<exchange_bind>(&e)) s += "xb:" + b->destination + "<-" + b->source + "/" + b->routing_key;
  }
  return s;
}

}  // namespace

TEST_CASE("topology: declarations kept in order; passive ones are not recorded") {
  topology t;
  t.declared(exchange("a"));
  t.declared(queue("q"), "q");
  t.bound(qbind("q", "a", "k"));
  t.declared(exchange("c"));
  t.bound(xbind("c", "a", "k"));
  t.declared(exchange("p", true));
  t.declared(queue("pq", true), "pq");
  CHECK(shape(t) == "x:a q:q qb:q<-a/k x:c xb:c<-a/k");
  // Declared again: one entry, at its new place (after what it may now need).
  t.declared(exchange("a"));
  CHECK(shape(t) == "q:q qb:q<-a/k x:c xb:c<-a/k x:a");
}

TEST_CASE("topology: deletes and unbinds are forgotten") {
  topology t;
  t.declared(exchange("a"));
  t.declared(exchange("c"));
  t.declared(queue("q"), "q");
  t.bound(qbind("q", "a", "k1"));
  t.bound(qbind("q", "a", "k2"));
  t.bound(qbind("q", "c", "k"));
  t.bound(xbind("c", "a", "k"));
  queue_unbind qu;
  qu.queue = "q";
  qu.exchange = "a";
  qu.routing_key = "k1";
  t.unbound(qu);
  CHECK(shape(t) == "x:a x:c q:q qb:q<-a/k2 qb:q<-c/k xb:c<-a/k");
  t.exchange_deleted("a");  // its bindings, as source or destination, go with it
  CHECK(shape(t) == "x:c q:q qb:q<-c/k");
  t.queue_deleted("q");
  CHECK(shape(t) == "x:c");
  t.bound(xbind("d", "c", "k"));
  exchange_unbind u;
  u.destination = "d";
  u.source = "c";
  u.routing_key = "other";
  t.unbound(u);
  CHECK(shape(t) == "x:c xb:d<-c/k");
  u.routing_key = "k";
  t.unbound(u);
  CHECK(shape(t) == "x:c");
}

TEST_CASE("topology: a server-named queue is renamed, its bindings follow, and renames chain") {
  topology t;
  t.declared(exchange("a"));
  t.declared(queue(""), "amq.gen-1");
  t.bound(qbind("amq.gen-1", "a", "k"));
  CHECK(shape(t) == "x:a q:amq.gen-1* qb:amq.gen-1<-a/k");
  t.renamed("amq.gen-1", "amq.gen-2");
  CHECK(shape(t) == "x:a q:amq.gen-2* qb:amq.gen-2<-a/k");
  CHECK(t.current("amq.gen-1") == "amq.gen-2");
  t.renamed("amq.gen-2", "amq.gen-3");
  CHECK(t.current("amq.gen-1") == "amq.gen-3");
  CHECK(t.current("amq.gen-2") == "amq.gen-3");
  CHECK(t.current("other") == "other");
  // Renamed by reference into its own entry (as recovery does): still right.
  auto& entry = std::get<topology::queue_entry>(t.entries()[1]);
  t.renamed(entry.name, "amq.gen-4");
  CHECK(shape(t) == "x:a q:amq.gen-4* qb:amq.gen-4<-a/k");
  // A bound name deleted later: the queue and its bindings go.
  t.queue_deleted("amq.gen-4");
  CHECK(shape(t) == "x:a");
}
