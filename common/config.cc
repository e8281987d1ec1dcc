#include "common/config.h"

#include <cctype>
#include <charconv>
#include <limits>

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
  std::string suffix(ptr, end);
  for (auto& c : suffix) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return std::make_pair(n, suffix);
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

}  // namespace dsfs
