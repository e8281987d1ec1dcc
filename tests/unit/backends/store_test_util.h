// Helpers shared by the backends tests that write through MemoryStore.
#pragma once

#include <cstdint>
#include <string>

#include "backends/memory_store.h"

namespace dsfs::store_test {

// n pseudo-random bytes, the same for the same seed.
inline std::string Pattern(size_t n, unsigned seed = 1) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (auto& c : s) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

// The object as a plain GET returns it ("<NotFound...>" when absent).
inline std::string Fetch(MemoryStore& store, const std::string& key) {
  auto head = store.Head(key);
  if (!head.ok()) return "<" + head.status().ToString() + ">";
  std::string out(head->size, '\0');
  GetRequest req{.key = key};
  auto got = store.Get(req, out.data(), out.size());
  if (!got.ok()) return "<" + got.status().ToString() + ">";
  out.resize(got->bytes);
  return out;
}

}  // namespace dsfs::store_test
