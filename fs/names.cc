#include "fs/names.h"

namespace dsfs {

bool IsValidName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  if (name == "." || name == "..") return false;
  return name.find('/') == std::string_view::npos && name.find('\0') == std::string_view::npos;
}

bool IsValidKeyPath(std::string_view key) {
  if (key.empty()) return false;
  if (key.back() == '/') key.remove_suffix(1);
  while (true) {
    size_t slash = key.find('/');
    if (!IsValidName(key.substr(0, slash))) return false;
    if (slash == std::string_view::npos) return true;
    key.remove_prefix(slash + 1);
  }
}

}  // namespace dsfs
