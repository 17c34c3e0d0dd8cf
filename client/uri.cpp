#include "warren/client/uri.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "warren/codec/error.hpp"

namespace warren {
namespace {

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
bool is_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_hex(char c) noexcept {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
int hex_value(char c) noexcept {
  if (is_digit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}
char lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// RFC 3986 character classes, as the AMQP URI grammar uses them.
bool is_unreserved(char c) noexcept {
  return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}
bool is_sub_delim(char c) noexcept { return c != '\0' && std::strchr("!$&'()*+,;=", c) != nullptr; }
// The AMQP grammar keeps ':' out of both username and password, unlike RFC
// 3986's userinfo, so a password containing ':' must escape it.
bool is_userinfo_char(char c) noexcept { return is_unreserved(c) || is_sub_delim(c); }
bool is_reg_name_char(char c) noexcept { return is_unreserved(c) || is_sub_delim(c); }
bool is_pchar(char c) noexcept {
  return is_unreserved(c) || is_sub_delim(c) || c == ':' || c == '@';
}
bool is_query_char(char c) noexcept { return is_pchar(c) || c == '/' || c == '?'; }

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return lower(x) == lower(y); });
}

std::string describe(char c) {
  auto u = static_cast<unsigned char>(c);
  if (u > 0x20 && u < 0x7f) return std::string("'") + c + "'";
  static constexpr char digits[] = "0123456789ABCDEF";
  return std::string("byte 0x") + digits[u >> 4] + digits[u & 15];
}

// Holds the first failure's reason; every step returns false once it is set.
struct parse_state {
  std::string reason;
  bool fail(std::string r) {
    if (reason.empty()) reason = std::move(r);
    return false;
  }
};

bool percent_decode(std::string_view in, bool (*allowed)(char), const char* component,
                    std::string& out, parse_state& st) {
  out.clear();
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) {
        return st.fail(std::string("incomplete %-escape in ") + component);
      }
      if (!is_hex(in[i + 1]) || !is_hex(in[i + 2])) {
        return st.fail(std::string("bad %-escape in ") + component +
                       " (expected two hex digits after '%')");
      }
      out.push_back(static_cast<char>(hex_value(in[i + 1]) * 16 + hex_value(in[i + 2])));
      i += 2;
    } else if (allowed(c)) {
      out.push_back(c);
    } else {
      return st.fail("unescaped " + describe(c) + " in " + component + " (write it %-encoded)");
    }
  }
  return true;
}

enum class number_result { ok, not_a_number, out_of_range };

number_result parse_decimal(std::string_view s, std::uint64_t max, std::uint64_t& out) {
  if (s.empty()) return number_result::not_a_number;
  std::uint64_t v = 0;
  bool overflow = false;
  for (char c : s) {
    if (!is_digit(c)) return number_result::not_a_number;
    if (!overflow) {
      v = v * 10 + static_cast<std::uint64_t>(c - '0');
      // Keep scanning so a later non-digit still reports not_a_number.
      if (v > max) overflow = true;
    }
  }
  if (overflow) return number_result::out_of_range;
  out = v;
  return number_result::ok;
}

// An IPv6 address (hex digits, ':' and an optional dotted IPv4 tail) with an
// optional RFC 6874 zone id written "%25zone".
bool parse_ip_literal(std::string_view lit, std::string& host, parse_state& st) {
  if (lit.empty()) return st.fail("empty IPv6 address in '[]'");
  if (lit[0] == 'v' || lit[0] == 'V') return st.fail("IPvFuture addresses are not supported");
  std::string_view addr = lit;
  std::string_view zone;
  if (auto pct = lit.find('%'); pct != std::string_view::npos) {
    if (lit.substr(pct, 3) != "%25") {
      return st.fail("a zone id in an IPv6 address must be introduced by %25");
    }
    addr = lit.substr(0, pct);
    zone = lit.substr(pct + 3);
    if (zone.empty()) return st.fail("empty zone id in IPv6 address");
  }
  if (addr.find(':') == std::string_view::npos) {
    return st.fail("'[" + std::string(lit) + "]' is not an IPv6 address");
  }
  for (char c : addr) {
    if (!is_hex(c) && c != ':' && c != '.') {
      return st.fail(describe(c) + " in IPv6 address '" + std::string(addr) + "'");
    }
  }
  host.assign(addr);
  if (!zone.empty()) {
    std::string decoded;
    if (!percent_decode(zone, is_unreserved, "IPv6 zone id", decoded, st)) return false;
    host += '%';
    host += decoded;
  }
  return true;
}

