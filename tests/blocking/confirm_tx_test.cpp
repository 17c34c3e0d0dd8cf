// The integration suite's confirm and tx scenarios through the blocking API.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "blocking_harness.hpp"

using namespace warren;
using namespace std::chrono_literals;

TEST_CASE("blocking confirms: confirm_select, then each publish is acked with its sequence") {
  auto conn = test::open_blocking();
  auto ch = conn.open_channel();
  auto q = ch.queue_declare("", {.exclusive = true});
  CHECK_FALSE(ch.in_confirm_mode());
  const auto plain = ch.publish("", q.queue, "unconfirmed");
  CHECK(plain.status == publish_status::sent);
  CHECK(plain.sequence == 0);

  ch.confirm_select();
  CHECK(ch.in_confirm_mode());
  ch.confirm_select();  // again: harmless
  basic_properties persistent;
  persistent.delivery_mode = 2;
  for (std::uint64_t i = 1; i <= 5; ++i) {
    const auto out = ch.publish("", q.queue, "confirmed-" + std::to_string(i), persistent);
    CHECK(out.status == publish_status::acked);
    CHECK(out.sequence == i);
  }
  CHECK(ch.unconfirmed() == 0);
  CHECK(test::ready(ch, q.queue) == 6);
  const auto dropped = ch.publish("", "warren-no-such-queue-at-all", "x");
  CHECK(dropped.status == publish_status::acked);
  CHECK(dropped.sequence == 6);
  auto m = ch.get(q.queue, true);
  REQUIRE(m.has_value());
  CHECK(m->body == "unconfirmed");
  m = ch.get(q.queue, true);
  REQUIRE(m.has_value());
  CHECK(m->properties.delivery_mode == 2);
}

TEST_CASE("blocking confirms: publish_pipelined with a window, then wait_for_confirms") {
  auto conn = test::open_blocking();
  auto ch = conn.open_channel();
  auto q = ch.queue_declare("", {.exclusive = true});
  constexpr std::size_t window = 8;
  ch.confirm_select(window);
  std::uint64_t max_unconfirmed = 0;
  for (std::uint64_t i = 1; i <= 200; ++i) {
    CHECK(ch.publish_pipelined("", q.queue, "p" + std::to_string(i)) == i);
    max_unconfirmed = std::max(max_unconfirmed, ch.unconfirmed());
  }
  CHECK(max_unconfirmed <= window);
  const auto sum = ch.wait_for_confirms(10s);
  CHECK(sum.acked == 200);
  CHECK(sum.nacked == 0);
  CHECK(sum.returned == 0);
  CHECK(ch.unconfirmed() == 0);
  CHECK(test::ready(ch, q.queue) == 200);
  CHECK(ch.wait_for_confirms().acked == 0);
  auto first = ch.get(q.queue, true);
  REQUIRE(first.has_value());
  CHECK(first->body == "p1");
  CHECK(ch.queue_purge(q.queue) == 199);
}

TEST_CASE("blocking confirms: a mandatory unroutable publish comes back as returned") {
  auto conn = test::open_blocking();
  auto ch = conn.open_channel();
  auto q = ch.queue_declare("", {.exclusive = true});
  ch.confirm_select();
  const std::string nowhere = test::unique_name("nowhere");
  const auto out = ch.publish("", nowhere, "bounce", {.mandatory = true});
  CHECK(out.status == publish_status::returned);
  CHECK(out.reply_code == 312);
  CHECK(out.reply_text == "NO_ROUTE");
  const auto ok = ch.publish("", q.queue, "lands", {.mandatory = true});
  CHECK(ok.status == publish_status::acked);
  ch.publish_pipelined("", q.queue, "a", {.mandatory = true});
  ch.publish_pipelined("", nowhere, "b", {.mandatory = true});
  ch.publish_pipelined("", nowhere, "c", {.mandatory = true});
  const auto sum = ch.wait_for_confirms();
  CHECK(sum.returned == 3);  // the awaited one too
  CHECK(sum.acked == 2);
  CHECK(ch.next_return(5s).body == "b");
  CHECK(ch.next_return(5s).body == "c");
  // Nothing more: the wait ends with errc::timeout.
  std::error_code ec;
  ch.next_return(100ms, ec);
  CHECK(ec == errc::timeout);
  CHECK(ch.returns_dropped() == 0);
  CHECK(ch.is_open());
}

