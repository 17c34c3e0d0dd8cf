// Codec hot-path benchmarks, with rabbitmq-c and a plain memcpy measured in the
// same run so the ratios printed at the end compare like with like.
//
//   publish_encode  basic.publish + content header + 64-byte body, three frames
//                   (generic encoder, and the prepared one: prefix encoded once;
//                   and a floor, the same bytes from code that knows the shape)
//   deliver_decode  basic.deliver + content header + body, as a consumer sees it
//   table_encode    a 10-entry field table holding a nested table and an array
//   table_decode    the same table back from its bytes
//
// Before anything is timed, the bytes rabbitmq-c produces are checked against
// warren's, and each side's decoder against the other's encoder; a mismatch
// aborts the run. All Google Benchmark flags pass through
// (--benchmark_format=json, --benchmark_filter=..., --benchmark_repetitions=...).
// The summary goes to stdout after the console table, or to stderr when the
// table is JSON/CSV so that stdout stays machine-readable.
//
// --processes=N runs everything in N processes and reports medians over them
// (see run_processes); scripts/bench uses it.

#include <benchmark/benchmark.h>
#include <unistd.h>

#if __has_include(<rabbitmq-c/amqp.h>)
#include <rabbitmq-c/amqp.h>
#include <rabbitmq-c/framing.h>
#else
#include <amqp.h>
#include <amqp_framing.h>
#endif

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "warren/client/wire.hpp"
#include "warren/codec/field.hpp"
#include "warren/codec/frame.hpp"
#include "warren/proto/methods.hpp"
#include "warren/proto/properties.hpp"

namespace {

// RabbitMQ's default frame_max; the 64-byte body fits one body frame.
constexpr std::uint32_t frame_max = 131072;
constexpr std::uint16_t channel = 1;
constexpr std::string_view exchange_name = "bench.exchange";
constexpr std::string_view routing_key = "bench.routing.key";
constexpr std::string_view content_type = "application/octet-stream";
// RabbitMQ's generated consumer tags look like this: longer than the small
// string buffer, so a decoder that does not reuse capacity pays for it.
constexpr std::string_view consumer_tag = "amq.ctag-3SsJGHqU4tkLcYk7rVtArQ";
constexpr std::uint64_t delivery_tag = 123456789;

// ---------------------------------------------------------------------------
// rabbitmq-c side

amqp_bytes_t rmq_bytes(std::string_view s) { return {s.size(), const_cast<char*>(s.data())}; }

void be16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}
void be32(std::uint8_t* p, std::uint32_t v) {
  for (int i = 3; i >= 0; --i, v >>= 8) p[i] = static_cast<std::uint8_t>(v);
}
void be64(std::uint8_t* p, std::uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<std::uint8_t>(v);
}
std::uint16_t ld16(const std::uint8_t* p) { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }
std::uint32_t ld32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         p[3];
}
std::uint64_t ld64(const std::uint8_t* p) { return (std::uint64_t{ld32(p)} << 32) | ld32(p + 4); }

// The next three functions lay out frames the way rabbitmq-c's sender does
// (amqp_frame_to_bytes): frame header, the library's encoder writing the
// payload in place, then the size patched in and the frame-end octet. They
// return the frame's whole size, or 0 on error.
constexpr std::size_t rmq_header_size = 7;
constexpr std::size_t rmq_footer_size = 1;

std::size_t rmq_method_frame(std::uint8_t* out, std::size_t cap, std::uint16_t ch,
                             amqp_method_number_t id, void* decoded) {
  if (cap < rmq_header_size + 4 + rmq_footer_size) return 0;
  out[0] = AMQP_FRAME_METHOD;
  be16(out + 1, ch);
  be32(out + rmq_header_size, id);
  amqp_bytes_t room{cap - rmq_header_size - 4 - rmq_footer_size, out + rmq_header_size + 4};
  const int n = amqp_encode_method(id, decoded, room);
  if (n < 0) return 0;
  const std::size_t len = static_cast<std::size_t>(n) + 4;
  be32(out + 3, static_cast<std::uint32_t>(len));
  out[rmq_header_size + len] = AMQP_FRAME_END;
  return rmq_header_size + len + rmq_footer_size;
}

std::size_t rmq_header_frame(std::uint8_t* out, std::size_t cap, std::uint16_t ch,
                             std::uint16_t class_id, std::uint64_t body_size, void* props) {
  if (cap < rmq_header_size + 12 + rmq_footer_size) return 0;
  out[0] = AMQP_FRAME_HEADER;
  be16(out + 1, ch);
  be16(out + rmq_header_size, class_id);
  be16(out + rmq_header_size + 2, 0);
  be64(out + rmq_header_size + 4, body_size);
  amqp_bytes_t room{cap - rmq_header_size - 12 - rmq_footer_size, out + rmq_header_size + 12};
  const int n = amqp_encode_properties(class_id, props, room);
  if (n < 0) return 0;
  const std::size_t len = static_cast<std::size_t>(n) + 12;
  be32(out + 3, static_cast<std::uint32_t>(len));
  out[rmq_header_size + len] = AMQP_FRAME_END;
  return rmq_header_size + len + rmq_footer_size;
}

