#include "process_probe.hpp"

#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

namespace ship::soak {

std::optional<ProcessFigures> probe(pid_t pid) {
    const std::filesystem::path proc = "/proc/" + std::to_string(pid);
    ProcessFigures figures;
    std::error_code ec;
    for (std::filesystem::directory_iterator it(proc / "fd", ec), end; !ec && it != end; it.increment(ec)) {
        ++figures.fds;
        std::error_code link_ec;
        // An fd closed between listing and reading is simply not a socket any more.
        const auto target = std::filesystem::read_symlink(it->path(), link_ec);
        if (!link_ec && target.string().starts_with("socket:")) ++figures.sockets;
    }
    if (ec) return std::nullopt;
    std::ifstream status(proc / "status");
    for (std::string line; std::getline(status, line);)
        if (line.starts_with("VmRSS:")) figures.rss_kib = std::stoul(line.substr(6));
    if (figures.rss_kib == 0) return std::nullopt; // a zombie has no VmRSS line
    return figures;
}

} // namespace ship::soak
