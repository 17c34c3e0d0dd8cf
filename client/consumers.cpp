#include "warren/client/consumers.hpp"

namespace warren::detail {

void consumer_set::add(const std::string& tag, std::uint16_t channel,
                       std::shared_ptr<consumer_state> s) {
  s->tag = tag;
  s->channel = channel;
  s->state = consumer_state::status::active;
  last_ = nullptr;
  map_[tag] = std::move(s);
}

void consumer_set::end(const std::string& tag, error_info reason) {
  auto it = map_.find(tag);
  if (it == map_.end()) return;
  auto s = std::move(it->second);
  map_.erase(it);
  last_ = nullptr;
  s->state = consumer_state::status::ended;
  if (reason) s->end_reason = std::move(reason);
  if (s->buffer.empty() && s->reader.done) s->reader.done.consume(op_result{});
}

bool consumer_set::cancel(std::uint64_t id) {
  for (auto& [tag, s] : map_)
    if (cancel_waiter(s->reader, id)) return true;
  return false;
}

std::size_t consumer_set::fail(const error_info& why) {
  std::size_t full = 0;
  auto all = std::move(map_);
  map_.clear();
  last_ = nullptr;
  for (auto& [tag, s] : all) {
    s->state = consumer_state::status::ended;
    s->end_reason = why;
    if (s->full) {
      s->full = false;
      ++full;
    }
    fail_waiter(s->reader, why);
  }
  return full;
}

void wait_delivery(consumer_state& s, std::uint64_t id, completion done) {
  if (!s.buffer.empty()) {
    done.consume(op_result{});
    return;
  }
  if (s.state == consumer_state::status::ended) {
    op_result r;
    if (s.end_reason.code != errc::consumer_cancelled) r.error = s.end_reason;
    done.consume(std::move(r));
    return;
  }
  if (s.reader.done) {
    error_info busy;
    busy.code = std::make_error_code(std::errc::operation_in_progress);
    busy.text = "another next() is already waiting on this consumer";
    done.consume(failed_result(std::move(busy)));
    return;
  }
  s.reader = {id, std::move(done)};
}

}  // namespace warren::detail
