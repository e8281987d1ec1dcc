// MD5 of write bodies: S3 checks a body against its Content-MD5 (base64 of
// the binary digest) and gives a single-part object the hex digest as its
// ETag, a multipart object "<hex MD5 of the parts' binary MD5s>-<parts>".
// OpenSSL 3 EVP.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "backends/object_store.h"
#include "common/status.h"

namespace dsfs {

// The 16-byte binary digest of data.
std::string Md5Binary(std::string_view data);
// The binary digest of a Body: memory, or `length` bytes of the file at
// `offset` read with pread in chunks (never the whole range in RAM).
// IoError when the file is shorter than the range or unreadable.
Result<std::string> Md5OfBody(const Body& body);

// 32 lower-case hex digits / base64 of a binary digest.
std::string HexOf(std::string_view binary);
std::string Base64Of(std::string_view binary);

// "<hex MD5 of the concatenated binary part digests>-<count>".
std::string MultipartEtag(const std::string& concatenated_part_digests);

}  // namespace dsfs
