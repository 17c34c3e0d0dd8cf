#include "tools/conformance/report.hpp"

#include <cstdio>
#include <set>

namespace warren::conformance {

namespace {

constexpr verdict all_verdicts[] = {verdict::pass, verdict::fail, verdict::deviation,
                                    verdict::unsupported};

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c >= 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string md_cell(std::string_view s) {
  std::string out;
  for (char c : printable(s)) {
    if (c == '|')
      out += "\\|";
    else
      out += c;
  }
  return out;
}

std::string pad(std::string s, std::size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

}  // namespace

std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string format_totals(const run_report& r) {
  std::string s = std::to_string(r.results.size()) + " scenarios:";
  for (verdict v : all_verdicts)
    s += " " + std::to_string(r.count(v)) + " " + std::string(verdict_name(v)) + ",";
  s.pop_back();
  char buf[64];
  std::snprintf(buf, sizeof buf, " (%.1f s)", r.seconds);
  return s + buf;
}

std::string format_table(const run_report& r) {
  std::size_t id_w = 8, exp_w = 8, obs_w = 8;
  for (const auto& x : r.results) {
    id_w = std::max(id_w, x.id.size());
    exp_w = std::max(exp_w, std::min<std::size_t>(x.expected.size(), 40));
    obs_w = std::max(obs_w, std::min<std::size_t>(printable(x.observed).size(), 40));
  }
  std::string s = pad("scenario", id_w) + "  " + pad("verdict", 11) + "  " +
                  pad("expected", exp_w) + "  " + pad("observed", obs_w) + "  checks\n";
  for (const auto& x : r.results) {
    s += pad(x.id, id_w) + "  " + pad(std::string(verdict_name(x.outcome)), 11) + "  " +
         pad(x.expected, exp_w) + "  " + pad(printable(x.observed), obs_w) + "  " + x.checks + "\n";
    if (!x.reason.empty()) s += pad("", id_w) + "  why: " + printable(x.reason) + "\n";
  }
  return s;
}

std::string format_json(const run_report& r) {
  std::string s = "{\n  \"broker\": {\"product\": " + json_string(r.broker.product) +
                  ", \"version\": " + json_string(r.broker.version) + "},\n";
  s += "  \"uri\": " + json_string(r.uri) + ",\n";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f", r.seconds);
  s += "  \"seconds\": " + std::string(buf) + ",\n  \"totals\": {";
  bool first = true;
  for (verdict v : all_verdicts) {
    s += (first ? "" : ", ") + json_string(verdict_name(v)) + ": " + std::to_string(r.count(v));
    first = false;
  }
  s += "},\n  \"results\": [";
  first = true;
  for (const auto& x : r.results) {
    s += first ? "\n" : ",\n";
    first = false;
    s += "    {\"id\": " + json_string(x.id) + ", \"checks\": " + json_string(x.checks) +
         ", \"expected\": " + json_string(x.expected) +
         ", \"observed\": " + json_string(x.observed) +
         ", \"verdict\": " + json_string(verdict_name(x.outcome)) +
         ", \"reason\": " + json_string(x.reason) +
         ", \"extension\": " + (x.extension ? "true" : "false") +
         ", \"ms\": " + std::to_string(x.millis) + "}";
  }
  s += "\n  ]\n}\n";
  return s;
}

std::string format_markdown(const run_report& r) {
  std::string s = "# " + md_cell(r.broker.product.empty() ? "broker" : r.broker.product) + " " +
                  md_cell(r.broker.version) + "\n\n";
  s += "Written by `warren-conformance --markdown`. " + md_cell(format_totals(r)) + ".\n\n";
  s += "| verdict | count |\n| --- | ---: |\n";
  for (verdict v : all_verdicts)
    s += "| " + std::string(verdict_name(v)) + " | " + std::to_string(r.count(v)) + " |\n";
  s += "\n| scenario | checks | expected | observed | verdict | why |\n"
       "| --- | --- | --- | --- | --- | --- |\n";
  for (const auto& x : r.results) {
    s += "| `" + md_cell(x.id) + "` | " + md_cell(x.checks) + (x.extension ? " (extension)" : "") +
         " | " + md_cell(x.expected) + " | " + md_cell(x.observed) + " | " +
         (x.outcome == verdict::fail ? "**fail**" : std::string(verdict_name(x.outcome))) + " | " +
         md_cell(x.reason) + " |\n";
  }
  return s;
}

std::string format_verdicts(const run_report& r) {
  std::string s;
  for (const auto& x : r.results) s += x.id + " " + std::string(verdict_name(x.outcome)) + "\n";
  return s;
}

bool parse_verdicts(std::string_view text, std::map<std::string, std::string>& out,
                    std::string& why) {
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    const auto sp = line.find(' ');
    if (sp == std::string_view::npos || sp == 0 ||
        line.find(' ', sp + 1) != std::string_view::npos) {
      why = std::string(line);
      return false;
    }
    const std::string v(line.substr(sp + 1));
    std::string_view rest = v;
    for (;;) {
      const auto bar = rest.find('|');
      const std::string_view one = rest.substr(0, bar);
      bool known = false;
      for (verdict x : all_verdicts) known = known || verdict_name(x) == one;
      if (!known) {
        why = std::string(line);
        return false;
      }
      if (bar == std::string_view::npos) break;
      rest.remove_prefix(bar + 1);
    }
    out[std::string(line.substr(0, sp))] = v;
  }
  return true;
}

std::vector<std::string> compare_verdicts(const run_report& r,
                                          const std::map<std::string, std::string>& expected,
                                          bool complete) {
  std::vector<std::string> diffs;
  std::set<std::string> seen;
  for (const auto& x : r.results) {
    seen.insert(x.id);
    const auto it = expected.find(x.id);
    const std::string now(verdict_name(x.outcome));
    if (it == expected.end())
      diffs.push_back(x.id + ": " + now + ", not in the list");
    else if (!matches_expected(it->second, now))
      diffs.push_back(x.id + ": " + now + ", was " + it->second +
                      " (observed: " + printable(x.observed) + ")");
  }
  if (complete)
    for (const auto& [id, v] : expected)
      if (!seen.count(id)) diffs.push_back(id + ": in the list (" + v + "), not run");
  return diffs;
}

}  // namespace warren::conformance
