#include "tools/warren/commands.hpp"

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <limits>
#include <string_view>

#include "tools/redact.hpp"
#include "tools/warren/args.hpp"
#include "tools/warren/failure.hpp"
#include "tools/warren/printable.hpp"
#include "tools/warren/typed.hpp"
#include "warren/client/warren.hpp"

namespace warren::cli {

namespace {

constexpr std::string_view default_uri = "amqp://guest:guest@127.0.0.1:5672/";
constexpr std::uint64_t unlimited = std::numeric_limits<std::uint64_t>::max();

void to_stderr(std::string_view line) {
  const std::string safe = tools::redact_passwords(line);
  std::fwrite(safe.data(), 1, safe.size(), stderr);
}

void note(std::string_view command, std::string_view text) { to_stderr(diagnostic(command, text)); }

// A connection opened on first use, closed when the command is done.
struct session {
  std::vector<std::string> uris;  // tried in order
  std::string name;               // the connection's name, shown by the broker
  std::string_view command;
  connection conn;

  asio::awaitable<channel> open_channel() {
    connect_options options;
    options.connection_name = name;
    conn = co_await connect(uris, options);
    if (uris.size() > 1) note_fallback();
    channel ch = co_await conn.open_channel();
    co_return ch;
  }

  // With several URIs, a connection that is not to the first one is worth a
  // word on stderr: the brokers before it did not answer.
  void note_fallback() const {
    const std::string reached = conn.endpoint();
    for (std::size_t i = 0; i < uris.size(); ++i) {
      connection_params p;
      if (parse_uri(uris[i], p)) continue;
      if (to_uri(p, true) != reached) continue;
      if (i != 0)
        note(command, "connected to " + reached + " (URI " + std::to_string(i + 1) + " of " +
                          std::to_string(uris.size()) + "; the ones before it failed)");
      return;
    }
  }
};

using command_fn = asio::awaitable<int> (*)(const parsed_args&, session&);

struct command {
  command_spec spec;
  command_fn run;
};

void out(std::string_view s) {
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fflush(stdout);
}

// Appended piece by piece: g++ 12 at -O3 reports a false -Wrestrict for
// "'" + std::string(s) (GCC PR 105329).
std::string quote(std::string_view s) {
  std::string q;
  q.reserve(s.size() + 2);
  q += '\'';
  q += s;
  q += '\'';
  return q;
}

// --arguments-json (merged, in order) then --argument entries.
struct table_option {
  field_table table;
  bool present = false;
  const field_table* get() const { return present ? &table : nullptr; }
};

table_option typed_table_options(const parsed_args& a, std::string_view json_option,
                                 std::string_view entry_option) {
  table_option t;
  for (const auto& text : a.values(json_option)) {
    field_table part = parse_typed_table(text, "--" + std::string(json_option));
    for (auto& e : part.entries) t.table.set(std::move(e.name), std::move(e.value));
    t.present = true;
  }
  for (const auto& text : a.values(entry_option)) {
    field_entry e;
    try {
      e = parse_typed_assignment(text);
    } catch (const value_error& err) {
      throw value_error("--" + std::string(entry_option) + " " + err.what());
    }
    t.table.set(std::move(e.name), std::move(e.value));
    t.present = true;
  }
  return t;
}

table_option arguments_of(const parsed_args& a) {
  return typed_table_options(a, "arguments-json", "argument");
}

std::string read_stdin() {
  std::string body;
  char buf[65536];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0) body.append(buf, n);
  if (std::ferror(stdin)) throw std::runtime_error("cannot read the message body from stdin");
  return body;
}

// How get and consume print a message: its body escaped (the default), its
// body as it came (--raw, for piping), or JSON (--json).
enum class message_format { text, raw, json };

message_format message_format_of(const parsed_args& a) {
  a.exclusive({"json", "raw"});
  if (a.has("json")) return message_format::json;
  return a.has("raw") ? message_format::raw : message_format::text;
}

void print_message(const message& m, message_format format) {
  std::string line;
  switch (format) {
    case message_format::text: line = printable(m.body); break;
    case message_format::raw: line = m.body; break;
    case message_format::json: line = to_json(message_json(m)); break;
  }
  line.push_back('\n');
  out(line);
}

// publish -------------------------------------------------------------------

asio::awaitable<int> run_publish(const parsed_args& a, session& s) {
  const std::string exchange = a.value_or("exchange", "");
  const std::string routing_key = a.value_or("routing-key", "");
  const std::uint64_t count = a.number("count", 1, 1, unlimited);
  basic_properties props;
  for (const auto& p : a.values("property")) {
    try {
      set_property(props, p);
    } catch (const value_error& err) {
      throw value_error(std::string("--property ") + err.what());
    }
  }
  table_option headers = typed_table_options(a, "headers-json", "header");
  if (headers.present) props.headers = std::move(headers.table);
  const std::string body = a.has("body") ? *a.value("body") : read_stdin();
  publish_flags flags;
  flags.mandatory = a.has("mandatory");
  // Returns are only certain to be seen with confirms: the ack of a publish
  // follows its basic.return.
  const bool confirms = a.has("confirm") || flags.mandatory;

  channel ch = co_await s.open_channel();
  if (!confirms) {
    for (std::uint64_t k = 0; k < count; ++k)
      co_await ch.publish(exchange, routing_key, body, props, flags);
    co_await ch.close();
    co_return exit_ok;
  }

  co_await ch.confirm_select();
  std::uint64_t nacked = 0, returned = 0;
  // The client stops reading the socket once 1024 returns wait unread; batches
  // of 256, each drained after its confirms, stay well below that.
  constexpr std::uint64_t batch = 256;
  for (std::uint64_t sent = 0; sent < count;) {
    const std::uint64_t n = std::min(batch, count - sent);
    for (std::uint64_t k = 0; k < n; ++k)
      co_await ch.publish_pipelined(exchange, routing_key, body, props, flags);
    sent += n;
    const confirm_summary summary = co_await ch.wait_for_confirms();
    for (std::uint64_t k = 0; k < summary.returned; ++k) {
      const returned_message r = co_await ch.next_return();
      note("publish", "message returned: " + std::to_string(r.reply_code) + " " + r.reply_text +
                          " (exchange " + quote(r.exchange) + ", routing key " +
                          quote(r.routing_key) + ")");
    }
    returned += summary.returned;
    nacked += summary.nacked;
  }
  co_await ch.close();
  if (nacked != 0)
    note("publish", std::to_string(nacked) + " of " + std::to_string(count) +
                        " message(s) nacked by the broker");
  if (returned != 0 && count > 1)
    note("publish", std::to_string(returned) + " of " + std::to_string(count) +
                        " message(s) returned as unroutable");
  co_return nacked != 0 || returned != 0 ? exit_rejected : exit_ok;
}

// get / consume -------------------------------------------------------------

asio::awaitable<int> run_get(const parsed_args& a, session& s) {
  const std::string queue = a.required("queue");
  a.exclusive({"ack", "no-ack"});
  const std::uint64_t count = a.number("count", 1, 1, unlimited);
  const bool ack = a.has("ack"), no_ack = a.has("no-ack");
  const message_format format = message_format_of(a);

  channel ch = co_await s.open_channel();
  std::uint64_t fetched = 0, last_tag = 0;
  while (fetched < count) {
    std::optional<message> m = co_await ch.get(queue, no_ack);
    if (!m) break;
    ++fetched;
    print_message(*m, format);
    if (ack)
      ch.ack(m->delivery_tag);
    else if (!no_ack)
      last_tag = m->delivery_tag;
  }
  // Held until now so that each basic.get sees the next message.
  if (last_tag != 0) ch.nack(last_tag, true, true);
  co_await ch.close();
  if (fetched == 0) note("get", "no message: queue " + quote(queue) + " is empty");
  co_return exit_ok;
}

// The consume loop never throws: asio's || would then wait for the other
// branch (the signal) instead of ending.
asio::awaitable<std::exception_ptr> consume_loop(channel& ch, consumer& c, std::uint64_t count,
                                                 bool no_ack, message_format format) {
  try {
    for (std::uint64_t n = 0; count == 0 || n < count; ++n) {
      std::optional<message> m = co_await c.next();
      if (!m) break;
      print_message(*m, format);
      if (!no_ack) ch.ack(m->delivery_tag);
    }
  } catch (...) {
    co_return std::current_exception();
  }
  co_return nullptr;
}

asio::awaitable<int> wait_for_signal(asio::signal_set& signals) {
  const int signo = co_await signals.async_wait(asio::use_awaitable);
  co_return signo;
}

asio::awaitable<int> run_consume(const parsed_args& a, session& s) {
  using namespace asio::experimental::awaitable_operators;
  const std::string queue = a.required("queue");
  const std::uint64_t count = a.number("count", 0, 0, unlimited);
  const std::string tag = a.value_or("consumer-tag", "");
  const table_option arguments = arguments_of(a);
  consume_options o;
  o.consumer_tag = tag;
  o.no_ack = a.has("no-ack");
  o.no_local = a.has("no-local");
  o.exclusive = a.has("exclusive");
  o.prefetch = static_cast<std::uint16_t>(a.number("prefetch", 0, 0, 65535));
  o.arguments = arguments.get();
  const message_format format = message_format_of(a);

  channel ch = co_await s.open_channel();
  consumer c = co_await ch.consume(queue, o);
  asio::signal_set signals(co_await asio::this_coro::executor, SIGINT, SIGTERM);
  auto loop = consume_loop(ch, c, count, o.no_ack, format);
  auto interrupted = wait_for_signal(signals);
  auto race = std::move(loop) || std::move(interrupted);
  auto result = co_await std::move(race);
  if (result.index() == 0) {
    if (std::exception_ptr e = std::get<0>(result)) std::rethrow_exception(e);
    if (error_info why = c.end_reason()) {
      note("consume", why.describe());
      co_await ch.close();
      co_return exit_error;
    }
  }
  co_await ch.close();
  co_return exit_ok;
}

// exchanges -----------------------------------------------------------------

asio::awaitable<int> run_declare_exchange(const parsed_args& a, session& s) {
  const std::string name = a.required("exchange");
  const std::string type = a.value_or("type", "direct");
  const table_option arguments = arguments_of(a);
  exchange_declare_options o;
  o.type = type;
  o.passive = a.has("passive");
  o.durable = a.has("durable");
  o.auto_delete = a.has("auto-delete");
  o.internal = a.has("internal");
  o.no_wait = a.has("no-wait");
  o.arguments = arguments.get();
  channel ch = co_await s.open_channel();
  co_await ch.exchange_declare(name, o);
  co_await ch.close();
  co_return exit_ok;
}

asio::awaitable<int> run_delete_exchange(const parsed_args& a, session& s) {
  const std::string name = a.required("exchange");
  exchange_delete_options o;
  o.if_unused = a.has("if-unused");
  o.no_wait = a.has("no-wait");
  channel ch = co_await s.open_channel();
  co_await ch.exchange_delete(name, o);
  co_await ch.close();
  co_return exit_ok;
}

asio::awaitable<int> run_exchange_binding(const parsed_args& a, session& s, bool bind) {
  const std::string destination = a.required("destination");
  const std::string source = a.required("source");
  const std::string routing_key = a.value_or("routing-key", "");
  const table_option arguments = arguments_of(a);
  bind_options o;
  o.arguments = arguments.get();
  o.no_wait = a.has("no-wait");
  channel ch = co_await s.open_channel();
  if (bind)
    co_await ch.exchange_bind(destination, source, routing_key, o);
  else
    co_await ch.exchange_unbind(destination, source, routing_key, o);
  co_await ch.close();
  co_return exit_ok;
}

asio::awaitable<int> run_bind_exchange(const parsed_args& a, session& s) {
  return run_exchange_binding(a, s, true);
}
asio::awaitable<int> run_unbind_exchange(const parsed_args& a, session& s) {
  return run_exchange_binding(a, s, false);
}

// queues --------------------------------------------------------------------

asio::awaitable<int> run_declare_queue(const parsed_args& a, session& s) {
  const std::string name = a.value_or("queue", "");
  if (name.empty() && a.has("no-wait"))
    throw usage_error("--no-wait needs a queue name: the name the broker chose would be lost");
  const table_option arguments = arguments_of(a);
  queue_declare_options o;
  o.passive = a.has("passive");
  o.durable = a.has("durable");
  o.exclusive = a.has("exclusive");
  o.auto_delete = a.has("auto-delete");
  o.no_wait = a.has("no-wait");
  o.arguments = arguments.get();
  const bool json = a.has("json");
  channel ch = co_await s.open_channel();
  const queue_declare_result r = co_await ch.queue_declare(name, o);
  co_await ch.close();
  if (json) {
    json_object obj;
    obj.push_back({"queue", json_value(r.queue)});
    obj.push_back({"message_count", json_value(json_uint(r.message_count))});
    obj.push_back({"consumer_count", json_value(json_uint(r.consumer_count))});
    out(to_json(json_value(std::move(obj))) + "\n");
  } else {
    out(printable(r.queue) + "\n");
  }
  co_return exit_ok;
}

asio::awaitable<int> run_delete_queue(const parsed_args& a, session& s) {
  const std::string name = a.required("queue");
  queue_delete_options o;
  o.if_unused = a.has("if-unused");
  o.if_empty = a.has("if-empty");
  o.no_wait = a.has("no-wait");
  channel ch = co_await s.open_channel();
  const std::uint32_t n = co_await ch.queue_delete(name, o);
  co_await ch.close();
  if (!o.no_wait) out(std::to_string(n) + "\n");
  co_return exit_ok;
}

asio::awaitable<int> run_purge_queue(const parsed_args& a, session& s) {
  const std::string name = a.required("queue");
  channel ch = co_await s.open_channel();
  const std::uint32_t n = co_await ch.queue_purge(name);
  co_await ch.close();
  out(std::to_string(n) + "\n");
  co_return exit_ok;
}

asio::awaitable<int> run_queue_binding(const parsed_args& a, session& s, bool bind) {
  const std::string queue = a.required("queue");
  const std::string exchange = a.required("exchange");
  const std::string routing_key = a.value_or("routing-key", "");
  const table_option arguments = arguments_of(a);
  channel ch = co_await s.open_channel();
  if (bind) {
    bind_options o;
    o.arguments = arguments.get();
    o.no_wait = a.has("no-wait");
    co_await ch.queue_bind(queue, exchange, routing_key, o);
  } else {
    co_await ch.queue_unbind(queue, exchange, routing_key, arguments.get());
  }
  co_await ch.close();
  co_return exit_ok;
}

asio::awaitable<int> run_bind_queue(const parsed_args& a, session& s) {
  return run_queue_binding(a, s, true);
}
asio::awaitable<int> run_unbind_queue(const parsed_args& a, session& s) {
  return run_queue_binding(a, s, false);
}

// the command table ---------------------------------------------------------

constexpr std::string_view typed_values_help =
    "Field values (--header, --argument) are written NAME=TYPE:VALUE, TYPE one of\n"
    "  bool (true|false), int8, uint8, int16, uint16, int32, uint32, int64 (decimal\n"
    "  integers), float, double (a JSON number, NaN, Infinity, -Infinity), decimal\n"
    "  (digits with an optional point: 12.50 is scale 2, value 1250), string (the\n"
    "  rest of the argument, verbatim), bytes (base64), timestamp (seconds since the\n"
    "  epoch), table (a JSON object of typed values), array (a JSON list of typed\n"
    "  values), void (no VALUE: NAME=void).\n"
    "Typed JSON (--headers-json, --arguments-json, --json output) writes each value\n"
    "  as {\"type\": TYPE, \"value\": V}: booleans and numbers as JSON literals, decimal as\n"
    "  {\"scale\": S, \"value\": N}, string as text, bytes as base64, timestamp as\n"
    "  seconds, table as an object and array as a list of typed values, void as null.\n"
    "  Floats print as the shortest decimal that reads back exactly; a NaN other than\n"
    "  the default one as \"NaN:0x<bits>\". Text that is not valid UTF-8 carries each\n"
    "  stray byte as the escape \\udcXX. What get --json prints, --headers-json takes\n"
    "  back, and the same bytes go on the wire.";

constexpr option_spec argument_option{"argument", "NAME=TYPE:VALUE",
                                      "an entry of the arguments table (x-max-priority=uint8:10)",
                                      true};
constexpr option_spec arguments_json_option{
    "arguments-json", "JSON",
    "arguments table entries as typed JSON ({\"x-max-length\":\n"
    "{\"type\":\"int32\",\"value\":100}}); --argument entries follow",
    true};
constexpr option_spec raw_option{"raw", "",
                                 "print each body as it came, byte for byte, then a\n"
                                 "newline: for piping, not for a terminal"};
constexpr option_spec no_wait_option{"no-wait", "",
                                     "do not wait for the broker's reply (errors still close\n"
                                     "the channel, but are not reported)"};

const std::vector<command>& commands() {
  static const std::vector<command> table = {
      {{"publish",
        "publish messages",
        "Publishes a message (or --count copies of it). The body is --body, else all of\n"
        "standard input.",
        {},
        {
            {"exchange", "NAME", "the exchange (default: the default exchange \"\")"},
            {"routing-key", "KEY", "the routing key (default: \"\")"},
            {"body", "TEXT", "the message body (default: read standard input)"},
            {"count", "N", "publish the message N times (default 1)"},
            {"property", "NAME=VALUE",
             "a basic property: content_type, content_encoding,\ndelivery_mode (1, 2, "
             "transient, persistent), priority,\ncorrelation_id, reply_to, expiration, "
             "message_id,\ntimestamp (seconds), type, user_id, app_id, cluster_id",
             true},
            {"header", "NAME=TYPE:VALUE", "an entry of the headers table", true},
            {"headers-json", "JSON",
             "headers table entries as typed JSON; --header entries\nfollow", true},
            {"mandatory", "",
             "ask the broker to return unroutable messages; each\nreturn is reported on "
             "stderr with its reply code and\ntext, and the exit status is 3 (waits for "
             "each\nmessage's confirm to know)"},
            {"confirm", "",
             "publisher confirms: wait until the broker confirms\nevery message; nacks are "
             "reported and exit with status 3"},
        },
        typed_values_help},
       run_publish},
      {{"get",
        "fetch messages (basic.get) and print them",
        "Fetches up to --count messages with basic.get and prints each one. Without\n"
        "--ack or --no-ack the messages stay in the queue: they are held unacked while\n"
        "reading (so each get sees the next one), then nacked with requeue, and come\n"
        "back marked redelivered.\n\n"
        "Each body is printed on a line of its own with control characters, backslashes\n"
        "and bytes that are not UTF-8 escaped (\\n, \\t, \\\\, \\x1b...), so that no body\n"
        "can pass for other output or drive the terminal; --raw prints it as it came.",
        {"queue"},
        {
            {"queue", "NAME", "the queue (required)"},
            {"count", "N",
             "fetch up to N messages (default 1); stops early when\nthe "
             "queue is empty"},
            {"ack", "", "acknowledge each message: it leaves the queue"},
            {"no-ack", "",
             "fetch in no-ack mode: the broker forgets each message\nas it "
             "sends it"},
            {"json", "",
             "print one JSON object per message: exchange,\nrouting_key, redelivered, "
             "delivery_tag, properties\n(those present; headers typed) and body, or\n"
             "body_base64 when the body is not valid UTF-8"},
            raw_option,
        },
        typed_values_help},
       run_get},
      {{"consume",
        "consume messages from a queue and print them",
        "Consumes from a queue and prints each message as it arrives, acknowledging it\n"
        "after printing, until --count messages have arrived, the broker cancels the\n"
        "consumer, or SIGINT/SIGTERM. Bodies are printed escaped, as get prints them\n"
        "(see get --help).",
        {"queue"},
        {
            {"queue", "NAME", "the queue (required)"},
            {"count", "N", "stop after N messages (default 0: no limit)"},
            {"prefetch", "N",
             "basic.qos prefetch count for this consumer (default 0:\n"
             "unlimited)"},
            {"no-ack", "", "consume in no-ack mode (nothing is acknowledged)"},
            {"exclusive", "", "ask to be the queue's only consumer"},
            {"no-local", "", "set basic.consume's no-local flag"},
            {"consumer-tag", "TAG", "the consumer tag (default: the broker picks one)"},
            argument_option,
            arguments_json_option,
            {"json", "", "print one JSON object per message (see get --help)"},
            raw_option,
        },
        typed_values_help},
       run_consume},
      {{"declare-exchange",
        "declare an exchange",
        "Declares an exchange (exchange.declare).",
        {"exchange"},
        {
            {"exchange", "NAME", "the exchange (required)"},
            {"type", "TYPE", "direct (default), fanout, topic, headers, or a plugin's"},
            {"passive", "", "only check that the exchange exists"},
            {"durable", "", "survive a broker restart"},
            {"auto-delete", "", "delete it when its last binding goes"},
            {"internal", "", "clients cannot publish to it directly"},
            no_wait_option,
            argument_option,
            arguments_json_option,
        },
        typed_values_help},
       run_declare_exchange},
      {{"delete-exchange",
        "delete an exchange",
        "Deletes an exchange (exchange.delete).",
        {"exchange"},
        {
            {"exchange", "NAME", "the exchange (required)"},
            {"if-unused", "", "only if it has no bindings"},
            no_wait_option,
        },
        {}},
       run_delete_exchange},
      {{"bind-exchange",
        "bind an exchange to an exchange",
        "Binds an exchange to an exchange (exchange.bind): messages published to\n"
        "SOURCE are routed on to DESTINATION.",
        {"destination", "source", "routing-key"},
        {
            {"destination", "NAME", "the exchange that receives (required)"},
            {"source", "NAME", "the exchange published to (required)"},
            {"routing-key", "KEY", "the binding key (default: \"\")"},
            no_wait_option,
            argument_option,
            arguments_json_option,
        },
        typed_values_help},
       run_bind_exchange},
      {{"unbind-exchange",
        "remove an exchange-to-exchange binding",
        "Removes an exchange-to-exchange binding (exchange.unbind).",
        {"destination", "source", "routing-key"},
        {
            {"destination", "NAME", "the exchange that receives (required)"},
            {"source", "NAME", "the exchange published to (required)"},
            {"routing-key", "KEY", "the binding key (default: \"\")"},
            no_wait_option,
            argument_option,
            arguments_json_option,
        },
        typed_values_help},
       run_unbind_exchange},
      {{"declare-queue",
        "declare a queue",
        "Declares a queue (queue.declare) and prints its name (the broker names it when\n"
        "none is given).",
        {"queue"},
        {
            {"queue", "NAME", "the queue (default: \"\", a name the broker chooses)"},
            {"passive", "", "only check that the queue exists"},
            {"durable", "", "survive a broker restart"},
            {"exclusive", "", "owned by this connection (so deleted as soon as the\ncommand ends)"},
            {"auto-delete", "", "delete it when its last consumer goes"},
            no_wait_option,
            argument_option,
            arguments_json_option,
            {"json", "", "print {\"queue\", \"message_count\", \"consumer_count\"} as JSON"},
        },
        typed_values_help},
       run_declare_queue},
      {{"delete-queue",
        "delete a queue",
        "Deletes a queue (queue.delete) and prints how many messages went with it.",
        {"queue"},
        {
            {"queue", "NAME", "the queue (required)"},
            {"if-unused", "", "only if it has no consumers"},
            {"if-empty", "", "only if it holds no messages"},
            no_wait_option,
        },
        {}},
       run_delete_queue},
      {{"bind-queue",
        "bind a queue to an exchange",
        "Binds a queue to an exchange (queue.bind).",
        {"queue", "exchange", "routing-key"},
        {
            {"queue", "NAME", "the queue (required)"},
            {"exchange", "NAME", "the exchange (required)"},
            {"routing-key", "KEY", "the binding key (default: \"\")"},
            no_wait_option,
            argument_option,
            arguments_json_option,
        },
        typed_values_help},
       run_bind_queue},
      {{"unbind-queue",
        "remove a queue binding",
        "Removes a queue binding (queue.unbind; the protocol has no no-wait for it).",
        {"queue", "exchange", "routing-key"},
        {
            {"queue", "NAME", "the queue (required)"},
            {"exchange", "NAME", "the exchange (required)"},
            {"routing-key", "KEY", "the binding key (default: \"\")"},
            argument_option,
            arguments_json_option,
        },
        typed_values_help},
       run_unbind_queue},
      {{"purge-queue",
        "remove every message from a queue",
        "Removes every message from a queue (queue.purge) and prints how many.",
        {"queue"},
        {
            {"queue", "NAME", "the queue (required)"},
        },
        {}},
       run_purge_queue},
  };
  return table;
}

std::string top_help() {
  std::string s =
      "usage: warren [--uri URI] COMMAND [OPTIONS] [ARGUMENTS]\n"
      "       warren COMMAND --help\n\n"
      "A command-line AMQP 0-9-1 client.\n\nCommands:\n";
  for (const auto& c : commands()) {
    std::string line = "  " + std::string(c.spec.name);
    line.resize(20, ' ');
    line += c.spec.brief;
    line += '\n';
    s += line;
  }
  s += "\nOptions (also accepted after COMMAND):\n"
       "  --uri URI           the broker (default: $AMQP_URL, else\n"
       "                      amqp://guest:guest@127.0.0.1:5672/); repeat it to give\n"
       "                      fallbacks, tried in order until one answers\n"
       "  --help              show this help (COMMAND --help: that command's)\n"
       "  --version           print warren's version\n\n"
       "URIs: amqp://USER:PASSWORD@HOST:PORT/VHOST, or amqps://... for TLS (port 5671\n"
       "by default; the broker's certificate is verified against the system's trust\n"
       "store and must name HOST). RabbitMQ's query parameters: heartbeat, frame_max,\n"
       "channel_max, connection_timeout (ms), auth_mechanism=external, and for amqps\n"
       "cacertfile, certfile, keyfile (PEM files), verify=verify_none,\n"
       "server_name_indication. Example:\n"
       "  amqps://guest:guest@localhost:5671/?cacertfile=/etc/rabbitmq/ca.pem\n"
       "When none opens, the error names each endpoint and why it failed. No message\n"
       "of warren shows a password from a URI: it is written ***.\n\n"
       "Exit status: 0 success; 1 the broker or the connection reported an error (its\n"
       "reply code and text go to stderr: \"404 NOT_FOUND - no queue 'x' in vhost '/'\n"
       "(queue.declare)\"); 2 a usage error; 3 publish: a message was returned\n"
       "(--mandatory) or nacked (--confirm).\n";
  return s;
}

int run_one(const command& c, const parsed_args& a, std::vector<std::string> uris) {
  asio::io_context io;
  int status = exit_error;
  const std::string_view name = c.spec.name;
  session s{std::move(uris), "warren " + std::string(name), name, {}};
  auto work = [](const command* c, const parsed_args* a, session* s) -> asio::awaitable<int> {
    const int r = co_await c->run(*a, *s);
    if (s->conn) co_await s->conn.close();
    co_return r;
  };
  asio::co_spawn(io, work(&c, &a, &s), [&](std::exception_ptr e, int result) {
    // Dropping the last handle closes a connection an error left open.
    s.conn = connection{};
    if (!e) {
      status = result;
      return;
    }
    const failure f = failure_of(name, e);
    to_stderr(f.line);
    status = f.status;
  });
  io.run();
  return status;
}

}  // namespace

