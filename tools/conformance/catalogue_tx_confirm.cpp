// The tx class and RabbitMQ's publisher confirms (confirm class).
#include "tools/conformance/support.hpp"

namespace warren::conformance {

namespace {

std::uint64_t tag_of(const event& e) {
  if (const auto* g = e.as<basic_get_ok>()) return g->delivery_tag;
  return 0;
}

// Collects confirms until `count` publishes are covered or time runs out;
// describes a broken sequence (a tag confirmed twice, a gap closed out of
// order) and otherwise returns how many acks and nacks covered them.
std::string collect_confirms(raw_session& s, std::uint64_t count, bool* any_multiple = nullptr) {
  std::uint64_t covered = 0;  // every tag up to here is confirmed
  std::vector<bool> seen(count + 1, false);
  std::uint64_t acks = 0, nacks = 0;
  const auto stop = clock::now() + s.reply_timeout();
  while (covered < count && clock::now() < stop) {
    event e = s.next_async(1, basic_ack::key, milliseconds(100));
    if (e.what == event::kind::timeout) {
      e = s.next_async(1, basic_nack::key, milliseconds(1));
      if (e.what == event::kind::timeout) continue;
    }
    std::uint64_t tag = 0;
    bool multiple = false;
    if (const auto* a = e.as<basic_ack>()) {
      tag = a->delivery_tag;
      multiple = a->multiple;
      ++acks;
    } else if (const auto* n = e.as<basic_nack>()) {
      tag = n->delivery_tag;
      multiple = n->multiple;
      ++nacks;
    } else {
      return e.describe() + " (waiting for confirms)";
    }
    if (tag == 0 || tag > count) return "confirm of unknown tag " + std::to_string(tag);
    if (multiple && any_multiple != nullptr) *any_multiple = true;
    const std::uint64_t from = multiple ? 1 : tag;
    for (std::uint64_t t = from; t <= tag; ++t) {
      if (seen[t] && !multiple) return "tag " + std::to_string(t) + " confirmed twice";
      if (seen[t] && t == tag) return "tag " + std::to_string(t) + " confirmed twice";
      seen[t] = true;
    }
    while (covered < count && seen[covered + 1]) ++covered;
  }
  if (covered < count)
    return std::to_string(covered) + " of " + std::to_string(count) + " confirmed";
  return nacks == 0 ? std::string("all acked") : std::to_string(nacks) + " nacked";
}

void select_confirms(raw_session& s) { s.call(1, confirm_select{}); }

}  // namespace

void add_tx_confirm(std::vector<scenario>& out) {
  add(out, "tx.select/select-ok", "tx.select", "tx.select-ok", [](context& c) {
    raw_session& s = c.open();
    return answer(s, 1, tx_select{});
  });
  add(out, "tx.commit/not-transacted", "tx.commit, rule transacted (precondition-failed)",
      "channel.close 406", [](context& c) {
        raw_session& s = c.open();
        return answer(s, 1, tx_commit{});
      });
  add(out, "tx.rollback/not-transacted", "tx.rollback, rule transacted (precondition-failed)",
      "channel.close 406", [](context& c) {
        raw_session& s = c.open();
        return answer(s, 1, tx_rollback{});
      });
  add(out, "tx.commit/publish-visible-after-commit", "tx class: publishes take effect at tx.commit",
      "0 before, 1 after", [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        s.call(1, tx_select{});
        publish(s, "", q);
        const auto before = depth(s, q);
        s.call(1, tx_commit{});
        return std::to_string(before) + " before, " + std::to_string(settled_depth(s, q, 1)) +
               " after";
      });
  add(out, "tx.rollback/publish-discarded", "tx.rollback abandons the transaction's publishes",
      "0 after rollback", [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        s.call(1, tx_select{});
        publish(s, "", q);
        s.call(1, tx_rollback{});
        s.call(1, tx_commit{});
        return std::to_string(depth(s, q)) + " after rollback";
      });
  add(out, "tx.rollback/ack-rolled-back",
      "tx.rollback abandons the transaction's acks (the message stays unacked)",
      "1 back after close", [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        publish(s, "", q);
        s.call(1, tx_select{});
        auto e = fetch(s, q, false);
        if (!e) return std::string("nothing");
        basic_ack a;
        a.delivery_tag = tag_of(*e);
        s.send(1, a);
        s.call(1, tx_rollback{});
        s.close_channel(1);
        s.open_channel(1);
        return std::to_string(settled_depth(s, q, 1)) + " back after close";
      });
  add(out, "tx.commit/ack-applied", "tx.commit applies the transaction's acks",
      "0 left after close", [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        publish(s, "", q);
        s.call(1, tx_select{});
        auto e = fetch(s, q, false);
        if (!e) return std::string("nothing");
        basic_ack a;
        a.delivery_tag = tag_of(*e);
        s.send(1, a);
        s.call(1, tx_commit{});
        s.close_channel(1);
        s.open_channel(1);
        return std::to_string(settled_depth(s, q, 0)) + " left after close";
      });
  add(out, "tx.commit/ack-checked-at-once",
      "basic.ack rule exists (on a transacted channel the tag is checked at once, not at commit)",
      "channel.close 406", [](context& c) {
        raw_session& s = c.open();
        s.call(1, tx_select{});
        basic_ack a;
        a.delivery_tag = 77;
        s.send(1, a);
        return s.observe();
      });
  add(out, "tx.commit/empty", "tx.commit of an empty transaction", "tx.commit-ok", [](context& c) {
    raw_session& s = c.open();
    s.call(1, tx_select{});
    return answer(s, 1, tx_commit{});
  });
  add(out, "tx.commit/repeated",
      "a new transaction starts right after a commit (publish, commit, publish, commit)", "2",
      [](context& c) {
        raw_session& s = c.open();
        const std::string q = make_queue(c, s, "q");
        s.call(1, tx_select{});
        publish(s, "", q);
        s.call(1, tx_commit{});
        publish(s, "", q);
        s.call(1, tx_commit{});
        return std::to_string(settled_depth(s, q, 2));
      });

  auto confirm = [&](std::string id, std::string checks, std::string expected,
                     std::function<std::string(context&)> run) -> scenario& {
    auto& sc = add(out, std::move(id), std::move(checks), std::move(expected), std::move(run));
    sc.capability = "publisher_confirms";
    sc.extension = true;
    return sc;
  };
  confirm("confirm.select/select-ok", "confirm.select", "confirm.select-ok", [](context& c) {
    raw_session& s = c.open();
    return answer(s, 1, confirm_select{});
  });
  confirm("confirm.select/no-wait", "confirm.select no-wait (no reply; publishes are confirmed)",
          "no reply, all acked", [](context& c) {
            raw_session& s = c.open();
            confirm_select cs;
            cs.nowait = true;
            s.send(1, cs);
            if (!s.quiet(milliseconds(300))) return "a reply: " + s.observe();
            publish(s, "", c.name("nobody"));
            return "no reply, " + collect_confirms(s, 1);
          });
  confirm("confirm.select/after-tx", "confirm.select on a transacted channel", "channel.close 406",
          [](context& c) {
            raw_session& s = c.open();
            s.call(1, tx_select{});
            return answer(s, 1, confirm_select{});
          });
  confirm("tx.select/after-confirm", "tx.select on a channel in confirm mode", "channel.close 406",
          [](context& c) {
            raw_session& s = c.open();
            select_confirms(s);
            return answer(s, 1, tx_select{});
          });
  confirm("confirm/ack-routed", "basic.ack for a routed publish (tag 1)", "all acked",
          [](context& c) {
            raw_session& s = c.open();
            const std::string q = make_queue(c, s, "q");
            select_confirms(s);
            publish(s, "", q);
            return collect_confirms(s, 1);
          });
  confirm("confirm/ack-unroutable", "basic.ack for an unroutable publish (dropped, still acked)",
          "all acked", [](context& c) {
            raw_session& s = c.open();
            select_confirms(s);
            publish(s, "amq.direct", c.name("nobody"));
            return collect_confirms(s, 1);
          });
  confirm("confirm/multiple-covers-all",
          "confirms of 200 quick publishes: each tag once, multiple ranges exact", "all acked",
          [](context& c) {
            raw_session& s = c.open();
            const std::string q = make_queue(c, s, "q");
            select_confirms(s);
            for (int i = 0; i < 200; ++i) publish(s, "", q);
            return collect_confirms(s, 200);
          });
  confirm("confirm/return-before-ack",
          "a mandatory unroutable publish: basic.return comes before its basic.ack",
          "basic.return, then basic.ack", [](context& c) {
            raw_session& s = c.open();
            select_confirms(s);
            publish(s, "amq.direct", c.name("nobody"), "m", {}, true);
            event first = s.next();
            event second = s.next();
            return first.describe() + ", then " + second.describe();
          });
  confirm("confirm/tags-per-channel", "publish sequence numbers count from 1 on each channel",
          "1 and 1", [](context& c) {
            raw_session& s = c.open();
            s.open_channel(2);
            s.call(1, confirm_select{});
            s.call(2, confirm_select{});
            publish(s, "", c.name("nobody"), "m", {}, false, 1);
            publish(s, "", c.name("nobody"), "m", {}, false, 2);
            event a = s.next_async(1, basic_ack::key);
            event b = s.next_async(2, basic_ack::key);
            if (a.as<basic_ack>() == nullptr) return a.describe();
            if (b.as<basic_ack>() == nullptr) return b.describe();
            return std::to_string(a.as<basic_ack>()->delivery_tag) + " and " +
                   std::to_string(b.as<basic_ack>()->delivery_tag);
          });
}

}  // namespace warren::conformance
