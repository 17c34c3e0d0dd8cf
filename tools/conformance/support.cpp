#include "tools/conformance/support.hpp"

#include <thread>

namespace warren::conformance {

scenario& add(std::vector<scenario>& out, std::string id, std::string checks, std::string expected,
              std::function<std::string(context&)> run) {
  scenario s;
  s.id = std::move(id);
  s.checks = std::move(checks);
  s.expected = std::move(expected);
  s.run = std::move(run);
  out.push_back(std::move(s));
  return out.back();
}

std::string make_queue(context& c, raw_session& s, std::string_view tag, const queue_options& o) {
  queue_declare d;
  d.queue = c.name(tag);
  d.durable = o.durable;
  d.exclusive = o.exclusive;
  d.auto_delete = o.auto_delete;
  if (o.arguments != nullptr) d.arguments = *o.arguments;
  c.cleanup_queue(d.queue);
  s.call(o.channel, d);
  return d.queue;
}

std::string make_exchange(context& c, raw_session& s, std::string_view tag, std::string_view type,
                          const exchange_options& o) {
  exchange_declare d;
  d.exchange = c.name(tag);
  d.type = std::string(type);
  d.durable = o.durable;
  d.auto_delete = o.auto_delete;
  d.internal = o.internal;
  if (o.arguments != nullptr) d.arguments = *o.arguments;
  c.cleanup_exchange(d.exchange);
  s.call(o.channel, d);
  return d.exchange;
}

void bind_queue(raw_session& s, std::string_view queue, std::string_view exchange,
                std::string_view key, const field_table* args, std::uint16_t channel) {
  queue_bind b;
  b.queue = std::string(queue);
  b.exchange = std::string(exchange);
  b.routing_key = std::string(key);
  if (args != nullptr) b.arguments = *args;
  s.call(channel, b);
}

void publish(raw_session& s, std::string_view exchange, std::string_view key, std::string_view body,
             const basic_properties& props, bool mandatory, std::uint16_t channel) {
  basic_publish p;
  p.exchange = std::string(exchange);
  p.routing_key = std::string(key);
  p.mandatory = mandatory;
  s.publish(channel, p, props, body);
}

std::optional<event> fetch(raw_session& s, std::string_view queue, bool no_ack, milliseconds wait,
                           std::uint16_t channel) {
  const auto stop = clock::now() + wait;
  basic_get g;
  g.queue = std::string(queue);
  g.no_ack = no_ack;
  for (;;) {
    s.send(channel, g);
    event e = s.pull_sync();
    if (e.as<basic_get_ok>() != nullptr && e.channel == channel) return e;
    if (e.as<basic_get_empty>() == nullptr || e.channel != channel)
      throw step_failed{e.describe() + " (waiting for basic.get-ok)"};
    if (clock::now() >= stop) return std::nullopt;
    std::this_thread::sleep_for(milliseconds(20));
  }
}

std::uint32_t depth(raw_session& s, std::string_view queue, std::uint16_t channel) {
  queue_declare d;
  d.queue = std::string(queue);
  d.passive = true;
  return s.call(channel, d).message_count;
}

std::uint32_t settled_depth(raw_session& s, std::string_view queue, std::uint32_t want,
                            milliseconds wait, std::uint16_t channel) {
  const auto stop = clock::now() + wait;
  for (;;) {
    const std::uint32_t n = depth(s, queue, channel);
    if (n == want || clock::now() >= stop) return n;
    std::this_thread::sleep_for(milliseconds(20));
  }
}

std::string consume(raw_session& s, std::string_view queue, std::string_view tag, bool no_ack,
                    bool exclusive, const field_table* args, std::uint16_t channel) {
  basic_consume b;
  b.queue = std::string(queue);
  b.consumer_tag = std::string(tag);
  b.no_ack = no_ack;
  b.exclusive = exclusive;
  if (args != nullptr) b.arguments = *args;
  return s.call(channel, b).consumer_tag;
}

event deliver(raw_session& s, std::uint16_t channel, std::optional<milliseconds> wait) {
  event e = s.next_async(channel, basic_deliver::key, wait);
  if (e.as<basic_deliver>() == nullptr)
    throw step_failed{e.describe() + " (waiting for basic.deliver)"};
  return e;
}

std::vector<event> drain(raw_session& s, std::uint16_t channel, milliseconds wait,
                         std::size_t most) {
  std::vector<event> got;
  const auto stop = clock::now() + wait;
  while (got.size() < most) {
    const auto left = std::chrono::duration_cast<milliseconds>(stop - clock::now());
    if (left.count() <= 0) break;
    event e = s.next_async(channel, basic_deliver::key, left);
    if (e.as<basic_deliver>() == nullptr) {
      if (e.what == event::kind::timeout) break;
      throw step_failed{e.describe() + " (waiting for basic.deliver)"};
    }
    got.push_back(std::move(e));
  }
  return got;
}

std::string refusal(const event& e) {
  if (e.is_connection_close() || e.what == event::kind::closed)
    return "refused (" + e.describe() + ")";
  return e.describe();
}

void ack(raw_session& s, std::uint64_t tag, bool multiple, std::uint16_t channel) {
  basic_ack a;
  a.delivery_tag = tag;
  a.multiple = multiple;
  s.send(channel, a);
}

std::string plain_response(const connection_params& p, std::string_view password) {
  std::string r;
  r += '\0';
  r += p.username;
  r += '\0';
  r += password;
  return r;
}

field_table table(std::initializer_list<std::pair<std::string, field_value>> entries) {
  field_table t;
  for (const auto& [k, v] : entries) t.add(k, v);
  return t;
}

}  // namespace warren::conformance
