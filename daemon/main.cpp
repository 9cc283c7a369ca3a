// shipd entry point. Until the hub and D-Bus service land (issues 4 and 5) it only knows who it is.
#include "shipd_version.hpp"

#include <cstdio>
#include <string_view>

int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--version") {
            std::printf("shipd %s\n", SHIPD_VERSION);
            return 0;
        }
        if (arg == "--help") {
            std::printf("usage: shipd [--version] [--help]\n");
            return 0;
        }
        std::fprintf(stderr, "shipd: unknown option '%s'\n", argv[i]);
        return 2;
    }
    std::printf("shipd %s: the daemon is not built yet (see issues 4 and 5)\n", SHIPD_VERSION);
    return 0;
}
