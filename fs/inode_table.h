// InodeTable: FUSE node ids for paths, with kernel lookup counts
// (libfuse passthrough_hp.cc model: every successful lookup/create reply
// adds one, forget subtracts n, a node is dropped at zero).
//
// Objects have no inode numbers, so the id is a 64-bit hash of the path:
// the same path gets the same id across lookups and in readdir's d_ino
// without keeping entries alive. A hash collision with a live node falls
// back to a fresh id. The root is always id 1.
//
// One node is one object version: when a path's ETag changes, the path
// gets a new node and the old one lives on for the handles still open on
// it (until the kernel forgets it). The kernel keeps page cache per node,
// so an old handle can never see the new version's cached pages.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "fs/metadata_cache.h"

namespace dsfs {

using InodeId = uint64_t;
inline constexpr InodeId kRootInode = 1;

struct InodeInfo {
  InodeId id = 0;
  std::string path;  // relative to the mount root; "" for the root
  NodeKind kind = NodeKind::kFile;
  std::string etag;  // the object version this node stands for ("" for dirs)
  NodeMeta meta;     // that version's attributes, as last looked up
  uint64_t lookups = 0;
  // ETag whose bytes the kernel page cache may hold for this node; an open
  // with the same ETag keeps the page cache.
  std::string kernel_cache_etag;
};

class InodeTable {
 public:
  InodeTable();

  // Id the path would get (for d_ino); does not create a node.
  InodeId PeekId(const std::string& path) const;
  // Finds or creates the node for (path, etag) and adds one lookup. A
  // different ETag than the current node's makes a new node.
  InodeId Acquire(const std::string& path, const NodeMeta& meta);
  // The node's file was uploaded through the mount: the node (same id)
  // now stands for `meta`'s version, and the path leads to it.
  void SetVersion(InodeId id, const NodeMeta& meta);
  // Drops n lookups; removes the node at zero (never the root).
  void Forget(InodeId id, uint64_t n);
  std::optional<InodeInfo> Get(InodeId id) const;
  // An open of version `etag` of the node: whether the kernel may keep the
  // page cache it has for the node (it holds that version's bytes). From
  // now on the kernel's pages are taken to be `etag`'s.
  bool ReuseKernelCache(InodeId id, const std::string& etag);
  // The kernel's pages for the node are not trusted any more (the object
  // changed under an open handle): the next open drops them.
  void DropKernelCache(InodeId id);
  // The namespace changed under the nodes (the nodes keep their ids):
  // Rename moves the node at `from` and every node under "from/" to the
  // same place under `to` (a node at `to` loses its path: it lives on for
  // its handles until forgotten); Detach takes the path from its node
  // (unlink, rmdir: a new object at the path gets a new node); SetVersion
  // makes the node at `path` stand for a new version of the same object
  // (a server-side copy onto itself or to a new name).
  void Rename(const std::string& from, const std::string& to);
  void Detach(const std::string& path);
  void SetVersion(const std::string& path, const NodeMeta& meta);
  // As SetVersion, only the ETag changes (a copy with the same metadata).
  void SetEtag(const std::string& path, const std::string& etag);
  size_t size() const;

 private:
  static InodeId HashPath(const std::string& path);

  mutable std::mutex mu_;
  std::unordered_map<InodeId, InodeInfo> nodes_;       // guarded by mu_
  std::unordered_map<std::string, InodeId> by_path_;   // guarded by mu_
  InodeId next_fallback_id_ = 2;                       // guarded by mu_
};

}  // namespace dsfs
