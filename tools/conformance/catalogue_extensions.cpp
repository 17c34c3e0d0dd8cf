#include "tools/conformance/support.hpp"
namespace warren::conformance {
void add_extensions(std::vector<scenario>&) {}
}
