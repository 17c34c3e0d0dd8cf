#include "tools/conformance/support.hpp"
namespace warren::conformance {
void add_basic(std::vector<scenario>&) {}
}
