// warren-conformance: runs the protocol conformance catalogue against any
// AMQP 0-9-1 broker and reports a verdict per scenario.
//
//   warren-conformance [--uri URI] [--only GLOB]... [--list] [--json FILE]
//                      [--markdown FILE] [--timeout-ms N] [--jobs N]
//                      [--verdicts FILE] [--expect FILE] [--restart-command CMD]
//                      [--quiet]
//
// Exit status: 0 when no scenario is `fail` (and, with --expect, every
// verdict is the one listed), 1 otherwise, 2 for a usage error, 3 when the
// broker cannot be reached or refuses the login.

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tools/conformance/report.hpp"
#include "tools/conformance/runner.hpp"
#include "tools/redact.hpp"

namespace {

using namespace warren::conformance;

[[noreturn]] void usage(int code) {
  std::fprintf(
      code == 0 ? stdout : stderr,
      "usage: warren-conformance [--uri URI] [--only GLOB]... [--list] [--json FILE]\n"
      "                          [--markdown FILE] [--timeout-ms N] [--jobs N]\n"
      "                          [--verdicts FILE] [--expect FILE]\n"
      "                          [--restart-command CMD] [--quiet]\n"
      "\n"
      "  --uri URI        the broker (default $AMQP_URL, else amqp://guest:guest@127.0.0.1:5672/)\n"
      "  --only GLOB      run the scenarios whose id matches ('*', '?'); repeatable\n"
      "  --list           print the catalogue and exit\n"
      "  --json FILE      write the results as JSON\n"
      "  --markdown FILE  write the results as a Markdown table\n"
      "  --timeout-ms N   how long to wait for each reply (default 2000)\n"
      "  --jobs N         scenarios run at once (default 4)\n"
      "  --verdicts FILE  write one 'id verdict' line per scenario\n"
      "  --expect FILE    fail unless every verdict is the one FILE lists\n"
      "  --restart-command CMD\n"
      "                   run CMD (by the shell) when the broker stops answering;\n"
      "                   the scenarios that overlapped the outage run again\n"
      "  --quiet          print only the totals and problems\n"
      "\n"
      "Exit status: 0 when no scenario fails, 1 otherwise, 2 usage, 3 no broker.\n");
  std::exit(code);
}

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
  f.close();
  if (!f) {
    std::fprintf(stderr, "warren-conformance: cannot write %s\n", path.c_str());
    return false;
  }
  return true;
}

