// A stream queue on the local cluster (scripts/cluster): published to through
// one node and consumed through another from a given offset (x-stream-offset),
// with the prefetch and manual acks a stream consumer needs.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <variant>

#include "cluster.hpp"

using namespace warren;
using namespace std::chrono_literals;
namespace cluster = warren::test::cluster;

namespace {

// The x-stream-offset header RabbitMQ puts on every delivery from a stream; -1 if absent.
std::int64_t stream_offset(const message& m) {
  if (!m.properties.headers) return -1;
  const field_value* v = m.properties.headers->find("x-stream-offset");
  if (!v) return -1;
  if (auto p = std::get_if<std::int64_t>(&v->variant())) return *p;
  return -1;
}

// Consumes `queue` from `offset` (a number or "first"/"last"/"next") and
// checks that the messages `from`..`count`-1 arrive, in order, and nothing else.
asio::awaitable<void> expect_from(channel& ch, const std::string& queue, const field_value& offset,
                                  std::uint64_t from, std::uint64_t count) {
  field_table args;
  args.set("x-stream-offset", offset);
  auto cons = co_await ch.consume(queue, {.arguments = &args, .prefetch = 50});
  for (std::uint64_t i = from; i < count; ++i) {
    auto m = co_await with_timeout(cons.next(), 15s);
    REQUIRE(m.has_value());
    INFO("expected message ", i);
    REQUIRE(m->body == std::to_string(i));
    CHECK(stream_offset(*m) == static_cast<std::int64_t>(i));
    CHECK(ch.ack(m->delivery_tag));
  }
  // Nothing follows the last message.
  auto more = co_await test::error_of(with_timeout(cons.next(), 1s));
  CHECK(more.code == errc::timeout);
  co_await cons.cancel();
}

}  // namespace

TEST_CASE("cluster: a stream queue consumed from an offset, through another node" *
          doctest::skip(!cluster::wanted())) {
  test::run(
      []() -> asio::awaitable<void> {
        const std::string queue = test::unique_name("stream");
        constexpr std::uint64_t count = 500;
        constexpr std::uint64_t from = 321;

        // Published through rabbit-1...
        // connect() is lazy: its arguments must outlive the co_await.
        const connect_options options;
        const auto through_1 = cluster::uris(1);
        const auto through_3 = cluster::uris(3);
        auto p1 = connect(through_1, options);
        auto pub_conn = co_await std::move(p1);
        CHECK(cluster::node_of(pub_conn.endpoint()) == 1);
        auto pub = co_await pub_conn.open_channel();
        field_table stream;
        stream.set("x-queue-type", "stream");
        co_await pub.queue_declare(queue, {.durable = true, .arguments = &stream});
        co_await pub.confirm_select(100);
        basic_properties persistent;
        persistent.delivery_mode = 2;
        for (std::uint64_t i = 0; i < count; ++i) {
          const std::string body = std::to_string(i);
          co_await pub.publish_pipelined("", queue, body, persistent);
        }
        auto confirms = co_await pub.wait_for_confirms();
        CHECK(confirms.acked == count);
        CHECK(confirms.nacked == 0);

        // ...consumed through rabbit-3, from an offset, then from the first.
        auto p3 = connect(through_3, options);
        auto sub_conn = co_await std::move(p3);
        CHECK(cluster::node_of(sub_conn.endpoint()) == 3);
        auto sub = co_await sub_conn.open_channel();
        MESSAGE("published " << count << " through " << pub_conn.endpoint()
                             << ", consuming through " << sub_conn.endpoint() << " from offset "
                             << from);
        const field_value offset = static_cast<std::int64_t>(from);
        co_await expect_from(sub, queue, offset, from, count);
        const field_value first = "first";
        co_await expect_from(sub, queue, first, 0, count);
        CHECK(sub.is_open());

        // A stream refuses a consumer without a prefetch: 406 closes the channel.
        auto bare = co_await sub_conn.open_channel();
        auto refused = co_await test::error_of(bare.consume(queue));
        CHECK(refused.reply_code() == 406);
        MESSAGE("consume without prefetch: " << refused.text);

        co_await pub.queue_delete(queue);
        co_await pub_conn.close();
        co_await sub_conn.close();
      },
      std::chrono::seconds(120));
}
