// What the blocking API's tests share: the test broker (see
// tests/integration/harness.hpp for $AMQP_URL and rabbitmqctl), queue counts,
// waiting for a condition, and the threads of this process.
#pragma once

#include <dirent.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "../integration/harness.hpp"
#include "warren/client/blocking.hpp"

namespace warren::test {

inline blocking::connection open_blocking() { return blocking::connect(broker_uri()); }

inline blocking::connection open_blocking(const connect_options& options) {
  return blocking::connect(broker_uri(), options);
}

// Ready messages in `queue`, read with a passive declare.
inline std::uint32_t ready(blocking::channel& ch, const std::string& queue) {
  return ch.queue_declare(queue, {.passive = true}).message_count;
}

// Publishes "<stem>0".."<stem>n-1" through the default exchange, confirmed
// (the channel is put in confirm mode), so a count or get that follows sees them.
inline void fill(blocking::channel& ch, const std::string& queue, int n,
                 const std::string& stem = "m") {
  if (!ch.in_confirm_mode()) ch.confirm_select();
  for (int i = 0; i < n; ++i) {
    auto out = ch.publish("", queue, stem + std::to_string(i));
    if (out.status != publish_status::acked) throw std::runtime_error("publish not acked");
  }
}

// Polls `done` every 10 ms until it holds or `limit` passes; returns done().
inline bool eventually(const std::function<bool()>& done,
                       std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// The number of threads of this process, as /proc/self/task lists them.
// A thread that has been joined can still be listed for a moment: the kernel
// wakes pthread_join() before it takes the thread off the list. So a count
// that must not include joined threads is read with settled_thread_count()
// or waited for with thread_count_becomes().
inline int thread_count() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/task")) {
    while (dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') ++n;
    ::closedir(d);
  }
  return n;
}

// Whether thread_count() reaches `n` within `limit`.
inline bool thread_count_becomes(
    int n, std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
  return eventually([n] { return thread_count() == n; }, limit);
}

// thread_count() once it has held still for 50 ms (at most 5 s of waiting):
// the count to compare with later, without threads joined just before.
inline int settled_thread_count() {
  int last = thread_count();
  for (int still = 0, polls = 0; still < 5 && polls < 500; ++polls) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    const int now = thread_count();
    still = now == last ? still + 1 : 0;
    last = now;
  }
  return last;
}

}  // namespace warren::test
