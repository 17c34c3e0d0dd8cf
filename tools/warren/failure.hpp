// How a command that ended in an exception is reported: one diagnostic line
// for stderr, broker text escaped, and the exit status.
#pragma once

#include <exception>
#include <string>
#include <string_view>

#include "tools/warren/args.hpp"
#include "tools/warren/commands.hpp"
#include "tools/warren/printable.hpp"
#include "tools/warren/typed.hpp"
#include "warren/client/types.hpp"

namespace warren::cli {

struct failure {
  std::string line;  // "warren COMMAND: ...\n"
  int status = exit_error;
};

inline failure failure_of(std::string_view command, std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const usage_error& err) {
    const std::string see = " (see warren " + std::string(command) + " --help)";
    return {diagnostic(command, err.what() + see), exit_usage};
  } catch (const value_error& err) {
    return {diagnostic(command, err.what()), exit_usage};
  } catch (const error& err) {
    return {diagnostic(command, err.info().describe()),
            err.code() == errc::bad_uri ? exit_usage : exit_error};
  } catch (const std::exception& err) {
    return {diagnostic(command, err.what()), exit_error};
  } catch (...) {
    return {diagnostic(command, "unknown exception"), exit_error};
  }
}

}  // namespace warren::cli
