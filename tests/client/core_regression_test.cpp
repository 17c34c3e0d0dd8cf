// Inputs the `core` fuzzer found to break an invariant of connection_core,
// saved under tests/fuzz/regressions/core/ and replayed here through the same
// session (tests/fuzz/core_session.hpp): none may break one any more. A file's
// name says what went wrong; tests/fuzz/regressions/README.md tells more.
//
// Also checks the session itself: its sample programs (the fuzzer's seeds)
// must get deep and break nothing.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "../fuzz/core_session.hpp"

#ifndef WARREN_CORE_REGRESSIONS
#error "WARREN_CORE_REGRESSIONS must name the directory of saved inputs"
#endif

namespace fs = std::filesystem;
using warren::fuzz::core_session;
using warren::fuzz::on_violation;

namespace {

std::vector<std::uint8_t> read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

warren::bytes_view view(const std::vector<std::uint8_t>& v) { return {v.data(), v.size()}; }

}  // namespace

TEST_CASE("core fuzz regressions: no saved input breaks an invariant") {
  const fs::path dir = WARREN_CORE_REGRESSIONS;
  REQUIRE(fs::is_directory(dir));
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  CHECK(!files.empty());
  for (const fs::path& p : files) {
    const std::string name = p.filename().string();
    CAPTURE(name);
    const std::vector<std::uint8_t> input = read_file(p);
    core_session s(view(input), on_violation::record);
    s.run();
    CHECK_MESSAGE(!s.violated(), name, ": ", s.violation());
  }
}

TEST_CASE("core fuzz session: the sample programs get deep and break nothing") {
  for (const auto& [name, program] : warren::fuzz::sample_programs()) {
    CAPTURE(name);
    core_session s(view(program.bytes()), on_violation::record);
    CHECK(s.run());
    CHECK_MESSAGE(!s.violated(), s.violation());
    const auto& st = s.stats();
    CHECK(st.closed);
    CHECK(st.channels_opened >= 1);
    if (name == "consume") CHECK(st.deliveries_taken == 6);
    if (name == "confirms") CHECK(st.confirms == 4);
    if (name == "misc") CHECK(st.events_taken == 2);
  }
}

TEST_CASE("core fuzz session: inputs too short or empty still run the handshake") {
  for (const std::vector<std::uint8_t>& input :
       {std::vector<std::uint8_t>{}, std::vector<std::uint8_t>{0xFF},
        std::vector<std::uint8_t>{0, 0}}) {
    core_session s(view(input), on_violation::record);
    CHECK(s.run());
    CHECK(s.stats().closed);
  }
}
