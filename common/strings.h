// String helpers shared by the layers: ASCII case, whitespace, integers.
#pragma once

#include <charconv>
#include <string>
#include <string_view>
#include <system_error>

namespace dsfs {

// ASCII lower case (header names, option suffixes); other bytes unchanged.
std::string AsciiLower(std::string_view s);

// s without leading and trailing ASCII whitespace (" \t\r\n\v\f").
std::string_view Trim(std::string_view s);

// Parses all of s as an integer in `base` (no sign for unsigned T, no
// leading '+' or whitespace). False, *out untouched, on an empty string,
// trailing characters or overflow.
template <typename T>
bool ParseInteger(std::string_view s, T* out, int base = 10) {
  if (s.empty()) return false;
  T n{};
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), n, base);
  if (ec != std::errc() || ptr != s.data() + s.size()) return false;
  *out = n;
  return true;
}

}  // namespace dsfs
