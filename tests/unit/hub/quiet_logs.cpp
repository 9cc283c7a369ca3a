// The registry logs every double connection at info; a test provoking thousands keeps the output readable.
#include <spdlog/spdlog.h>

namespace {
const bool quiet = [] {
    spdlog::set_level(spdlog::level::warn);
    return true;
}();
} // namespace
