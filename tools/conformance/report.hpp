// The forms a run's results are written in: the terminal table, JSON (for CI),
// Markdown (for publishing) and a plain verdict list (one "id verdict" a line)
// that a later run can be compared with.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "tools/conformance/runner.hpp"

namespace warren::conformance {

// Text from the broker is data: control characters and non-ASCII bytes come
// out as \xNN.
std::string printable(std::string_view s);

std::string format_table(const run_report& r);
std::string format_totals(const run_report& r);
std::string format_json(const run_report& r);
std::string format_markdown(const run_report& r);
std::string format_verdicts(const run_report& r);

// Parses a verdict list: "id verdict" a line, where the verdict may be several
// separated by '|' for a scenario whose outcome the broker leaves to chance
// ("pass|fail"); lines that are empty or start with '#' are skipped. Returns
// false (with the line in `why`) on a malformed line.
bool parse_verdicts(std::string_view text, std::map<std::string, std::string>& out,
                    std::string& why);

// The differences between a run and a verdict list: scenarios whose verdict
// changed, that the list lacks, or (when `complete`) that the run lacks.
std::vector<std::string> compare_verdicts(const run_report& r,
                                          const std::map<std::string, std::string>& expected,
                                          bool complete);

}  // namespace warren::conformance
