#define FUSE_USE_VERSION 314
#include "fs/fuse_adapter.h"

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/uio.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <new>
#include <sstream>
#include <thread>
#include <vector>

#include "common/logging.h"

namespace dsfs {
namespace {

FuseSession& Self(fuse_req_t req) { return *static_cast<FuseSession*>(fuse_req_userdata(req)); }

double Seconds(std::chrono::milliseconds ms) { return static_cast<double>(ms.count()) / 1000.0; }

// The one place an error reply is made: errno mapping, log, counter.
void ReplyError(fuse_req_t req, const char* op, const Status& status) {
  const int err = ToErrno(status);
  auto& self = Self(req);
  if (self.metrics()) self.metrics()->GetCounter("dsfs_fuse_errors_total", "FUSE requests answered with an error").Add();
  // Messages carry keys and server text: escaped, so they cannot forge lines.
  if (err == ENOENT || err == EROFS || err == ENODATA || err == EINTR) {
    spdlog::debug("{}: {}", op, EscapeForLog(status.ToString()));
  } else {
    spdlog::warn("{}: {} (errno {})", op, EscapeForLog(status.ToString()), err);
  }
  fuse_reply_err(req, err);
}

// No exception may cross into libfuse: the only ones the core can raise
// are allocation failures.
template <typename F>
void Guard(fuse_req_t req, const char* op, F&& body) {
  try {
    body();
  } catch (const std::bad_alloc&) {
    ReplyError(req, op, Status::IoError("out of memory"));
  } catch (const std::exception& e) {
    ReplyError(req, op, Status::IoError(std::string("internal error: ") + e.what()));
  }
}

// While alive: a token that the kernel's INTERRUPT for `req` cancels (the
// caller was killed), for work that waits on the network. libfuse calls
// the function from the thread that reads the INTERRUPT (at once if that
// came first); the destructor unregisters it, and since libfuse calls it
// holding the request's lock, which unregistering takes, no call can be
// in flight after that. End the scope before replying (the reply frees
// the request).
class InterruptScope {
 public:
  explicit InterruptScope(fuse_req_t req) : req_(req), token_(std::make_shared<CancelToken>()) {
    fuse_req_interrupt_func(
        req_, [](fuse_req_t, void* t) { static_cast<CancelToken*>(t)->Cancel(); }, token_.get());
  }
  ~InterruptScope() { fuse_req_interrupt_func(req_, nullptr, nullptr); }
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;
  CancelTokenPtr token() const { return token_; }

 private:
  fuse_req_t req_;
  std::shared_ptr<CancelToken> token_;
};

void OnInit(void* userdata, fuse_conn_info* conn) {
  const auto& self = *static_cast<FuseSession*>(userdata);
  // Large kernel read-ahead so sequential readers send big, early reads
  // (the kernel caps it at the bdi's read_ahead_kb, set to the same value).
  if (self.options().kernel_readahead_kb > 0) {
    conn->max_readahead = self.options().kernel_readahead_kb * 1024u;
  }
  if (conn->capable & FUSE_CAP_CACHE_SYMLINKS) conn->want |= FUSE_CAP_CACHE_SYMLINKS;
  if (conn->capable & FUSE_CAP_ASYNC_READ) conn->want |= FUSE_CAP_ASYNC_READ;
  // O_DIRECT reads as synchronous requests: with async direct I/O the
  // kernel waits for them uninterruptibly and never sends an INTERRUPT, so
  // a reader killed while its GET hangs would stay in D state until the
  // GET's deadline. The daemon's read-ahead keeps a direct reader's
  // sequential requests short, so the lost kernel parallelism costs little.
  conn->want &= ~FUSE_CAP_ASYNC_DIO;
  // Plain readdir: attributes come from lookup (HEAD with s3fs metadata).
  conn->want &= ~FUSE_CAP_READDIRPLUS;
}

void OnLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Guard(req, "lookup", [&] {
    auto& self = Self(req);
    auto r = self.fs().Lookup(parent, name);
    if (!r.ok()) {
      if (r.status().code() == StatusCode::kNotFound) {
        // A negative entry: the kernel remembers the miss for negative_ttl.
        fuse_entry_param e;
        std::memset(&e, 0, sizeof(e));
        e.entry_timeout = Seconds(self.options().negative_ttl);
        fuse_reply_entry(req, &e);
        return;
      }
      return ReplyError(req, "lookup", r.status());
    }
    fuse_entry_param e;
    std::memset(&e, 0, sizeof(e));
    e.ino = r->ino;
    e.attr = r->attr;
    e.attr_timeout = Seconds(self.options().attr_ttl);
    e.entry_timeout = Seconds(self.options().attr_ttl);
    fuse_reply_entry(req, &e);
  });
}

void OnForget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  Self(req).fs().Forget(ino, nlookup);
  fuse_reply_none(req);
}

void OnForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  for (size_t i = 0; i < count; ++i) Self(req).fs().Forget(forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

void OnGetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  Guard(req, "getattr", [&] {
    auto r = Self(req).fs().GetAttr(ino);
    if (!r.ok()) return ReplyError(req, "getattr", r.status());
    fuse_reply_attr(req, &*r, Seconds(Self(req).options().attr_ttl));
  });
}

void OnReadLink(fuse_req_t req, fuse_ino_t ino) {
  Guard(req, "readlink", [&] {
    auto r = [&] {
      InterruptScope interrupt(req);
      return Self(req).fs().ReadLink(ino, interrupt.token());
    }();
    if (!r.ok()) return ReplyError(req, "readlink", r.status());
    fuse_reply_readlink(req, r->c_str());
  });
}

void OnOpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Guard(req, "opendir", [&] {
    // A listing can take many requests: a killed `ls` interrupts it.
    auto r = [&] {
      InterruptScope interrupt(req);
      return Self(req).fs().OpenDir(ino, interrupt.token());
    }();
    if (!r.ok()) return ReplyError(req, "opendir", r.status());
    fi->fh = *r;
    fi->cache_readdir = 0;
    // The caller is gone (interrupted): no releasedir will come, and the
    // handle would hold its listing (and list_mem) for ever.
    if (fuse_reply_open(req, fi) == -ENOENT) Self(req).fs().ReleaseDir(*r);
  });
}

void OnReadDir(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  Guard(req, "readdir", [&] {
    // Entries are at least ~32 bytes each: ask for no more than fit.
    auto r = Self(req).fs().ReadDir(fi->fh, static_cast<uint64_t>(off), size / 24 + 1);
    if (!r.ok()) return ReplyError(req, "readdir", r.status());
    std::vector<char> buf(size);
    size_t used = 0;
    uint64_t next = static_cast<uint64_t>(off);
    for (const auto& e : *r) {
      struct stat st;
      std::memset(&st, 0, sizeof(st));
      st.st_ino = e.ino;
      st.st_mode = e.type;
      next = e.next;
      size_t need = fuse_add_direntry(req, buf.data() + used, size - used, e.name.c_str(), &st,
                                      static_cast<off_t>(next));
      if (need > size - used) break;
      used += need;
    }
    fuse_reply_buf(req, buf.data(), used);
  });
}

void OnReleaseDir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  Self(req).fs().ReleaseDir(fi->fh);
  fuse_reply_err(req, 0);
}

void OnOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Guard(req, "open", [&] {
    auto r = Self(req).fs().Open(ino, fi->flags);
    if (!r.ok()) return ReplyError(req, "open", r.status());
    fi->fh = r->handle;
    fi->keep_cache = r->keep_cache ? 1 : 0;
    if (fuse_reply_open(req, fi) == -ENOENT) Self(req).fs().Release(r->handle);  // interrupted
  });
}

void OnRead(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  Guard(req, "read", [&] {
    // Replied straight from the blocks' buffers: the kernel's copy is the only one.
    Result<SliceList> r = [&] {
      InterruptScope interrupt(req);
      return Self(req).fs().ReadSlices(fi->fh, static_cast<uint64_t>(off), size,
                                       interrupt.token());
    }();
    if (!r.ok()) return ReplyError(req, "read", r.status());
    std::vector<iovec> iov;
    iov.reserve(r->size());
    for (const ReadSlice& s : *r) iov.push_back(iovec{const_cast<char*>(s.data), s.size});
    fuse_reply_iov(req, iov.data(), static_cast<int>(iov.size()));
  });
}

void OnRelease(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  // A writer's last upload happened at flush (close(2) got its error);
  // release only uploads what a close without flush left.
  Guard(req, "release", [&] {
    Self(req).fs().Release(fi->fh);
    fuse_reply_err(req, 0);
  });
}

// ---- The data path of writes: thin, the core decides everything ----

void ReplyEntryOpen(fuse_req_t req, const Filesystem::CreateReply& r, fuse_file_info* fi) {
  fuse_entry_param e;
  std::memset(&e, 0, sizeof(e));
  e.ino = r.entry.ino;
  e.attr = r.entry.attr;
  e.attr_timeout = Seconds(Self(req).options().attr_ttl);
  e.entry_timeout = Seconds(Self(req).options().attr_ttl);
  fi->fh = r.open.handle;
  fi->keep_cache = 0;
  if (fuse_reply_create(req, &e, fi) == -ENOENT) {
    // Interrupted: no release will come for this handle.
    Self(req).fs().Release(r.open.handle);
  }
}

