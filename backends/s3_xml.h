// S3 wire formats: ListObjectsV2 result pages and error bodies (pugixml),
// plus the two date formats S3 uses. Malformed input is an InvalidArgument
// with a message saying what was wrong; nothing here throws or crashes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "backends/object_store.h"
#include "common/status.h"

namespace dsfs {

// One parsed ListObjectsV2 page.
//
// encoding-type=url: S3Store always requests it, because a key may hold
// bytes that XML 1.0 cannot carry. Keys and prefixes are decoded only when
// the reply says <EncodingType>url</EncodingType> (a server that ignored
// the parameter sends raw keys, which must not be decoded), with
// form-decoding ('+' is a space, as S3 encodes it; '%2B' is '+').
//
// A page with IsTruncated=true must carry a NextContinuationToken (else the
// listing could never continue: InvalidArgument); ListPage::next_continuation
// is empty exactly when this is the last page.
[[nodiscard]] Result<ListPage> ParseListObjectsV2(std::string_view body);

struct S3Error {
  std::string code;     // "NoSuchKey", "SignatureDoesNotMatch", ...
  std::string message;  // human text from the server
  std::string resource;
  std::string request_id;
};

// Parses <Error><Code>..</Code><Message>..</Message>...</Error>.
// InvalidArgument when the body is not such a document.
[[nodiscard]] Result<S3Error> ParseS3Error(std::string_view body);

// application/x-www-form-urlencoded decoding ("a%20b+c" -> "a b c").
// InvalidArgument on a bad escape.
[[nodiscard]] Result<std::string> UrlFormDecode(std::string_view in);

// "2009-10-12T17:50:30.000Z" (fraction optional, 'Z' required) -> seconds
// since the epoch (UTC).
[[nodiscard]] Result<int64_t> ParseIso8601(std::string_view text);

// RFC 7231 IMF-fixdate, "Wed, 12 Oct 2009 17:50:00 GMT" -> seconds since
// the epoch. Locale-independent.
[[nodiscard]] Result<int64_t> ParseHttpDate(std::string_view text);

// Strips one pair of surrounding double quotes from an ETag, if present.
[[nodiscard]] std::string StripEtagQuotes(std::string_view etag);

}  // namespace dsfs
