#include "tools/conformance/scenario.hpp"

#include <variant>

namespace warren::conformance {

std::string_view verdict_name(verdict v) noexcept {
  switch (v) {
    case verdict::pass: return "pass";
    case verdict::fail: return "fail";
    case verdict::deviation: return "deviation";
    case verdict::unsupported: return "unsupported";
  }
  return "?";
}

bool broker_info::has_capability(std::string_view name) const {
  const field_value* v = capabilities.find(name);
  if (v == nullptr) return false;
  const bool* b = std::get_if<bool>(&v->variant());
  return b != nullptr && *b;
}

bool matches_expected(std::string_view expected, std::string_view observed) {
  for (;;) {
    const auto bar = expected.find('|');
    const std::string_view alt = expected.substr(0, bar);
    // "refused*" takes any observation that starts with "refused".
    if (!alt.empty() && alt.back() == '*') {
      if (observed.substr(0, alt.size() - 1) == alt.substr(0, alt.size() - 1)) return true;
    } else if (alt == observed) {
      return true;
    }
    if (bar == std::string_view::npos) return false;
    expected.remove_prefix(bar + 1);
  }
}

context::context(const run_config& cfg, const broker_info& broker, std::size_t index)
    : cfg_(cfg), broker_(broker), index_(index), deadline_(clock::now() + cfg.scenario_budget) {}

context::~context() { finish(); }

raw_session& context::open(const session_options& o) {
  sessions_.push_back(std::make_unique<raw_session>(cfg_.params, cfg_.reply_timeout, deadline_));
  raw_session& s = *sessions_.back();
  s.open(o);
  return s;
}

std::string context::name(std::string_view tag) const {
  return "wc." + cfg_.run_id + "." + std::to_string(index_) + "." + std::string(tag);
}

void context::finish() {
  if (finished_) return;
  finished_ = true;
  for (auto& s : sessions_) s->close();
  sessions_.clear();
  if (queues_.empty() && exchanges_.empty()) return;
  // Cleanup gets a budget of its own: a scenario that used all of its time
  // still leaves nothing behind.
  raw_session j(cfg_.params, cfg_.reply_timeout, clock::now() + milliseconds(10000));
  try {
    j.open({.open_channel = false});
  } catch (const step_failed&) {
    return;
  }
  // Deletes without waiting for replies, each on a channel of its own: a
  // broker that refuses one (a queue already gone) closes only that channel,
  // and one that never answers a delete costs no time. The connection's close
  // handshake at the end lets them all be processed first.
  std::uint16_t ch = 0;
  auto drop = [&](const auto& method) {
    try {
      ++ch;
      j.send(ch, channel_open{});
      j.send(ch, method);
      return true;
    } catch (const step_failed&) {
      return false;
    }
  };
  for (const auto& q : queues_) {
    queue_delete d;
    d.queue = q;
    d.no_wait = true;
    if (!drop(d)) break;
  }
  for (const auto& x : exchanges_) {
    exchange_delete d;
    d.exchange = x;
    d.no_wait = true;
    if (!drop(d)) break;
  }
  j.close();
}

std::vector<scenario> catalogue() {
  std::vector<scenario> out;
  add_handshake(out);
  add_frames(out);
  add_channel_exchange(out);
  add_queue(out);
  add_basic(out);
  add_tx_confirm(out);
  add_routing(out);
  add_extensions(out);
  return out;
}

}  // namespace warren::conformance
