#include "warren/client/sasl.hpp"

#include <algorithm>

#include "warren/codec/bytes.hpp"
#include "warren/codec/error.hpp"
#include "warren/codec/field.hpp"

namespace warren {
namespace {

bool iequals(std::string_view a, std::string_view b) noexcept {
  auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [&](char x, char y) { return lower(x) == lower(y); });
}

bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Mechanism names are case-sensitive in SASL (RFC 4422 registers them in
// upper case), so the broker's list is matched exactly.
bool offers(std::string_view list, std::string_view name) noexcept {
  std::size_t i = 0;
  while (i < list.size()) {
    while (i < list.size() && is_space(list[i])) ++i;
    std::size_t start = i;
    while (i < list.size() && !is_space(list[i])) ++i;
    if (i > start && list.substr(start, i - start) == name) return true;
  }
  return false;
}

}  // namespace

std::string_view sasl_mechanism_name(sasl_mechanism m) noexcept {
  switch (m) {
    case sasl_mechanism::plain: return "PLAIN";
    case sasl_mechanism::amqplain: return "AMQPLAIN";
    case sasl_mechanism::external: return "EXTERNAL";
  }
  return "PLAIN";
}

bool parse_sasl_mechanism(std::string_view name, sasl_mechanism& out) noexcept {
  for (auto m : {sasl_mechanism::plain, sasl_mechanism::amqplain, sasl_mechanism::external}) {
    if (iequals(name, sasl_mechanism_name(m))) {
      out = m;
      return true;
    }
  }
  return false;
}

std::string sasl_response(sasl_mechanism m, std::string_view user, std::string_view password) {
  switch (m) {
    case sasl_mechanism::plain: {
      std::string r;
      r.reserve(2 + user.size() + password.size());
      r += '\0';
      r += user;
      r += '\0';
      r += password;
      return r;
    }
    case sasl_mechanism::amqplain: {
      field_table t;
      t.add("LOGIN", std::string(user));
      t.add("PASSWORD", std::string(password));
      byte_buffer buf;
      writer w(buf);
      encode_table(w, t);
      // RabbitMQ reads this response as the entries of a table, without the
      // length prefix a table field would carry.
      return std::string(buf.str().substr(4));
    }
    case sasl_mechanism::external: return {};
  }
  return {};
}

std::error_code choose_mechanism(std::string_view server_mechanisms, std::string_view wanted,
                                 sasl_mechanism& out) {
  if (!wanted.empty()) {
    sasl_mechanism m;
    if (!parse_sasl_mechanism(wanted, m) || !offers(server_mechanisms, sasl_mechanism_name(m))) {
      return errc::no_common_mechanism;
    }
    out = m;
    return {};
  }
  for (auto m : {sasl_mechanism::plain, sasl_mechanism::amqplain}) {
    if (offers(server_mechanisms, sasl_mechanism_name(m))) {
      out = m;
      return {};
    }
  }
  return errc::no_common_mechanism;
}

}  // namespace warren
