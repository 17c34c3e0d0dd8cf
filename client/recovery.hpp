// The handles the public API holds (connection_handle, logical_channel) and
// recovery: what was declared through a connection, and the loop that, after
// a loss, reconnects, re-declares it and re-opens every channel under the
// same handles. Private to the library.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/steady_timer.hpp>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "warren/client/driver.hpp"

namespace warren::detail {

class recovery;

struct connection_handle {
  std::shared_ptr<driver> impl;
  std::shared_ptr<recovery> rec;  // null: recovery is off
  // The counts of the connections recovery replaced (and its recoveries).
  connection_counters earlier;
  connection_handle() = default;
  connection_handle(const connection_handle&) = delete;
  connection_handle& operator=(const connection_handle&) = delete;
  ~connection_handle();
};

// A consumer as recovery re-creates it: the same stream, the same tag.
struct consumer_record {
  std::weak_ptr<consumer_state> state;
  basic_consume method;  // as first sent; the queue is renamed if it was server-named
};

// What a channel handle (and its consumers) hold: the logical channel, not a
// raw id. `id` is the channel's number on the wire in the connection's
// current core; every operation reads it afresh, so a channel re-opened
// under another number keeps its handles.
struct logical_channel {
  std::shared_ptr<connection_handle> conn;
  std::uint16_t id = 0;

  // What recovery restores (recorded only when it is on).
  std::optional<basic_qos> qos;
  bool confirm = false;
  std::size_t confirm_window = 0;
  bool tx = false;
  bool closed_by_user = false;
  std::vector<consumer_record> consumers;
  // Delivery tags the user sees are the broker's plus tag_offset: they keep
  // rising across recoveries, and a tag at or below tag_offset is from before
  // the last one (stale: never sent to the new channel).
  std::uint64_t tag_offset = 0;
  std::uint64_t last_tag = 0;
  std::uint64_t stale_acks = 0;
  // Publish sequence numbers the user sees are the broker's plus seq_offset:
  // they keep rising across recoveries (a new channel counts from 1).
  std::uint64_t seq_offset = 0;
  // Confirm tallies of channels lost to recoveries, for the next
  // wait_for_confirms().
  confirm_summary carried;
  // With republish_unconfirmed: the frames of pipelined publishes not known
  // to be confirmed, oldest first, to publish again after a loss. `seq` is
  // the broker's sequence number on the current channel.
  struct kept_publish {
    std::uint64_t seq = 0;
    std::vector<std::uint8_t> frames;
    bool mandatory = false;
    std::string exchange, routing_key;  // mandatory only: to match a return
  };
  std::deque<kept_publish> kept;
  // channel::reopen(): true while it runs; counts the reopens so far.
  bool reopening = false;
  std::uint64_t reopens = 0;

  // The connection was lost: `t` is the channel's confirm state then (null if
  // it had none). Counts what was unconfirmed as unknown or republished,
  // forgets kept publishes that were settled, and carries on the sequence.
  void lost(const confirm_tracker* t, bool republish);

  logical_channel() = default;
  logical_channel(const logical_channel&) = delete;
  logical_channel& operator=(const logical_channel&) = delete;
  driver& impl() const noexcept { return *conn->impl; }
  connection_core& core() const noexcept { return conn->impl->core_; }
  ~logical_channel();
};

// Declarations made through the connection, in order, without what was
// deleted or unbound since. Server-named queues keep the name the broker
// gave them last.
class topology {
 public:
  struct queue_entry {
    queue_declare method;  // queue empty for a server-named queue
    std::string name;      // the name the broker gave (or the declared one)
  };
  using entry = std::variant<exchange_declare, queue_entry, queue_bind, exchange_bind>;

  void declared(const exchange_declare& m);
  void declared(const queue_declare& m, const std::string& name);
  void bound(const queue_bind& m);
  void bound(const exchange_bind& m);
  void unbound(const queue_unbind& m);
  void unbound(const exchange_unbind& m);
  void exchange_deleted(const std::string& name);
  void queue_deleted(const std::string& name);
  // A server-named queue was declared again under `to`: its bindings and
  // consumers follow.
  void renamed(std::string from, std::string to);

  std::vector<entry>& entries() noexcept { return entries_; }
  // The name a queue has now, after any renames.
  std::string current(const std::string& queue) const;

 private:
  std::vector<entry> entries_;
  std::vector<std::pair<std::string, std::string>> renames_;  // any earlier name -> current
};

// Opens a channel on `d` for `lc` and restores what recovery restores:
// qos, confirm mode (publishing again the kept publishes), transactions,
// consumers with their tags. Deliveries from before are stale afterwards.
asio::awaitable<void> replay_channel(driver& d, logical_channel& lc, topology& topo);

// channel::reopen(): closes the channel's broker channel and opens another
// in its place on the same connection, with replay_channel(); what was
// unconfirmed is accounted for as after a loss.
asio::awaitable<void> reopen_channel(logical_channel& lc);

class recovery : public std::enable_shared_from_this<recovery> {
 public:
  recovery(asio::any_io_executor ex, std::vector<connection_params> candidates,
           connect_options options);

  // Watches `d` (the handle's current driver) for its end.
  void watch(const std::shared_ptr<connection_handle>& handle, driver& d);
  void channel_opened(const std::shared_ptr<logical_channel>& ch);

  bool recovering() const noexcept { return state_ == state::recovering; }
  bool gave_up() const noexcept { return state_ == state::gave_up; }
  // Waits while a recovery runs (at most `limit`, 0: no limit); throws
  // errc::recovery_failed if it gave up, errc::timeout past the limit.
  asio::awaitable<void> wait_recovered(std::chrono::milliseconds limit);
  // The user closes: no recovery from now on; one in progress stops.
  void stop();
  bool stopped() const noexcept { return state_ == state::stopped; }

  // Recovery's notices, oldest first (at most 64 kept; older ones dropped).
  std::optional<connection_notice> take_notice();
  // Waits until a notice is queued or the recovery state changes (or, for
  // the second form, `limit` passes).
  asio::awaitable<void> wait_change();
  asio::awaitable<void> wait_change_for(std::chrono::milliseconds limit);
  // Wakes every wait_change(): the recovery state, or a channel's, changed.
  void changed();

  topology topo;

 private:
  enum class state : std::uint8_t { running, recovering, gave_up, stopped };

  void on_closed(std::weak_ptr<connection_handle> handle, std::weak_ptr<driver> d);
  asio::awaitable<void> run(std::weak_ptr<connection_handle> handle);
  asio::awaitable<void> replay(driver& d, std::vector<std::shared_ptr<logical_channel>>& channels);
  void notice(connection_notice n);
  std::chrono::milliseconds backoff(std::uint32_t attempt);

  asio::any_io_executor ex_;
  std::vector<connection_params> candidates_;
  connect_options options_;
  state state_ = state::running;
  error_info failure_;
  std::vector<std::weak_ptr<logical_channel>> channels_;
  std::deque<connection_notice> notices_;
  asio::steady_timer signal_;   // never expires: cancelled to wake waiters
  asio::steady_timer backoff_;
  std::shared_ptr<driver> attempt_;  // the connection being recovered onto
};

}  // namespace warren::detail
