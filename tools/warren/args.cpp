#include "tools/warren/args.hpp"

#include <cctype>
#include <charconv>

namespace warren::cli {

bool parsed_args::has(std::string_view name) const { return values_.find(name) != values_.end(); }

std::optional<std::string> parsed_args::value(std::string_view name) const {
  auto it = values_.find(name);
  if (it == values_.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::string parsed_args::value_or(std::string_view name, std::string_view fallback) const {
  auto v = value(name);
  return v ? *v : std::string(fallback);
}

std::vector<std::string> parsed_args::values(std::string_view name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

std::uint64_t parsed_args::number(std::string_view name, std::uint64_t fallback, std::uint64_t min,
                                  std::uint64_t max) const {
  auto v = value(name);
  if (!v) return fallback;
  std::uint64_t n = 0;
  const char* end = v->data() + v->size();
  auto [p, ec] = std::from_chars(v->data(), end, n);
  if (v->empty() || ec != std::errc() || p != end || n < min || n > max)
    throw usage_error("--" + std::string(name) + " wants a whole number from " +
                      std::to_string(min) + " to " + std::to_string(max) + ", not '" + *v + "'");
  return n;
}

std::string parsed_args::required(std::string_view name) const {
  auto v = value(name);
  if (!v) throw usage_error("--" + std::string(name) + " is required");
  return *v;
}

void parsed_args::exclusive(std::initializer_list<std::string_view> names) const {
  std::string given;
  int n = 0;
  for (auto name : names) {
    if (!has(name)) continue;
    given += (n++ ? " and --" : "--") + std::string(name);
  }
  if (n > 1) throw usage_error(given + " cannot be used together");
}

void parsed_args::add(std::string name, std::string value) {
  auto it = values_.find(name);
  if (it == values_.end()) it = values_.emplace(std::move(name), std::vector<std::string>{}).first;
  it->second.push_back(std::move(value));
}

const std::vector<option_spec>& common_options() {
  static const std::vector<option_spec> common = {
      {"uri", "URI",
       "the broker, amqp:// or amqps:// (default: $AMQP_URL\n"
       "or amqp://guest:guest@127.0.0.1:5672/); given more\n"
       "than once: tried in order until one answers",
       true},
      {"help", "", "show this help and exit"},
  };
  return common;
}

namespace {

const option_spec* find_option(const command_spec& spec, std::string_view name) {
  for (const auto& o : spec.options)
    if (o.name == name) return &o;
  for (const auto& o : common_options())
    if (o.name == name) return &o;
  return nullptr;
}

}  // namespace

parsed_args parse_args(const command_spec& spec, const std::vector<std::string>& args) {
  parsed_args out;
  std::vector<std::string> positional;
  bool options_done = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (options_done || a.size() < 2 || a[0] != '-') {
      positional.push_back(a);
      continue;
    }
    if (a == "--") {
      options_done = true;
      continue;
    }
    if (a == "-h") {
      out.help = true;
      continue;
    }
    if (!a.starts_with("--")) throw usage_error("unknown option '" + a + "'");
    const std::size_t eq = a.find('=');
    const std::string name = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    const option_spec* o = find_option(spec, name);
    if (o == nullptr) throw usage_error("unknown option '--" + name + "'");
    if (name == "help") {
      out.help = true;
      continue;
    }
    std::string value;
    if (o->value.empty()) {
      if (eq != std::string::npos) throw usage_error("--" + name + " takes no value");
    } else if (eq != std::string::npos) {
      value = a.substr(eq + 1);
    } else {
      if (i + 1 >= args.size())
        throw usage_error("--" + name + " needs a value (" + std::string(o->value) + ")");
      value = args[++i];
    }
    if (!o->repeatable && out.has(name)) throw usage_error("--" + name + " is given twice");
    out.add(name, std::move(value));
  }
  if (out.help) return out;
  if (positional.size() > spec.positionals.size()) {
    throw usage_error("unexpected argument '" + positional[spec.positionals.size()] + "'");
  }
  for (std::size_t k = 0; k < positional.size(); ++k) {
    const std::string name(spec.positionals[k]);
    if (out.has(name))
      throw usage_error("'" + positional[k] + "' and --" + name + " both give the " + name);
    out.add(name, positional[k]);
  }
  return out;
}

std::string help_text(const command_spec& spec) {
  std::string s = "usage: warren ";
  s += spec.name;
  s += " [OPTIONS]";
  for (auto p : spec.positionals) {
    std::string upper(p);
    for (char& c : upper) c = c == '-' ? '_' : static_cast<char>(std::toupper(c));
    s += " [";
    s += upper;
    s += "]";
  }
  s += "\n\n";
  s += spec.summary;
  s += "\n";
  if (!spec.positionals.empty()) {
    s += "\nArguments may be given by position, in the order shown, instead of as options.\n";
  }
  s += "\nOptions:\n";
  const auto add = [&s](const option_spec& o) {
    std::string left = "  --";
    left += o.name;
    if (!o.value.empty()) {
      left += ' ';
      left += o.value;
    }
    if (left.size() < 30)
      left.resize(30, ' ');
    else
      left.append("\n").append(30, ' ');
    s += left;
    // Continuation lines of the help text line up under its first line.
    for (char c : o.help) {
      s.push_back(c);
      if (c == '\n') s.append(30, ' ');
    }
    if (o.repeatable) {
      if (s.size() - s.rfind('\n') > 66) s.append("\n").append(29, ' ');
      s += " (repeatable)";
    }
    s += "\n";
  };
  for (const auto& o : spec.options) add(o);
  for (const auto& o : common_options()) add(o);
  if (!spec.details.empty()) {
    s += "\n";
    s += spec.details;
    s += "\n";
  }
  return s;
}

}  // namespace warren::cli
