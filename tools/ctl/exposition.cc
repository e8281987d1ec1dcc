#include "tools/ctl/exposition.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <set>

namespace dsfs::ctl {
namespace {

bool NameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool NameChar(char c, bool colon) {
  return NameStart(c) || (c >= '0' && c <= '9') || (colon && c == ':');
}

// A cursor over one line; each Read* returns false on malformed text.
class LineReader {
 public:
  explicit LineReader(std::string_view line) : s_(line) {}
  bool AtEnd() const { return i_ >= s_.size(); }
  char Peek() const { return AtEnd() ? '\0' : s_[i_]; }
  void SkipSpaces() {
    while (!AtEnd() && (s_[i_] == ' ' || s_[i_] == '\t')) ++i_;
  }
  bool Consume(char c) {
    if (Peek() != c) return false;
    ++i_;
    return true;
  }
  bool ReadName(bool colon, std::string* out) {
    const size_t start = i_;
    if (AtEnd() || !(NameStart(s_[i_]) || (colon && s_[i_] == ':'))) return false;
    while (!AtEnd() && NameChar(s_[i_], colon)) ++i_;
    *out = std::string(s_.substr(start, i_ - start));
    return true;
  }
  // A double-quoted label value with the format's escapes (\\ \" \n).
  bool ReadQuoted(std::string* out) {
    if (!Consume('"')) return false;
    out->clear();
    while (!AtEnd()) {
      char c = s_[i_++];
      if (c == '"') return true;
      if (c == '\\') {
        if (AtEnd()) return false;
        char e = s_[i_++];
        if (e == 'n') {
          *out += '\n';
        } else if (e == '\\' || e == '"') {
          *out += e;
        } else {
          return false;
        }
      } else {
        *out += c;
      }
    }
    return false;
  }
  std::string_view ReadToken() {
    const size_t start = i_;
    while (!AtEnd() && s_[i_] != ' ' && s_[i_] != '\t') ++i_;
    return s_.substr(start, i_ - start);
  }
  std::string_view Rest() const { return AtEnd() ? std::string_view() : s_.substr(i_); }

