#include "common/buffer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace dsfs {
namespace {

bool Aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % Buffer::kAlignment == 0; }

TEST(Buffer, AllocateIsAlignedAndSized) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{4095}, size_t{4096}, size_t{100000}}) {
    auto b = Buffer::Allocate(n);
    EXPECT_EQ(b->size(), n);
    EXPECT_TRUE(Aligned(b->data())) << n;
    if (n > 0) std::memset(b->data(), 0xab, n);  // writable to the end (ASan checks)
  }
}

TEST(Buffer, CopyAndCompare) {
  auto b = Buffer::Copy("hello");
  EXPECT_EQ(b->view(), "hello");
  EXPECT_TRUE(*b == std::string_view("hello"));
  EXPECT_FALSE(*b == std::string_view("hellO"));
  EXPECT_TRUE(*b == *Buffer::Copy("hello"));
  EXPECT_EQ(std::string(*b), "hello");
  EXPECT_EQ(Buffer::Copy("")->size(), 0u);
}

TEST(BufferPool, FreedBuffersAreReusedUpToTheIdleLimit) {
  BufferPool pool(8192, 2);
  std::vector<std::shared_ptr<Buffer>> live;
  std::vector<const char*> seen;
  for (int i = 0; i < 3; ++i) {
    live.push_back(pool.Allocate(8192 - static_cast<size_t>(i)));
    seen.push_back(live.back()->data());
    EXPECT_EQ(live.back()->size(), 8192u - static_cast<size_t>(i));
    EXPECT_TRUE(Aligned(live.back()->data()));
  }
  EXPECT_EQ(pool.idle(), 0u);
  live.clear();
  EXPECT_EQ(pool.idle(), 2u);  // the third was freed
  auto again = pool.Allocate(100);
  EXPECT_EQ(again->size(), 100u);
  EXPECT_NE(std::find(seen.begin(), seen.end(), again->data()), seen.end());
  EXPECT_EQ(pool.idle(), 1u);
}

TEST(BufferPool, LargerThanPoolSizeIsAPlainBuffer) {
  BufferPool pool(4096, 4);
  {
    auto big = pool.Allocate(10000);
    EXPECT_EQ(big->size(), 10000u);
    std::memset(big->data(), 1, big->size());
  }
  EXPECT_EQ(pool.idle(), 0u);
}

TEST(BufferPool, BuffersMayOutliveThePool) {
  std::shared_ptr<Buffer> kept;
  {
    BufferPool pool(4096, 4);
    kept = pool.Allocate(4096);
    auto other = pool.Allocate(4096);
  }
  std::memset(kept->data(), 7, kept->size());  // still valid; freed on release (ASan checks)
  kept.reset();
}

TEST(BufferPool, ConcurrentUse) {
  BufferPool pool(4096, 8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&pool, t] {
      for (int i = 0; i < 2000; ++i) {
        auto b = pool.Allocate(4096);
        std::memset(b->data(), t, b->size());
        ASSERT_EQ(b->data()[4095], static_cast<char>(t));
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_LE(pool.idle(), 8u);
}

}  // namespace
}  // namespace dsfs