std::size_t rmq_body_frame(std::uint8_t* out, std::size_t cap, std::uint16_t ch, const void* body,
                           std::size_t n) {
  if (n > cap - rmq_header_size - rmq_footer_size) return 0;
  out[0] = AMQP_FRAME_BODY;
  be16(out + 1, ch);
  std::memcpy(out + rmq_header_size, body, n);
  be32(out + 3, static_cast<std::uint32_t>(n));
  out[rmq_header_size + n] = AMQP_FRAME_END;
  return rmq_header_size + n + rmq_footer_size;
}

// What amqp_basic_publish encodes, laid out back to back in one buffer (it
// sends each frame as it is encoded; the encoding work is the same).
std::size_t rmq_encode_publish(std::uint8_t* out, std::size_t cap, amqp_basic_publish_t& method,
                               amqp_basic_properties_t& props, const std::uint8_t* body,
                               std::size_t body_len) {
  std::size_t at = rmq_method_frame(out, cap, channel, AMQP_BASIC_PUBLISH_METHOD, &method);
  if (at == 0) return 0;
  std::size_t n = rmq_header_frame(out + at, cap - at, channel, AMQP_BASIC_CLASS, body_len, &props);
  if (n == 0) return 0;
  at += n;
  const std::size_t usable = frame_max - rmq_header_size - rmq_footer_size;
  for (std::size_t off = 0; off < body_len;) {
    const std::size_t chunk = std::min(body_len - off, usable);
    n = rmq_body_frame(out + at, cap - at, channel, body + off, chunk);
    if (n == 0) return 0;
    at += n;
    off += chunk;
  }
  return at;
}

// The benchmark table in rabbitmq-c's representation. Holds pointers into
// itself, so it stays where it was built.
struct rmq_table {
  amqp_table_entry_t nested_entries[3];
  amqp_field_value_t tag_values[3];
  amqp_table_entry_t entries[10];
  amqp_table_t table;

  rmq_table(const rmq_table&) = delete;
  rmq_table& operator=(const rmq_table&) = delete;

  rmq_table() {
    auto entry = [](std::string_view key, std::uint8_t kind) {
      amqp_table_entry_t e{};
      e.key = rmq_bytes(key);
      e.value.kind = kind;
      return e;
    };
    nested_entries[0] = entry("id", AMQP_FIELD_KIND_I32);
    nested_entries[0].value.value.i32 = 7;
    nested_entries[1] = entry("name", AMQP_FIELD_KIND_UTF8);
    nested_entries[1].value.value.bytes = rmq_bytes("inner");
    nested_entries[2] = entry("ok", AMQP_FIELD_KIND_BOOLEAN);
    nested_entries[2].value.value.boolean = 0;

    tag_values[0].kind = AMQP_FIELD_KIND_UTF8;
    tag_values[0].value.bytes = rmq_bytes("alpha");
    tag_values[1].kind = AMQP_FIELD_KIND_I32;
    tag_values[1].value.i32 = 2;
    tag_values[2].kind = AMQP_FIELD_KIND_BOOLEAN;
    tag_values[2].value.boolean = 1;

    entries[0] = entry("x-match", AMQP_FIELD_KIND_UTF8);
    entries[0].value.value.bytes = rmq_bytes("all");
    entries[1] = entry("count", AMQP_FIELD_KIND_I32);
    entries[1].value.value.i32 = 42;
    entries[2] = entry("sequence", AMQP_FIELD_KIND_I64);
    entries[2].value.value.i64 = 1234567890123;
    entries[3] = entry("persistent", AMQP_FIELD_KIND_BOOLEAN);
    entries[3].value.value.boolean = 1;
    entries[4] = entry("ratio", AMQP_FIELD_KIND_F64);
    entries[4].value.value.f64 = 0.75;
    entries[5] = entry("created", AMQP_FIELD_KIND_TIMESTAMP);
    entries[5].value.value.u64 = 1700000000;
    entries[6] = entry("source", AMQP_FIELD_KIND_UTF8);
    entries[6].value.value.bytes = rmq_bytes("warren-benchmark");
    entries[7] = entry("delta", AMQP_FIELD_KIND_I16);
    entries[7].value.value.i16 = -7;
    entries[8] = entry("nested", AMQP_FIELD_KIND_TABLE);
    entries[8].value.value.table = {3, nested_entries};
    entries[9] = entry("tags", AMQP_FIELD_KIND_ARRAY);
    entries[9].value.value.array = {3, tag_values};
    table = {10, entries};
  }
};

// ---------------------------------------------------------------------------
// warren side and the shared inputs

warren::field_table make_table() {
  warren::field_table nested;
  nested.add("id", std::int32_t{7}).add("name", "inner").add("ok", false);
  warren::field_array tags;
  tags.items = {warren::field_value("alpha"), warren::field_value(std::int32_t{2}),
                warren::field_value(true)};
  warren::field_table t;
  t.add("x-match", "all")
      .add("count", std::int32_t{42})
      .add("sequence", std::int64_t{1234567890123})
      .add("persistent", true)
      .add("ratio", 0.75)
      .add("created", warren::timestamp{1700000000})
      .add("source", "warren-benchmark")
      .add("delta", std::int16_t{-7})
      .add("nested", std::move(nested))
      .add("tags", std::move(tags));
  return t;
}

struct fixture {
  std::string body;
  warren::publish_frame_args publish_args;
  warren::basic_properties props;
  amqp_basic_publish_t rmq_publish{};
  amqp_basic_properties_t rmq_props{};

  warren::byte_buffer publish_wire;  // warren's encoding of the publish
  warren::byte_buffer deliver_wire;  // deliver method + header + body frames
  warren::frame_view deliver_frames[3];