bool parse_port(std::string_view s, std::uint16_t& port, bool path_has_at, parse_state& st) {
  std::uint64_t v = 0;
  switch (parse_decimal(s, 65535, v)) {
    case number_result::ok:
      if (v == 0) return st.fail("port 0 is out of range 1-65535");
      port = static_cast<std::uint16_t>(v);
      return true;
    case number_result::out_of_range:
      return st.fail("port " + std::string(s) + " is out of range 1-65535");
    case number_result::not_a_number: break;
  }
  if (s.empty()) return st.fail("empty port after ':'");
  // The text after ':' may be part of a password cut short by an unescaped
  // '/', so it is not echoed.
  std::string r = "port is not a decimal number";
  if (path_has_at) r += " (a '/' in the user name or password must be written %2F)";
  return st.fail(std::move(r));
}

bool parse_authority(std::string_view authority, bool path_has_at, connection_params& p,
                     parse_state& st) {
  std::string_view hostport = authority;
  if (auto at = authority.find('@'); at != std::string_view::npos) {
    if (authority.find('@', at + 1) != std::string_view::npos) {
      return st.fail("more than one '@' (an '@' in the user name or password must be written %40)");
    }
    std::string_view userinfo = authority.substr(0, at);
    hostport = authority.substr(at + 1);
    auto colon = userinfo.find(':');
    if (!percent_decode(userinfo.substr(0, colon), is_userinfo_char, "user name", p.username, st)) {
      return false;
    }
    if (colon != std::string_view::npos &&
        !percent_decode(userinfo.substr(colon + 1), is_userinfo_char, "password", p.password, st)) {
      return false;
    }
  }

  std::string_view port_text;
  bool has_port = false;
  if (!hostport.empty() && hostport[0] == '[') {
    auto close = hostport.find(']');
    if (close == std::string_view::npos) return st.fail("unterminated '[' in host");
    if (!parse_ip_literal(hostport.substr(1, close - 1), p.host, st)) return false;
    std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return st.fail("unexpected " + describe(after[0]) + " after ']'");
      has_port = true;
      port_text = after.substr(1);
    }
  } else {
    // A registered name cannot contain ':', so the last one starts the port.
    std::string_view name = hostport;
    if (auto colon = hostport.rfind(':'); colon != std::string_view::npos) {
      name = hostport.substr(0, colon);
      has_port = true;
      port_text = hostport.substr(colon + 1);
    }
    // The spec lets an empty host mean "the client's default host"; we refuse
    // it, since "amqp:///vh" silently meaning localhost hides typos.
    if (name.empty()) return st.fail("empty host");
    if (!percent_decode(name, is_reg_name_char, "host", p.host, st)) return false;
    if (p.host.empty()) return st.fail("empty host");
  }
  if (has_port && !parse_port(port_text, p.port, path_has_at, st)) return false;
  return true;
}

// Both "amqp://host" and "amqp://host/" give the default vhost "/": the
// common way to write a URI ends in "/" and must reach the default vhost (pika
// and amqp091-go agree; the RabbitMQ URI spec's examples would give "").
// "%2F" also names "/"; the empty vhost cannot be named, which RabbitMQ has no
// use for.
bool parse_vhost(std::string_view path, connection_params& p, parse_state& st) {
  if (path.size() <= 1) return true;
  std::string_view segment = path.substr(1);
  if (segment.find('/') != std::string_view::npos) {
    return st.fail("unescaped '/' in vhost (a '/' in a vhost name is written %2F)");
  }
  if (!percent_decode(segment, is_pchar, "vhost", p.vhost, st)) return false;
  if (p.vhost.size() > 255) return st.fail("vhost is longer than 255 bytes");
  return true;
}

bool parse_number_param(const std::string& name, const std::string& value, std::uint64_t min,
                        std::uint64_t max, std::uint64_t& out, parse_state& st) {
  switch (parse_decimal(value, max, out)) {
    case number_result::ok:
      if (out < min) break;
      return true;
    case number_result::not_a_number:
      return st.fail("query parameter " + name + "='" + value + "' is not a non-negative integer");
    case number_result::out_of_range: break;
  }
  return st.fail("query parameter " + name + "=" + value + " is out of range " +
                 std::to_string(min) + "-" + std::to_string(max));
}

