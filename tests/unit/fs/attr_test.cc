// The s3fs/obsfs on-bucket format both ways: what s3fs 1.90 writes is read,
// what dsfs writes is what s3fs writes.
#include "fs/attr.h"

#include <gtest/gtest.h>

namespace dsfs {
namespace {

ObjectInfo HeadWith(std::map<std::string, std::string> meta, std::string content_type = "") {
  ObjectInfo info;
  info.key = "k";
  info.size = 5;
  info.etag = "e1";
  info.mtime_sec = 1000;  // Last-Modified: only when there is no x-amz-meta-mtime
  info.meta = std::move(meta);
  info.content_type = std::move(content_type);
  return info;
}

TEST(AttrTime, ParsesWholeAndFractionalSeconds) {
  int64_t s = 0;
  uint32_t ns = 0;
  ASSERT_TRUE(ParseTime("1700000002", &s, &ns));
  EXPECT_EQ(s, 1700000002);
  EXPECT_EQ(ns, 0u);
  ASSERT_TRUE(ParseTime("1700000002.987654321", &s, &ns));
  EXPECT_EQ(s, 1700000002);
  EXPECT_EQ(ns, 987654321u);
  ASSERT_TRUE(ParseTime("1700000002.5", &s, &ns));  // a short fraction is a fraction
  EXPECT_EQ(ns, 500000000u);
  ASSERT_TRUE(ParseTime("1.1234567891", &s, &ns));  // past 9 digits: cut
  EXPECT_EQ(ns, 123456789u);
  for (const char* bad : {"", ".5", "12.", "12.x", "x", "12 ", "1.2.3"}) {
    EXPECT_FALSE(ParseTime(bad, &s, &ns)) << bad;
  }
}

TEST(AttrTime, FormatsAsS3fsDoes) {
  EXPECT_EQ(FormatTime(1796165958, 0), "1796165958");
  EXPECT_EQ(FormatTime(1700000002, 987654321), "1700000002.987654321");
  EXPECT_EQ(FormatTime(1700000003, 500000000), "1700000003.500000000");
  EXPECT_EQ(FormatTime(5, 7), "5.000000007");
}

TEST(AttrRead, FractionalTimesFromS3fs) {
  FsConfig config;
  // What s3fs 1.90 stored after `touch -d` with nanoseconds (probed).
  auto info = HeadWith({{"mode", "33152"},
                        {"uid", "7"},
                        {"gid", "8"},
                        {"mtime", "1700000002.987654321"},
                        {"atime", "1700000001.123456789"},
                        {"ctime", "1796165958"}});
  NodeMeta m = MetaFromHead(info, false, config);
  EXPECT_EQ(m.kind, NodeKind::kFile);
  EXPECT_EQ(m.mode, static_cast<mode_t>(S_IFREG | 0600));
  EXPECT_EQ(m.uid, 7u);
  EXPECT_EQ(m.gid, 8u);
  struct stat st = ToStat(9, m, config);
  EXPECT_EQ(st.st_mtim.tv_sec, 1700000002);
  EXPECT_EQ(st.st_mtim.tv_nsec, 987654321);
  EXPECT_EQ(st.st_atim.tv_sec, 1700000001);
  EXPECT_EQ(st.st_atim.tv_nsec, 123456789);
  EXPECT_EQ(st.st_ctim.tv_sec, 1796165958);
  EXPECT_EQ(st.st_ctim.tv_nsec, 0);
}

TEST(AttrRead, WithoutTimesLastModifiedStandsInForAll) {
  FsConfig config;
  NodeMeta m = MetaFromHead(HeadWith({}), false, config);
  struct stat st = ToStat(9, m, config);
  EXPECT_EQ(st.st_mtim.tv_sec, 1000);
  EXPECT_EQ(st.st_atim.tv_sec, 1000);
  EXPECT_EQ(st.st_ctim.tv_sec, 1000);
}

TEST(AttrRead, DirectoryModeWithOrWithoutTypeBits) {
  FsConfig config;
  // s3fs's mkdir writes the permission bits alone ("488" = 0750).
  NodeMeta a = MetaFromHead(HeadWith({{"mode", "488"}}, kDirContentType), true, config);
  EXPECT_EQ(a.kind, NodeKind::kDir);
  EXPECT_EQ(a.mode, static_cast<mode_t>(S_IFDIR | 0750));
  // A legacy "dir" object (no slash) known by its Content-Type or mode.
  NodeMeta b = MetaFromHead(HeadWith({}, kDirContentType), false, config);
  EXPECT_EQ(b.kind, NodeKind::kDir);
  NodeMeta c = MetaFromHead(HeadWith({{"mode", std::to_string(S_IFDIR | 0700)}}), false, config);
  EXPECT_EQ(c.kind, NodeKind::kDir);
  EXPECT_EQ(c.mode, static_cast<mode_t>(S_IFDIR | 0700));
}

TEST(AttrWrite, FileRoundTripsWithFractionalTimes) {
  FsConfig config;
  NodeMeta m;
  m.kind = NodeKind::kFile;
  m.mode = S_IFREG | 0640;
  m.uid = 1001;
  m.gid = 1002;
  m.mtime_sec = 1700000002;
  m.mtime_nsec = 987654321;
  m.atime_sec = 1700000001;
  m.atime_nsec = 1;
  m.ctime_sec = 1700000003;
  ObjectAttrs a = AttrsForFile(m);
  EXPECT_EQ(a.content_type, "");  // application/octet-stream
  EXPECT_EQ(a.meta.at("mode"), "33184");
  EXPECT_EQ(a.meta.at("uid"), "1001");
  EXPECT_EQ(a.meta.at("gid"), "1002");
  EXPECT_EQ(a.meta.at("mtime"), "1700000002.987654321");
  EXPECT_EQ(a.meta.at("atime"), "1700000001.000000001");
  EXPECT_EQ(a.meta.at("ctime"), "1700000003");
  ObjectInfo info = HeadWith(a.meta, a.content_type);
  NodeMeta back = MetaFromHead(info, false, config);
  EXPECT_EQ(back.mode, m.mode);
  EXPECT_EQ(back.uid, m.uid);
  EXPECT_EQ(back.gid, m.gid);
  EXPECT_EQ(back.mtime_sec, m.mtime_sec);
  EXPECT_EQ(back.mtime_nsec, m.mtime_nsec);
  EXPECT_EQ(back.atime_nsec, m.atime_nsec);
  EXPECT_EQ(back.ctime_sec, m.ctime_sec);
}

TEST(AttrWrite, DirAndSymlinkAsS3fsWritesThem) {
  FsConfig config;
  NodeMeta d;
  d.mode = 0750;  // type bits are added
  d.mtime_sec = 5;
  ObjectAttrs da = AttrsForDir(d);
  EXPECT_EQ(da.content_type, "application/x-directory");
  EXPECT_EQ(da.meta.at("mode"), std::to_string(S_IFDIR | 0750));
  EXPECT_EQ(da.meta.at("atime"), "5");  // unknown atime/ctime: the mtime
  EXPECT_EQ(da.meta.at("ctime"), "5");
  NodeMeta back = MetaFromHead(HeadWith(da.meta, da.content_type), true, config);
  EXPECT_EQ(back.kind, NodeKind::kDir);
  EXPECT_EQ(back.mode, static_cast<mode_t>(S_IFDIR | 0750));

  NodeMeta l;
  l.mode = 0644;
  ObjectAttrs la = AttrsForSymlink(l);
  EXPECT_EQ(la.meta.at("mode"), "41471");  // S_IFLNK|0777, as s3fs 1.90 wrote it
  EXPECT_EQ(MetaFromHead(HeadWith(la.meta), false, config).kind, NodeKind::kSymlink);
}

TEST(AttrWrite, EncodeKeepsOtherMetadata) {
  std::map<std::string, std::string> meta = {{"mode", "1"}, {"sha256", "abc"}};
  NodeMeta m;
  m.mode = S_IFREG | 0600;
  EncodeAttrs(m, &meta);
  EXPECT_EQ(meta.at("sha256"), "abc");
  EXPECT_EQ(meta.at("mode"), std::to_string(S_IFREG | 0600));
}

}  // namespace
}  // namespace dsfs
