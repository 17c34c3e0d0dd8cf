// A conformance scenario: what it checks, what the spec expects, and the
// steps that observe what the broker does. Scenarios run against a context
// that hands out raw sessions, names unique to the run, and cleans up after
// them whatever happened.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tools/conformance/raw_session.hpp"
#include "warren/client/uri.hpp"

namespace warren::conformance {

enum class verdict : std::uint8_t { pass, fail, deviation, unsupported };
std::string_view verdict_name(verdict v) noexcept;

// A known, documented broker behaviour that differs from the spec: when the
// observation equals `observed`, the verdict is `deviation` with `reason`.
struct known_deviation {
  std::string observed;
  std::string reason;
};

// Thrown by a scenario when the broker refuses an extension or capability
// that it does not claim.
struct unsupported_feature {
  std::string reason;
};

struct scenario {
  std::string id;      // "queue.declare/passive-missing-404"
  std::string checks;  // the spec's class.method and rule: "queue.declare, rule passive"
  // Short; alternatives separated by '|'; an alternative ending in '*' is a prefix.
  std::string expected;
  std::function<std::string(class context&)> run;  // returns the observation
  std::vector<known_deviation> deviations;
  std::string capability;  // a server capability it needs (server-properties "capabilities")
  bool extension = false;  // a RabbitMQ extension, not part of 0-9-1 itself
};

// What the runner learnt about the broker before the scenarios.
struct broker_info {
  std::string product;
  std::string version;
  field_table capabilities;
  bool has_capability(std::string_view name) const;
};

struct run_config {
  connection_params params;
  milliseconds reply_timeout{2000};
  milliseconds scenario_budget{20000};
  std::string run_id;                // part of every name a scenario creates
  milliseconds recover_wait{30000};  // how long to wait for a broker that stopped answering
  // Run (by the shell) when the broker stops answering, to start it again;
  // empty: only wait for it to come back.
  std::string restart_command;
};

class context {
 public:
  context(const run_config& cfg, const broker_info& broker, std::size_t index);
  ~context();
  context(const context&) = delete;
  context& operator=(const context&) = delete;

  // A new session (connected, logged in, channel 1 open unless told
  // otherwise), closed when the scenario ends.
  raw_session& open(const session_options& o = {});
  // A name no other scenario or run uses: "wc.<run>.<index>.<tag>".
  std::string name(std::string_view tag) const;
  void cleanup_queue(std::string name) { queues_.push_back(std::move(name)); }
  void cleanup_exchange(std::string name) { exchanges_.push_back(std::move(name)); }

  const run_config& config() const noexcept { return cfg_; }
  const broker_info& broker() const noexcept { return broker_; }
  clock::time_point deadline() const noexcept { return deadline_; }

  // Closes the sessions, then deletes what the scenario declared on a
  // session of its own; bounded in time, never throws.
  void finish();

 private:
  const run_config& cfg_;
  const broker_info& broker_;
  std::size_t index_;
  clock::time_point deadline_;
  std::vector<std::unique_ptr<raw_session>> sessions_;
  std::vector<std::string> queues_;
  std::vector<std::string> exchanges_;
  bool finished_ = false;
};

// True when `observed` is one of the '|'-separated alternatives of `expected`
// (equal to it, or starting with it when it ends in '*').
bool matches_expected(std::string_view expected, std::string_view observed);

// The whole catalogue, in a stable order.
std::vector<scenario> catalogue();

// Each part of it.
void add_handshake(std::vector<scenario>& out);
void add_frames(std::vector<scenario>& out);
void add_channel_exchange(std::vector<scenario>& out);
void add_queue(std::vector<scenario>& out);
void add_basic(std::vector<scenario>& out);
void add_tx_confirm(std::vector<scenario>& out);
void add_routing(std::vector<scenario>& out);
void add_extensions(std::vector<scenario>& out);

}  // namespace warren::conformance
