// Runs scenarios: a probe of the broker first, then every scenario on a pool
// of worker threads, each bounded in time and cleaned up after, whatever it
// did. One scenario's failure, hang or dead connection never reaches another.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "tools/conformance/scenario.hpp"

namespace warren::conformance {

struct result {
  std::string id;
  std::string checks;
  std::string expected;
  std::string observed;
  std::string reason;  // deviation: why; unsupported: what is missing
  verdict outcome = verdict::fail;
  bool extension = false;
  long long millis = 0;
};

struct run_report {
  broker_info broker;
  std::string uri;  // password redacted
  std::vector<result> results;
  double seconds = 0;
  std::size_t count(verdict v) const;
};

// Connects once to learn the broker's product, version and capabilities.
// Throws step_failed when it cannot log in.
broker_info probe_broker(const run_config& cfg);

// The verdict for one observation of scenario `s`.
result judge(const scenario& s, std::string observed);

result run_one(const scenario& s, const run_config& cfg, const broker_info& broker,
               std::size_t index);

// Whether the broker still works: a login, a channel and a queue.declare,
// each answered within the reply timeout.
bool broker_alive(const run_config& cfg);

// Runs `list` on `jobs` threads; results come back in catalogue order.
// `done` (when set) is called, under a lock, as each one finishes.
//
// A broker that dies or hangs during the run must not make the verdicts
// depend on which scenarios happened to be running then. After each scenario
// the runner checks that the broker still works; when it does not, it runs
// cfg.restart_command (if any) and waits up to cfg.recover_wait for the
// broker to work again. Every scenario that overlapped the outage is run
// again afterwards, one at a time, so the one that breaks the broker is
// named: its observation gets "; the broker stopped answering" and it fails.
std::vector<result> run_all(const std::vector<const scenario*>& list, const run_config& cfg,
                            const broker_info& broker, unsigned jobs,
                            const std::function<void(const result&)>& done = {});

// Shell-style match of a scenario id: '*' any run of characters, '?' one.
bool glob_match(std::string_view pattern, std::string_view text) noexcept;

}  // namespace warren::conformance
