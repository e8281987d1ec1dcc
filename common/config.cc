#include "common/config.h"

#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <limits>

#include "common/strings.h"

namespace dsfs {
namespace {

// Splits "123abc" into 123 and "abc"; fails on no digits or overflow.
Result<std::pair<uint64_t, std::string>> SplitNumber(const std::string& text, const char* what) {
  uint64_t n = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(begin, end, n);
  if (ec != std::errc() || ptr == begin) {
    return Status::InvalidArgument(std::string("not a ") + what + ": '" + text + "'");
  }
  return std::make_pair(n, AsciiLower(std::string_view(ptr, end)));
}

}  // namespace

Result<uint64_t> ParseSize(const std::string& text) {
  DSFS_ASSIGN_OR_RETURN(auto parts, SplitNumber(text, "size"));
  auto [n, suffix] = parts;
  if (suffix.ends_with("ib")) suffix.resize(suffix.size() - 2);
  else if (suffix.size() == 2 && suffix.back() == 'b') suffix.pop_back();
  if (suffix == "b") suffix.clear();
  int shift = 0;
  if (suffix.empty()) shift = 0;
  else if (suffix == "k") shift = 10;
  else if (suffix == "m") shift = 20;
  else if (suffix == "g") shift = 30;
  else if (suffix == "t") shift = 40;
  else return Status::InvalidArgument("not a size: '" + text + "' (use e.g. 512K, 4M, 200G)");
  if (shift && n > (std::numeric_limits<uint64_t>::max() >> shift)) {
    return Status::InvalidArgument("size too large: '" + text + "'");
  }
  return n << shift;
}

Result<milliseconds> ParseDuration(const std::string& text) {
  DSFS_ASSIGN_OR_RETURN(auto parts, SplitNumber(text, "duration"));
  auto [n, suffix] = parts;
  uint64_t mult = 0;
  if (suffix.empty() || suffix == "s") mult = 1000;
  else if (suffix == "ms") mult = 1;
  else if (suffix == "m" || suffix == "min") mult = 60'000;
  else if (suffix == "h") mult = 3'600'000;
  else return Status::InvalidArgument("not a duration: '" + text + "' (use e.g. 500ms, 30s, 5m)");
  if (n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / mult) {
    return Status::InvalidArgument("duration too large: '" + text + "'");
  }
  return milliseconds(static_cast<int64_t>(n * mult));
}

Result<uint64_t> ResolveCacheSize(const std::string& text, const std::string& dir) {
  if (text.empty()) return Status::InvalidArgument("cache_size is empty");
  uint64_t bytes = 0;
  if (text.back() == '%') {
    double pct = 0;
    const char* begin = text.data();
    const char* end = text.data() + text.size() - 1;
    auto [ptr, ec] = std::from_chars(begin, end, pct);
    if (ec != std::errc() || ptr != end || !(pct > 0 && pct <= 100)) {
      return Status::InvalidArgument("cache_size '" + text +
                                     "' is not a percentage between 0 and 100");
    }
    // Measure the filesystem of dir, or of its nearest existing parent.
    std::string p = dir.empty() ? "." : dir;
    while (::access(p.c_str(), F_OK) != 0 && p.find('/') != std::string::npos && p != "/") {
      size_t slash = p.find_last_of('/');
      p.resize(slash == 0 ? 1 : slash);  // "/a" -> "/"
    }
    struct statvfs vfs;
    if (::statvfs(p.c_str(), &vfs) != 0) {
      return Status::IoError("cannot measure the filesystem of " + p + ": " + std::strerror(errno));
    }
    double total = static_cast<double>(vfs.f_blocks) * static_cast<double>(vfs.f_frsize);
    bytes = static_cast<uint64_t>(total * pct / 100.0);
  } else {
    DSFS_ASSIGN_OR_RETURN(bytes, ParseSize(text));
  }
  if (bytes == 0) return Status::InvalidArgument("cache_size '" + text + "' is zero");
  return bytes;
}

}  // namespace dsfs
