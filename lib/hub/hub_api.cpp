#include "hub/hub_api.hpp"

namespace ship::hub {

std::string_view to_string(ErrorCode code) {
    switch (code) {
    case ErrorCode::invalid_ski:
        return "InvalidSKI";
    case ErrorCode::unknown_peer:
        return "UnknownPeer";
    case ErrorCode::not_trusted:
        return "NotTrusted";
    case ErrorCode::not_connected:
        return "NotConnected";
    case ErrorCode::invalid_json:
        return "InvalidJSON";
    case ErrorCode::invalid_argument:
        return "InvalidArgument";
    case ErrorCode::shutting_down:
        return "ShuttingDown";
    case ErrorCode::connect_failed:
        return "ConnectFailed";
    case ErrorCode::timeout:
        return "Timeout";
    case ErrorCode::blocked:
        return "Blocked";
    }
    return "InvalidArgument";
}

} // namespace ship::hub