bool apply_param(const std::string& name, const std::string& value, connection_params& p,
                 parse_state& st) {
  std::uint64_t v = 0;
  if (name == "heartbeat") {
    if (!parse_number_param(name, value, 0, 65535, v, st)) return false;
    p.heartbeat = static_cast<std::uint16_t>(v);
  } else if (name == "channel_max") {
    if (!parse_number_param(name, value, 0, 65535, v, st)) return false;
    p.channel_max = static_cast<std::uint16_t>(v);
  } else if (name == "frame_max") {
    if (!parse_number_param(name, value, 0, 0xFFFFFFFFu, v, st)) return false;
    // 4096 is the protocol's frame-min-size; 0 means "no limit".
    if (v != 0 && v < 4096) {
      return st.fail("query parameter frame_max=" + value +
                     " is below the AMQP minimum 4096 (use 0 for no limit)");
    }
    p.frame_max = static_cast<std::uint32_t>(v);
  } else if (name == "connection_timeout") {
    if (!parse_number_param(name, value, 0, 0xFFFFFFFFu, v, st)) return false;
    p.connection_timeout = std::chrono::milliseconds(static_cast<std::int64_t>(v));
  } else if (name == "auth_mechanism") {
    if (iequals(value, "plain")) {
      p.auth_mechanism = "PLAIN";
    } else if (iequals(value, "amqplain")) {
      p.auth_mechanism = "AMQPLAIN";
    } else if (iequals(value, "external")) {
      p.auth_mechanism = "EXTERNAL";
    } else {
      return st.fail("query parameter auth_mechanism='" + value +
                     "' is not one of plain, amqplain, external");
    }
  } else if (name == "cacertfile" || name == "certfile" || name == "keyfile" ||
             name == "verify" || name == "server_name_indication") {
    // Settings that only mean something over TLS: on amqp:// they would
    // suggest a protection the connection does not have.
    if (!p.tls) return st.fail("query parameter '" + name + "' needs an amqps:// URI");
    if (value.empty()) return st.fail("query parameter '" + name + "' is empty");
    if (name == "cacertfile") {
      p.cacertfile = value;
    } else if (name == "certfile") {
      p.certfile = value;
    } else if (name == "keyfile") {
      p.keyfile = value;
    } else if (name == "server_name_indication") {
      p.server_name_indication = value;
    } else if (value == "verify_peer") {
      p.verify = tls_verify::peer;
    } else if (value == "verify_none") {
      p.verify = tls_verify::none;
    } else {
      return st.fail("query parameter verify='" + value + "' is not verify_peer or verify_none");
    }
  } else {
    // RabbitMQ's clients take these too; accepting them and then ignoring
    // them would connect with other settings than asked for.
    static constexpr std::string_view unsupported[] = {"fail_if_no_peer_cert", "depth", "password"};
    for (auto t : unsupported) {
      if (name == t) return st.fail("TLS query parameter '" + name + "' is not supported");
    }
    return st.fail("unknown query parameter '" + name +
                   "' (known: heartbeat, frame_max, channel_max, connection_timeout, "
                   "auth_mechanism, cacertfile, certfile, keyfile, verify, "
                   "server_name_indication)");
  }
  return true;
}

bool parse_query(std::string_view query, connection_params& p, parse_state& st) {
  std::vector<std::string> seen;
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (pair.empty()) continue;  // "a=1&&b=2", a trailing '&'
    auto eq = pair.find('=');
    std::string name, value;
    if (!percent_decode(pair.substr(0, eq), is_query_char, "query parameter name", name, st)) {
      return false;
    }
    if (eq == std::string_view::npos) {
      return st.fail("query parameter '" + name + "' has no value");
    }
    if (!percent_decode(pair.substr(eq + 1), is_query_char, "query parameter value", value, st)) {
      return false;
    }
    if (std::find(seen.begin(), seen.end(), name) != seen.end()) {
      return st.fail("query parameter '" + name + "' is given more than once");
    }
    if (!apply_param(name, value, p, st)) return false;
    seen.push_back(std::move(name));
  }
  return true;
}

