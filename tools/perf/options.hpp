// warren-perf's command line: RabbitMQ PerfTest's flags, same letters, same
// meaning, plus a few of warren-perf's own (long options only).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace warren::perf {

inline constexpr std::string_view default_uri = "amqp://guest:guest@127.0.0.1:5672/";

struct options {
  // -h (repeatable) and -H (comma-separated), in the order given; every
  // connection tries them in order until one answers.
  std::vector<std::string> uris = {std::string(default_uri)};
  int producers = 1;                     // -x
  int consumers = 1;                     // -y
  std::size_t size = 12;                 // -s, at least 12
  bool auto_ack = false;                 // -a
  std::uint64_t multi_ack_every = 0;     // -A, 0 = ack each message
  std::uint16_t prefetch = 0;            // -q, 0 = no basic.qos
  std::int64_t confirm = -1;             // -c, < 1 = no confirms
  double time_limit = 0;                 // -z seconds, 0 = none
  std::uint64_t producer_count = 0;      // -C, 0 = unbounded
  std::uint64_t consumer_count = 0;      // -D, 0 = unbounded
  std::string queue;                     // -u, empty = one per consumer
  std::string exchange = "direct";       // -e
  std::string exchange_type = "direct";  // -t
  std::string routing_key;               // -k
  bool persistent = false;               // -f persistent
  bool mandatory = false;                // -f mandatory
  double rate = 0;                       // -r msg/s per producer, 0 = unlimited
  double interval = 1;                   // -i seconds
  bool json = false;                     // --json
  bool auto_delete = false;              // --auto-delete (the -u queue)
  // --taken: once the producers are done, declare the -u queue passively
  // until it holds every message sent, and report that rate too.
  bool taken = false;
  bool prepared = true;  // --generic-publish turns the prepared publisher off
  // --receive-batch BYTES[:MICROSECONDS]: receive batching on the consumers'
  // connections (connect_options::receive_batch_bytes / _wait).
  std::size_t receive_batch_bytes = 0;
  std::uint32_t receive_batch_wait_us = 1000;
  // --id ID: named in every connection's name ("warren-perf ID producer 0"),
  // so that one run's connections can be told apart on the broker.
  std::string id;
  // --quorum-queue: the -u queue, if declared, is a durable quorum queue.
  bool quorum_queue = false;
  // --recover: connection recovery on for every connection; publishers
  // await each confirm (-c N publishes in flight per producer) and the
  // summary accounts for every message by its body's sequence number.
  bool recover = false;
  // --republish (with --recover): publishes unconfirmed at a loss are
  // published again after recovery instead of ending with an unknown outcome.
  bool republish = false;
};

// With --recover the body also names its producer (bytes 12-15).
inline constexpr std::size_t min_size = 12;
inline constexpr std::size_t min_size_recover = 16;

// Parses argv (without the program name). Returns false and fills `error`
// on a bad command line; sets `help` for -?/--help.
bool parse_options(const std::vector<std::string>& args, options& out, bool& help,
                   std::string& error);

const char* usage_text();

}  // namespace warren::perf