  warren::field_table table;
  rmq_table rmq;
  warren::byte_buffer table_wire;

  fixture() {
    body.resize(64);
    for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 26);

    publish_args.channel = channel;
    publish_args.exchange = exchange_name;
    publish_args.routing_key = routing_key;
    props.content_type = std::string(content_type);
    props.delivery_mode = 2;

    rmq_publish.ticket = 0;
    rmq_publish.exchange = rmq_bytes(exchange_name);
    rmq_publish.routing_key = rmq_bytes(routing_key);
    rmq_publish.mandatory = 0;
    rmq_publish.immediate = 0;
    rmq_props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
    rmq_props.content_type = rmq_bytes(content_type);
    rmq_props.delivery_mode = 2;

    table = make_table();
  }

  warren::bytes_view body_bytes() const { return warren::as_bytes(body); }
};

fixture& fx() {
  static fixture f;
  return f;
}

std::string hex(warren::bytes_view b) {
  std::string s;
  char tmp[4];
  for (std::size_t i = 0; i < b.size(); ++i) {
    std::snprintf(tmp, sizeof tmp, "%02x", b[i]);
    s += tmp;
    if (i + 1 != b.size()) s += (i % 16 == 15) ? '\n' : ' ';
  }
  return s;
}

bool same_bytes(const char* what, warren::bytes_view ours, warren::bytes_view theirs) {
  if (ours.size() == theirs.size() && std::equal(ours.begin(), ours.end(), theirs.begin()))
    return true;
  std::cerr << "codec-bench: " << what << ": warren and rabbitmq-c bytes differ\nwarren ("
            << ours.size() << "):\n"
            << hex(ours) << "\nrabbitmq-c (" << theirs.size() << "):\n"
            << hex(theirs) << '\n';
  return false;
}

bool fail(const char* what) {
  std::cerr << "codec-bench: startup check failed: " << what << '\n';
  return false;
}

// The floor under any encoder of this message: the same bytes written by code
// that knows the message's shape when it is compiled (which properties are
// set, the length of every string), so it tests and measures nothing at run
// time. Only the strings' and the body's bytes are read from memory, as they
// must be. An encoder that takes the message at run time does at least this.
// Inlined into its benchmark loop, as encode_publish is into its own.
constexpr std::size_t floor_method_payload =
    4 + 2 + 1 + exchange_name.size() + 1 + routing_key.size() + 1;
constexpr std::size_t floor_props_size = 2 + 1 + content_type.size() + 1;
constexpr std::size_t floor_size = 3 * warren::frame_overhead + floor_method_payload + 12 +
                                   floor_props_size;

[[gnu::always_inline]] inline void floor_encode(warren::byte_buffer& out,
                                                const warren::publish_frame_args& a,
                                                const warren::basic_properties& props,
                                                warren::bytes_view body) {
  namespace d = warren::detail;
  constexpr std::size_t body_len = 64;
  std::uint8_t* p = out.extend(floor_size + body_len);
  p[0] = 1;
  d::store16(p + 1, a.channel);
  d::store32(p + 3, floor_method_payload);
  d::store32(p + 7, warren::detail::publish_method_key);
  d::store16(p + 11, 0);
  p += 13;
  *p++ = exchange_name.size();
  std::memcpy(p, a.exchange.data(), exchange_name.size());
  p += exchange_name.size();
  *p++ = routing_key.size();
  std::memcpy(p, a.routing_key.data(), routing_key.size());
  p += routing_key.size();
  *p++ = 0;
  *p++ = warren::frame_end_octet;
  p[0] = 2;
  d::store16(p + 1, a.channel);
  d::store32(p + 3, 12 + floor_props_size);
  d::store16(p + 7, warren::detail::publish_class_id);
  d::store16(p + 9, 0);
  d::store64(p + 11, body_len);
  d::store16(p + 19, warren::basic_properties::content_type_flag |
                         warren::basic_properties::delivery_mode_flag);
  p += 21;
  *p++ = content_type.size();
  std::memcpy(p, props.content_type->data(), content_type.size());
  p += content_type.size();
  *p++ = *props.delivery_mode;
  *p++ = warren::frame_end_octet;
  p[0] = 3;
  d::store16(p + 1, a.channel);
  d::store32(p + 3, body_len);
  std::memcpy(p + 7, body.data(), body_len);
  p[7 + body_len] = warren::frame_end_octet;
}

