// Credentials for S3Store: an s3fs/obsfs passwd file, or the AWS_*
// environment variables. No Status message ever contains a secret key or a
// session token.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "common/config.h"
#include "common/status.h"

namespace dsfs {

// passwd_file non-empty: reads that file (s3fs/obsfs format, see
// ParseCredentialsFile). The file must be a regular file with no group or
// other permission bits (else InvalidArgument: "... accessible by group or
// others ... chmod 600 <path>"); a missing or unreadable file is an
// InvalidArgument naming the path and strerror.
//
// passwd_file empty: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the
// optional AWS_SESSION_TOKEN from the environment; InvalidArgument when
// neither a file nor the variables are given, or only one of the pair is.
[[nodiscard]] Result<Credentials> LoadCredentials(const std::string& passwd_file,
                                                  const std::string& bucket);

// The passwd file's content. Lines are "ACCESS_KEY:SECRET_KEY" (default)
// or "bucket:ACCESS_KEY:SECRET_KEY"; the line for `bucket` wins over the
// default line. Lines starting with '#' and blank lines are ignored;
// whitespace around a line is trimmed. Malformed lines (wrong number of
// fields, empty fields) and a repeated default or repeated bucket line are
// InvalidArgument naming the path and line number. `path` is only used in
// messages.
[[nodiscard]] Result<Credentials> ParseCredentialsFile(std::string_view content,
                                                       const std::string& bucket,
                                                       const std::string& path);

// The environment part of LoadCredentials with an injectable lookup
// (returns nullptr for an unset variable), for tests.
[[nodiscard]] Result<Credentials> CredentialsFromEnv(
    const std::function<const char*(const char*)>& getenv_fn);

}  // namespace dsfs
