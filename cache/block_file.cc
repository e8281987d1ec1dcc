#include "cache/block_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>

#include "common/endian.h"
#include "common/posix.h"

namespace dsfs {
namespace {

constexpr char kMagic[8] = {'D', 'S', 'F', 'S', 'B', 'L', 'K', '\0'};

bool IsAligned(uint64_t n) { return n % kDirectIoAlignment == 0; }
bool IsAligned(const void* p) { return IsAligned(reinterpret_cast<uintptr_t>(p)); }

// Whether a header is padded: when the data can be written with O_DIRECT.
bool PaddedHeader(uint64_t data_length) { return data_length > 0 && IsAligned(data_length); }

// ceil(n / d), d > 0.
uint64_t CeilDiv(uint64_t n, uint64_t d) { return n / d + (n % d != 0); }

// Header length: the fields, chunks checksums of the chunk table and the
// trailing checksum, padded so the data is aligned when the data's length is.
uint64_t HeaderLength(uint64_t key_length, uint64_t etag_length, uint64_t chunks,
                      uint64_t data_length) {
  uint64_t exact = kBlockHeaderFixedSize + key_length + etag_length + 8 * chunks + 8;
  return PaddedHeader(data_length) ? Buffer::RoundUp(exact) : exact;
}
uint64_t HeaderLength(const BlockExtent& e) {
  return HeaderLength(e.object.key.size(), e.object.etag.size(),
                      CeilDiv(e.length, VerifyChunkSize(e.length)), e.length);
}

// Reads exactly len bytes at offset; false with errno on error, false with
// errno == 0 on end of file.
bool PreadFull(int fd, char* buf, size_t len, uint64_t offset) {
  while (len > 0) {
    ssize_t n = ::pread(fd, buf, len, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) {
      errno = 0;
      return false;
    }
    buf += n;
    len -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return true;
}

// Opens a block file without following a symlink and without waiting on a
// FIFO (O_NONBLOCK has no effect on a regular file's reads), then checks it
// is a regular file. *size is its size.
Result<int> OpenForRead(const std::string& path, uint64_t* size) {
  constexpr int kFlags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
  int fd = ::open(path.c_str(), kFlags | O_NOATIME);
  if (fd < 0 && errno == EPERM) fd = ::open(path.c_str(), kFlags);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return Status::NotFound(path);
    if (errno == ELOOP) return Status::Corruption(path + ": is a symlink");
    if (errno == ENXIO) return Status::Corruption(path + ": is a socket or FIFO");
    return Status::IoError("open " + path + ": " + ErrnoText(errno));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return Status::IoError("stat " + path + ": " + ErrnoText(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::Corruption(path + ": not a regular file");
  }
  *size = static_cast<uint64_t>(st.st_size);
  return fd;
}

// Reads and verifies the header of an open file whose size is file_size:
// one read of the first page, a second only for a header longer than that.
Result<BlockFileInfo> ReadHeader(int fd, const std::string& path, uint64_t file_size) {
  if (file_size < kBlockHeaderFixedSize + 8) {
    return Status::Corruption(path + ": short file (" + std::to_string(file_size) + " bytes)");
  }
  char head[kMaxBlockHeaderSize];
  size_t have = std::min<uint64_t>(file_size, kDirectIoAlignment);
  bool ok = PreadFull(fd, head, have, 0);
  if (ok) {
    const uint64_t header_len = GetU32Le(head + 12);
    if (header_len > have && header_len <= std::min<uint64_t>(file_size, sizeof(head))) {
      ok = PreadFull(fd, head + have, header_len - have, have);
      have = header_len;
    }
  }
  if (!ok) {
    if (errno == 0) return Status::Corruption(path + ": short file");
    return Status::IoError("read " + path + ": " + ErrnoText(errno));
  }
  auto info = DecodeBlockHeader(std::string_view(head, have));
  if (!info.ok()) return info.status().WithContext(path);
  if (info->file_size() != file_size) {
    return Status::Corruption(path + ": file is " + std::to_string(file_size) +
                              " bytes, header says " + std::to_string(info->file_size()));
  }
  return info;
}

// Corruption unless info names expected.
Status CheckExtent(const BlockFileInfo& info, const BlockExtent& expected,
                   const std::string& path) {
  if (info.extent == expected) return Status::Ok();
  const BlockExtent& e = info.extent;
  return Status::Corruption(path + ": holds bytes [" + std::to_string(e.offset) + ", +" +
                            std::to_string(e.length) + ") of '" + e.object.key + "' etag " +
                            e.object.etag + " size " + std::to_string(e.object.size) +
                            ", not the extent asked for");
}

// Reads data bytes [begin, begin + len) of the block into buf.
Status ReadData(int fd, const BlockFileInfo& info, const std::string& path, uint64_t begin,
                uint64_t len, char* buf) {
  if (PreadFull(fd, buf, len, info.header_length + begin)) return Status::Ok();
  if (errno == 0) return Status::Corruption(path + ": short file");
  return Status::IoError("read " + path + ": " + ErrnoText(errno));
}

// Verifies data bytes [begin, begin + bytes.size()) of a version 4 block,
// where begin is a chunk boundary and the span ends at one (or at D).
Status VerifyChunks(const BlockFileInfo& info, std::string_view bytes, uint64_t begin,
                    const std::string& path) {
  const uint64_t c = info.chunk_size;
  for (uint64_t at = 0; at < bytes.size(); at += c) {
    const uint64_t chunk = (begin + at) / c;
    const uint64_t n = std::min<uint64_t>(c, bytes.size() - at);
    if (Xxh3_64(bytes.data() + at, n) != info.chunk_checksums[chunk]) {
      return Status::Corruption(path + ": data checksum mismatch in chunk " +
                                std::to_string(chunk) + " (bytes [" + std::to_string(begin + at) +
                                ", +" + std::to_string(n) + ") of the block)");
    }
  }
  return Status::Ok();
}

// Verifies the whole data of a block: its checksum (version 3) or every chunk.
Status VerifyData(const BlockFileInfo& info, std::string_view data, const std::string& path) {
  if (info.version >= 4) return VerifyChunks(info, data, 0, path);
  if (Xxh3_64(data) != info.data_checksum) {
    return Status::Corruption(path + ": data checksum mismatch");
  }
  return Status::Ok();
}

// Opens path and reads and checks its header against expected.
Result<BlockFileInfo> OpenBlock(const std::string& path, const BlockExtent& expected, Fd* fd) {
  uint64_t size = 0;
  DSFS_ASSIGN_OR_RETURN(int raw, OpenForRead(path, &size));
  *fd = Fd(raw);
  DSFS_ASSIGN_OR_RETURN(BlockFileInfo info, ReadHeader(fd->get(), path, size));
  DSFS_RETURN_IF_ERROR(CheckExtent(info, expected, path));
  return info;
}

// Reads and verifies all of an open block's data.
Result<BlockData> ReadWholeData(int fd, const BlockFileInfo& info, const std::string& path,
                                BufferPool* pool) {
  std::shared_ptr<Buffer> data = AllocateBuffer(pool, info.data_length);
  DSFS_RETURN_IF_ERROR(ReadData(fd, info, path, 0, info.data_length, data->data()));
  // The bytes now go to the FUSE page cache; the cache file's pages would
  // only hold them in RAM a second time.
  (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  DSFS_RETURN_IF_ERROR(VerifyData(info, *data, path));
  return BlockData(std::move(data));
}

// Data bytes [begin, end) of buf, which holds the data from buf_begin on:
// buf itself when it holds exactly those, else a copy.
BlockData Slice(std::shared_ptr<Buffer> buf, uint64_t buf_begin, uint64_t begin, uint64_t end) {
  if (buf_begin == begin && buf->size() == end - begin) return buf;
  return Buffer::Copy(buf->view().substr(begin - buf_begin, end - begin));
}

// Writes all of iov at offset 0; 0 or the errno.
int PwriteAll(int fd, const iovec (&iov)[2]) {
  size_t total = iov[0].iov_len + iov[1].iov_len;
  size_t done = 0;
  while (done < total) {
    // Skip the iovecs already written.
    iovec cur[2];
    int n_iov = 0;
    size_t skip = done;
    for (const auto& v : iov) {
      if (skip >= v.iov_len) {
        skip -= v.iov_len;
        continue;
      }
      cur[n_iov++] = {static_cast<char*>(v.iov_base) + skip, v.iov_len - skip};
      skip = 0;
    }
    ssize_t n = ::pwritev(fd, cur, n_iov, static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;
    done += static_cast<size_t>(n);
  }
  return 0;
}

// A failed step of writing a file: errno and what was being done.
struct WriteError {
  int err = 0;
  const char* what = "";
};

// Creates path (O_EXCL, 0600) and writes iov to it; on failure removes it.
WriteError WriteNewFile(const std::string& path, const iovec (&iov)[2], bool direct) {
  int raw =
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | (direct ? O_DIRECT : 0), 0600);
  if (raw < 0) {
    WriteError e{errno, "create"};
    // A filesystem that refuses O_DIRECT may have created the file: it is ours.
    if (direct && e.err == EINVAL) ::unlink(path.c_str());
    return e;
  }
  Fd fd(raw);
  WriteError e;
  if (int err = PwriteAll(fd.get(), iov); err != 0) {
    e = {err, "write"};
  } else if (fd.Close() != 0) {
    e = {errno, "close"};
  }
  if (e.err != 0) ::unlink(path.c_str());
  return e;
}

}  // namespace

uint64_t VerifyChunkSize(uint64_t data_length) {
  uint64_t c = kVerifyChunk;
  while (CeilDiv(data_length, c) > kMaxVerifyChunks) c *= 2;
  return c;
}

BlockExtent ExtentOf(const BlockKey& key, uint64_t block_size) {
  BlockExtent e{key.object, 0, 0};
  // Saturating: an index past the end is an empty extent, never a wrap.
  if (block_size == 0 || key.index > key.object.size / block_size) {
    e.offset = key.object.size;
    return e;
  }
  e.offset = key.index * block_size;
  e.length = std::min<uint64_t>(block_size, key.object.size - e.offset);
  return e;
}

BlockId ComputeBlockId(const BlockExtent& e) {
  std::string enc;
  enc.reserve(48 + e.object.key.size() + e.object.etag.size());
  PutU64Le(&enc, e.object.key.size());
  enc += e.object.key;
  PutU64Le(&enc, e.object.etag.size());
  enc += e.object.etag;
  PutU64Le(&enc, e.object.size);
  PutU64Le(&enc, e.offset);
  PutU64Le(&enc, e.length);
  return Xxh3_128(enc);
}

std::string EncodeBlockHeader(const BlockExtent& extent, std::string_view data) {
  const uint64_t header_len = HeaderLength(extent);
  std::string h;
  h.reserve(header_len);
  h.append(kMagic, sizeof(kMagic));
  PutU32Le(&h, kBlockFormatVersion);
  PutU32Le(&h, static_cast<uint32_t>(header_len));
  PutU64Le(&h, extent.object.size);
  PutU64Le(&h, extent.offset);
  PutU64Le(&h, data.size());
  const uint64_t chunk = VerifyChunkSize(data.size());
  PutU32Le(&h, static_cast<uint32_t>(chunk));
  PutU32Le(&h, static_cast<uint32_t>(CeilDiv(data.size(), chunk)));
  PutU32Le(&h, static_cast<uint32_t>(extent.object.key.size()));
  PutU32Le(&h, static_cast<uint32_t>(extent.object.etag.size()));
  h += extent.object.key;
  h += extent.object.etag;
  for (uint64_t at = 0; at < data.size(); at += chunk) {
    PutU64Le(&h, Xxh3_64(data.substr(at, chunk)));
  }
  h.resize(header_len - 8, '\0');
  PutU64Le(&h, Xxh3_64(h));
  return h;
}

Result<BlockFileInfo> DecodeBlockHeader(std::string_view bytes) {
  if (bytes.size() < kBlockHeaderFixedSize + 8) return Status::Corruption("short header");
  const char* p = bytes.data();
  if (std::memcmp(p, kMagic, sizeof(kMagic)) != 0) return Status::Corruption("bad magic");
  uint32_t version = GetU32Le(p + 8);
  if (version == 1 || version == 2) {
    // They name a block index, not a byte offset: never served.
    return Status::Corruption(std::string(kOldBlockFormat) + " version " + std::to_string(version));
  }
  if (version < kOldestServedBlockFormat || version > kBlockFormatVersion) {
    return Status::Corruption("unknown block format version " + std::to_string(version));
  }
  uint64_t header_len = GetU32Le(p + 12);
  if (header_len < kBlockHeaderFixedSize + 8 || header_len > bytes.size() ||
      header_len > kMaxBlockHeaderSize) {
    return Status::Corruption("bad header length " + std::to_string(header_len));
  }
  const uint64_t data_len = GetU64Le(p + 32);
  const uint64_t chunk = version >= 4 ? GetU32Le(p + 40) : 0;
  const uint64_t chunks = version >= 4 ? GetU32Le(p + 44) : 0;
  if (version >= 4 && (chunk == 0 || chunks != CeilDiv(data_len, chunk))) {
    return Status::Corruption("bad chunk table (" + std::to_string(chunks) + " chunks of " +
                              std::to_string(chunk) + " bytes for " + std::to_string(data_len) +
                              ")");
  }
  uint64_t key_len = GetU32Le(p + 48);
  uint64_t etag_len = GetU32Le(p + 52);
  if (header_len != HeaderLength(key_len, etag_len, chunks, data_len)) {
    return Status::Corruption("header lengths do not add up");
  }
  if (Xxh3_64(p, header_len - 8) != GetU64Le(p + header_len - 8)) {
    return Status::Corruption("header checksum mismatch");
  }
  BlockFileInfo info;
  info.version = version;
  info.header_length = header_len;
  info.extent.object.size = GetU64Le(p + 16);
  info.extent.offset = GetU64Le(p + 24);
  info.data_length = data_len;
  info.extent.length = info.data_length;
  if (version == 3) info.data_checksum = GetU64Le(p + 40);
  info.chunk_size = chunk;
  info.extent.object.key.assign(p + kBlockHeaderFixedSize, key_len);
  info.extent.object.etag.assign(p + kBlockHeaderFixedSize + key_len, etag_len);
  const char* table = p + kBlockHeaderFixedSize + key_len + etag_len;
  info.chunk_checksums.reserve(chunks);
  for (uint64_t i = 0; i < chunks; ++i) info.chunk_checksums.push_back(GetU64Le(table + 8 * i));
  if (info.extent.offset > info.extent.object.size ||
      info.data_length > info.extent.object.size - info.extent.offset) {
    return Status::Corruption("extent lies outside the object");
  }
  return info;
}

uint64_t BlockFileSize(const BlockExtent& extent) { return HeaderLength(extent) + extent.length; }

Status WriteBlockFile(const std::string& tmp_path, const BlockExtent& extent,
                      std::string_view data) {
  if (data.size() != extent.length) {
    return Status::InvalidArgument("block data is " + std::to_string(data.size()) +
                                   " bytes, its extent " + std::to_string(extent.length));
  }
  // The header goes in an aligned buffer too, so both parts qualify for O_DIRECT.
  std::shared_ptr<Buffer> header = Buffer::Copy(EncodeBlockHeader(extent, data));
  const iovec iov[2] = {{header->data(), header->size()},
                        {const_cast<char*>(data.data()), data.size()}};
  const bool direct = PaddedHeader(data.size()) && IsAligned(data.data());
  WriteError e = WriteNewFile(tmp_path, iov, direct);
  if (direct && e.err == EINVAL) {
    // The filesystem refuses O_DIRECT (at open or for this I/O): through the page cache.
    e = WriteNewFile(tmp_path, iov, false);
  }
  if (e.err != 0)
    return Status::IoError(std::string(e.what) + " " + tmp_path + ": " + ErrnoText(e.err));
  return Status::Ok();
}

Result<BlockData> ReadBlockFile(const std::string& path, const BlockExtent& expected,
                                BufferPool* pool) {
  Fd fd;
  DSFS_ASSIGN_OR_RETURN(BlockFileInfo info, OpenBlock(path, expected, &fd));
  return ReadWholeData(fd.get(), info, path, pool);
}

Result<BlockData> ReadBlockFileRange(const std::string& path, const BlockExtent& expected,
                                     uint64_t offset, uint64_t len, BufferPool* pool) {
  Fd fd;
  DSFS_ASSIGN_OR_RETURN(BlockFileInfo info, OpenBlock(path, expected, &fd));
  const uint64_t begin = std::min(offset, info.data_length);
  const uint64_t end = begin + std::min(len, info.data_length - begin);
  if (begin == end) return BlockData(Buffer::Allocate(0));
  if (info.version < 4) {
    // No chunk table: the whole block is read and verified.
    DSFS_ASSIGN_OR_RETURN(BlockData all, ReadWholeData(fd.get(), info, path, pool));
    return BlockData(Buffer::Copy(all->view().substr(begin, end - begin)));
  }
  const uint64_t c = info.chunk_size;
  const uint64_t span_begin = begin / c * c;
  const uint64_t span_end = std::min(info.data_length, CeilDiv(end, c) * c);
  // Exactly the chunks: no read-ahead of the rest of the block.
  (void)::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_RANDOM);
  std::shared_ptr<Buffer> span = AllocateBuffer(pool, span_end - span_begin);
  DSFS_RETURN_IF_ERROR(ReadData(fd.get(), info, path, span_begin, span->size(), span->data()));
  DSFS_RETURN_IF_ERROR(VerifyChunks(info, *span, span_begin, path));
  return Slice(std::move(span), span_begin, begin, end);
}

Result<BlockFileInfo> ReadBlockFileHeader(const std::string& path) {
  uint64_t size = 0;
  DSFS_ASSIGN_OR_RETURN(int raw, OpenForRead(path, &size));
  Fd fd(raw);
  return ReadHeader(fd.get(), path, size);
}

}  // namespace dsfs
