#include "tools/perf/options.hpp"

#include <charconv>
#include <cmath>
#include <map>

namespace warren::perf {

namespace {

template <class T>
bool parse_int(const std::string& s, T& out) {
  const char* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, out);
  return ec == std::errc() && p == end;
}

bool parse_double(const std::string& s, double& out) {
  try {
    std::size_t used = 0;
    out = std::stod(s, &used);
    return used == s.size() && std::isfinite(out) && out >= 0;
  } catch (...) {
    return false;
  }
}

// Long PerfTest names mapped to their short letters.
const std::map<std::string, std::string>& long_names() {
  static const std::map<std::string, std::string> m = {
      {"--uri", "-h"},
      {"--uris", "-H"},
      {"--producers", "-x"},
      {"--consumers", "-y"},
      {"--size", "-s"},
      {"--autoack", "-a"},
      {"--multi-ack-every", "-A"},
      {"--qos", "-q"},
      {"--confirm", "-c"},
      {"--time", "-z"},
      {"--pmessages", "-C"},
      {"--cmessages", "-D"},
      {"--queue", "-u"},
      {"--exchange", "-e"},
      {"--type", "-t"},
      {"--routing-key", "-k"},
      {"--flag", "-f"},
      {"--rate", "-r"},
      {"--interval", "-i"},
  };
  return m;
}

}  // namespace

const char* usage_text() {
  return "usage: warren-perf [options]   (RabbitMQ PerfTest's flags)\n"
         "  -h, --uri URI            broker URI, amqp:// or amqps:// (default\n"
         "                           amqp://guest:guest@127.0.0.1:5672/); repeatable\n"
         "  -H, --uris URI,URI,...   broker URIs, comma-separated; with -h, in the order\n"
         "                           given. Every connection tries them in order until one\n"
         "                           answers. Messages show passwords as ***\n"
         "  -x, --producers N        producers, each on its own connection (default 1)\n"
         "  -y, --consumers N        consumers, each on its own connection (default 1)\n"
         "  -s, --size BYTES         message size, at least 12 (default 12)\n"
         "  -a, --autoack            consume without acknowledgements\n"
         "  -A, --multi-ack-every N  acknowledge every N messages with multiple=true\n"
         "  -q, --qos N              consumer prefetch (basic.qos)\n"
         "  -c, --confirm N          publisher confirms, at most N unconfirmed per producer\n"
         "  -z, --time SECONDS       run time (default: until the counts are done or Ctrl-C)\n"
         "  -C, --pmessages N        messages each producer sends\n"
         "  -D, --cmessages N        messages each consumer receives\n"
         "  -u, --queue NAME         one shared queue (default: one server-named queue per\n"
         "                           consumer, bound to the exchange with the routing key)\n"
         "  -e, --exchange NAME      exchange (default \"direct\"; \"\" = the default exchange)\n"
         "  -t, --type TYPE          exchange type (default direct)\n"
         "  -k, --routing-key KEY    routing key (default: the queue name, else a random one)\n"
         "  -f, --flag FLAG          persistent (delivery mode 2, durable queue) or mandatory\n"
         "  -r, --rate N             messages per second per producer\n"
         "  -i, --interval SECONDS   report interval (default 1)\n"
         "      --json               intervals and summary as JSON lines\n"
         "      --taken              producers done: wait until the -u queue holds every\n"
         "                           message (passive queue.declare) and report that rate\n"
         "      --auto-delete        declare the -u queue auto-delete\n"
         "      --generic-publish    encode every publish in full (no prepared publisher)\n"
         "      --receive-batch BYTES[:US]  consumers' connections wake once BYTES have\n"
         "                           arrived, or US microseconds (default 1000) after the\n"
         "                           last read (connect_options::receive_batch_bytes;\n"
         "                           plain TCP only: amqps connections read as they come)\n"
         "      --id ID              name the run's connections \"warren-perf ID ...\"\n"
         "      --quorum-queue       declare the -u queue as a durable quorum queue\n"
         "      --recover            connection recovery on (connect_options::recovery);\n"
         "                           each producer keeps -c publishes in flight and awaits\n"
         "                           every confirm; the summary accounts for each message\n"
         "                           by sequence number: confirmed, nacked, unknown (lost\n"
         "                           with a connection), missing (confirmed, never\n"
         "                           received) and duplicates. A nacked producer reopens\n"
         "                           its channel (channel::reopen). Body at least 16 bytes\n"
         "      --republish          with --recover: publish again what was unconfirmed at\n"
         "                           a loss (recovery_options::republish_unconfirmed)\n"
         "      --help               this text\n"
         "Body: bytes 0-3 sequence number, 4-11 send time (ns, monotonic clock), with\n"
         "--recover 12-15 the producer's number, then padding.\n"
         "Exit status: 0; 1 when a connection failed for good or (--recover) a confirmed\n"
         "message was never received; 2 for a bad command line or a failed setup.\n";
}