void OnCreate(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
              fuse_file_info* fi) {
  Guard(req, "create", [&] {
    const fuse_ctx* ctx = fuse_req_ctx(req);
    const mode_t perm = mode & ~ctx->umask;
    auto r = Self(req).fs().Create(parent, name, perm, fi->flags, ctx->uid, ctx->gid);
    if (!r.ok()) return ReplyError(req, "create", r.status());
    ReplyEntryOpen(req, *r, fi);
  });
}

void OnWrite(fuse_req_t req, fuse_ino_t, const char* buf, size_t size, off_t off,
             fuse_file_info* fi) {
  Guard(req, "write", [&] {
    auto r = Self(req).fs().Write(fi->fh, static_cast<uint64_t>(off), buf, size);
    if (!r.ok()) return ReplyError(req, "write", r.status());
    fuse_reply_write(req, *r);
  });
}

void OnFlush(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  Guard(req, "flush", [&] {
    Status st = Self(req).fs().Flush(fi->fh);
    if (!st.ok()) return ReplyError(req, "flush", st);
    fuse_reply_err(req, 0);
  });
}

void OnFsync(fuse_req_t req, fuse_ino_t, int, fuse_file_info* fi) {
  Guard(req, "fsync", [&] {
    Status st = Self(req).fs().Fsync(fi->fh);
    if (!st.ok()) return ReplyError(req, "fsync", st);
    fuse_reply_err(req, 0);
  });
}

void OnStatFs(fuse_req_t req, fuse_ino_t) {
  Guard(req, "statfs", [&] {
    auto r = Self(req).fs().StatFs();
    if (!r.ok()) return ReplyError(req, "statfs", r.status());
    fuse_reply_statfs(req, &*r);
  });
}

// Replies an xattr value: its size when size == 0, ERANGE if too small.
void ReplyXattr(fuse_req_t req, const char* op, const Result<std::string>& r, size_t size) {
  if (!r.ok()) return ReplyError(req, op, r.status());
  if (size == 0) {
    fuse_reply_xattr(req, r->size());
  } else if (r->size() > size) {
    fuse_reply_err(req, ERANGE);
  } else {
    fuse_reply_buf(req, r->data(), r->size());
  }
}

void OnGetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  Guard(req, "getxattr",
        [&] { ReplyXattr(req, "getxattr", Self(req).fs().GetXattr(ino, name), size); });
}

void OnListXattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  Guard(req, "listxattr",
        [&] { ReplyXattr(req, "listxattr", Self(req).fs().ListXattr(ino), size); });
}

// Writes of data: refused until the write path lands.
void RefuseWrite(fuse_req_t req, const char* op) {
  ReplyError(req, op, Self(req).fs().ReadOnlyError());
}
Filesystem::Caller CallerOf(fuse_req_t req) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  return Filesystem::Caller{ctx->uid, ctx->gid};
}

void ReplyEntry(fuse_req_t req, const EntryReply& r) {
  fuse_entry_param e;
  std::memset(&e, 0, sizeof(e));
  e.ino = r.ino;
  e.attr = r.attr;
  e.attr_timeout = Seconds(Self(req).options().attr_ttl);
  e.entry_timeout = Seconds(Self(req).options().attr_ttl);
  // Not taken (the caller was interrupted): the lookup it counted goes.
  if (fuse_reply_entry(req, &e) == -ENOENT) Self(req).fs().Forget(r.ino, 1);
}

void ReplyStatus(fuse_req_t req, const char* op, const Status& s) {
  if (!s.ok()) return ReplyError(req, op, s);
  fuse_reply_err(req, 0);
}

