#include "backends/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdio>
#include <map>

#include "common/strings.h"

namespace dsfs::sigv4 {
namespace {

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

// Trims surrounding whitespace and collapses inner runs of spaces/tabs
// into one space, as the canonical header value requires.
std::string CanonicalHeaderValue(std::string_view v) {
  std::string out;
  bool pending_space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

void SetHeader(Request* req, std::string_view name, std::string value) {
  auto& hs = req->headers;
  hs.erase(
      std::remove_if(hs.begin(), hs.end(), [&](const auto& h) { return AsciiLower(h.first) == name; }),
      hs.end());
  hs.emplace_back(std::string(name), std::move(value));
}

}  // namespace

std::string UriEncode(std::string_view in, bool encode_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(in.size() * 3);
  for (char ch : in) {
    auto c = static_cast<unsigned char>(ch);
    if (IsUnreserved(c) || (c == '/' && !encode_slash)) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

std::string CanonicalUri(std::string_view path) {
  if (path.empty()) return "/";
  std::string out = UriEncode(path, /*encode_slash=*/false);
  if (out.front() != '/') out.insert(out.begin(), '/');
  return out;
}

std::string CanonicalQueryString(const std::vector<std::pair<std::string, std::string>>& query) {
  std::vector<std::pair<std::string, std::string>> enc;
  enc.reserve(query.size());
  for (const auto& [k, v] : query) enc.emplace_back(UriEncode(k, true), UriEncode(v, true));
  std::sort(enc.begin(), enc.end());
  std::string out;
  for (const auto& [k, v] : enc) {
    if (!out.empty()) out.push_back('&');
    out += k;
    out.push_back('=');
    out += v;
  }
  return out;
}

std::string AmzDate(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::string HexEncode(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char ch : bytes) {
    auto c = static_cast<unsigned char>(ch);
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xF]);
  }
  return out;
}

std::string Sha256Hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // EVP_Digest cannot fail for SHA-256 with a valid output buffer short of
  // a broken OpenSSL install; an empty result would then fail the signature.
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1) return "";
  return HexEncode(std::string_view(reinterpret_cast<const char*>(md), len));
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len) == nullptr) {
    return "";
  }
  return std::string(reinterpret_cast<const char*>(md), len);
}

std::string CanonicalRequest(const Request& req, std::string* signed_headers) {
  // Lower-cased name -> canonical value; repeated headers join with ','.
  std::map<std::string, std::string> hs;
  for (const auto& [name, value] : req.headers) {
    std::string n = AsciiLower(CanonicalHeaderValue(name));
    std::string v = CanonicalHeaderValue(value);
    auto [it, inserted] = hs.emplace(n, v);
    if (!inserted) it->second += "," + v;
  }
  std::string out =
      req.method + "\n" + CanonicalUri(req.path) + "\n" + CanonicalQueryString(req.query) + "\n";
  std::string names;
  for (const auto& [n, v] : hs) {
    out += n + ":" + v + "\n";
    if (!names.empty()) names.push_back(';');
    names += n;
  }
  out += "\n" + names + "\n" + req.payload_hash;
  if (signed_headers != nullptr) *signed_headers = names;
  return out;
}

std::string StringToSign(std::string_view amz_date, std::string_view scope,
                         std::string_view canonical_request) {
  std::string out = "AWS4-HMAC-SHA256\n";
  out += amz_date;
  out += "\n";
  out += scope;
  out += "\n";
  out += Sha256Hex(canonical_request);
  return out;
}

std::string SigningKey(std::string_view secret_key, std::string_view date, std::string_view region,
                       std::string_view service) {
  std::string k = "AWS4";
  k += secret_key;
  std::string k_date = HmacSha256(k, date);
  std::fill(k.begin(), k.end(), '\0');
  std::string k_region = HmacSha256(k_date, region);
  std::string k_service = HmacSha256(k_region, service);
  return HmacSha256(k_service, "aws4_request");
}

std::string Sign(Request* req, const Credentials& creds, std::string_view region, std::time_t now,
                 std::string_view service) {
  const std::string amz_date = AmzDate(now);
  const std::string date = amz_date.substr(0, 8);
  SetHeader(req, "x-amz-date", amz_date);
  SetHeader(req, "x-amz-content-sha256", req->payload_hash);
  if (!creds.session_token.empty()) {
    SetHeader(req, "x-amz-security-token", creds.session_token);
  }
  std::string signed_headers;
  const std::string canonical = CanonicalRequest(*req, &signed_headers);
  std::string scope = date + "/";
  scope += region;
  scope += "/";
  scope += service;
  scope += "/aws4_request";
  const std::string to_sign = StringToSign(amz_date, scope, canonical);
  const std::string key = SigningKey(creds.secret_key, date, region, service);
  const std::string signature = HexEncode(HmacSha256(key, to_sign));
  return "AWS4-HMAC-SHA256 Credential=" + creds.access_key + "/" + scope +
         ",SignedHeaders=" + signed_headers + ",Signature=" + signature;
}

}  // namespace dsfs::sigv4