bool parse_options(const std::vector<std::string>& args, options& o, bool& help,
                   std::string& error) {
  help = false;
  // The first -h or -H replaces the default; later ones add to the list.
  bool uri_given = false;
  bool size_given = false;
  const auto add_uri = [&](std::string uri) {
    if (!uri_given) o.uris.clear();
    uri_given = true;
    o.uris.push_back(std::move(uri));
  };
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    if (auto it = long_names().find(a); it != long_names().end()) a = it->second;
    if (a == "--help" || a == "-?") {
      help = true;
      return true;
    }
    if (a == "--json") {
      o.json = true;
      continue;
    }
    if (a == "--taken") {
      o.taken = true;
      continue;
    }
    if (a == "--auto-delete") {
      o.auto_delete = true;
      continue;
    }
    if (a == "--quorum-queue") {
      o.quorum_queue = true;
      continue;
    }
    if (a == "--recover") {
      o.recover = true;
      continue;
    }
    if (a == "--republish") {
      o.republish = true;
      continue;
    }
    if (a == "--id") {
      if (i + 1 >= args.size()) {
        error = "missing value for --id";
        return false;
      }
      o.id = args[++i];
      continue;
    }
    if (a == "--generic-publish") {
      o.prepared = false;
      continue;
    }
    if (a == "--receive-batch") {
      if (i + 1 >= args.size()) {
        error = "missing value for --receive-batch";
        return false;
      }
      const std::string v = args[++i];
      const auto colon = v.find(':');
      o.receive_batch_wait_us = 1000;
      bool ok = parse_int(v.substr(0, colon), o.receive_batch_bytes) &&
                o.receive_batch_bytes <= (std::size_t{4} << 20);
      if (ok && colon != std::string::npos)
        ok = parse_int(v.substr(colon + 1), o.receive_batch_wait_us) &&
             o.receive_batch_wait_us > 0 && o.receive_batch_wait_us <= 1000000;
      if (!ok) {
        error = "bad value '" + v + "' for --receive-batch (BYTES up to 4 MiB, then optionally "
                ":MICROSECONDS from 1 to 1000000)";
        return false;
      }
      continue;
    }
    if (a == "-a") {
      o.auto_ack = true;
      continue;
    }
    if (a.size() != 2 || a[0] != '-') {
      error = "unknown argument '" + args[i] + "'";
      return false;
    }
    if (i + 1 >= args.size()) {
      error = "missing value for " + args[i];
      return false;
    }
    const std::string v = args[++i];
    bool ok = true;
    switch (a[1]) {
      case 'h': add_uri(v); break;
      case 'H':
        for (std::size_t from = 0;;) {
          const std::size_t comma = v.find(',', from);
          std::string one = v.substr(from, comma == std::string::npos ? comma : comma - from);
          if (one.empty()) ok = false;
          add_uri(std::move(one));
          if (comma == std::string::npos) break;
          from = comma + 1;
        }
        break;
      case 'x': ok = parse_int(v, o.producers) && o.producers >= 0; break;
      case 'y': ok = parse_int(v, o.consumers) && o.consumers >= 0; break;
      case 's':
        ok = parse_int(v, o.size);
        size_given = true;
        break;
      case 'A': ok = parse_int(v, o.multi_ack_every); break;
      case 'q': ok = parse_int(v, o.prefetch); break;
      case 'c': ok = parse_int(v, o.confirm); break;
      case 'z': ok = parse_double(v, o.time_limit); break;
      case 'C': ok = parse_int(v, o.producer_count); break;
      case 'D': ok = parse_int(v, o.consumer_count); break;
      case 'u': o.queue = v; break;
      case 'e': o.exchange = v; break;
      case 't': o.exchange_type = v; break;
      case 'k': o.routing_key = v; break;
      case 'f':
        if (v == "persistent")
          o.persistent = true;
        else if (v == "mandatory")
          o.mandatory = true;
        else
          ok = false;
        break;
      case 'r': ok = parse_double(v, o.rate); break;
      case 'i': ok = parse_double(v, o.interval) && o.interval > 0; break;
      default: error = "unknown option '" + args[i - 1] + "'"; return false;
    }
    if (!ok) {
      error = "bad value '" + v + "' for " + args[i - 1];
      return false;
    }
  }
  if (o.size < min_size) {
    error = "-s: the body holds a sequence number and a timestamp, so at least 12 bytes";
    return false;
  }
  if (o.republish && !o.recover) {
    error = "--republish needs --recover";
    return false;
  }
  if (o.quorum_queue && o.queue.empty()) {
    error = "--quorum-queue needs a named queue (-u)";
    return false;
  }
  if (o.recover && o.size < min_size_recover) {
    if (size_given) {
      error = "-s: with --recover the body also names its producer, so at least 16 bytes";
      return false;
    }
    o.size = min_size_recover;
  }
  if (o.taken && o.queue.empty()) {
    error = "--taken needs a named queue (-u)";
    return false;
  }
  if (o.taken && o.consumers > 0) {
    error = "--taken counts the messages in the -u queue, which consumers would take: add -y 0";
    return false;
  }
  return true;
}

}  // namespace warren::perf
