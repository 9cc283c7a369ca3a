// A main for a fuzz harness without libFuzzer: each argument is an input file or a directory of them, and
// every file is passed to LLVMFuzzerTestOneInput once. A broken invariant aborts, which fails the test.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

void replay(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + file.string());
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::cout << "replay " << file.string() << " (" << bytes.size() << " bytes)" << std::endl;
    // A copy of exactly the input's size, so ASan sees any read past its end.
    std::vector<std::uint8_t> copy(bytes.begin(), bytes.end());
    LLVMFuzzerTestOneInput(copy.data(), copy.size());
}

} // namespace

int main(int argc, char** argv) {
    std::size_t count = 0;
    try {
        for (int i = 1; i < argc; ++i) {
            const std::filesystem::path path(argv[i]);
            if (!std::filesystem::exists(path)) {
                std::cout << "skip " << path.string() << " (absent)" << std::endl;
                continue;
            }
            std::vector<std::filesystem::path> files;
            if (std::filesystem::is_directory(path)) {
                for (const auto& entry : std::filesystem::recursive_directory_iterator(path))
                    if (entry.is_regular_file()) files.push_back(entry.path());
                std::sort(files.begin(), files.end());
            } else {
                files.push_back(path);
            }
            for (const auto& file : files) {
                replay(file);
                ++count;
            }
        }
    } catch (const std::exception& e) {
        std::cerr << "replay: " << e.what() << std::endl;
        return 1;
    }
    std::cout << count << " inputs replayed" << std::endl;
    if (count == 0) {
        std::cerr << "replay: no input found" << std::endl;
        return 1;
    }
    return 0;
}
