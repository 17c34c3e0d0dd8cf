#include "tools/conformance/runner.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>

namespace warren::conformance {

std::size_t run_report::count(verdict v) const {
  return static_cast<std::size_t>(std::count_if(results.begin(), results.end(),
                                                [v](const result& r) { return r.outcome == v; }));
}

broker_info probe_broker(const run_config& cfg) {
  raw_session s(cfg.params, cfg.reply_timeout, clock::now() + cfg.reply_timeout * 3);
  s.open({.open_channel = false});
  broker_info b;
  const field_table& props = s.server_properties();
  auto text = [&](std::string_view key) -> std::string {
    const field_value* v = props.find(key);
    if (v == nullptr) return {};
    if (const auto* str = std::get_if<std::string>(&v->variant())) return *str;
    if (const auto* bytes = std::get_if<byte_array>(&v->variant())) return bytes->bytes;
    return {};
  };
  b.product = text("product");
  b.version = text("version");
  if (const field_value* caps = props.find("capabilities"))
    if (const auto* t = std::get_if<field_table>(&caps->variant())) b.capabilities = *t;
  s.close();
  return b;
}

result judge(const scenario& s, std::string observed) {
  result r;
  r.id = s.id;
  r.checks = s.checks;
  r.expected = s.expected;
  r.extension = s.extension;
  r.observed = std::move(observed);
  if (matches_expected(s.expected, r.observed)) {
    r.outcome = verdict::pass;
    return r;
  }
  for (const auto& d : s.deviations) {
    if (matches_expected(d.observed, r.observed)) {
      r.outcome = verdict::deviation;
      r.reason = d.reason;
      return r;
    }
  }
  r.outcome = verdict::fail;
  return r;
}

result run_one(const scenario& s, const run_config& cfg, const broker_info& broker,
               std::size_t index) {
  const auto start = clock::now();
  result r;
  if (!s.capability.empty() && !broker.has_capability(s.capability)) {
    r = judge(s, "capability " + s.capability + " not advertised");
    r.outcome = verdict::unsupported;
    r.reason = "the broker does not advertise " + s.capability;
  } else {
    context c(cfg, broker, index);
    try {
      r = judge(s, s.run(c));
    } catch (const step_failed& f) {
      r = judge(s, f.observed);
    } catch (const unsupported_feature& u) {
      r = judge(s, "refused: " + u.reason);
      r.outcome = verdict::unsupported;
      r.reason = u.reason;
    } catch (const std::exception& e) {
      r = judge(s, std::string("error: ") + e.what());
      r.outcome = verdict::fail;
    }
    c.finish();
  }
  r.millis = std::chrono::duration_cast<milliseconds>(clock::now() - start).count();
  return r;
}

bool broker_alive(const run_config& cfg) {
  try {
    raw_session s(cfg.params, cfg.reply_timeout, clock::now() + cfg.reply_timeout * 2);
    s.open({});
    queue_declare d;
    d.queue = "wc." + cfg.run_id + ".health";
    d.exclusive = true;
    s.call(1, d);
    s.close();
    return true;
  } catch (const step_failed&) {
    return false;
  }
}

namespace {

// The check after each scenario, on one connection kept open between
// checks (a round trip, not a login, each time); a fresh connection only
// when that one has gone.
class health_monitor {
 public:
  explicit health_monitor(const run_config& cfg) : cfg_(cfg) {}

  bool check() {
    std::lock_guard<std::mutex> lock(m_);
    for (int attempt = 0; attempt < 2; ++attempt) {
      try {
        if (!s_ || !s_->connected()) {
          s_ = std::make_unique<raw_session>(cfg_.params, cfg_.reply_timeout,
                                             clock::now() + cfg_.reply_timeout * 2);
          s_->open({});
        }
        s_->set_deadline(clock::now() + cfg_.reply_timeout);
        queue_declare d;
        d.queue = "wc." + cfg_.run_id + ".health";
        d.exclusive = true;
        s_->call(1, d);
        return true;
      } catch (const step_failed&) {
        s_.reset();
      }
    }
    return false;
  }

  ~health_monitor() {
    if (s_) s_->close();
  }

 private:
  const run_config& cfg_;
  std::mutex m_;
  std::unique_ptr<raw_session> s_;
};

}  // namespace

namespace {

// Polls until the broker answers again or the wait is over.
bool wait_for_broker(const run_config& cfg) {
  if (!cfg.restart_command.empty()) {
    std::fflush(nullptr);
    if (std::system(cfg.restart_command.c_str()) != 0)
      std::fprintf(stderr, "warren-conformance: the restart command failed\n");
  }
  const auto stop = clock::now() + cfg.recover_wait;
  for (;;) {
    if (broker_alive(cfg)) return true;
    if (clock::now() >= stop) return false;
    std::this_thread::sleep_for(milliseconds(200));
  }
}

}  // namespace

std::vector<result> run_all(const std::vector<const scenario*>& list, const run_config& cfg,
                            const broker_info& broker, unsigned jobs,
                            const std::function<void(const result&)>& done) {
  std::vector<result> results(list.size());
  std::vector<bool> tainted(list.size(), false);
  std::atomic<std::size_t> next{0};
  std::mutex m;
  std::condition_variable cv;
  std::size_t epoch = 0;  // outages seen so far
  bool down = false;      // an outage is being waited out
  bool gone = false;      // the broker did not come back
  health_monitor health(cfg);

  auto worker = [&] {
    for (;;) {
      std::size_t started_in = 0;
      {
        std::unique_lock<std::mutex> lock(m);
        cv.wait(lock, [&] { return !down; });
        if (gone) return;
        started_in = epoch;
      }
      const std::size_t i = next.fetch_add(1);
      if (i >= list.size()) return;
      results[i] = run_one(*list[i], cfg, broker, i);
      const bool alive = health.check();
      std::unique_lock<std::mutex> lock(m);
      if (!alive && !down) {
        // The first to notice waits the outage out; the others hold back.
        down = true;
        ++epoch;
        lock.unlock();
        const bool back = wait_for_broker(cfg);
        lock.lock();
        down = false;
        gone = !back;
        cv.notify_all();
      }
      if (!alive || started_in != epoch) tainted[i] = true;
      if (done && !tainted[i]) done(results[i]);
    }
  };
  jobs = std::max(1u, std::min<unsigned>(jobs, static_cast<unsigned>(list.size())));
  std::vector<std::thread> pool;
  for (unsigned j = 0; j < jobs; ++j) pool.emplace_back(worker);
  for (auto& t : pool) t.join();

  // Scenarios that overlapped an outage, one at a time; and the ones never
  // started because the broker did not come back.
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (i < next.load() && !tainted[i]) continue;
    if (gone) {
      results[i] = judge(*list[i], "the broker is down");
      results[i].outcome = verdict::fail;
    } else {
      results[i] = run_one(*list[i], cfg, broker, i);
      if (!health.check()) {
        results[i].observed += "; the broker stopped answering";
        results[i].outcome = verdict::fail;
        results[i].reason.clear();
        gone = !wait_for_broker(cfg);
      }
    }
    if (done) done(results[i]);
  }
  return results;
}

bool glob_match(std::string_view p, std::string_view t) noexcept {
  std::size_t pi = 0, ti = 0, star = std::string_view::npos, mark = 0;
  while (ti < t.size()) {
    if (pi < p.size() && (p[pi] == '?' || p[pi] == t[ti])) {
      ++pi;
      ++ti;
    } else if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = ti;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      ti = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

}  // namespace warren::conformance
