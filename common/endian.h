// Fixed-width integer codecs for on-disk formats (block file headers, the
// cache index): explicit byte order, independent of the host's.
#pragma once

#include <cstdint>
#include <string>

namespace dsfs {

template <typename T>
void PutLittleEndian(std::string* out, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
template <typename T>
T GetLittleEndian(const char* p) {
  T v = 0;
  for (size_t i = sizeof(T); i-- > 0;) v = static_cast<T>((v << 8) | static_cast<unsigned char>(p[i]));
  return v;
}
// Big endian sorts like the number, byte for byte (RocksDB key order).
template <typename T>
void PutBigEndian(std::string* out, T v) {
  for (size_t i = sizeof(T); i-- > 0;) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
template <typename T>
T GetBigEndian(const char* p) {
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v = static_cast<T>((v << 8) | static_cast<unsigned char>(p[i]));
  return v;
}

inline void PutU32Le(std::string* out, uint32_t v) { PutLittleEndian(out, v); }
inline void PutU64Le(std::string* out, uint64_t v) { PutLittleEndian(out, v); }
inline uint32_t GetU32Le(const char* p) { return GetLittleEndian<uint32_t>(p); }
inline uint64_t GetU64Le(const char* p) { return GetLittleEndian<uint64_t>(p); }
inline void PutU64Be(std::string* out, uint64_t v) { PutBigEndian(out, v); }
inline uint64_t GetU64Be(const char* p) { return GetBigEndian<uint64_t>(p); }

}  // namespace dsfs
