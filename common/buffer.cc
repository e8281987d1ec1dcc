#include "common/buffer.h"

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

namespace dsfs {
namespace {

char* AlignedAlloc(size_t n) {
  // aligned_alloc needs a size that is a multiple of the alignment.
  const size_t rounded = n == 0 ? Buffer::kAlignment : Buffer::RoundUp(n);
  char* p = static_cast<char*>(std::aligned_alloc(Buffer::kAlignment, rounded));
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

}  // namespace

struct Buffer::PoolState {
  size_t buffer_size;
  size_t max_idle;
  mutable std::mutex mu;
  std::vector<char*> idle;  // guarded by mu
  bool closed = false;      // guarded by mu: the pool is gone, free on return

  void Return(char* p) {
    {
      std::lock_guard lock(mu);
      if (!closed && idle.size() < max_idle) {
        idle.push_back(p);
        return;
      }
    }
    std::free(p);
  }
};

std::shared_ptr<Buffer> Buffer::Allocate(size_t n) {
  return std::shared_ptr<Buffer>(new Buffer(AlignedAlloc(n), n, nullptr));
}

std::shared_ptr<Buffer> Buffer::Copy(std::string_view bytes) {
  auto b = Allocate(bytes.size());
  if (!bytes.empty()) std::memcpy(b->data(), bytes.data(), bytes.size());
  return b;
}

Buffer::~Buffer() {
  if (pool_) {
    pool_->Return(data_);
  } else {
    std::free(data_);
  }
}

BufferPool::BufferPool(size_t buffer_size, size_t max_idle)
    : state_(std::make_shared<Buffer::PoolState>()) {
  state_->buffer_size = buffer_size;
  state_->max_idle = max_idle;
}

BufferPool::~BufferPool() {
  std::vector<char*> idle;
  {
    std::lock_guard lock(state_->mu);
    state_->closed = true;
    idle.swap(state_->idle);
  }
  for (char* p : idle) std::free(p);
}

std::shared_ptr<Buffer> BufferPool::Allocate(size_t n) {
  if (n > state_->buffer_size) return Buffer::Allocate(n);
  char* p = nullptr;
  {
    std::lock_guard lock(state_->mu);
    if (!state_->idle.empty()) {
      p = state_->idle.back();
      state_->idle.pop_back();
    }
  }
  if (p == nullptr) p = AlignedAlloc(state_->buffer_size);
  return std::shared_ptr<Buffer>(new Buffer(p, n, state_));
}

size_t BufferPool::idle() const {
  std::lock_guard lock(state_->mu);
  return state_->idle.size();
}

}  // namespace dsfs