TEST_CASE("blocking confirms: the broker nacks what a full reject-publish queue refuses") {
  auto conn = test::open_blocking();
  auto ch = conn.open_channel();
  field_table args;
  args.add("x-max-length", std::int32_t{1}).add("x-overflow", "reject-publish");
  const std::string name = test::unique_name("reject-publish");
  ch.queue_declare(name, {.exclusive = true, .arguments = &args});
  ch.confirm_select();
  CHECK(ch.publish("", name, "fits").status == publish_status::acked);
  const auto second = ch.publish("", name, "overflows");
  CHECK(second.status == publish_status::nacked);
  CHECK(second.sequence == 2);
  for (int i = 0; i < 3; ++i) ch.publish_pipelined("", name, "more");
  const auto sum = ch.wait_for_confirms();
  CHECK(sum.nacked == 4);
  CHECK(sum.acked == 1);
}

TEST_CASE("blocking confirms: wait_for_confirms outside confirm mode is refused") {
  auto conn = test::open_blocking();
  auto ch = conn.open_channel();
  std::error_code ec;
  ch.wait_for_confirms({}, ec);
  CHECK(ec == errc::not_in_confirm_mode);
  CHECK(ch.is_open());
}

TEST_CASE("blocking tx: commit delivers, rollback leaves nothing behind") {
  auto conn = test::open_blocking();
  auto ch = conn.open_channel();
  auto observer = conn.open_channel();
  auto q = observer.queue_declare("", {.exclusive = true});
  ch.tx_select();
  ch.publish("", q.queue, "t1");
  ch.publish("", q.queue, "t2");
  CHECK(test::ready(observer, q.queue) == 0);
  ch.tx_commit();
  CHECK(test::ready(observer, q.queue) == 2);

  // An application error between the publishes and the commit: roll back.
  try {
    ch.publish("", q.queue, "rolled back 1");
    ch.publish("", q.queue, "rolled back 2");
    throw std::runtime_error("the application failed");
  } catch (const std::runtime_error&) {
    ch.tx_rollback();
  }
  CHECK(test::ready(observer, q.queue) == 2);

  // Acks are transactional too.
  auto m = ch.get(q.queue);
  REQUIRE(m.has_value());
  CHECK(m->body == "t1");
  ch.ack(m->delivery_tag);
  ch.tx_rollback();
  ch.close();
  CHECK(test::ready(observer, q.queue) == 2);
  auto again = observer.get(q.queue, true);
  REQUIRE(again.has_value());
  CHECK(again->body == "t1");
  CHECK(again->redelivered);

  auto ch2 = conn.open_channel();
  ch2.tx_select();
  auto m2 = ch2.get(q.queue);
  REQUIRE(m2.has_value());
  CHECK(m2->body == "t2");
  ch2.ack(m2->delivery_tag);
  ch2.tx_commit();
  ch2.close();
  CHECK(test::ready(observer, q.queue) == 0);
}

TEST_CASE("blocking tx and confirms do not mix: 406 from the broker") {
  auto conn = test::open_blocking();
  auto ch = conn.open_channel();
  ch.tx_select();
  try {
    ch.confirm_select();
    FAIL("confirm_select after tx_select succeeded");
  } catch (const error& e) {
    CHECK(e.reply_code() == 406);
    CHECK(e.class_id() == 85);
    CHECK(e.method_id() == 10);
  }
  CHECK_FALSE(ch.is_open());
  CHECK(ch.close_reason().reply_code() == 406);
  auto ch2 = conn.open_channel();
  ch2.confirm_select();
  std::error_code ec;
  ch2.tx_select({}, ec);
  CHECK(ec.value() == 406);
  auto ch3 = conn.open_channel();
  ch3.tx_commit({}, ec);
  CHECK(ec.value() == 406);
  CHECK(conn.is_open());
}
