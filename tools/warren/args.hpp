// The command line of one warren subcommand: what options it takes, parsing
// argv against that, and the --help text made from the same description.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace warren::cli {

// A malformed command line; the command prints it with a pointer to --help
// and exits with status 2.
class usage_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct option_spec {
  std::string_view name;   // "routing-key" for --routing-key
  std::string_view value;  // the value's placeholder ("KEY"); empty for a flag
  std::string_view help;
  bool repeatable = false;
};

struct command_spec {
  std::string_view name;
  std::string_view brief;  // one line for the command list of warren --help
  std::string_view summary;
  // Options that may also be given positionally, in this order
  // ("bind-queue q ex key" is "--queue q --exchange ex --routing-key key").
  std::vector<std::string_view> positionals;
  std::vector<option_spec> options;
  std::string_view details;  // further paragraphs of --help
};

// What the command line said. Option names are without the leading "--".
class parsed_args {
 public:
  bool help = false;
  bool has(std::string_view name) const;
  // The value of a single-valued option.
  std::optional<std::string> value(std::string_view name) const;
  std::string value_or(std::string_view name, std::string_view fallback) const;
  // Every value of a repeatable option, in order.
  std::vector<std::string> values(std::string_view name) const;
  // An unsigned integer option within [min, max], `fallback` when absent.
  std::uint64_t number(std::string_view name, std::uint64_t fallback, std::uint64_t min,
                       std::uint64_t max) const;
  // The value of an option the command cannot do without.
  std::string required(std::string_view name) const;
  // Throws usage_error if more than one of `names` is given.
  void exclusive(std::initializer_list<std::string_view> names) const;

  void add(std::string name, std::string value);

 private:
  std::map<std::string, std::vector<std::string>, std::less<>> values_;
};

// The options every command takes (--uri, repeatable, and --help), added to
// each spec.
const std::vector<option_spec>& common_options();

// Parses args (argv after the subcommand's name). Throws usage_error.
parsed_args parse_args(const command_spec& spec, const std::vector<std::string>& args);

// "usage: warren NAME [OPTIONS] ...", the summary, the options and details.
std::string help_text(const command_spec& spec);

}  // namespace warren::cli
