#include "tools/conformance/support.hpp"
namespace warren::conformance {
void add_channel_exchange(std::vector<scenario>&) {}
}
