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

// The number of threads of this process.
inline int thread_count() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/task")) {
    while (dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') ++n;
    ::closedir(d);
  }
  return n;
}

}  // namespace warren::test