// Builds the pre-encoded inputs and checks that both libraries agree on every
// byte before anything is timed.
bool prepare_and_check() {
  fixture& f = fx();

  // publish: warren's bytes equal rabbitmq-c's.
  if (warren::encode_publish(f.publish_wire, f.publish_args, f.props, f.body_bytes(), frame_max))
    return fail("warren encode_publish");
  std::vector<std::uint8_t> rmq_out(frame_max + 4096);
  const std::size_t rmq_n =
      rmq_encode_publish(rmq_out.data(), rmq_out.size(), f.rmq_publish, f.rmq_props,
                         reinterpret_cast<const std::uint8_t*>(f.body.data()), f.body.size());
  if (rmq_n == 0) return fail("rabbitmq-c publish encode");
  if (!same_bytes("basic.publish triplet", f.publish_wire.view(), {rmq_out.data(), rmq_n}))
    return false;
  {
    // The floor writes the same bytes as warren's encoder.
    warren::byte_buffer a;
    floor_encode(a, f.publish_args, f.props, f.body_bytes());
    if (f.body.size() != 64 || !same_bytes("publish floor", a.view(), f.publish_wire.view()))
      return false;
  }
  {
    // The prepared encoder writes the same bytes, for this body and for one
    // that needs several body frames.
    warren::prepared_publish prepared;
    if (prepared.prepare(f.publish_args, f.props, frame_max)) return fail("prepared_publish");
    warren::byte_buffer a, b;
    prepared.encode(a, f.body_bytes());
    if (!same_bytes("prepared publish", a.view(), f.publish_wire.view())) return false;
    const std::string big(frame_max * 2 + 100, 'z');
    a.clear();
    prepared.encode(a, warren::as_bytes(big));
    if (warren::encode_publish(b, f.publish_args, f.props, warren::as_bytes(big), frame_max) ||
        !same_bytes("prepared publish, 3 body frames", a.view(), b.view()))
      return false;
  }

  // table: same bytes both ways, and each decoder reads the other's output.
  {
    warren::writer w(f.table_wire);
    warren::encode_table(w, f.table);
    if (!w.ok()) return fail("warren encode_table");
  }
  std::vector<std::uint8_t> rmq_table_out(4096);
  std::size_t off = 0;
  if (amqp_encode_table({rmq_table_out.size(), rmq_table_out.data()}, &f.rmq.table, &off) !=
      AMQP_STATUS_OK)
    return fail("amqp_encode_table");
  if (!same_bytes("field table", f.table_wire.view(), {rmq_table_out.data(), off})) return false;
  {
    warren::reader r(f.table_wire.view());
    warren::field_table back;
    warren::decode_table(r, back);
    if (!r.ok() || !r.empty() || back != f.table) return fail("warren decode_table round trip");

    amqp_pool_t pool;
    init_amqp_pool(&pool, 4096);
    amqp_table_t decoded;
    std::size_t roff = 0;
    const bool ok = amqp_decode_table({f.table_wire.size(), f.table_wire.data()}, &pool, &decoded,
                                      &roff) == AMQP_STATUS_OK &&
                    roff == f.table_wire.size() && decoded.num_entries == 10;
    std::size_t woff = 0;
    const bool same = ok &&
                      amqp_encode_table({rmq_table_out.size(), rmq_table_out.data()}, &decoded,
                                        &woff) == AMQP_STATUS_OK &&
                      same_bytes("field table (rabbitmq-c round trip)", f.table_wire.view(),
                                 {rmq_table_out.data(), woff});
    empty_amqp_pool(&pool);
    if (!same) return fail("rabbitmq-c decode of warren's table");
  }

  // deliver: encode with warren, then split it into frames once.
  {
    warren::basic_deliver d;
    d.consumer_tag = std::string(consumer_tag);
    d.delivery_tag = delivery_tag;
    d.redelivered = false;
    d.exchange = std::string(exchange_name);
    d.routing_key = std::string(routing_key);
    warren::writer w(f.deliver_wire);
    std::size_t at = warren::begin_frame(w, warren::frame_type::method, channel);
    d.encode(w);
    warren::finish_frame(w, at);
    at = warren::begin_frame(w, warren::frame_type::header, channel);
    warren::encode_content_header(w, f.body.size(), f.props);
    warren::finish_frame(w, at);
    if (!w.ok()) return fail("warren encode of basic.deliver");
    warren::write_frame(f.deliver_wire, warren::frame_type::body, channel, f.body_bytes());

    // The same three frames through rabbitmq-c's encoder, for good measure.
    amqp_basic_deliver_t rd{};
    rd.consumer_tag = rmq_bytes(consumer_tag);
    rd.delivery_tag = delivery_tag;
    rd.redelivered = 0;
    rd.exchange = rmq_bytes(exchange_name);
    rd.routing_key = rmq_bytes(routing_key);
    std::size_t n =
        rmq_method_frame(rmq_out.data(), rmq_out.size(), channel, AMQP_BASIC_DELIVER_METHOD, &rd);
    n += rmq_header_frame(rmq_out.data() + n, rmq_out.size() - n, channel, AMQP_BASIC_CLASS,
                          f.body.size(), &f.rmq_props);
    n += rmq_body_frame(rmq_out.data() + n, rmq_out.size() - n, channel, f.body.data(),
                        f.body.size());
    if (!same_bytes("basic.deliver triplet", f.deliver_wire.view(), {rmq_out.data(), n}))
      return false;
  }
  {
    // Frame views into deliver_wire itself, for the payload-only decode.
    const std::uint8_t* p = f.deliver_wire.data();
    for (auto& fr : f.deliver_frames) {
      const std::uint32_t len = ld32(p + 3);
      fr.type = static_cast<warren::frame_type>(p[0]);
      fr.channel = ld16(p + 1);
      fr.payload = warren::bytes_view(p + 7, len);
      p += 8 + len;
    }
    if (p != f.deliver_wire.data() + f.deliver_wire.size()) return fail("deliver frame split");
  }
  {
    warren::frame_parser parser(frame_max);
    parser.feed(f.deliver_wire.view());
    warren::frame_view fr;
    std::error_code ec;
    for (int i = 0; i < 3; ++i) {
      if (parser.next(fr, ec) != warren::frame_parser::status::frame) return fail("frame_parser");
      if (fr.type != f.deliver_frames[i].type ||
          fr.payload.size() != f.deliver_frames[i].payload.size())
        return fail("frame_parser split");
    }
    warren::basic_deliver d;
    warren::content_header h;
    if (warren::decode_method_as(f.deliver_frames[0].payload, d) ||
        warren::decode_content_header(f.deliver_frames[1].payload, h))
      return fail("warren decode of basic.deliver");
    if (d.consumer_tag != consumer_tag || d.delivery_tag != delivery_tag || d.redelivered ||
        d.exchange != exchange_name || d.routing_key != routing_key ||
        h.body_size != f.body.size() || h.properties != f.props)
      return fail("warren decode of basic.deliver: wrong values");
  }
  return true;
}

