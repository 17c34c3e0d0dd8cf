// The confirm tracker on its own: sequence numbers, acks in and out of
// order, returns, tallies.
#include "warren/client/confirms.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <vector>

#include "../codec/alloc_probe.hpp"

using namespace warren;
using namespace warren::detail;

namespace {

struct outcomes {
  std::shared_ptr<std::vector<op_result>> got = std::make_shared<std::vector<op_result>>();
  completion cb() const {
    return [g = got](op_result&& r) { g->push_back(std::move(r)); };
  }
};

confirm_summary drain(confirm_tracker& t) {
  outcomes o;
  t.wait(0, o.cb());
  REQUIRE(o.got->size() == 1);
  return o.got->front().summary;
}

}  // namespace

TEST_CASE("confirms: pipelined publishes cost a count, a multiple ack one step") {
  confirm_tracker t;
  t.enable();
  for (int i = 0; i < 100; ++i) t.add();  // warm
  CHECK(t.on_confirm(100, true, true));
  const std::size_t before = test::allocation_count();
  for (std::uint64_t i = 0; i < 10000; ++i) CHECK(t.add() == 101 + i);
  CHECK(t.unconfirmed() == 10000);
  CHECK(t.on_confirm(10100, true, true));
  CHECK(test::allocation_count() == before);
  CHECK(t.unconfirmed() == 0);
  CHECK(drain(t).acked == 10100);
}

TEST_CASE("confirms: single acks out of order, then a multiple ack over them") {
  confirm_tracker t;
  t.enable();
  outcomes third;
  t.add();                                  // 1
  t.add();                                  // 2
  t.add(false, "", "", 7, third.cb());      // 3, awaited
  t.add();                                  // 4
  CHECK(t.on_confirm(3, false, false));     // nack 3 first
  REQUIRE(third.got->size() == 1);
  CHECK(third.got->front().outcome.status == publish_status::nacked);
  CHECK(t.on_confirm(3, false, true));      // a repeat changes nothing
  CHECK(t.unconfirmed() == 3);
  CHECK(t.on_confirm(2, false, true));
  CHECK(t.unconfirmed() == 2);
  CHECK(t.on_confirm(1, false, true));      // base passes 2 and 3
  CHECK(t.unconfirmed() == 1);
  CHECK_FALSE(t.on_confirm(1, false, true));  // below base: unknown
  CHECK_FALSE(t.on_confirm(5, false, true));  // never published
  CHECK_FALSE(t.on_confirm(5, true, true));
  CHECK(t.on_confirm(4, true, true));
  const confirm_summary s = drain(t);
  CHECK(s.acked == 3);
  CHECK(s.nacked == 1);
  CHECK(third.got->size() == 1);  // completed once
}

TEST_CASE("confirms: returns find the earliest unsettled mandatory publish") {
  confirm_tracker t;
  t.enable();
  outcomes a, b;
  t.add(true, "ex", "k", 1, a.cb());   // 1
  t.add(true, "ex", "k", 2, {});       // 2, pipelined
  t.add(true, "ex", "k", 3, b.cb());   // 3
  t.add(true, "ex", "other", 4, {});   // 4
  CHECK(t.on_return(312, "NO_ROUTE", "ex", "k"));        // 1: awaited
  CHECK_FALSE(t.on_return(312, "NO_ROUTE", "ex", "k"));  // 2: nobody awaits it
  CHECK_FALSE(t.on_return(312, "NO_ROUTE", "e", "xk"));  // no such publish
  CHECK(t.on_confirm(4, true, true));
  REQUIRE(a.got->size() == 1);
  CHECK(a.got->front().outcome.status == publish_status::returned);
  CHECK(a.got->front().outcome.reply_text == "NO_ROUTE");
  REQUIRE(b.got->size() == 1);
  CHECK(b.got->front().outcome.status == publish_status::acked);
  const confirm_summary s = drain(t);
  CHECK(s.returned == 2);
  CHECK(s.acked == 2);
}

TEST_CASE("confirms: cancel and fail") {
  confirm_tracker t;
  t.enable();
  outcomes one, two, waiting;
  t.add(false, "", "", 11, one.cb());
  t.add(false, "", "", 12, two.cb());
  t.wait(13, waiting.cb());
  CHECK(t.cancel(11));
  REQUIRE(one.got->size() == 1);
  CHECK(one.got->front().error.code == std::errc::operation_canceled);
  CHECK_FALSE(t.cancel(11));
  error_info why;
  why.code = errc::connection_lost;
  t.fail(why);
  REQUIRE(two.got->size() == 1);
  CHECK(two.got->front().error.code == errc::connection_lost);
  REQUIRE(waiting.got->size() == 1);
  CHECK(waiting.got->front().error.code == errc::connection_lost);
}