// The size part (truncate, ftruncate) is the write path's (with the times
// a truncate implies); mode, owner and times are the namespace half's.
void OnSetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
               fuse_file_info* fi) {
  Guard(req, "setattr", [&] {
    if (to_set & FUSE_SET_ATTR_SIZE) {
      auto r = Self(req).fs().SetSize(ino, static_cast<uint64_t>(attr->st_size), fi ? fi->fh : 0);
      if (!r.ok()) return ReplyError(req, "setattr", r.status());
      constexpr int kTruncateTimes =
          FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW | FUSE_SET_ATTR_CTIME;
      if (!(to_set & ~(FUSE_SET_ATTR_SIZE | kTruncateTimes))) {
        return (void)fuse_reply_attr(req, &*r, Seconds(Self(req).options().attr_ttl));
      }
    }
    Filesystem::AttrChange change;
    if (to_set & FUSE_SET_ATTR_MODE) change.mode = attr->st_mode & 07777;
    if (to_set & FUSE_SET_ATTR_UID) change.uid = attr->st_uid;
    if (to_set & FUSE_SET_ATTR_GID) change.gid = attr->st_gid;
    if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
      change.atime = timespec{0, UTIME_NOW};
    } else if (to_set & FUSE_SET_ATTR_ATIME) {
      change.atime = attr->st_atim;
    }
    if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
      change.mtime = timespec{0, UTIME_NOW};
    } else if (to_set & FUSE_SET_ATTR_MTIME) {
      change.mtime = attr->st_mtim;
    }
    auto r = Self(req).fs().SetAttr(ino, change);
    if (!r.ok()) return ReplyError(req, "setattr", r.status());
    fuse_reply_attr(req, &*r, Seconds(Self(req).options().attr_ttl));
  });
}
void OnMknod(fuse_req_t req, fuse_ino_t, const char*, mode_t, dev_t) { RefuseWrite(req, "mknod"); }
void OnMkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  Guard(req, "mkdir", [&] {
    auto r = Self(req).fs().Mkdir(parent, name, mode, CallerOf(req));
    if (!r.ok()) return ReplyError(req, "mkdir", r.status());
    ReplyEntry(req, *r);
  });
}
void OnUnlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Guard(req, "unlink", [&] { ReplyStatus(req, "unlink", Self(req).fs().Unlink(parent, name)); });
}
void OnRmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Guard(req, "rmdir", [&] { ReplyStatus(req, "rmdir", Self(req).fs().Rmdir(parent, name)); });
}
void OnSymlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
  Guard(req, "symlink", [&] {
    auto r = Self(req).fs().Symlink(parent, name, target, CallerOf(req));
    if (!r.ok()) return ReplyError(req, "symlink", r.status());
    ReplyEntry(req, *r);
  });
}
void OnRename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent,
              const char* new_name, unsigned flags) {
  Guard(req, "rename", [&] {
    ReplyStatus(req, "rename", Self(req).fs().Rename(parent, name, new_parent, new_name, flags));
  });
}
void OnLink(fuse_req_t req, fuse_ino_t ino, fuse_ino_t new_parent, const char* new_name) {
  Guard(req, "link", [&] {
    ReplyStatus(req, "link", Self(req).fs().Link(ino, new_parent, new_name));
  });
}

fuse_lowlevel_ops MakeOps() {
  fuse_lowlevel_ops ops;
  std::memset(&ops, 0, sizeof(ops));
  ops.init = OnInit;
  ops.lookup = OnLookup;
  ops.forget = OnForget;
  ops.forget_multi = OnForgetMulti;
  ops.getattr = OnGetAttr;
  ops.readlink = OnReadLink;
  ops.opendir = OnOpenDir;
  ops.readdir = OnReadDir;
  ops.releasedir = OnReleaseDir;
  ops.open = OnOpen;
  ops.read = OnRead;
  ops.release = OnRelease;
  ops.statfs = OnStatFs;
  ops.getxattr = OnGetXattr;
  ops.listxattr = OnListXattr;
  ops.setattr = OnSetAttr;
  ops.mknod = OnMknod;
  ops.mkdir = OnMkdir;
  ops.unlink = OnUnlink;
  ops.rmdir = OnRmdir;
  ops.symlink = OnSymlink;
  ops.rename = OnRename;
  ops.link = OnLink;
  ops.create = OnCreate;
  ops.write = OnWrite;
  ops.flush = OnFlush;
  ops.fsync = OnFsync;
  return ops;
}

// Raises the bdi read-ahead of the new mount; best effort (needs root).
// The device comes from mountinfo, not stat(): a stat of the mountpoint
// would wait for this very daemon, which is not serving yet.
void SetKernelReadahead(const std::string& mountpoint, unsigned kb) {
  std::ifstream in("/proc/self/mountinfo");
  std::stringstream text;
  text << in.rdbuf();
  const std::string dev = FindMountDevice(text.str(), mountpoint);
  if (dev.empty()) {
    spdlog::debug("read_ahead_kb: mount {} not found in mountinfo", mountpoint);
    return;
  }
  std::ofstream out("/sys/class/bdi/" + dev + "/read_ahead_kb");
  out << kb << "\n";
  out.flush();
  if (!out) spdlog::debug("cannot set read_ahead_kb of {} (not root?)", dev);
}

}  // namespace

