// Buffer: a fixed-size byte array for block data, and BufferPool, which
// recycles them.
//
// Unlike std::string a Buffer is not zero-filled when allocated: every block
// is filled right away by a GET or a pread, and zeroing 4 MiB first cost ~5%
// of the daemon's CPU on a cold read. The storage is page-aligned, so it can
// be handed to O_DIRECT I/O. Shared as std::shared_ptr<const Buffer> between
// the cache, in-flight fetches and FUSE replies without copying.
//
// Blocks come and go at link speed. Fresh 4 MiB allocations are mapped by
// malloc and unmapped on free, so every byte would cost a page fault and a
// page clear; BufferPool keeps a bounded number of freed block buffers for
// reuse instead (a buffer returns to its pool when its last user drops it).
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

namespace dsfs {

class BufferPool;

class Buffer {
 public:
  static constexpr size_t kAlignment = 4096;
  // n rounded up to a multiple of kAlignment.
  static constexpr size_t RoundUp(size_t n) {
    return (n + kAlignment - 1) / kAlignment * kAlignment;
  }

  // n bytes, contents unspecified. Throws std::bad_alloc like new.
  static std::shared_ptr<Buffer> Allocate(size_t n);
  static std::shared_ptr<Buffer> Copy(std::string_view bytes);

  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  char* data() { return data_; }
  const char* data() const { return data_; }
  size_t size() const { return size_; }
  std::string_view view() const { return {data_, size_}; }
  operator std::string_view() const { return view(); }  // NOLINT: implicit by design

  friend bool operator==(const Buffer& a, std::string_view b) { return a.view() == b; }
  friend bool operator==(const Buffer& a, const Buffer& b) { return a.view() == b.view(); }

 private:
  friend class BufferPool;
  struct PoolState;
  Buffer(char* data, size_t size, std::shared_ptr<PoolState> pool)
      : data_(data), size_(size), pool_(std::move(pool)) {}

  char* data_;
  size_t size_;
  std::shared_ptr<PoolState> pool_;  // where data_ returns, or null: freed
};

class BufferPool {
 public:
  // Buffers of up to buffer_size bytes come from the pool; it keeps at most
  // max_idle freed ones (the rest are freed). Thread-safe.
  BufferPool(size_t buffer_size, size_t max_idle);
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // n bytes, contents unspecified; larger than buffer_size: a plain Buffer.
  std::shared_ptr<Buffer> Allocate(size_t n);
  size_t idle() const;

 private:
  std::shared_ptr<Buffer::PoolState> state_;
};

// n bytes from pool, or a plain Buffer when pool is null.
inline std::shared_ptr<Buffer> AllocateBuffer(BufferPool* pool, size_t n) {
  return pool ? pool->Allocate(n) : Buffer::Allocate(n);
}

}  // namespace dsfs
