// Which object keys can appear as POSIX names, and how paths map to keys.
// Keys that cannot be a name ('.', '..', empty components from '//', NUL,
// components over 255 bytes) are hidden, never followed.
#pragma once

#include <string>
#include <string_view>

namespace dsfs {

inline constexpr size_t kMaxNameLength = 255;

// True if `name` (one path component) can be shown in a directory.
bool IsValidName(std::string_view name);

// True if every '/'-separated component of `key` (a trailing '/' allowed,
// as in directory markers) is a valid name.
bool IsValidKeyPath(std::string_view key);

}  // namespace dsfs
