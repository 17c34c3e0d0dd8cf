#include <string>
#include <vector>

#include "tools/warren/commands.hpp"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
  return warren::cli::run_command_line(args);
}
