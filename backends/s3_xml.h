// S3 wire formats: ListObjectsV2 result pages, error bodies and the
// bodies of the write requests (pugixml), plus the two date formats S3 uses. Malformed input is an InvalidArgument
// with a message saying what was wrong; nothing here throws or crashes.
#pragma once

#include <cstdint>
#include <string>
#include <optional>
#include <string_view>
#include <vector>

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

// The <Error> a 2xx reply may carry instead of its result: S3 answers
// CopyObject, UploadPartCopy and CompleteMultipartUpload with 200 before
// the work is done and reports a failure in the body. nullopt when the
// body is not such a document (whitespace before it is allowed: S3 sends
// it to keep the connection alive meanwhile).
[[nodiscard]] std::optional<S3Error> ErrorIn2xxBody(std::string_view body);

// The HTTP status S3 gives the error `code` when it is not in a 2xx body
// (InternalError 500, SlowDown 503, NoSuchUpload 404, ...); 500 for a code
// it does not know, so an unknown late failure is retried.
[[nodiscard]] long HttpStatusOfS3Error(std::string_view code);

// <InitiateMultipartUploadResult>'s <UploadId>. InvalidArgument when the
// body is not such a document or the id is empty.
[[nodiscard]] Result<std::string> ParseInitiateMultipartUpload(std::string_view body);

// The <ETag> (quotes stripped) of a result document with root element
// `root`: "CopyObjectResult", "CopyPartResult" or
// "CompleteMultipartUploadResult". InvalidArgument when the root is
// another or the ETag is empty.
[[nodiscard]] Result<std::string> ParseResultEtag(std::string_view body, const char* root);

// The CompleteMultipartUpload request body: the parts in the order given,
// each <Part><PartNumber>n</PartNumber><ETag>"etag"</ETag></Part>.
[[nodiscard]] std::string CompleteMultipartUploadXml(const std::vector<CompletedPart>& parts);

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
