// The local 3-node cluster of scripts/cluster: its endpoints, its nodes, and
// whether it is up. The tests run only when a node answers, or fail when
// WARREN_CLUSTER_REQUIRED is set (scripts/test sets it after starting the
// cluster), so a plain `meson test` without a cluster skips them.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "../integration/harness.hpp"

namespace warren::test::cluster {

// The cluster's AMQP ports on 127.0.0.1, node N (rabbit-N@localhost) on 5680 + N.
inline constexpr std::uint16_t first_port = 5681;
inline constexpr int node_count = 3;

inline std::string uri_of(int node) {
  return "amqp://guest:guest@127.0.0.1:" + std::to_string(first_port + node - 1) +
         "/?connection_timeout=3000";
}

// Every node, starting with node `first`.
inline std::vector<std::string> uris(int first = 1) {
  std::vector<std::string> out;
  for (int i = 0; i < node_count; ++i) out.push_back(uri_of((first - 1 + i) % node_count + 1));
  return out;
}

inline std::string node_name(int node) { return "rabbit-" + std::to_string(node) + "@localhost"; }

// The node an endpoint URI (connection::endpoint(), password hidden) names; 0 if none.
inline int node_of(const std::string& endpoint) {
  for (int n = 1; n <= node_count; ++n)
    if (endpoint.find(":" + std::to_string(first_port + n - 1) + "/") != std::string::npos)
      return n;
  return 0;
}

inline bool port_answers(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// Whether the cluster tests run: a node answers, or the run requires the cluster.
inline bool wanted() {
  const char* required = std::getenv("WARREN_CLUSTER_REQUIRED");
  if (required && *required && std::string(required) != "0") return true;
  for (int n = 1; n <= node_count; ++n)
    if (port_answers(static_cast<std::uint16_t>(first_port + n - 1))) return true;
  return false;
}

// The OS pid of the Erlang VM of the node called `name` ("rabbit-1@localhost"),
// from the node itself; 0 if it does not answer.
inline long os_pid(const std::string& name) {
  auto r = rabbitmqctl("-n " + name + " eval 'os:getpid().'");
  std::string digits;
  for (char c : r.output)
    if (c >= '0' && c <= '9') digits += c;
  return r.status == 0 && !digits.empty() ? std::stol(digits) : 0;
}

// The same for node N of the cluster.
inline long os_pid(int node) { return os_pid(node_name(node)); }

inline bool kill_hard(long pid) {
  if (::kill(static_cast<pid_t>(pid), SIGKILL) == 0) return true;
  if (errno != EPERM) return false;
  return std::system(("sudo -n kill -9 " + std::to_string(pid)).c_str()) == 0;
}

// scripts/cluster ARGS, its output folded into the test's; returns its exit status.
inline int script(const std::string& args) {
  const int st =
      std::system((std::string(WARREN_SOURCE_ROOT) + "/scripts/cluster " + args).c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

}  // namespace warren::test::cluster
