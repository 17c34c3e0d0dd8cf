// SASL as AMQP 0-9-1 uses it: picking a mechanism from the broker's
// connection.start and building the response sent in connection.start-ok.
#pragma once

#include <string>
#include <string_view>
#include <system_error>

namespace warren {

enum class sasl_mechanism { plain, amqplain, external };

// "PLAIN", "AMQPLAIN" or "EXTERNAL".
std::string_view sasl_mechanism_name(sasl_mechanism m) noexcept;

// Maps a mechanism name (any case) to its enumerator; false if unknown.
bool parse_sasl_mechanism(std::string_view name, sasl_mechanism& out) noexcept;

// The `response` field of connection.start-ok:
//   PLAIN     "\0" user "\0" password (RFC 4616, empty authorization id)
//   AMQPLAIN  a field table without its 4-byte length prefix holding
//             LOGIN and PASSWORD as longstr ('S') values, in that order
//   EXTERNAL  empty (the identity comes from the TLS client certificate)
std::string sasl_response(sasl_mechanism m, std::string_view user, std::string_view password);

// Picks the mechanism to use from connection.start's space-separated
// `mechanisms` list. `wanted` names one mechanism (any case), or is empty to
// prefer PLAIN, then AMQPLAIN; EXTERNAL is only used when asked for.
//
// Errors: errc::no_common_mechanism when the broker does not offer the wanted
// mechanism (or any of PLAIN and AMQPLAIN), or `wanted` is not a mechanism we
// implement. `out` is only written on success.
std::error_code choose_mechanism(std::string_view server_mechanisms, std::string_view wanted,
                                 sasl_mechanism& out);

}  // namespace warren