 private:
  std::string_view s_;
  size_t i_ = 0;
};

bool ParseValue(std::string_view token, double* out) {
  if (token == "+Inf" || token == "Inf") {
    *out = std::numeric_limits<double>::infinity();
  } else if (token == "-Inf") {
    *out = -std::numeric_limits<double>::infinity();
  } else if (token == "NaN") {
    *out = std::numeric_limits<double>::quiet_NaN();
  } else {
    if (token.empty()) return false;
    const std::string t(token);
    char* end = nullptr;
    *out = std::strtod(t.c_str(), &end);
    if (end != t.c_str() + t.size() || std::isnan(*out) || std::isinf(*out)) return false;
  }
  return true;
}

bool Matches(const Sample& s, const Labels& match) {
  for (const auto& m : match) {
    if (std::find(s.labels.begin(), s.labels.end(), m) == s.labels.end()) return false;
  }
  return true;
}

Status BadLine(size_t n, const std::string& why) {
  return Status::InvalidArgument("metrics text, line " + std::to_string(n) + ": " + why);
}

std::string EscapeLabelValue(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      out += fmt::format("\\u{:04x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

}  // namespace

std::string Sample::Key() const {
  if (labels.empty()) return name;
  std::string out = name + "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out += ',';
    out += labels[i].first + "=\"" + EscapeLabelValue(labels[i].second) + "\"";
  }
  return out + "}";
}

Result<Exposition> ParseExposition(std::string_view text) {
  Exposition e;
  size_t n = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++n;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    LineReader r(line);
    r.SkipSpaces();
    if (r.AtEnd()) continue;
    if (r.Consume('#')) {
      r.SkipSpaces();
      const std::string_view word = r.ReadToken();
      if (word != "TYPE") continue;  // HELP and other comments carry no values
      r.SkipSpaces();
      std::string family;
      if (!r.ReadName(true, &family)) return BadLine(n, "TYPE without a metric name");
      r.SkipSpaces();
      const std::string type(r.ReadToken());
      if (type.empty()) return BadLine(n, "TYPE of " + family + " without a type");
      if (!e.types.emplace(family, type).second) {
        return BadLine(n, "a second TYPE line for " + family);
      }
      continue;
    }
    Sample s;
    if (!r.ReadName(true, &s.name)) return BadLine(n, "no metric name");
    if (r.Consume('{')) {
      for (;;) {
        r.SkipSpaces();
        if (r.Consume('}')) break;
        std::string key, value;
        if (!r.ReadName(false, &key)) return BadLine(n, "bad label name in " + s.name);
        r.SkipSpaces();
        if (!r.Consume('=')) return BadLine(n, "label " + key + " without '='");
        r.SkipSpaces();
        if (!r.ReadQuoted(&value)) return BadLine(n, "label " + key + ": bad quoted value");
        s.labels.emplace_back(std::move(key), std::move(value));
        r.SkipSpaces();
        if (r.Consume(',')) continue;
        if (r.Consume('}')) break;
        return BadLine(n, "labels of " + s.name + " not closed by '}'");
      }
    }
    r.SkipSpaces();
    if (!ParseValue(r.ReadToken(), &s.value)) return BadLine(n, "bad value for " + s.name);
    r.SkipSpaces();
    const std::string_view ts = r.ReadToken();  // an optional timestamp (ms)
    double unused;
    if (!ts.empty() && !ParseValue(ts, &unused)) return BadLine(n, "bad timestamp");
    r.SkipSpaces();
    if (!r.AtEnd()) return BadLine(n, "text after the value: '" + std::string(r.Rest()) + "'");
    e.samples.push_back(std::move(s));
  }
  return e;
}

double Exposition::Sum(const std::string& name, const Labels& match) const {
  double total = 0;
  for (const Sample& s : samples) {
    if (s.name == name && Matches(s, match)) total += s.value;
  }
  return total;
}

bool Exposition::Has(const std::string& name) const {
  return std::any_of(samples.begin(), samples.end(),
                     [&](const Sample& s) { return s.name == name; });
}

std::vector<std::string> Exposition::LabelValues(const std::string& name,
                                                 const std::string& label) const {
  std::set<std::string> values;
  for (const Sample& s : samples) {
    if (s.name != name) continue;
    for (const auto& [k, v] : s.labels) {
      if (k == label) values.insert(v);
    }
  }
  return {values.begin(), values.end()};
}

Buckets Exposition::HistogramBuckets(const std::string& family, const Labels& match) const {
  std::map<double, double> by_bound;
  const std::string name = family + "_bucket";
  for (const Sample& s : samples) {
    if (s.name != name || !Matches(s, match)) continue;
    auto le = std::find_if(s.labels.begin(), s.labels.end(),
                           [](const auto& l) { return l.first == "le"; });
    double bound;
    if (le == s.labels.end() || !ParseValue(le->second, &bound)) continue;
    by_bound[bound] += s.value;
  }
  return {by_bound.begin(), by_bound.end()};
}

double Quantile(const Buckets& buckets, double q) {
  if (buckets.empty() || !std::isinf(buckets.back().first)) return std::nan("");
  const double total = buckets.back().second;
  if (total <= 0) return std::nan("");
  const double rank = q * total;
  double lower = 0, below = 0;
  for (size_t i = 0; i < buckets.size(); ++i) {
    const auto& [bound, cumulative] = buckets[i];
    if (cumulative >= rank) {
      if (std::isinf(bound)) return i > 0 ? buckets[i - 1].first : std::nan("");
      const double in_bucket = cumulative - below;
      if (in_bucket <= 0) return bound;
      return lower + (bound - lower) * (rank - below) / in_bucket;
    }
    lower = bound;
    below = cumulative;
  }
  return std::nan("");  // not reached: the +Inf bucket holds every rank
}

Buckets BucketDelta(const Buckets& earlier, const Buckets& later) {
  if (earlier.size() != later.size()) return later;
  Buckets out = later;
  for (size_t i = 0; i < out.size(); ++i) {
    if (earlier[i].first != later[i].first || earlier[i].second > later[i].second) return later;
    out[i].second -= earlier[i].second;
  }
  return out;
}

std::string ToJson(const Exposition& e) {
  std::string out = "{";
  for (size_t i = 0; i < e.samples.size(); ++i) {
    const Sample& s = e.samples[i];
    if (i > 0) out += ",";
    out += JsonString(s.Key()) + ":";
    out += std::isfinite(s.value) ? fmt::format("{}", s.value) : "null";
  }
  return out + "}";
}

}  // namespace dsfs::ctl
