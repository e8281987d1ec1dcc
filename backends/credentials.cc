#include "backends/credentials.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <vector>

#include "common/posix.h"
#include "common/strings.h"

namespace dsfs {
namespace {

// A passwd file is a few lines; anything much bigger is not one.
constexpr size_t kMaxFileSize = 1 << 20;

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

}  // namespace

Result<Credentials> ParseCredentialsFile(std::string_view content, const std::string& bucket,
                                         const std::string& path) {
  std::optional<Credentials> def;
  std::optional<Credentials> specific;
  int def_line = 0;
  int specific_line = 0;
  int lineno = 0;
  // Editors on Windows start a UTF-8 file with a byte order mark; it would
  // become part of the access key and fail as "access denied".
  if (content.starts_with("\xEF\xBB\xBF")) content.remove_prefix(3);
  for (std::string_view raw : Split(content, '\n')) {
    ++lineno;
    std::string_view line = Trim(raw);
    if (line.empty() || line.front() == '#') continue;
    const std::string where = path + " line " + std::to_string(lineno);
    std::vector<std::string_view> f = Split(line, ':');
    for (auto& field : f) field = Trim(field);
    // Never quote the line: it holds a secret.
    if (f.size() != 2 && f.size() != 3) {
      return Status::InvalidArgument(where +
                                     ": expected ACCESS_KEY:SECRET_KEY or "
                                     "bucket:ACCESS_KEY:SECRET_KEY (" +
                                     std::to_string(f.size()) + " ':'-separated fields)");
    }
    for (const auto& field : f) {
      if (field.empty()) return Status::InvalidArgument(where + ": empty field");
    }
    Credentials c;
    c.access_key = std::string(f[f.size() - 2]);
    c.secret_key = std::string(f[f.size() - 1]);
    if (f.size() == 2) {
      if (def) {
        return Status::InvalidArgument(where + ": second default key line (first at line " +
                                       std::to_string(def_line) + ")");
      }
      def = std::move(c);
      def_line = lineno;
    } else if (f[0] == bucket) {
      if (specific) {
        return Status::InvalidArgument(where + ": second key line for bucket '" + bucket +
                                       "' (first at line " + std::to_string(specific_line) + ")");
      }
      specific = std::move(c);
      specific_line = lineno;
    }
  }
  if (specific) return *std::move(specific);
  if (def) return *std::move(def);
  return Status::InvalidArgument(path + ": no key line for bucket '" + bucket +
                                 "' and no default ACCESS_KEY:SECRET_KEY line");
}

Result<Credentials> CredentialsFromEnv(const std::function<const char*(const char*)>& getenv_fn) {
  auto get = [&](const char* name) {
    const char* v = getenv_fn(name);
    return v == nullptr ? std::string() : std::string(Trim(v));
  };
  Credentials c;
  c.access_key = get("AWS_ACCESS_KEY_ID");
  c.secret_key = get("AWS_SECRET_ACCESS_KEY");
  c.session_token = get("AWS_SESSION_TOKEN");
  if (c.access_key.empty() && c.secret_key.empty()) {
    return Status::InvalidArgument(
        "no credentials: give passwd_file= (lines ACCESS_KEY:SECRET_KEY or "
        "bucket:ACCESS_KEY:SECRET_KEY) or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
  }
  if (c.access_key.empty()) {
    return Status::InvalidArgument("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not");
  }
  if (c.secret_key.empty()) {
    return Status::InvalidArgument("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
  }
  return c;
}

Result<Credentials> LoadCredentials(const std::string& passwd_file, const std::string& bucket) {
  if (passwd_file.empty()) {
    return CredentialsFromEnv([](const char* name) { return std::getenv(name); });
  }
  // Checks and reads go through one fd, so the file checked is the file read.
  Fd owned(::open(passwd_file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  const int fd = owned.get();
  if (fd < 0) {
    return Status::InvalidArgument("cannot open passwd_file " + passwd_file + ": " + ErrnoText(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return Status::InvalidArgument("cannot stat passwd_file " + passwd_file + ": " + ErrnoText(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    return Status::InvalidArgument("passwd_file " + passwd_file + " is not a regular file");
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status::InvalidArgument("passwd_file " + passwd_file + " (mode " + mode +
                                   ") is accessible by group or others; run: chmod 600 " +
                                   passwd_file);
  }
  if (static_cast<size_t>(st.st_size) > kMaxFileSize) {
    return Status::InvalidArgument("passwd_file " + passwd_file + " is too large (" +
                                   std::to_string(st.st_size) + " bytes)");
  }
  std::string content;
  char buf[4096];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::InvalidArgument("cannot read passwd_file " + passwd_file + ": " +
                                     ErrnoText(errno));
    }
    if (n == 0) break;
    content.append(buf, static_cast<size_t>(n));
    if (content.size() > kMaxFileSize) {
      return Status::InvalidArgument("passwd_file " + passwd_file + " is too large");
    }
  }
  return ParseCredentialsFile(content, bucket, passwd_file);
}

}  // namespace dsfs
