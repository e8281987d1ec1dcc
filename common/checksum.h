// Checksums for data at rest (block cache files): XXH3 from libxxhash.
// XXH3 is not cryptographic: it detects torn writes, bit rot and
// truncation, not tampering (the cache dir is 0700 and owned by us).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace dsfs {

// XXH3 64-bit, seed 0.
uint64_t Xxh3_64(const void* data, size_t len);
inline uint64_t Xxh3_64(std::string_view s) { return Xxh3_64(s.data(), s.size()); }

// XXH3 128-bit, seed 0: for names derived from content identity, where a
// collision would make two things share one slot.
struct Hash128 {
  uint64_t high = 0;
  uint64_t low = 0;
  bool operator==(const Hash128&) const = default;
  // 32 lowercase hex digits, high word first.
  std::string ToHex() const;
  // Parses ToHex()'s output; false on anything else.
  static bool FromHex(std::string_view hex, Hash128* out);
};
Hash128 Xxh3_128(const void* data, size_t len);
inline Hash128 Xxh3_128(std::string_view s) { return Xxh3_128(s.data(), s.size()); }

}  // namespace dsfs