std::string make_run_id() {
  const auto t = std::chrono::system_clock::now().time_since_epoch();
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t).count();
  char buf[32];
  std::snprintf(buf, sizeof buf, "%llx%x", static_cast<unsigned long long>(us) & 0xFFFFFFFFFFull,
                static_cast<unsigned>(::getpid()) & 0xFFFF);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  std::string uri;
  if (const char* env = std::getenv("AMQP_URL"); env != nullptr && *env != '\0') uri = env;
  if (uri.empty()) uri = "amqp://guest:guest@127.0.0.1:5672/";
  std::vector<std::string> only;
  std::string json_path, md_path, verdicts_path, expect_path, restart_command;
  bool list = false, quiet = false;
  long timeout_ms = 2000, jobs = 4;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(2);
      return argv[++i];
    };
    auto number = [&](long lo, long hi) {
      const std::string v = value();
      char* end = nullptr;
      const long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || n < lo || n > hi) {
        std::fprintf(stderr, "warren-conformance: %s wants a number from %ld to %ld\n", a.c_str(),
                     lo, hi);
        std::exit(2);
      }
      return n;
    };
    if (a == "--uri")
      uri = value();
    else if (a == "--only")
      only.push_back(value());
    else if (a == "--list")
      list = true;
    else if (a == "--json")
      json_path = value();
    else if (a == "--markdown")
      md_path = value();
    else if (a == "--timeout-ms")
      timeout_ms = number(50, 600000);
    else if (a == "--jobs")
      jobs = number(1, 64);
    else if (a == "--verdicts")
      verdicts_path = value();
    else if (a == "--expect")
      expect_path = value();
    else if (a == "--restart-command")
      restart_command = value();
    else if (a == "--quiet")
      quiet = true;
    else if (a == "-h" || a == "--help")
      usage(0);
    else {
      std::fprintf(stderr, "warren-conformance: unknown argument '%s'\n",
                   warren::tools::redact_passwords(a).c_str());
      usage(2);
    }
  }

  const std::vector<scenario> all = catalogue();
  std::vector<const scenario*> chosen;
  for (const auto& s : all) {
    bool take = only.empty();
    for (const auto& g : only) take = take || glob_match(g, s.id);
    if (take) chosen.push_back(&s);
  }
  if (list) {
    for (const auto* s : chosen)
      std::printf("%-52s %s%s\n    expected: %s\n", s->id.c_str(), s->checks.c_str(),
                  s->extension ? " (extension)" : "", s->expected.c_str());
    std::printf("%zu scenarios\n", chosen.size());
    return 0;
  }
  if (chosen.empty()) {
    std::fprintf(stderr, "warren-conformance: no scenario matches\n");
    return 2;
  }

  run_config cfg;
  std::string why;
  if (warren::parse_uri(uri, cfg.params, &why)) {
    std::fprintf(stderr, "warren-conformance: bad URI: %s\n", why.c_str());
    return 2;
  }
  if (cfg.params.tls) {
    std::fprintf(stderr,
                 "warren-conformance: amqps is not supported: the raw sessions speak plain TCP\n");
    return 2;
  }
  cfg.reply_timeout = milliseconds(timeout_ms);
  cfg.scenario_budget = std::max(milliseconds(20000), cfg.reply_timeout * 10);
  cfg.run_id = make_run_id();
  cfg.restart_command = restart_command;

  run_report report;
  report.uri = warren::to_uri(cfg.params, true);
  const auto start = clock::now();
  try {
    report.broker = probe_broker(cfg);
  } catch (const step_failed& f) {
    std::fprintf(stderr, "warren-conformance: cannot use the broker at %s: %s\n",
                 report.uri.c_str(), printable(f.observed).c_str());
    return 3;
  }
  if (!quiet)
    std::printf("broker: %s %s at %s; %zu scenarios, %ld at once\n",
                printable(report.broker.product).c_str(), printable(report.broker.version).c_str(),
                report.uri.c_str(), chosen.size(), jobs);
  std::fflush(stdout);
  report.results = run_all(chosen, cfg, report.broker, static_cast<unsigned>(jobs));
  report.seconds = std::chrono::duration<double>(clock::now() - start).count();

  if (!quiet) std::fputs(format_table(report).c_str(), stdout);
  for (const auto& r : report.results)
    if (quiet && r.outcome == verdict::fail)
      std::printf("fail: %s: expected %s, observed %s\n", r.id.c_str(), r.expected.c_str(),
                  printable(r.observed).c_str());
  std::printf("%s\n", format_totals(report).c_str());

  bool written = true;
  if (!json_path.empty()) written = write_file(json_path, format_json(report)) && written;
  if (!md_path.empty()) written = write_file(md_path, format_markdown(report)) && written;
  if (!verdicts_path.empty())
    written = write_file(verdicts_path, format_verdicts(report)) && written;
  if (!expect_path.empty()) {
    std::ifstream f(expect_path, std::ios::binary);
    std::stringstream text;
    text << f.rdbuf();
    std::map<std::string, std::string> expected;
    if (!f || !parse_verdicts(text.str(), expected, why)) {
      std::fprintf(stderr, "warren-conformance: cannot read verdicts from %s%s%s\n",
                   expect_path.c_str(), why.empty() ? "" : ": bad line: ", why.c_str());
      return 2;
    }
    const auto diffs = compare_verdicts(report, expected, only.empty());
    for (const auto& d : diffs) std::printf("changed: %s\n", d.c_str());
    std::printf("%zu verdicts differ from %s\n", diffs.size(), expect_path.c_str());
    // Against a list the verdicts are what matter: a broker known to fail
    // some scenarios still passes when it fails exactly those.
    return diffs.empty() && written ? 0 : 1;
  }
  return report.count(verdict::fail) == 0 && written ? 0 : 1;
}
