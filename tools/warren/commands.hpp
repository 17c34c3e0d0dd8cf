// The warren command: subcommands, their options and what each does.
#pragma once

#include <string>
#include <vector>

namespace warren::cli {

// Exit statuses.
inline constexpr int exit_ok = 0;
inline constexpr int exit_error = 1;     // the broker or the connection reported an error
inline constexpr int exit_usage = 2;     // a malformed command line or value
inline constexpr int exit_rejected = 3;  // publish: a message was returned or nacked

// Runs `warren ARGS...` (args without the program name) and returns the
// exit status. Output goes to stdout, diagnostics to stderr.
int run_command_line(const std::vector<std::string>& args);

}  // namespace warren::cli