// ---------------------------------------------------------------------------
// Benchmarks

void publish_encode_warren(benchmark::State& state) {
  fixture& f = fx();
  warren::byte_buffer out(4096);
  const warren::bytes_view body = f.body_bytes();
  for (auto _ : state) {
    out.clear();
    auto ec = warren::encode_publish(out, f.publish_args, f.props, body, frame_max);
    benchmark::DoNotOptimize(ec);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * out.size()));
}

void publish_encode_warren_no_props(benchmark::State& state) {
  fixture& f = fx();
  warren::byte_buffer out(4096);
  const warren::basic_properties none;
  const warren::bytes_view body = f.body_bytes();
  for (auto _ : state) {
    out.clear();
    auto ec = warren::encode_publish(out, f.publish_args, none, body, frame_max);
    benchmark::DoNotOptimize(ec);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * out.size()));
}

// The prepared path: method frame and content header encoded once, then per
// message the prefix copied, the body size patched in and the body frame.
void publish_encode_warren_prepared(benchmark::State& state) {
  fixture& f = fx();
  warren::byte_buffer out(4096);
  warren::prepared_publish prepared;
  if (prepared.prepare(f.publish_args, f.props, frame_max)) {
    state.SkipWithError("prepare failed");
    return;
  }
  const warren::bytes_view body = f.body_bytes();
  for (auto _ : state) {
    out.clear();
    prepared.encode(out, body);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * out.size()));
}

void publish_encode_floor(benchmark::State& state) {
  fixture& f = fx();
  warren::byte_buffer out(4096);
  const warren::bytes_view body = f.body_bytes();
  for (auto _ : state) {
    out.clear();
    floor_encode(out, f.publish_args, f.props, body);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * out.size()));
}

void publish_encode_rabbitmq_c(benchmark::State& state) {
  fixture& f = fx();
  // rabbitmq-c encodes into a connection-wide buffer of frame_max bytes.
  std::vector<std::uint8_t> out(frame_max);
  const auto* body = reinterpret_cast<const std::uint8_t*>(f.body.data());
  std::size_t n = 0;
  for (auto _ : state) {
    n = rmq_encode_publish(out.data(), out.size(), f.rmq_publish, f.rmq_props, body, f.body.size());
    benchmark::DoNotOptimize(n);
    benchmark::ClobberMemory();
  }
  if (n == 0) state.SkipWithError("rabbitmq-c encode failed");
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n));
}

// The floor: copying the bytes warren produces, no encoding at all.
void publish_encode_memcpy(benchmark::State& state) {
  fixture& f = fx();
  std::vector<std::uint8_t> out(4096);
  const std::uint8_t* src = f.publish_wire.data();
  std::size_t n = f.publish_wire.size();
  for (auto _ : state) {
    benchmark::DoNotOptimize(n);  // an opaque size: a real memcpy call, as the encoder's are
    std::memcpy(out.data(), src, n);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n));
}

// What a consumer keeps between deliveries.
struct delivery_sink {
  warren::basic_deliver method;
  warren::content_header header;
  std::string body;
};

void deliver_decode_warren(benchmark::State& state) {
  fixture& f = fx();
  delivery_sink d;
  const warren::bytes_view m = f.deliver_frames[0].payload;
  const warren::bytes_view h = f.deliver_frames[1].payload;
  const warren::bytes_view b = f.deliver_frames[2].payload;
  bool bad = false;
  for (auto _ : state) {
    auto ec1 = warren::decode_method_as(m, d.method);
    auto ec2 = warren::decode_content_header(h, d.header);
    d.body.assign(reinterpret_cast<const char*>(b.data()), b.size());
    bad |= static_cast<bool>(ec1) | static_cast<bool>(ec2);
    benchmark::DoNotOptimize(d);
    benchmark::ClobberMemory();
  }
  if (bad) state.SkipWithError("decode failed");
}

// The same, with the frames split out of a byte stream by frame_parser (the
// stream fed in by copy, as a socket read into the parser's buffer would).
void deliver_decode_warren_parser(benchmark::State& state) {
  fixture& f = fx();
  delivery_sink d;
  warren::frame_parser parser(frame_max);
  const warren::bytes_view wire = f.deliver_wire.view();
  bool bad = false;
  for (auto _ : state) {
    parser.feed(wire);
    warren::frame_view fr;
    std::error_code ec;
    bad |= parser.next(fr, ec) != warren::frame_parser::status::frame ||
           fr.type != warren::frame_type::method ||
           warren::peek_method_key(fr.payload) != warren::basic_deliver::key;
    bad |= static_cast<bool>(warren::decode_method_as(fr.payload, d.method));
    bad |= parser.next(fr, ec) != warren::frame_parser::status::frame ||
           fr.type != warren::frame_type::header;
    bad |= static_cast<bool>(warren::decode_content_header(fr.payload, d.header));
    bad |= parser.next(fr, ec) != warren::frame_parser::status::frame ||
           fr.type != warren::frame_type::body;
    d.body.assign(reinterpret_cast<const char*>(fr.payload.data()), fr.payload.size());
    benchmark::DoNotOptimize(d);
    benchmark::ClobberMemory();
  }
  if (bad) state.SkipWithError("decode failed");
}

