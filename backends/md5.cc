#include "backends/md5.h"

#include <errno.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

namespace dsfs {
namespace {

constexpr size_t kMd5Len = 16;
constexpr size_t kReadChunk = 1 << 20;

struct EvpDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};

}  // namespace

std::string Md5Binary(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // EVP_Digest cannot fail for MD5 with a valid output buffer short of
  // memory exhaustion; an empty digest then fails every comparison.
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_md5(), nullptr) != 1) return "";
  return std::string(reinterpret_cast<const char*>(md), len);
}

Result<std::string> Md5OfBody(const Body& body) {
  if (body.fd < 0) {
    if (body.length > 0 && body.data == nullptr) {
      return Status::InvalidArgument("body of " + std::to_string(body.length) +
                                     " bytes has no data");
    }
    return Md5Binary(std::string_view(body.data == nullptr ? "" : body.data, body.length));
  }
  std::unique_ptr<EVP_MD_CTX, EvpDeleter> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_md5(), nullptr) != 1) {
    return Status::IoError("MD5: OpenSSL context");
  }
  std::vector<char> buf(static_cast<size_t>(std::min<uint64_t>(kReadChunk, body.length)));
  uint64_t done = 0;
  while (done < body.length) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), body.length - done));
    const ssize_t n = pread(body.fd, buf.data(), want, static_cast<off_t>(body.offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::IoError(std::string("reading the body to upload: ") + std::strerror(errno));
    }
    if (n == 0) {
      return Status::IoError("the body to upload ends at " + std::to_string(body.offset + done) +
                             ", before its " + std::to_string(body.length) + " bytes");
    }
    if (EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(n)) != 1) {
      return Status::IoError("MD5: OpenSSL update");
    }
    done += static_cast<uint64_t>(n);
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx.get(), md, &len) != 1 || len != kMd5Len) {
    return Status::IoError("MD5: OpenSSL final");
  }
  return std::string(reinterpret_cast<const char*>(md), len);
}

std::string HexOf(std::string_view binary) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * binary.size());
  for (unsigned char c : binary) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::string Base64Of(std::string_view binary) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((binary.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= binary.size(); i += 3) {
    const uint32_t v = (static_cast<unsigned char>(binary[i]) << 16) |
                       (static_cast<unsigned char>(binary[i + 1]) << 8) |
                       static_cast<unsigned char>(binary[i + 2]);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  const size_t rest = binary.size() - i;
  if (rest > 0) {
    uint32_t v = static_cast<unsigned char>(binary[i]) << 16;
    if (rest == 2) v |= static_cast<unsigned char>(binary[i + 1]) << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(rest == 2 ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::string MultipartEtag(const std::string& concatenated_part_digests) {
  return HexOf(Md5Binary(concatenated_part_digests)) + "-" +
         std::to_string(concatenated_part_digests.size() / kMd5Len);
}

}  // namespace dsfs
