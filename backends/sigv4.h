// AWS Signature Version 4 for S3 (header-based authentication), with
// OpenSSL 3 EVP for SHA-256 and HMAC. Pure functions: the time is a
// parameter, nothing is read from the environment, nothing is logged.
//
// The canonical URI and canonical query string produced here are also what
// S3Store puts on the wire, so what is signed is exactly what is sent.
#pragma once

#include <ctime>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/config.h"

namespace dsfs::sigv4 {

// SHA-256 of the empty string, hex: the payload hash of a GET/HEAD/LIST.
inline constexpr std::string_view kEmptyPayloadSha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
// Literal payload hash meaning "body not signed" (allowed by S3).
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";

struct Request {
  std::string method;  // "GET", "HEAD", "PUT", ...
  // Raw (not yet encoded) absolute path, e.g. "/bucket/dir/a b.txt" or "/".
  std::string path;
  // Raw (not yet encoded) query parameters; order does not matter. A
  // parameter without a value ("?lifecycle") has an empty value.
  std::vector<std::pair<std::string, std::string>> query;
  // Headers to sign and send, any case. Must contain "host". Sign() adds
  // x-amz-date, x-amz-content-sha256 and (with a token)
  // x-amz-security-token.
  std::vector<std::pair<std::string, std::string>> headers;
  // Hex SHA-256 of the body, or kUnsignedPayload.
  std::string payload_hash = std::string(kEmptyPayloadSha256);
};

// S3 URI encoding: every byte except A-Z a-z 0-9 - . _ ~ becomes %XX
// (upper-case hex). '/' is kept when encode_slash is false (paths).
[[nodiscard]] std::string UriEncode(std::string_view in, bool encode_slash);

// Path -> canonical URI: each '/'-separated segment URI-encoded once (S3
// does not double-encode). "" becomes "/".
[[nodiscard]] std::string CanonicalUri(std::string_view path);

// Encoded name=value pairs sorted by encoded name (then value), joined by '&'.
[[nodiscard]] std::string CanonicalQueryString(
    const std::vector<std::pair<std::string, std::string>>& query);

// "20130524T000000Z" (UTC).
[[nodiscard]] std::string AmzDate(std::time_t t);

// Lower-case hex of SHA-256(data).
[[nodiscard]] std::string Sha256Hex(std::string_view data);

// Raw 32-byte HMAC-SHA256(key, data).
[[nodiscard]] std::string HmacSha256(std::string_view key, std::string_view data);

// Lower-case hex of arbitrary bytes.
[[nodiscard]] std::string HexEncode(std::string_view bytes);

// The canonical request of `req` exactly as signed (headers lower-cased,
// values trimmed with inner runs of spaces collapsed, sorted by name).
// *signed_headers (if non-null) receives "host;range;x-amz-date".
[[nodiscard]] std::string CanonicalRequest(const Request& req, std::string* signed_headers);

// "AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex sha256 of canonical request>".
[[nodiscard]] std::string StringToSign(std::string_view amz_date, std::string_view scope,
                                       std::string_view canonical_request);

// Raw signing key: HMAC chain over "AWS4"+secret, date (YYYYMMDD), region,
// service, "aws4_request".
[[nodiscard]] std::string SigningKey(std::string_view secret_key, std::string_view date,
                                     std::string_view region, std::string_view service);

// Adds x-amz-date (from `now`), x-amz-content-sha256 (req->payload_hash)
// and, when creds has a session token, x-amz-security-token to
// req->headers (replacing any existing ones), and returns the value of the
// Authorization header:
// "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request,
//  SignedHeaders=...,Signature=<hex>" (no spaces after the commas).
// The result contains a signature: never log it.
[[nodiscard]] std::string Sign(Request* req, const Credentials& creds, std::string_view region,
                               std::time_t now, std::string_view service = "s3");

}  // namespace dsfs::sigv4
