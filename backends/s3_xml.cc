#include "backends/s3_xml.h"

#include <cstring>
#include <ctime>
#include <pugixml.hpp>

#include "common/strings.h"

namespace dsfs {
namespace {

constexpr size_t kMaxQuote = 80;  // how much of a bad value a message quotes

std::string Quote(std::string_view v) {
  std::string s(v.substr(0, kMaxQuote));
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20) c = '?';
  }
  if (v.size() > kMaxQuote) s += "...";
  return "'" + s + "'";
}

Status XmlError(const char* what, const pugi::xml_parse_result& r) {
  return Status::InvalidArgument(std::string("malformed ") + what + " XML: " + r.description() +
                                 " at offset " + std::to_string(r.offset));
}

int HexVal(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Seconds since the epoch for a UTC civil time, with range checks.
Result<int64_t> CivilToEpoch(int year, int mon, int day, int hour, int min, int sec,
                             std::string_view text) {
  if (year < 1970 || year > 9999 || mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 ||
      min > 59 || sec > 60 || hour < 0 || min < 0 || sec < 0) {
    return Status::InvalidArgument("date out of range: " + Quote(text));
  }
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  return static_cast<int64_t>(timegm(&tm));
}

std::string ChildText(const pugi::xml_node& n, const char* name) {
  return n.child(name).text().as_string();
}

}  // namespace

Result<std::string> UrlFormDecode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%') {
      int hi = i + 2 < in.size() ? HexVal(in[i + 1]) : -1;
      int low = i + 2 < in.size() ? HexVal(in[i + 2]) : -1;
      if (hi < 0 || low < 0) {
        return Status::InvalidArgument("bad %-escape in URL-encoded value " + Quote(in));
      }
      out.push_back(static_cast<char>(hi * 16 + low));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Result<int64_t> ParseIso8601(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS[.fff]Z
  if (text.size() < 20 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' ||
      text[16] != ':' || text.back() != 'Z') {
    return Status::InvalidArgument("bad ISO 8601 time " + Quote(text));
  }
  int y, mo, d, h, mi, s;
  if (!ParseInteger(text.substr(0, 4), &y) || !ParseInteger(text.substr(5, 2), &mo) ||
      !ParseInteger(text.substr(8, 2), &d) || !ParseInteger(text.substr(11, 2), &h) ||
      !ParseInteger(text.substr(14, 2), &mi) || !ParseInteger(text.substr(17, 2), &s)) {
    return Status::InvalidArgument("bad ISO 8601 time " + Quote(text));
  }
  std::string_view rest = text.substr(19, text.size() - 20);  // between SS and Z
  if (!rest.empty()) {
    uint64_t frac;
    if (rest[0] != '.' || !ParseInteger(rest.substr(1), &frac)) {
      return Status::InvalidArgument("bad ISO 8601 time " + Quote(text));
    }
  }
  return CivilToEpoch(y, mo, d, h, mi, s, text);
}

Result<int64_t> ParseHttpDate(std::string_view text) {
  // "Wed, 12 Oct 2009 17:50:00 GMT"
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  if (text.size() != 29 || text[3] != ',' || text[4] != ' ' || text[7] != ' ' || text[11] != ' ' ||
      text[16] != ' ' || text[19] != ':' || text[22] != ':' || text.substr(25) != " GMT") {
    return Status::InvalidArgument("bad HTTP date " + Quote(text));
  }
  int mon = 0;
  for (int i = 0; i < 12; ++i) {
    if (text.substr(8, 3) == kMonths[i]) mon = i + 1;
  }
  int y, d, h, mi, s;
  if (mon == 0 || !ParseInteger(text.substr(5, 2), &d) || !ParseInteger(text.substr(12, 4), &y) ||
      !ParseInteger(text.substr(17, 2), &h) || !ParseInteger(text.substr(20, 2), &mi) ||
      !ParseInteger(text.substr(23, 2), &s)) {
    return Status::InvalidArgument("bad HTTP date " + Quote(text));
  }
  return CivilToEpoch(y, mon, d, h, mi, s, text);
}

std::string StripEtagQuotes(std::string_view etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return std::string(etag);
}

Result<ListPage> ParseListObjectsV2(std::string_view body) {
  pugi::xml_document doc;
  pugi::xml_parse_result r =
      doc.load_buffer(body.data(), body.size(), pugi::parse_default, pugi::encoding_utf8);
  if (!r) return XmlError("ListObjectsV2", r);
  pugi::xml_node root = doc.child("ListBucketResult");
  if (!root) {
    return Status::InvalidArgument("ListObjectsV2 reply has no <ListBucketResult> root (got " +
                                   Quote(doc.first_child().name()) + ")");
  }
  const bool url_encoded = std::strcmp(ChildText(root, "EncodingType").c_str(), "url") == 0;
  auto decode = [&](std::string raw) -> Result<std::string> {
    if (!url_encoded) return raw;
    return UrlFormDecode(raw);
  };

  ListPage page;
  for (pugi::xml_node c : root.children("Contents")) {
    ObjectInfo info;
    pugi::xml_node key = c.child("Key");
    if (!key) return Status::InvalidArgument("ListObjectsV2 <Contents> without <Key>");
    DSFS_ASSIGN_OR_RETURN(info.key, decode(key.text().as_string()));
    std::string size = ChildText(c, "Size");
    if (!ParseInteger(std::string_view(size), &info.size)) {
      return Status::InvalidArgument("ListObjectsV2: bad <Size> " + Quote(size) + " for key " +
                                     Quote(info.key));
    }
    info.etag = StripEtagQuotes(ChildText(c, "ETag"));
    std::string lm = ChildText(c, "LastModified");
    if (!lm.empty()) {
      DSFS_ASSIGN_OR_RETURN(info.mtime_sec, ParseIso8601(lm));
    }
    page.objects.push_back(std::move(info));
  }
  for (pugi::xml_node p : root.children("CommonPrefixes")) {
    pugi::xml_node prefix = p.child("Prefix");
    if (!prefix) return Status::InvalidArgument("ListObjectsV2 <CommonPrefixes> without <Prefix>");
    DSFS_ASSIGN_OR_RETURN(std::string decoded, decode(prefix.text().as_string()));
    page.common_prefixes.push_back(std::move(decoded));
  }
  std::string truncated = ChildText(root, "IsTruncated");
  if (truncated == "true") {
    page.next_continuation = ChildText(root, "NextContinuationToken");
    if (page.next_continuation.empty()) {
      return Status::InvalidArgument(
          "ListObjectsV2 page is truncated but has no NextContinuationToken");
    }
  } else if (!truncated.empty() && truncated != "false") {
    return Status::InvalidArgument("ListObjectsV2: bad <IsTruncated> " + Quote(truncated));
  }
  return page;
}

