#include "fs/inode_table.h"

#include <xxhash.h>

#include <vector>

namespace dsfs {

InodeTable::InodeTable() {
  InodeInfo root;
  root.id = kRootInode;
  root.kind = NodeKind::kDir;
  root.lookups = 1;
  nodes_[kRootInode] = root;
  by_path_[""] = kRootInode;
}

InodeId InodeTable::HashPath(const std::string& path) {
  // Top bit set keeps hashed ids apart from fallback ids (small counters)
  // and from the root.
  return XXH3_64bits(path.data(), path.size()) | (1ULL << 63);
}

InodeId InodeTable::PeekId(const std::string& path) const {
  std::lock_guard lock(mu_);
  auto it = by_path_.find(path);
  return it != by_path_.end() ? it->second : HashPath(path);
}

InodeId InodeTable::Acquire(const std::string& path, const NodeMeta& meta) {
  const NodeKind kind = meta.kind;
  const std::string& etag = meta.etag;
  std::lock_guard lock(mu_);
  auto it = by_path_.find(path);
  if (it != by_path_.end()) {
    InodeInfo& node = nodes_[it->second];
    // A directory has no version (its marker's ETag changes with a chmod):
    // only files and symlinks get a new node for a new ETag.
    if (node.id == kRootInode ||
        (node.kind == kind && (kind == NodeKind::kDir || node.etag == etag))) {
      if (node.id != kRootInode) node.meta = meta;
      ++node.lookups;
      return node.id;
    }
    // Another version (or type) now: the old node stays for its open
    // handles, the path moves to a new node.
    by_path_.erase(it);
  }
  InodeId id = HashPath(path);
  if (nodes_.count(id)) id = next_fallback_id_++;  // collision with a live node
  InodeInfo node;
  node.id = id;
  node.path = path;
  node.kind = kind;
  node.etag = etag;
  node.meta = meta;
  node.lookups = 1;
  nodes_[id] = std::move(node);
  by_path_[path] = id;
  return id;
}

void InodeTable::SetVersion(InodeId id, const NodeMeta& meta) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(id);
  if (it == nodes_.end() || id == kRootInode) return;
  it->second.kind = meta.kind;
  it->second.etag = meta.etag;
  it->second.meta = meta;
  by_path_[it->second.path] = id;
}

void InodeTable::Forget(InodeId id, uint64_t n) {
  if (id == kRootInode) return;
  std::lock_guard lock(mu_);
  auto it = nodes_.find(id);
  if (it == nodes_.end()) return;
  if (it->second.lookups > n) {
    it->second.lookups -= n;
    return;
  }
  auto p = by_path_.find(it->second.path);
  if (p != by_path_.end() && p->second == id) by_path_.erase(p);
  nodes_.erase(it);
}

std::optional<InodeInfo> InodeTable::Get(InodeId id) const {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(id);
  if (it == nodes_.end()) return std::nullopt;
  return it->second;
}

bool InodeTable::ReuseKernelCache(InodeId id, const std::string& etag) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(id);
  if (it == nodes_.end()) return false;
  const bool same = it->second.kernel_cache_etag == etag;
  it->second.kernel_cache_etag = etag;
  return same;
}

void InodeTable::DropKernelCache(InodeId id) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(id);
  if (it != nodes_.end()) it->second.kernel_cache_etag.clear();
}

void InodeTable::Rename(const std::string& from, const std::string& to) {
  if (from == to || from.empty()) return;
  const std::string under = from + "/";
  std::lock_guard lock(mu_);
  std::vector<std::pair<std::string, InodeId>> moved;
  for (auto it = by_path_.begin(); it != by_path_.end();) {
    if (it->first == from || it->first.starts_with(under)) {
      moved.emplace_back(to + it->first.substr(from.size()), it->second);
      it = by_path_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& [path, id] : moved) {
    by_path_.erase(path);  // the replaced node keeps its handles
    nodes_[id].path = path;
  }
  for (auto& [path, id] : moved) by_path_[path] = id;
}

void InodeTable::Detach(const std::string& path) {
  std::lock_guard lock(mu_);
  by_path_.erase(path);
}

void InodeTable::SetVersion(const std::string& path, const NodeMeta& meta) {
  std::lock_guard lock(mu_);
  auto it = by_path_.find(path);
  if (it == by_path_.end() || it->second == kRootInode) return;
  InodeInfo& node = nodes_[it->second];
  node.kind = meta.kind;
  node.etag = meta.etag;
  node.meta = meta;
  // The bytes are the same (a copy): the kernel's pages stay good.
  if (!node.kernel_cache_etag.empty()) node.kernel_cache_etag = meta.etag;
}

void InodeTable::SetEtag(const std::string& path, const std::string& etag) {
  std::lock_guard lock(mu_);
  auto it = by_path_.find(path);
  if (it == by_path_.end() || it->second == kRootInode) return;
  InodeInfo& node = nodes_[it->second];
  if (node.kind == NodeKind::kDir) return;
  node.etag = etag;
  node.meta.etag = etag;
  if (!node.kernel_cache_etag.empty()) node.kernel_cache_etag = etag;
}

size_t InodeTable::size() const {
  std::lock_guard lock(mu_);
  return nodes_.size();
}

}  // namespace dsfs