// rabbitmq-c's receive path on a buffer holding whole frames: the frames are
// read in place (amqp_handle_input does not copy a frame that arrived whole),
// method and properties decoded into the connection's pool, the pool recycled
// once the message is handled. The body is copied into a reused string as on
// the warren side.
void deliver_decode_rabbitmq_c(benchmark::State& state) {
  fixture& f = fx();
  amqp_pool_t pool;
  init_amqp_pool(&pool, 4096);
  std::string body;
  const std::uint8_t* wire = f.deliver_wire.data();
  const std::size_t wire_len = f.deliver_wire.size();
  bool bad = false;
  for (auto _ : state) {
    const std::uint8_t* p = wire;
    const std::uint8_t* end = wire + wire_len;
    void* method = nullptr;
    void* props = nullptr;
    for (int i = 0; i < 3; ++i) {
      if (end - p < 8) {
        bad = true;
        break;
      }
      const std::uint8_t type = p[0];
      const std::uint32_t len = ld32(p + 3);
      if (static_cast<std::size_t>(end - p) < 8 + std::size_t{len} ||
          p[7 + len] != AMQP_FRAME_END) {
        bad = true;
        break;
      }
      std::uint8_t* payload = const_cast<std::uint8_t*>(p + 7);
      if (type == AMQP_FRAME_METHOD) {
        const amqp_method_number_t id = ld32(payload);
        bad |= amqp_decode_method(id, &pool, {len - 4, payload + 4}, &method) != AMQP_STATUS_OK;
      } else if (type == AMQP_FRAME_HEADER) {
        const std::uint16_t class_id = ld16(payload);
        const std::uint64_t body_size = ld64(payload + 4);
        benchmark::DoNotOptimize(body_size);
        bad |= amqp_decode_properties(class_id, &pool, {len - 12, payload + 12}, &props) !=
               AMQP_STATUS_OK;
      } else {
        body.assign(reinterpret_cast<const char*>(payload), len);
      }
      p += 8 + len;
    }
    benchmark::DoNotOptimize(method);
    benchmark::DoNotOptimize(props);
    benchmark::DoNotOptimize(body);
    benchmark::ClobberMemory();
    recycle_amqp_pool(&pool);
  }
  empty_amqp_pool(&pool);
  if (bad) state.SkipWithError("decode failed");
}

void table_encode_warren(benchmark::State& state) {
  fixture& f = fx();
  warren::byte_buffer out(4096);
  for (auto _ : state) {
    out.clear();
    warren::writer w(out);
    warren::encode_table(w, f.table);
    benchmark::DoNotOptimize(w.ok());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * out.size()));
}

void table_encode_rabbitmq_c(benchmark::State& state) {
  fixture& f = fx();
  std::vector<std::uint8_t> out(4096);
  std::size_t off = 0;
  bool bad = false;
  for (auto _ : state) {
    off = 0;
    bad |= amqp_encode_table({out.size(), out.data()}, &f.rmq.table, &off) != AMQP_STATUS_OK;
    benchmark::DoNotOptimize(off);
    benchmark::ClobberMemory();
  }
  if (bad) state.SkipWithError("encode failed");
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * off));
}

void table_decode_warren(benchmark::State& state) {
  fixture& f = fx();
  warren::field_table out;
  bool bad = false;
  for (auto _ : state) {
    warren::reader r(f.table_wire.view());
    warren::decode_table(r, out);
    bad |= !r.ok();
    benchmark::DoNotOptimize(out);
    benchmark::ClobberMemory();
  }
  if (bad) state.SkipWithError("decode failed");
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * f.table_wire.size()));
}

// rabbitmq-c decodes into its pool and points strings into the input instead
// of copying them; warren owns what it decodes.
void table_decode_rabbitmq_c(benchmark::State& state) {
  fixture& f = fx();
  amqp_pool_t pool;
  init_amqp_pool(&pool, 4096);
  const amqp_bytes_t in{f.table_wire.size(), f.table_wire.data()};
  bool bad = false;
  for (auto _ : state) {
    amqp_table_t t;
    std::size_t off = 0;
    bad |= amqp_decode_table(in, &pool, &t, &off) != AMQP_STATUS_OK;
    benchmark::DoNotOptimize(t);
    benchmark::ClobberMemory();
    recycle_amqp_pool(&pool);
  }
  empty_amqp_pool(&pool);
  if (bad) state.SkipWithError("decode failed");
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * f.table_wire.size()));
}

// ---------------------------------------------------------------------------
// Reporting: the usual display reporter, plus a record of each benchmark's
// time for the ratio summary.

class collecting_reporter : public benchmark::BenchmarkReporter {
 public:
  explicit collecting_reporter(benchmark::BenchmarkReporter* inner) : inner_(inner) {}

