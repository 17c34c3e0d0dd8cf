// Writes a starting corpus for each fuzz target, so the fuzzers begin from
// well-formed inputs instead of having to discover the formats:
//
//   seeds OUT_DIR     creates OUT_DIR/{frame_parser,method,field_table,content_header,core}/
//
// Built and run by tests/fuzz/run; not a fuzz target itself.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <variant>

#include "../proto/method_samples.hpp"
#include "core_session.hpp"
#include "warren/client/wire.hpp"
#include "warren/codec/frame.hpp"

using namespace warren;
namespace fs = std::filesystem;

namespace {

void write(const fs::path& dir, const std::string& name, std::string_view bytes) {
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string with_prefix(std::string_view prefix, std::string_view bytes) {
  return std::string(prefix) + std::string(bytes);
}

field_table every_type() {
  field_table t;
  t.add("t", true).add("b", std::int8_t{-1}).add("B", std::uint8_t{1}).add("s", std::int16_t{-1});
  t.add("u", std::uint16_t{1}).add("I", std::int32_t{-1}).add("i", std::uint32_t{1});
  t.add("l", std::int64_t{-1}).add("f", 0.5f).add("d", 0.25).add("D", decimal{1, 5});
  t.add("S", "s").add("x", byte_array{"x"}).add("T", timestamp{1}).add("V", void_value{});
  t.add("A", field_array{{std::int32_t{1}, "a", field_table{}.add("k", true)}});
  t.add("F", field_table{}.add("n", field_table{}.add("z", void_value{})));
  return t;
}

template <std::size_t... I>
void method_seeds(const fs::path& out, byte_buffer& stream, std::index_sequence<I...>) {
  auto one = [&](auto tag) {
    using M = typename decltype(tag)::type;
    const M m = test::method_sample<M>::make();
    byte_buffer payload;
    writer w(payload);
    m.encode(w);
    write(out / "method", std::string(M::name), payload.str());
    write_frame(stream, frame_type::method, static_cast<std::uint16_t>(M::key), payload.view());
  };
  (one(std::type_identity<std::variant_alternative_t<I, any_method>>{}), ...);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const fs::path out = argv[1];

  byte_buffer stream;
  method_seeds(out, stream, std::make_index_sequence<std::variant_size_v<any_method>>{});
  write_heartbeat(stream);

  basic_properties props;
  props.content_type = "text/plain";
  props.headers = every_type();
  props.delivery_mode = 2;
  props.timestamp = timestamp{1700000000};
  props.cluster_id = "c";
  byte_buffer header;
  writer hw(header);
  encode_content_header(hw, 20, props);
  write(out / "content_header", "all",
        with_prefix(std::string(1, static_cast<char>(header.size())), header.str()) +
            std::string("\x0a"
                        "0123456789"
                        "\x0a"
                        "abcdefghij",
                        22));
  byte_buffer empty_header;
  writer ew(empty_header);
  encode_content_header(ew, 0, {});
  write(out / "content_header", "empty",
        with_prefix(std::string(1, static_cast<char>(empty_header.size())), empty_header.str()));

  byte_buffer table;
  writer tw(table);
  encode_table(tw, every_type());
  write(out / "field_table", "every_type", with_prefix("\x01", table.str()));
  byte_buffer array;
  writer aw(array);
  encode_array(aw, field_array{{std::int32_t{1}, "a", every_type()}});
  write(out / "field_table", "array", with_prefix(std::string(1, '\0'), array.str()));

  byte_buffer publish;
  encode_publish(publish, {.channel = 1, .exchange = "ex", .routing_key = "rk"}, props,
                 as_bytes(std::string(5000, 'b')), 4096);
  write(out / "frame_parser", "methods", with_prefix(std::string("\x05\x12\x34", 3), stream.str()));
  write(out / "frame_parser", "publish",
        with_prefix(std::string("\x01\x00\x01", 3), publish.str()));
  write(out / "frame_parser", "protocol_header",
        with_prefix(std::string("\x00\x00\x00", 3),
                    std::string_view(reinterpret_cast<const char*>(protocol_header.data()), 8)));
  for (const auto& [name, p] : fuzz::sample_programs()) write(out / "core", name, p.str());
  return 0;
}
