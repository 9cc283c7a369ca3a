#include "table.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>

namespace ship::ctl {

std::size_t display_width(const std::string& text) {
    return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xC0) != 0x80; // continuation bytes add no width
    }));
}

bool want_colour() {
    const char* no_colour = std::getenv("NO_COLOR");
    if (no_colour && *no_colour) return false;
    return isatty(STDOUT_FILENO) == 1;
}

std::string paint(const std::string& text, Tone tone, bool colour) {
    if (!colour || tone == Tone::plain) return text;
    const char* code = "";
    switch (tone) {
    case Tone::good:
        code = "\033[32m";
        break;
    case Tone::warn:
        code = "\033[33m";
        break;
    case Tone::bad:
        code = "\033[31m";
        break;
    case Tone::dim:
        code = "\033[2m";
        break;
    case Tone::plain:
        break;
    }
    return code + text + "\033[0m";
}

void Table::print(std::ostream& out, bool colour) const {
    std::vector<std::size_t> widths(header_.size(), 0);
    for (std::size_t i = 0; i < header_.size(); ++i)
        widths[i] = display_width(header_[i]);
    for (const auto& row : rows_)
        for (std::size_t i = 0; i < row.size() && i < widths.size(); ++i)
            widths[i] = std::max(widths[i], display_width(row[i].text));

    auto line = [&](const std::vector<Cell>& cells, bool bold) {
        std::string text;
        for (std::size_t i = 0; i < cells.size() && i < widths.size(); ++i) {
            const bool last = i + 1 == cells.size();
            std::string cell = paint(cells[i].text, cells[i].tone, colour);
            if (bold && colour) cell = "\033[1m" + cells[i].text + "\033[0m";
            text += cell;
            if (!last) text += std::string(widths[i] - display_width(cells[i].text) + 2, ' ');
        }
        out << text << '\n';
    };
    std::vector<Cell> head;
    for (const auto& h : header_)
        head.emplace_back(h);
    line(head, true);
    for (const auto& row : rows_)
        line(row, false);
}

} // namespace ship::ctl