  bool ReportContext(const Context& context) override { return inner_->ReportContext(context); }
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs) record(r);
    inner_->ReportRuns(runs);
  }
  void Finalize() override { inner_->Finalize(); }

  bool console() const {
    return dynamic_cast<benchmark::ConsoleReporter*>(inner_.get()) != nullptr;
  }

  // Nanoseconds per iteration: the median when repetitions were asked for,
  // else the mean over the runs seen.
  std::optional<double> ns(const std::string& name) const {
    auto it = times_.find(name);
    if (it == times_.end()) return std::nullopt;
    if (it->second.median) return it->second.median;
    if (it->second.runs == 0) return std::nullopt;
    return it->second.sum / it->second.runs;
  }

  // Every benchmark's ns().
  std::map<std::string, double> table() const {
    std::map<std::string, double> t;
    for (const auto& [name, v] : times_)
      if (auto n = ns(name)) t[name] = *n;
    return t;
  }

 private:
  struct times {
    double sum = 0;
    int runs = 0;
    std::optional<double> median;
  };

  void record(const Run& r) {
    if (r.error_occurred) return;
    // CPU time: on a shared machine, wall time also counts the moments this
    // thread was not running.
    const double ns = r.GetAdjustedCPUTime() / benchmark::GetTimeUnitMultiplier(r.time_unit) * 1e9;
    times& t = times_[r.run_name.function_name];
    if (r.run_type == Run::RT_Aggregate) {
      if (r.aggregate_name == "median" && r.aggregate_unit == benchmark::kTime) t.median = ns;
    } else {
      t.sum += ns;
      ++t.runs;
    }
  }

  std::unique_ptr<benchmark::BenchmarkReporter> inner_;
  std::map<std::string, times> times_;
};

// Nanoseconds per operation, by benchmark name.
using time_table = std::map<std::string, double>;

void print_summary(const time_table& times, std::ostream& os, const char* how) {
  char line[256];
  auto get = [&](const char* name) -> std::optional<double> {
    auto it = times.find(name);
    if (it == times.end()) return std::nullopt;
    return it->second;
  };
  auto verdict = [](bool met) { return met ? "met" : "MISSED"; };

  os << "\ncodec ratio summary (CPU time per operation" << how << ")\n";

  const auto pw = get("publish_encode/warren");
  const auto pm = get("publish_encode/memcpy");
  const auto pr = get("publish_encode/rabbitmq-c");
  if (pw) {
    std::snprintf(line, sizeof line,
                  "  publish encode (method + header + 64 B body, %zu bytes): warren %.1f ns\n",
                  fx().publish_wire.size(), *pw);
    os << line;
    if (pm) {
      const double r = *pw / *pm;
      std::snprintf(line, sizeof line,
                    "    warren / memcpy        %6.2fx  (memcpy %.1f ns)\n", r, *pm);
      os << line;
    }
    if (pr) {
      const double r = *pr / *pw;
      std::snprintf(line, sizeof line,
                    "    rabbitmq-c / warren    %6.2fx  (rabbitmq-c %.1f ns; goal >= 3x: %s)\n",
                    r, *pr, verdict(r >= 3.0));
      os << line;
    }
  }

  const auto pf = get("publish_encode/floor");
  if (pf && pr) {
    std::snprintf(line, sizeof line,
                  "  floor (the same bytes, message shape fixed at compile time): %.1f ns\n"
                  "    rabbitmq-c / floor     %6.2fx\n",
                  *pf, *pr / *pf);
    os << line;
  }

  const auto pp = get("publish_encode/warren_prepared");
  if (pp) {
    std::snprintf(line, sizeof line,
                  "  prepared publish (exchange, key, properties encoded once): warren %.1f ns\n",
                  *pp);
    os << line;
    if (pm) {
      const double r = *pp / *pm;
      std::snprintf(line, sizeof line, "    prepared / memcpy      %6.2fx  (goal <= 1.5x: %s)\n", r,
                    verdict(r <= 1.5));
      os << line;
    }
    if (pr) {
      const double r = *pr / *pp;
      std::snprintf(line, sizeof line, "    rabbitmq-c / prepared  %6.2fx\n", r);
      os << line;
    }
  }

  const auto dw = get("deliver_decode/warren");
  const auto dp = get("deliver_decode/warren_frame_parser");
  const auto dr = get("deliver_decode/rabbitmq-c");
  if (dw) {
    std::snprintf(
        line, sizeof line,
        "  deliver decode (method + header + body copy): warren %.1f ns\n", *dw);
    os << line;
    if (dp) {
      std::snprintf(line, sizeof line, "    with frame_parser splitting a fed stream: %.1f ns\n",
                    *dp);
      os << line;
    }
    if (dr) {
      std::snprintf(line, sizeof line,
                    "    rabbitmq-c / warren    %6.2fx  (rabbitmq-c %.1f ns; goal >= 1x: %s)\n",
                    *dr / *dw, *dr, verdict(*dr >= *dw));
      os << line;
    }
  }

  struct table_row {
    const char* warren;
    const char* rabbitmq_c;
    const char* label;
  };
  for (const table_row& row :
       {table_row{"table_encode/warren", "table_encode/rabbitmq-c", "table encode"},
        table_row{"table_decode/warren", "table_decode/rabbitmq-c", "table decode"}}) {
    const auto w = get(row.warren);
    const auto r = get(row.rabbitmq_c);
    if (!w) continue;
    std::snprintf(line, sizeof line,
                  "  %s (10 entries, nested table + array, %zu bytes): warren %.1f ns\n", row.label,
                  fx().table_wire.size(), *w);
    os << line;
    if (r) {
      std::snprintf(line, sizeof line,
                    "    rabbitmq-c / warren    %6.2fx  (rabbitmq-c %.1f ns; goal >= 1x: %s)\n",
                    *r / *w, *r, verdict(*r >= *w));
      os << line;
    }
  }
  if (dr || get("table_decode/rabbitmq-c"))
    os << "  (rabbitmq-c's decoders leave strings pointing into the input; warren's copy\n"
          "   them into the caller's reused std::strings)\n";
  os.flush();
}