Result<S3Error> ParseS3Error(std::string_view body) {
  pugi::xml_document doc;
  pugi::xml_parse_result r =
      doc.load_buffer(body.data(), body.size(), pugi::parse_default, pugi::encoding_utf8);
  if (!r) return XmlError("S3 error", r);
  pugi::xml_node root = doc.child("Error");
  if (!root) {
    return Status::InvalidArgument("S3 error body has no <Error> root (got " +
                                   Quote(doc.first_child().name()) + ")");
  }
  S3Error e;
  e.code = ChildText(root, "Code");
  e.message = ChildText(root, "Message");
  e.resource = ChildText(root, "Resource");
  e.request_id = ChildText(root, "RequestId");
  if (e.code.empty()) return Status::InvalidArgument("S3 error body has no <Code>");
  return e;
}

namespace {

// Parses a write reply; the reply may start with whitespace (keep-alive).
bool LoadDoc(std::string_view body, pugi::xml_document* doc, pugi::xml_parse_result* r) {
  *r = doc->load_buffer(body.data(), body.size(), pugi::parse_default, pugi::encoding_utf8);
  return static_cast<bool>(*r);
}

std::string XmlEscape(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (char c : in) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

}  // namespace

std::optional<S3Error> ErrorIn2xxBody(std::string_view body) {
  size_t start = body.find_first_not_of(" \t\r\n");
  if (start == std::string_view::npos) return std::nullopt;
  body.remove_prefix(start);
  auto parsed = ParseS3Error(body);
  if (!parsed.ok()) return std::nullopt;
  return *std::move(parsed);
}

long HttpStatusOfS3Error(std::string_view code) {
  struct Entry {
    const char* code;
    long status;
  };
  static constexpr Entry kTable[] = {
      {"InternalError", 500},       {"ServiceUnavailable", 503}, {"SlowDown", 503},
      {"RequestTimeout", 400},      {"NoSuchKey", 404},          {"NoSuchUpload", 404},
      {"NoSuchBucket", 404},        {"AccessDenied", 403},       {"PreconditionFailed", 412},
      {"InvalidPart", 400},         {"InvalidPartOrder", 400},   {"EntityTooSmall", 400},
      {"EntityTooLarge", 400},      {"InvalidRequest", 400},     {"InvalidArgument", 400},
      {"MalformedXML", 400},        {"BadDigest", 400},          {"InvalidDigest", 400},
  };
  for (const Entry& e : kTable) {
    if (code == e.code) return e.status;
  }
  return 500;
}

Result<std::string> ParseInitiateMultipartUpload(std::string_view body) {
  pugi::xml_document doc;
  pugi::xml_parse_result r;
  if (!LoadDoc(body, &doc, &r)) return XmlError("InitiateMultipartUploadResult", r);
  pugi::xml_node root = doc.child("InitiateMultipartUploadResult");
  if (!root) {
    return Status::InvalidArgument("CreateMultipartUpload reply has no "
                                   "<InitiateMultipartUploadResult> root (got " +
                                   Quote(doc.first_child().name()) + ")");
  }
  std::string id = ChildText(root, "UploadId");
  if (id.empty()) return Status::InvalidArgument("CreateMultipartUpload reply has no <UploadId>");
  return id;
}

Result<std::string> ParseResultEtag(std::string_view body, const char* root_name) {
  pugi::xml_document doc;
  pugi::xml_parse_result r;
  if (!LoadDoc(body, &doc, &r)) return XmlError(root_name, r);
  pugi::xml_node root = doc.child(root_name);
  if (!root) {
    return Status::InvalidArgument(std::string("reply has no <") + root_name + "> root (got " +
                                   Quote(doc.first_child().name()) + ")");
  }
  std::string etag = StripEtagQuotes(ChildText(root, "ETag"));
  if (etag.empty()) return Status::InvalidArgument(std::string(root_name) + " has no <ETag>");
  return etag;
}

std::string CompleteMultipartUploadXml(const std::vector<CompletedPart>& parts) {
  std::string out =
      "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
  for (const CompletedPart& p : parts) {
    out += "<Part><PartNumber>" + std::to_string(p.part_number) + "</PartNumber><ETag>\"" +
           XmlEscape(p.etag) + "\"</ETag></Part>";
  }
  out += "</CompleteMultipartUpload>";
  return out;
}

}  // namespace dsfs
