#include "backends/memory_store.h"

#include <cstring>
#include <ctime>
#include <functional>

namespace dsfs {

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
  if (len > buf_len) return Status::InvalidArgument("buffer too small for GET");
  std::memcpy(buf, obj.data.data() + off, len);
  counters_.get_bytes += len;
  return GetResult{static_cast<size_t>(len), obj.info.etag, DataSource::kObjectStore};
}

}  // namespace dsfs
