#include "backends/share_proof.h"

#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <thread>

#include "common/buffer.h"

namespace dsfs {
namespace {

constexpr size_t kChunk = 4 * kMiB;
constexpr size_t kMd5Len = 16;

bool IsHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

std::string ToHex(const unsigned char* md, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[md[i] >> 4]);
    out.push_back(kDigits[md[i] & 15]);
  }
  return out;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

struct EvpDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using Md5Ctx = std::unique_ptr<EVP_MD_CTX, EvpDeleter>;

Md5Ctx NewMd5() {
  Md5Ctx ctx(EVP_MD_CTX_new());
  if (ctx && EVP_DigestInit_ex(ctx.get(), EVP_md5(), nullptr) != 1) ctx.reset();
  return ctx;
}

bool Finish(EVP_MD_CTX* ctx, unsigned char* md) {
  unsigned int len = 0;
  return EVP_DigestFinal_ex(ctx, md, &len) == 1 && len == kMd5Len;
}

// The multipart ETag of one candidate part size, built as the bytes stream by.
struct MultipartCandidate {
  uint64_t part_size = 0;
  uint64_t in_part = 0;
  Md5Ctx part;
  std::string part_digests;  // binary MD5s of the finished parts

  bool Update(const char* p, size_t n) {
    while (n > 0) {
      const size_t take = static_cast<size_t>(std::min<uint64_t>(n, part_size - in_part));
      if (EVP_DigestUpdate(part.get(), p, take) != 1) return false;
      in_part += take;
      p += take;
      n -= take;
      if (in_part == part_size && !EndPart()) return false;
    }
    return true;
  }
  bool EndPart() {
    unsigned char md[EVP_MAX_MD_SIZE];
    if (!Finish(part.get(), md)) return false;
    part_digests.append(reinterpret_cast<const char*>(md), kMd5Len);
    in_part = 0;
    return EVP_DigestInit_ex(part.get(), EVP_md5(), nullptr) == 1;
  }
  // "<hex>-<parts>", or "" on an OpenSSL failure.
  std::string Etag() {
    if (in_part > 0 && !EndPart()) return "";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(part_digests.data(), part_digests.size(), md, &len, EVP_md5(), nullptr) != 1) {
      return "";
    }
    return ToHex(md, len) + "-" + std::to_string(part_digests.size() / kMd5Len);
  }
};

}  // namespace

const char* ProofVerdictName(ProofVerdict verdict) {
  switch (verdict) {
    case ProofVerdict::kProven: return "proven";
    case ProofVerdict::kDiffers: return "differs";
    case ProofVerdict::kUnprovable: return "unprovable";
  }
  return "unknown";
}

std::optional<ProofRecord> MemoryProofBook::Find(const std::string& key,
                                                 const std::string& share_etag) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key + '\0' + share_etag);
  if (it == entries_.end()) return std::nullopt;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return it->second.record;
}

void MemoryProofBook::Record(const std::string& key, const std::string& share_etag,
                             const ProofRecord& record) {
  if (max_entries_ == 0) return;
  std::string id = key + '\0' + share_etag;
  std::lock_guard lock(mu_);
  if (auto it = entries_.find(id); it != entries_.end()) {
    it->second.record = record;
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return;
  }
  lru_.push_front(id);
  entries_.emplace(std::move(id), Entry{record, lru_.begin()});
  while (entries_.size() > max_entries_) {
    entries_.erase(lru_.back());
    lru_.pop_back();
  }
}

bool IsProvableEtag(std::string_view etag) {
  if (etag.size() == 32) return IsHex(etag);
  const size_t dash = etag.find('-');
  if (dash != 32 || !IsHex(etag.substr(0, 32))) return false;
  std::string_view parts = etag.substr(33);
  return !parts.empty() && parts.size() <= 5 &&
         std::all_of(parts.begin(), parts.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool RateLimiter::Acquire(uint64_t bytes, const CancelTokenPtr& cancel) {
  if (rate_ == 0) return !IsCancelled(cancel);
  double wait = 0;
  {
    std::lock_guard lock(mu_);
    const double now = std::chrono::duration<double>(
                           std::chrono::steady_clock::now().time_since_epoch())
                           .count();
    next_free_ = std::max(next_free_, now);
    wait = next_free_ - now;
    next_free_ += static_cast<double>(bytes) / static_cast<double>(rate_);
  }
  // Sleep in slices so a cancel is noticed soon.
  const auto until = std::chrono::steady_clock::now() +
                     std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                         std::chrono::duration<double>(wait));
  while (true) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= until || IsCancelled(cancel)) break;
    std::chrono::steady_clock::duration slice = until - now;
    slice = std::min<std::chrono::steady_clock::duration>(slice, std::chrono::milliseconds(50));
    std::this_thread::sleep_for(slice);
  }
  return !IsCancelled(cancel);
}

Result<ProofVerdict> ProveShareFile(ObjectStore& share, const std::string& key,
                                    const std::string& share_etag, uint64_t size,
                                    const std::string& obs_etag, RateLimiter* limiter,
                                    const CancelTokenPtr& cancel) {
  if (!IsProvableEtag(obs_etag)) return ProofVerdict::kUnprovable;
  const std::string want = Lower(obs_etag);
  const bool multipart = want.size() > 32;
  Md5Ctx whole;
  std::vector<MultipartCandidate> candidates;
  if (multipart) {
    const uint64_t parts = std::stoull(want.substr(33));
    for (uint64_t p : kMultipartPartSizes) {
      if (parts == 0 || (size + p - 1) / p != parts) continue;
      MultipartCandidate c;
      c.part_size = p;
      c.part = NewMd5();
      if (!c.part) return Status::IoError("MD5 unavailable (OpenSSL)");
      candidates.push_back(std::move(c));
    }
    // No common part size fits this size and part count: nothing to check against.
    if (candidates.empty()) return ProofVerdict::kUnprovable;
  } else {
    whole = NewMd5();
    if (!whole) return Status::IoError("MD5 unavailable (OpenSSL)");
  }

  std::shared_ptr<Buffer> buf = Buffer::Allocate(static_cast<size_t>(std::min<uint64_t>(
      kChunk, std::max<uint64_t>(size, 1))));
  for (uint64_t off = 0; off < size;) {
    const uint64_t n = std::min<uint64_t>(kChunk, size - off);
    if (limiter != nullptr ? !limiter->Acquire(n, cancel) : IsCancelled(cancel)) {
      return Status::Cancelled("proof of '" + key + "' cancelled");
    }
    GetRequest req;
    req.key = key;
    req.range = ByteRange{off, n};
    req.if_match = share_etag;
    req.cancel = cancel;
    DSFS_ASSIGN_OR_RETURN(GetResult got, share.Get(req, buf->data(), buf->size()));
    if (got.bytes != n) return Status::IoError("short read of '" + key + "' while proving it");
    if (multipart) {
      for (auto& c : candidates) {
        if (!c.Update(buf->data(), n)) return Status::IoError("MD5 failed (OpenSSL)");
      }
    } else if (EVP_DigestUpdate(whole.get(), buf->data(), n) != 1) {
      return Status::IoError("MD5 failed (OpenSSL)");
    }
    off += n;
  }
  if (multipart) {
    for (auto& c : candidates) {
      if (c.Etag() == want) return ProofVerdict::kProven;
    }
    return ProofVerdict::kDiffers;
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  if (!Finish(whole.get(), md)) return Status::IoError("MD5 failed (OpenSSL)");
  return ToHex(md, kMd5Len) == want ? ProofVerdict::kProven : ProofVerdict::kDiffers;
}

}  // namespace dsfs