bool parse(std::string_view uri, connection_params& p, parse_state& st) {
  auto sep = uri.find("://");
  if (sep == std::string_view::npos) {
    return st.fail("missing scheme: a URI starts with amqp:// or amqps://");
  }
  std::string_view scheme = uri.substr(0, sep);
  if (iequals(scheme, "amqps")) {
    p.tls = true;
    p.port = 5671;
  } else if (!iequals(scheme, "amqp")) {
    // Only echo a scheme that looks like one: a URI without "://" before
    // the credentials could otherwise put the password here.
    bool plain = !scheme.empty() && scheme.size() <= 16 &&
                 std::all_of(scheme.begin(), scheme.end(), [](char c) {
                   return is_alpha(c) || is_digit(c) || c == '+' || c == '-' || c == '.';
                 });
    return st.fail(plain
                       ? "unsupported scheme '" + std::string(scheme) + "' (expected amqp or amqps)"
                       : std::string("bad scheme (expected amqp or amqps)"));
  }
  std::string_view rest = uri.substr(sep + 3);
  if (rest.find('#') != std::string_view::npos) {
    return st.fail("unescaped '#' (a fragment is not allowed; write '#' as %23)");
  }
  std::string_view query;
  bool has_query = false;
  if (auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
    has_query = true;
  }
  auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
  if (!parse_authority(authority, path.find('@') != std::string_view::npos, p, st)) return false;
  if (!parse_vhost(path, p, st)) return false;
  if (has_query && !parse_query(query, p, st)) return false;
  return true;
}

void percent_encode(std::string_view in, bool (*safe)(char), std::string& out) {
  static constexpr char digits[] = "0123456789ABCDEF";
  for (char c : in) {
    if (safe(c)) {
      out += c;
    } else {
      auto u = static_cast<unsigned char>(c);
      out += '%';
      out += digits[u >> 4];
      out += digits[u & 15];
    }
  }
}

// Conservative sets for output: sub-delims are legal but '&', '=' and '+'
// read badly in logs and confuse naive parsers, so they are escaped too.
bool is_safe_out(char c) noexcept { return is_unreserved(c); }

}  // namespace

std::error_code parse_uri(std::string_view uri, connection_params& out, std::string* what) {
  connection_params p;
  parse_state st;
  if (!parse(uri, p, st)) {
    if (what) *what = std::move(st.reason);
    return errc::bad_uri;
  }
  out = std::move(p);
  if (what) what->clear();
  return {};
}

connection_params parse_uri(std::string_view uri) {
  connection_params p;
  std::string what;
  if (auto ec = parse_uri(uri, p, &what)) throw std::system_error(ec, what);
  return p;
}

std::string to_uri(const connection_params& p, bool redact_password) {
  std::string s = p.tls ? "amqps://" : "amqp://";
  percent_encode(p.username, is_safe_out, s);
  s += ':';
  if (redact_password) {
    s += "***";
  } else {
    percent_encode(p.password, is_safe_out, s);
  }
  s += '@';
  if (p.host.find(':') != std::string::npos) {
    // An IPv6 address, kept verbatim apart from its zone id.
    auto pct = p.host.find('%');
    s += '[';
    s += p.host.substr(0, pct);
    if (pct != std::string::npos) {
      s += "%25";
      percent_encode(std::string_view(p.host).substr(pct + 1), is_safe_out, s);
    }
    s += ']';
  } else {
    percent_encode(p.host, is_safe_out, s);
  }
  s += ':';
  s += std::to_string(p.port);
  s += '/';
  percent_encode(p.vhost, is_safe_out, s);

  const connection_params d;
  char sep = '?';
  auto param = [&](const char* name, const std::string& value) {
    s += sep;
    s += name;
    s += '=';
    percent_encode(value, is_safe_out, s);
    sep = '&';
  };
  if (p.heartbeat != d.heartbeat) param("heartbeat", std::to_string(p.heartbeat));
  if (p.frame_max != d.frame_max) param("frame_max", std::to_string(p.frame_max));
  if (p.channel_max != d.channel_max) param("channel_max", std::to_string(p.channel_max));
  if (p.connection_timeout != d.connection_timeout) {
    param("connection_timeout", std::to_string(p.connection_timeout.count()));
  }
  if (!p.auth_mechanism.empty()) {
    std::string m = p.auth_mechanism;
    std::transform(m.begin(), m.end(), m.begin(), lower);
    param("auth_mechanism", m);
  }
  if (p.tls) {
    if (!p.cacertfile.empty()) param("cacertfile", p.cacertfile);
    if (!p.certfile.empty()) param("certfile", p.certfile);
    if (!p.keyfile.empty()) param("keyfile", p.keyfile);
    if (p.verify != d.verify) param("verify", "verify_none");
    if (!p.server_name_indication.empty()) param("server_name_indication", p.server_name_indication);
  }
  return s;
}

}  // namespace warren
