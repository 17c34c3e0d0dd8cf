#include "tools/conformance/support.hpp"
namespace warren::conformance {
void add_tx_confirm(std::vector<scenario>&) {}
}
