// An aligned text table for people: a header row, cells padded to their column's widest (UTF-8 aware),
// two spaces between columns, no trailing blanks. Colour (ANSI) only when the caller says so.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace ship::ctl {

enum class Tone { plain, good, warn, bad, dim };

struct Cell {
    std::string text;
    Tone tone = Tone::plain;
    Cell(std::string t, Tone tn = Tone::plain) // NOLINT: implicit from text is the point
        : text(std::move(t))
        , tone(tn) {}
    Cell(const char* t)
        : text(t) {}
};

class Table {
public:
    explicit Table(std::vector<std::string> header)
        : header_(std::move(header)) {}
    void add(std::vector<Cell> row) { rows_.push_back(std::move(row)); }
    bool empty() const { return rows_.empty(); }
    void print(std::ostream& out, bool colour) const;

private:
    std::vector<std::string> header_;
    std::vector<std::vector<Cell>> rows_;
};

// True when stdout is a terminal and NO_COLOR is unset or empty (https://no-color.org).
bool want_colour();
// `text` wrapped in the ANSI sequence for `tone` when colour is on.
std::string paint(const std::string& text, Tone tone, bool colour);
// Display width: UTF-8 code points, not bytes.
std::size_t display_width(const std::string& text);

} // namespace ship::ctl
