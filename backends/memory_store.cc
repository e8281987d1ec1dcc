#include "backends/memory_store.h"

#include <errno.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <functional>

#include "backends/md5.h"

namespace dsfs {
namespace {

constexpr int kMaxPartNumber = 10000;

// The bytes of a write body (tests' bodies are small: read whole).
Result<std::string> ReadBody(const Body& body) {
  if (body.fd < 0) {
    if (body.length > 0 && body.data == nullptr) {
      return Status::InvalidArgument("body of " + std::to_string(body.length) + " bytes has no data");
    }
    return std::string(body.data == nullptr ? "" : body.data, body.length);
  }
  std::string out(body.length, '\0');
  uint64_t done = 0;
  while (done < body.length) {
    const ssize_t n = pread(body.fd, out.data() + done, body.length - done,
                            static_cast<off_t>(body.offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::IoError(std::string("reading the body: ") + std::strerror(errno));
    if (n == 0) return Status::IoError("the body's file ends before its length");
    done += static_cast<uint64_t>(n);
  }
  return out;
}

Status NoSuchUpload(const std::string& key, const std::string& upload_id) {
  return Status::NotFound("no multipart upload '" + upload_id + "' for '" + key + "'");
}

}  // namespace

void MemoryStore::SetEtag(const std::string& key, std::string etag) {
  std::lock_guard lock(mu_);
  auto it = objects_.find(key);
  if (it == objects_.end()) return;
  it->second.info.etag = std::move(etag);
}

void MemoryStore::PutObject(const std::string& key, std::string data,
                            std::map<std::string, std::string> meta, std::string content_type) {
  std::lock_guard lock(mu_);
  Object obj;
  obj.info.key = key;
  obj.info.size = data.size();
  obj.info.etag = std::to_string(std::hash<std::string>{}(data)) + "-" + std::to_string(++version_);
  obj.info.mtime_sec = 1700000000 + static_cast<int64_t>(version_);
  obj.info.meta = std::move(meta);
  obj.info.content_type = std::move(content_type);
  obj.data = std::move(data);
  objects_[key] = std::move(obj);
}

void MemoryStore::RemoveObject(const std::string& key) {
  std::lock_guard lock(mu_);
  objects_.erase(key);
}

void MemoryStore::FailNext(StoreOp op, Status status, int count) {
  std::lock_guard lock(mu_);
  for (int i = 0; i < count; ++i) failures_[op].push_back(status);
}

void MemoryStore::SetHook(std::function<void(StoreOp, const std::string&)> hook) {
  std::lock_guard lock(mu_);
  hook_ = std::move(hook);
}

StoreCounters MemoryStore::counters() const {
  std::lock_guard lock(mu_);
  return counters_;
}

void MemoryStore::ResetCounters() {
  std::lock_guard lock(mu_);
  counters_ = {};
}

std::optional<Status> MemoryStore::TakeFailureLocked(StoreOp op) {
  auto it = failures_.find(op);
  if (it == failures_.end() || it->second.empty()) return std::nullopt;
  Status s = it->second.front();
  it->second.pop_front();
  return s;
}

void MemoryStore::RunHook(StoreOp op, const std::string& key) {
  std::function<void(StoreOp, const std::string&)> hook;
  {
    std::lock_guard lock(mu_);
    hook = hook_;
  }
  if (hook) hook(op, key);
}

Result<ObjectInfo> MemoryStore::Head(const std::string& key) {
  RunHook(StoreOp::kHead, key);
  std::lock_guard lock(mu_);
  ++counters_.head;
  if (auto f = TakeFailureLocked(StoreOp::kHead)) return *f;
  auto it = objects_.find(key);
  if (it == objects_.end()) return Status::NotFound("no such key '" + key + "'");
  return it->second.info;
}

Result<ListPage> MemoryStore::List(const ListRequest& request) {
  RunHook(StoreOp::kList, request.prefix);
  std::lock_guard lock(mu_);
  ++counters_.list;
  if (auto f = TakeFailureLocked(StoreOp::kList)) return *f;
  ListPage page;
  // The continuation token is the last key or prefix returned.
  auto it = request.continuation.empty() ? objects_.lower_bound(request.prefix)
                                         : objects_.upper_bound(request.continuation);
  int n = 0;
  std::string last;
  for (; it != objects_.end(); ++it) {
    const std::string& key = it->first;
    if (key.compare(0, request.prefix.size(), request.prefix) != 0) break;
    if (!request.continuation.empty() && key <= request.continuation) continue;
    if (n == request.max_keys) {
      page.next_continuation = last;
      break;
    }
    if (!request.delimiter.empty()) {
      size_t pos = key.find(request.delimiter, request.prefix.size());
      if (pos != std::string::npos) {
        std::string cp = key.substr(0, pos + request.delimiter.size());
        page.common_prefixes.push_back(cp);
        ++n;
        // Skip every key under this common prefix: the token is the
        // prefix's last possible key.
        last = cp + "\xff";
        while (std::next(it) != objects_.end() && std::next(it)->first.starts_with(cp)) ++it;
        continue;
      }
    }
    ObjectInfo info = it->second.info;
    info.meta.clear();
    info.content_type.clear();
    page.objects.push_back(std::move(info));
    last = key;
    ++n;
  }
  return page;
}

Result<GetResult> MemoryStore::Get(const GetRequest& request, char* buf, size_t buf_len) {
  const GetPart part{buf, buf_len};
  return GetInto(request, std::span<const GetPart>(&part, 1), /*exact=*/false);
}

Result<GetResult> MemoryStore::GetParts(const GetRequest& request, std::span<const GetPart> parts) {
  Result<GetResult> r = GetInto(request, parts, /*exact=*/true);
  if (!r.ok() || !request.on_parts_done || request.if_match.empty()) return r;
  std::optional<std::pair<size_t, Status>> cut;
  {
    std::lock_guard lock(mu_);
    if (!cuts_.empty()) {
      cut = std::move(cuts_.front());
      cuts_.pop_front();
    }
  }
  // Outside the lock (GetRequest::on_parts_done): every part at once, or
  // those before the cut.
  if (!cut) {
    request.on_parts_done(parts.size());
    return r;
  }
  const size_t out = std::min(cut->first, parts.size());
  if (out > 0) request.on_parts_done(out);
  return cut->second;
}

void MemoryStore::CutNextGetParts(size_t parts, Status status) {
  std::lock_guard lock(mu_);
  cuts_.emplace_back(parts, std::move(status));
}

Result<GetResult> MemoryStore::GetInto(const GetRequest& request, std::span<const GetPart> parts,
                                       bool exact) {
  RunHook(StoreOp::kGet, request.key);
  std::lock_guard lock(mu_);
  ++counters_.get;
  if (auto f = TakeFailureLocked(StoreOp::kGet)) return *f;
  auto it = objects_.find(request.key);
  if (it == objects_.end()) return Status::NotFound("no such key '" + request.key + "'");
  const Object& obj = it->second;
  if (!request.if_match.empty() && request.if_match != obj.info.etag) {
    return Status::PreconditionFailed("ETag of '" + request.key + "' changed");
  }
  uint64_t off = 0;
  uint64_t len = obj.data.size();
  if (request.range) {
    off = request.range->offset;
    len = request.range->length;
    if (off + len > obj.data.size()) {
      return Status::InvalidArgument("range beyond end of '" + request.key + "'");
    }
  }
  uint64_t room = 0;
  for (const GetPart& p : parts) room += p.length;
  if (len > room || (exact && len != room)) {
    return Status::InvalidArgument("buffer too small for GET");
  }
  uint64_t done = 0;
  for (const GetPart& p : parts) {
    const uint64_t n = std::min<uint64_t>(p.length, len - done);
    if (n > 0) std::memcpy(p.data, obj.data.data() + off + done, n);
    done += n;
  }
  counters_.get_bytes += len;
  return GetResult{static_cast<size_t>(len), obj.info.etag, DataSource::kObjectStore};
}

}  // namespace dsfs

namespace dsfs {

std::vector<PendingUpload> MemoryStore::PendingUploads() const {
  std::lock_guard lock(mu_);
  std::vector<PendingUpload> out;
  for (const auto& [id, upload] : uploads_) {
    out.push_back(PendingUpload{id, upload.key, static_cast<int>(upload.parts.size())});
  }
  return out;
}

void MemoryStore::SetMinPartSize(uint64_t bytes) {
  std::lock_guard lock(mu_);
  min_part_size_ = bytes;
}

void MemoryStore::StoreLocked(const std::string& key, std::string data, std::string etag,
                              const ObjectAttrs& attrs) {
  Object obj;
  obj.info.key = key;
  obj.info.size = data.size();
  obj.info.etag = std::move(etag);
  obj.info.mtime_sec = 1700000000 + static_cast<int64_t>(++version_);
  obj.info.meta = attrs.meta;
  obj.info.content_type =
      attrs.content_type.empty() ? "application/octet-stream" : attrs.content_type;
  obj.data = std::move(data);
  objects_[key] = std::move(obj);
}

Result<PutResult> MemoryStore::Put(const PutRequest& request) {
  RunHook(StoreOp::kPut, request.key);
  auto data = ReadBody(request.body);
  std::lock_guard lock(mu_);
  ++counters_.put;
  if (auto f = TakeFailureLocked(StoreOp::kPut)) return *f;
  if (IsCancelled(request.cancel)) return Status::Cancelled("put of '" + request.key + "'");
  if (!data.ok()) return data.status();
  counters_.put_bytes += data->size();
  std::string etag = HexOf(Md5Binary(*data));
  StoreLocked(request.key, std::move(*data), etag, request.attrs);
  return PutResult{etag};
}

Result<PutResult> MemoryStore::Copy(const CopyRequest& request) {
  RunHook(StoreOp::kCopy, request.key);
  std::lock_guard lock(mu_);
  ++counters_.copy;
  if (auto f = TakeFailureLocked(StoreOp::kCopy)) return *f;
  if (IsCancelled(request.cancel)) return Status::Cancelled("copy to '" + request.key + "'");
  auto it = objects_.find(request.source_key);
  if (it == objects_.end()) return Status::NotFound("no such key '" + request.source_key + "'");
  if (!request.source_if_match.empty() && request.source_if_match != it->second.info.etag) {
    return Status::PreconditionFailed("ETag of '" + request.source_key + "' changed");
  }
  ObjectAttrs attrs;
  if (request.attrs) {
    attrs = *request.attrs;
  } else {
    attrs.meta = it->second.info.meta;
    attrs.content_type = it->second.info.content_type;
  }
  // CopyObject writes a new single-part object: its ETag is the MD5.
  std::string data = it->second.data;
  std::string etag = HexOf(Md5Binary(data));
  StoreLocked(request.key, std::move(data), etag, attrs);
  return PutResult{etag};
}

Result<std::string> MemoryStore::CreateMultipartUpload(const std::string& key,
                                                       const ObjectAttrs& attrs) {
  RunHook(StoreOp::kCreateMultipart, key);
  std::lock_guard lock(mu_);
  ++counters_.create_multipart;
  if (auto f = TakeFailureLocked(StoreOp::kCreateMultipart)) return *f;
  std::string id = "upload-" + std::to_string(++next_upload_);
  uploads_[id] = Upload{key, attrs, {}};
  return id;
}

Result<std::string> MemoryStore::UploadPart(const UploadPartRequest& request) {
  RunHook(StoreOp::kUploadPart, request.key);
  Result<std::string> body = std::string();
  if (request.copy_source.empty()) body = ReadBody(request.body);
  std::lock_guard lock(mu_);
  ++counters_.upload_part;
  if (auto f = TakeFailureLocked(StoreOp::kUploadPart)) return *f;
  if (IsCancelled(request.cancel)) {
    return Status::Cancelled("part " + std::to_string(request.part_number) + " of '" +
                             request.key + "'");
  }
  auto up = uploads_.find(request.upload_id);
  if (up == uploads_.end() || up->second.key != request.key) {
    return NoSuchUpload(request.key, request.upload_id);
  }
  if (request.part_number < 1 || request.part_number > kMaxPartNumber) {
    return Status::InvalidArgument("part number " + std::to_string(request.part_number) +
                                   " outside 1.." + std::to_string(kMaxPartNumber));
  }
  std::string data;
  if (!request.copy_source.empty()) {
    auto src = objects_.find(request.copy_source);
    if (src == objects_.end()) {
      return Status::NotFound("no such key '" + request.copy_source + "'");
    }
    if (!request.copy_source_if_match.empty() &&
        request.copy_source_if_match != src->second.info.etag) {
      return Status::PreconditionFailed("ETag of '" + request.copy_source + "' changed");
    }
    const ByteRange& r = request.copy_range;
    if (r.length == 0 || r.offset + r.length > src->second.data.size()) {
      return Status::InvalidArgument("copy range outside '" + request.copy_source + "'");
    }
    data = src->second.data.substr(r.offset, r.length);
  } else {
    if (!body.ok()) return body.status();
    data = std::move(*body);
    counters_.put_bytes += data.size();
  }
  Part part;
  part.md5 = Md5Binary(data);
  part.data = std::move(data);
  std::string etag = HexOf(part.md5);
  up->second.parts[request.part_number] = std::move(part);
  return etag;
}

Result<PutResult> MemoryStore::CompleteMultipartUpload(const std::string& key,
                                                       const std::string& upload_id,
                                                       const std::vector<CompletedPart>& parts) {
  RunHook(StoreOp::kComplete, key);
  std::lock_guard lock(mu_);
  ++counters_.complete;
  if (auto f = TakeFailureLocked(StoreOp::kComplete)) return *f;
  auto up = uploads_.find(upload_id);
  if (up == uploads_.end() || up->second.key != key) return NoSuchUpload(key, upload_id);
  if (parts.empty()) return Status::InvalidArgument("complete of '" + key + "' lists no part");
  std::string data;
  std::string digests;
  int previous = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const CompletedPart& p = parts[i];
    if (p.part_number <= previous) {
      return Status::InvalidArgument("complete of '" + key + "': parts not in ascending order");
    }
    previous = p.part_number;
    auto it = up->second.parts.find(p.part_number);
    if (it == up->second.parts.end() || HexOf(it->second.md5) != p.etag) {
      return Status::InvalidArgument("complete of '" + key + "': part " +
                                     std::to_string(p.part_number) + " not uploaded as listed");
    }
    if (i + 1 < parts.size() && it->second.data.size() < min_part_size_) {
      return Status::InvalidArgument("complete of '" + key + "': part " +
                                     std::to_string(p.part_number) + " is too small");
    }
    data += it->second.data;
    digests += it->second.md5;
  }
  std::string etag = MultipartEtag(digests);
  ObjectAttrs attrs = up->second.attrs;
  uploads_.erase(up);
  StoreLocked(key, std::move(data), etag, attrs);
  return PutResult{etag};
}

Status MemoryStore::AbortMultipartUpload(const std::string& key, const std::string& upload_id) {
  RunHook(StoreOp::kAbort, key);
  std::lock_guard lock(mu_);
  ++counters_.abort;
  if (auto f = TakeFailureLocked(StoreOp::kAbort)) return *f;
  auto up = uploads_.find(upload_id);
  if (up != uploads_.end() && up->second.key == key) uploads_.erase(up);
  return Status::Ok();
}

Status MemoryStore::Delete(const std::string& key) {
  RunHook(StoreOp::kDelete, key);
  std::lock_guard lock(mu_);
  ++counters_.del;
  if (auto f = TakeFailureLocked(StoreOp::kDelete)) return *f;
  objects_.erase(key);
  return Status::Ok();
}

}  // namespace dsfs
