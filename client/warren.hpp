// Everything a user of the client needs: #include <warren/client/warren.hpp>
#pragma once

#include "warren/client/blocking.hpp"
#include "warren/client/connection.hpp"
#include "warren/client/rpc.hpp"
#include "warren/client/timeout.hpp"
#include "warren/client/types.hpp"
#include "warren/client/uri.hpp"
#include "warren/client/version.hpp"