FuseOptions FuseOptionsFrom(const Config& config) {
  FuseOptions o;
  o.mountpoint = config.daemon.mountpoint;
  o.fsname = config.fs.bucket;
  o.allow_other = config.fs.allow_other;
  o.read_only = config.fs.read_only;
  o.debug = config.daemon.fuse_debug;
  o.max_threads = config.daemon.max_threads;
  o.attr_ttl = config.fs.stat_ttl;
  o.negative_ttl = config.fs.negative_ttl;
  o.kernel_readahead_kb = config.daemon.kernel_readahead_kb;
  return o;
}

std::string FindMountDevice(const std::string& mountinfo, const std::string& mountpoint) {
  // mountinfo escapes space, tab, newline and backslash as octal.
  std::string escaped;
  for (char c : mountpoint) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\\') {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\%03o", static_cast<unsigned char>(c));
      escaped += buf;
    } else {
      escaped += c;
    }
  }
  std::string found;
  std::istringstream lines(mountinfo);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, mnt;
    if (fields >> id >> parent >> dev >> root >> mnt && mnt == escaped) found = dev;
  }
  return found;
}

Result<std::unique_ptr<FuseSession>> FuseSession::Mount(Filesystem& fs, const FuseOptions& options,
                                                        Metrics* metrics) {
  std::unique_ptr<FuseSession> self(new FuseSession(fs, options, metrics));
  std::vector<std::string> argv_s = {"dsfs"};
  std::string o = "fsname=" + options.fsname + ",subtype=dsfs,default_permissions";
  if (options.read_only) o += ",ro";
  if (options.allow_other) o += ",allow_other";
  argv_s.push_back("-o");
  argv_s.push_back(o);
  if (options.debug) argv_s.push_back("-d");
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());

  static const fuse_lowlevel_ops kOps = MakeOps();
  self->session_ = fuse_session_new(&args, &kOps, sizeof(kOps), self.get());
  fuse_opt_free_args(&args);
  if (!self->session_) return Status::InvalidArgument("cannot create FUSE session");
  if (fuse_set_signal_handlers(self->session_) != 0) {
    return Status::IoError("cannot install signal handlers");
  }
  self->signals_installed_ = true;
  if (fuse_session_mount(self->session_, options.mountpoint.c_str()) != 0) {
    return Status::IoError("cannot mount FUSE on '" + options.mountpoint +
                           "' (is /dev/fuse available? for allow_other, is user_allow_other "
                           "set in /etc/fuse.conf?)");
  }
  self->mounted_ = true;
  if (options.kernel_readahead_kb)
    SetKernelReadahead(options.mountpoint, options.kernel_readahead_kb);
  return self;
}

FuseSession::~FuseSession() {
  if (!session_) return;
  if (mounted_) fuse_session_unmount(session_);
  if (signals_installed_) fuse_remove_signal_handlers(session_);
  fuse_session_destroy(session_);
}

Status FuseSession::Loop(const std::function<void()>& on_exit) {
  // libfuse joins its workers before the loop returns; one stuck in a
  // network call would hold the exit. The watcher sees the exit flag (a
  // signal, or the unmount) first and lets the daemon cancel those calls.
  std::mutex mu;
  std::condition_variable cv;
  bool loop_done = false;  // guarded by mu
  std::thread watcher;
  const pthread_t loop_thread = pthread_self();
  if (on_exit) {
    watcher = std::thread([&] {
      std::unique_lock lock(mu);
      while (!loop_done && !fuse_session_exited(session_)) {
        cv.wait_for(lock, std::chrono::milliseconds(100));
      }
      const bool exiting = !loop_done;
      lock.unlock();
      on_exit();
      // A signal taken by another thread leaves libfuse's loop thread
      // asleep until some request arrives: the same signal on it (whose
      // handler only sets the exit flag) wakes it now.
      if (exiting && signals_installed_) pthread_kill(loop_thread, SIGTERM);
    });
  }
  fuse_loop_config* cfg = fuse_loop_cfg_create();
  fuse_loop_cfg_set_max_threads(cfg, options_.max_threads);
  fuse_loop_cfg_set_idle_threads(cfg, std::max(1u, options_.max_threads / 2));
  int rc = fuse_session_loop_mt(session_, cfg);
  fuse_loop_cfg_destroy(cfg);
  if (watcher.joinable()) {
    {
      std::lock_guard lock(mu);
      loop_done = true;
    }
    cv.notify_all();
    watcher.join();
  }
  if (rc < 0) return Status::IoError(std::string("FUSE loop failed: ") + std::strerror(-rc));
  return Status::Ok();
}

}  // namespace dsfs
