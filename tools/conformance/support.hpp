// Small steps the catalogue is written in: declaring named things that are
// cleaned up after the scenario, publishing, fetching, consuming, and turning
// what the broker did into the short observations the tables show.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tools/conformance/scenario.hpp"

namespace warren::conformance {

// Adds a scenario and returns it, for deviations and flags to be set on it.
scenario& add(std::vector<scenario>& out, std::string id, std::string checks, std::string expected,
              std::function<std::string(context&)> run);

struct queue_options {
  bool durable = false;
  bool exclusive = false;
  bool auto_delete = false;
  const field_table* arguments = nullptr;
  std::uint16_t channel = 1;
};
// Declares a queue named for `tag`, to be deleted after the scenario.
std::string make_queue(context& c, raw_session& s, std::string_view tag,
                       const queue_options& o = {});

struct exchange_options {
  bool durable = false;
  bool auto_delete = false;
  bool internal = false;
  const field_table* arguments = nullptr;
  std::uint16_t channel = 1;
};
std::string make_exchange(context& c, raw_session& s, std::string_view tag, std::string_view type,
                          const exchange_options& o = {});

void bind_queue(raw_session& s, std::string_view queue, std::string_view exchange,
                std::string_view key, const field_table* args = nullptr, std::uint16_t channel = 1);

void publish(raw_session& s, std::string_view exchange, std::string_view key,
             std::string_view body = "m", const basic_properties& props = {},
             bool mandatory = false, std::uint16_t channel = 1);

// basic.get, tried again for up to `wait` while the queue is empty; the
// get-ok event or nothing.
std::optional<event> fetch(raw_session& s, std::string_view queue, bool no_ack = true,
                           milliseconds wait = milliseconds(1000), std::uint16_t channel = 1);

// The message count of a passive queue.declare.
std::uint32_t depth(raw_session& s, std::string_view queue, std::uint16_t channel = 1);

// depth(), asked again for up to `wait` until it is `want`: for effects a
// broker may apply after answering (requeues, expiries); the last count seen.
std::uint32_t settled_depth(raw_session& s, std::string_view queue, std::uint32_t want,
                            milliseconds wait = milliseconds(1000), std::uint16_t channel = 1);

// basic.consume; returns the consumer tag.
std::string consume(raw_session& s, std::string_view queue, std::string_view tag = {},
                    bool no_ack = false, bool exclusive = false, const field_table* args = nullptr,
                    std::uint16_t channel = 1);

// The next basic.deliver on `channel`, or step_failed.
event deliver(raw_session& s, std::uint16_t channel = 1,
              std::optional<milliseconds> wait = std::nullopt);

// Deliveries that arrive on `channel` within `wait` (stops early at `most`).
std::vector<event> drain(raw_session& s, std::uint16_t channel, milliseconds wait,
                         std::size_t most = 1000);

// Sends `m` on `channel` and describes the broker's next synchronous answer.
template <class M>
std::string answer(raw_session& s, std::uint16_t channel, const M& m) {
  s.send(channel, m);
  return s.observe();
}

// "refused (connection.close 530)" for a close or a closed socket, the
// description otherwise: for rules that require a refusal but no code.
std::string refusal(const event& e);

void ack(raw_session& s, std::uint64_t tag, bool multiple = false, std::uint16_t channel = 1);

// A plain PLAIN response for the URI's user.
std::string plain_response(const connection_params& p, std::string_view password);

// A field table in one expression.
field_table table(std::initializer_list<std::pair<std::string, field_value>> entries);

}  // namespace warren::conformance