int run_command_line(const std::vector<std::string>& args) {
  // --uri before and after the command, in the order given.
  std::vector<std::string> uris;
  std::size_t i = 0;
  // Options before the command: --uri, --help, --version.
  for (; i < args.size() && args[i].starts_with("-"); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      out(top_help());
      return exit_ok;
    }
    if (a == "--version") {
      out("warren " + std::string(version_string) + "\n");
      return exit_ok;
    }
    if (a == "--uri") {
      if (i + 1 == args.size()) {
        to_stderr("warren: --uri needs a value (URI) (see warren --help)\n");
        return exit_usage;
      }
      uris.push_back(args[++i]);
    } else if (a.starts_with("--uri=")) {
      uris.push_back(a.substr(6));
    } else {
      to_stderr("warren: unknown option '" + printable(a) +
                "' before the command (see warren --help)\n");
      return exit_usage;
    }
  }
  if (i == args.size()) {
    std::fputs(top_help().c_str(), stderr);
    return exit_usage;
  }
  const std::string& name = args[i];
  const command* cmd = nullptr;
  for (const auto& c : commands())
    if (c.spec.name == name) cmd = &c;
  if (cmd == nullptr) {
    to_stderr("warren: unknown command '" + printable(name) + "' (see warren --help)\n");
    return exit_usage;
  }
  const std::vector<std::string> rest(args.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                                      args.end());
  parsed_args parsed;
  try {
    parsed = parse_args(cmd->spec, rest);
  } catch (const usage_error& err) {
    note(name, std::string(err.what()) + " (see warren " + name + " --help)");
    return exit_usage;
  }
  if (parsed.help) {
    out(help_text(cmd->spec));
    return exit_ok;
  }
  for (auto& u : parsed.values("uri")) uris.push_back(std::move(u));
  if (uris.empty()) {
    const char* env = std::getenv("AMQP_URL");
    uris.emplace_back(env && *env ? std::string_view(env) : default_uri);
  }
  return run_one(*cmd, parsed, std::move(uris));
}

}  // namespace warren::cli