void register_all() {
  struct entry {
    const char* name;
    void (*fn)(benchmark::State&);
  };
  static constexpr entry all[] = {
      {"publish_encode/warren", publish_encode_warren},
      {"publish_encode/warren_no_properties", publish_encode_warren_no_props},
      {"publish_encode/warren_prepared", publish_encode_warren_prepared},
      {"publish_encode/floor", publish_encode_floor},
      {"publish_encode/rabbitmq-c", publish_encode_rabbitmq_c},
      {"publish_encode/memcpy", publish_encode_memcpy},
      {"deliver_decode/warren", deliver_decode_warren},
      {"deliver_decode/warren_frame_parser", deliver_decode_warren_parser},
      {"deliver_decode/rabbitmq-c", deliver_decode_rabbitmq_c},
      {"table_encode/warren", table_encode_warren},
      {"table_encode/rabbitmq-c", table_encode_rabbitmq_c},
      {"table_decode/warren", table_decode_warren},
      {"table_decode/rabbitmq-c", table_decode_rabbitmq_c},
  };
  for (const auto& e : all)
    benchmark::RegisterBenchmark(e.name, e.fn)->Unit(benchmark::kNanosecond);
}

}  // namespace

// --processes=N: where the operating system places the stack, the heap and
// the code moves a benchmark's time by up to a third from one process to the
// next (for warren and rabbitmq-c alike), far more than between repetitions in
// one process. So this runs the benchmarks in N processes, one after another,
// and reports each benchmark's median over them, with the range; the summary
// uses the medians. The other arguments go to every process.
int run_processes(int n, const std::vector<std::string>& args) {
  auto quote = [](const std::string& a) {
    std::string q = "'";
    for (char c : a) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
  };
  // This program's own path: /proc/self/exe would name the shell popen runs.
  char self[4096];
  const ssize_t len = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (len <= 0) {
    std::perror("codec-bench: readlink /proc/self/exe");
    return 1;
  }
  std::string cmd = quote(std::string(self, static_cast<std::size_t>(len)));
  for (const auto& a : args) cmd += ' ' + quote(a);
  cmd += " --codec-child";
  std::map<std::string, std::vector<double>> runs;
  for (int i = 0; i < n; ++i) {
    std::fflush(stdout);
    FILE* child = ::popen(cmd.c_str(), "r");
    if (child == nullptr) {
      std::perror("codec-bench: popen");
      return 1;
    }
    char buf[512];
    char name[400];
    double ns = 0;
    while (std::fgets(buf, sizeof buf, child) != nullptr)
      if (std::sscanf(buf, "T %399s %lf", name, &ns) == 2) runs[name].push_back(ns);
    if (::pclose(child) != 0) {
      std::fprintf(stderr, "codec-bench: process %d of %d failed\n", i + 1, n);
      return 1;
    }
  }
  time_table medians;
  std::printf("%-40s %10s %10s %10s  (ns, CPU time, %d processes)\n", "benchmark", "median",
              "min", "max", n);
  for (auto& [name, v] : runs) {
    std::sort(v.begin(), v.end());
    const std::size_t k = v.size();
    const double median = k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
    medians[name] = median;
    std::printf("%-40s %10.2f %10.2f %10.2f\n", name.c_str(), median, v.front(), v.back());
  }
  char how[64];
  std::snprintf(how, sizeof how, ", median over %d processes", n);
  print_summary(medians, std::cout, how);
  return 0;
}

int main(int argc, char** argv) {
  // Our own flags first; the rest are Google Benchmark's.
  int processes = 0;
  bool child = false;
  std::vector<std::string> passed;
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a.starts_with("--processes=")) {
      processes = std::atoi(argv[i] + 12);
      if (processes < 1) {
        std::fprintf(stderr, "codec-bench: --processes needs a count of 1 or more\n");
        return 2;
      }
    } else if (a == "--codec-child") {
      child = true;
    } else {
      passed.emplace_back(a);
      rest.push_back(argv[i]);
    }
  }
  if (processes != 0) {
    if (!prepare_and_check()) return 1;  // the summary quotes the encoded sizes
    return run_processes(processes, passed);
  }
  int rest_argc = static_cast<int>(rest.size());
  rest.push_back(nullptr);
  benchmark::Initialize(&rest_argc, rest.data());
  if (benchmark::ReportUnrecognizedArguments(rest_argc, rest.data())) return 1;
  if (!prepare_and_check()) return 1;
  register_all();

  // A child of --processes prints only "T name ns" lines.
  std::ostream discard(nullptr);
  std::unique_ptr<benchmark::BenchmarkReporter> display(benchmark::CreateDefaultDisplayReporter());
  if (child) {
    display->SetOutputStream(&discard);
    display->SetErrorStream(&discard);
  }
  collecting_reporter reporter(display.release());
  benchmark::RunSpecifiedBenchmarks(&reporter);
  if (child) {
    for (const auto& [name, ns] : reporter.table()) std::printf("T %s %.4f\n", name.c_str(), ns);
  } else {
    print_summary(reporter.table(), reporter.console() ? std::cout : std::cerr, "");
  }
  benchmark::Shutdown();
  return 0;
}
