#include "moco/run/checkpoint.h"

#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "moco/run/checkpoint.pb.h"
#include "moco/run/small_disk.h"

namespace moco {
namespace {

using ::testing::HasSubstr;

// A fresh, empty folder under TEST_TMPDIR.
std::string NewDir(const std::string& name) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
  std::string cmd = "rm -rf '" + dir + "' && mkdir -p '" + dir + "'";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  return dir;
}

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return names;
  while (dirent* e = readdir(d)) {
    const std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

// A checkpoint whose contents identify it by `tag`, with awkward float values.
Checkpoint MakeCheckpoint(int tag, int64_t big = 1000) {
  Checkpoint c;
  c.epoch = tag;
  c.global_step = 1000 * tag + 7;
  c.seed = std::numeric_limits<uint64_t>::max() - tag;
  c.config_text = "run { epochs: 3 }\nmoco { queue_size: 4096 }\n";
  c.backend = "torch";
  c.metadata["rng"] = std::string("\x00\x01\xff state", 9);
  c.metadata["note"] = "tag " + std::to_string(tag);
  HostArray w({2, 3}, {1.5f, -0.0f, std::numeric_limits<float>::denorm_min(),
            std::numeric_limits<float>::infinity(), std::nanf("0x123"), static_cast<float>(tag)});
  c.arrays["encoder_q.conv1.weight"] = w;
  c.arrays["queue_ptr"] = HostArray({1}, {static_cast<float>(tag)});
  c.arrays["empty"] = HostArray({0, 4});
  c.arrays["scalar"] = HostArray({}, {3.25f});
  HostArray q({big});
  for (int64_t i = 0; i < big; ++i) q.mutable_data()[i] = std::sin(static_cast<float>(i + tag));
  c.arrays["queue"] = q;
  return c;
}

void ExpectSameCheckpoint(const Checkpoint& a, const Checkpoint& b) {
  EXPECT_EQ(a.epoch, b.epoch);
  EXPECT_EQ(a.global_step, b.global_step);
  EXPECT_EQ(a.seed, b.seed);
  EXPECT_EQ(a.config_text, b.config_text);
  EXPECT_EQ(a.backend, b.backend);
  EXPECT_EQ(a.metadata, b.metadata);
  ASSERT_EQ(a.arrays.size(), b.arrays.size());
  for (const auto& [name, array] : a.arrays) {
    auto it = b.arrays.find(name);
    ASSERT_NE(it, b.arrays.end()) << name;
    EXPECT_EQ(array.shape(), it->second.shape()) << name;
    ASSERT_EQ(array.data().size(), it->second.data().size()) << name;
    if (array.data().empty()) continue;
    // Bitwise: NaN payloads, -0 and denormals must survive.
    EXPECT_EQ(std::memcmp(array.data().data(), it->second.data().data(),
                          array.data().size() * sizeof(float)),
              0)
        << name;
  }
}

TEST(CheckpointTest, RoundTripIsBitwise) {
  const std::string dir = NewDir("roundtrip");
  const std::string path = dir + "/c.ckpt";
  const Checkpoint c = MakeCheckpoint(5);
  ASSERT_TRUE(WriteCheckpoint(path, c).ok());
  absl::StatusOr<Checkpoint> r = ReadCheckpoint(path);
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectSameCheckpoint(c, *r);
  EXPECT_EQ(ListDir(dir), std::vector<std::string>{"c.ckpt"});  // no temporary left
}

TEST(CheckpointTest, FileLayoutMatchesTheDocumentedFormat) {
  const std::string path = NewDir("layout") + "/c.ckpt";
  ASSERT_TRUE(WriteCheckpoint(path, MakeCheckpoint(1)).ok());
  const std::string f = ReadBytes(path);
  ASSERT_GT(f.size(), 24u);
  EXPECT_EQ(f.substr(0, 8), "MOCOCKPT");
  EXPECT_EQ(f.substr(8, 4), std::string("\x01\x00\x00\x00", 4));
  uint64_t len = 0;
  for (int i = 0; i < 8; ++i) len |= static_cast<uint64_t>(static_cast<unsigned char>(f[12 + i])) << (8 * i);
  ASSERT_EQ(len + 24, f.size());
  uint32_t stored = 0;
  for (int i = 0; i < 4; ++i) stored |= static_cast<uint32_t>(static_cast<unsigned char>(f[20 + len + i])) << (8 * i);
  EXPECT_EQ(stored, static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(f.data() + 20),
                                                static_cast<uInt>(len))));
  ckpt::Checkpoint proto;
  ASSERT_TRUE(proto.ParseFromString(f.substr(20, len)));
  EXPECT_EQ(proto.epoch(), 1);
  EXPECT_EQ(proto.backend(), "torch");
  // Arrays sorted by name, float bytes little-endian: queue_ptr holds 1.0f = 0x3f800000.
  ASSERT_EQ(proto.arrays_size(), 5);
  EXPECT_EQ(proto.arrays(4).name(), "scalar");
  EXPECT_EQ(proto.arrays(3).name(), "queue_ptr");
  EXPECT_EQ(proto.arrays(3).data(), std::string("\x00\x00\x80\x3f", 4));
}

TEST(CheckpointTest, MissingFileIsNotFound) {
  const std::string path = NewDir("missing") + "/nope.ckpt";
  absl::StatusOr<Checkpoint> r = ReadCheckpoint(path);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(path));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("does not exist"));
}

TEST(CheckpointTest, TruncationIsDetectedAtEveryKindOfOffset) {
  const std::string dir = NewDir("truncated");
  const std::string good = dir + "/good.ckpt";
  ASSERT_TRUE(WriteCheckpoint(good, MakeCheckpoint(2)).ok());
  const std::string f = ReadBytes(good);
  const size_t n = f.size();
  // Inside the magic, the version, the length, at the payload start, mid-payload, at the
  // trailer, one byte short.
  for (size_t cut : {size_t{0}, size_t{5}, size_t{8}, size_t{10}, size_t{12}, size_t{19},
                     size_t{20}, size_t{21}, n / 2, n - 5, n - 4, n - 2, n - 1}) {
    SCOPED_TRACE(cut);
    const std::string path = dir + "/cut.ckpt";
    WriteBytes(path, f.substr(0, cut));
    absl::StatusOr<Checkpoint> r = ReadCheckpoint(path);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(path));
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("truncated"));
  }
}

TEST(CheckpointTest, TruncationAtAFieldBoundaryIsCaughtByLengthAndChecksum) {
  // Dropping the last array leaves a payload prefix that protobuf happily parses...
  const std::string dir = NewDir("boundary");
  const std::string good = dir + "/good.ckpt";
  ASSERT_TRUE(WriteCheckpoint(good, MakeCheckpoint(2)).ok());
  const std::string f = ReadBytes(good);
  const std::string payload = f.substr(20, f.size() - 24);
  ckpt::Checkpoint full;
  ASSERT_TRUE(full.ParseFromString(payload));
  ckpt::Checkpoint shorter = full;
  shorter.mutable_metadata()->Clear();
  const std::string prefix = shorter.SerializeAsString();
  ASSERT_EQ(payload.compare(0, prefix.size(), prefix), 0);  // it is a prefix...
  ckpt::Checkpoint parsed;
  ASSERT_TRUE(parsed.ParseFromString(prefix));  // ...that parses
  // ...but the file cut there is rejected.
  const std::string path = dir + "/cut.ckpt";
  WriteBytes(path, f.substr(0, 20 + prefix.size()));
  absl::StatusOr<Checkpoint> r = ReadCheckpoint(path);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
}

TEST(CheckpointTest, FlippedBytesAreDetected) {
  const std::string dir = NewDir("flipped");
  const std::string good = dir + "/good.ckpt";
  ASSERT_TRUE(WriteCheckpoint(good, MakeCheckpoint(3)).ok());
  const std::string f = ReadBytes(good);
  const std::string path = dir + "/bad.ckpt";
  struct Case {
    size_t offset;
    absl::StatusCode code;
    const char* message;
  };
  const std::vector<Case> cases = {
      {0, absl::StatusCode::kInvalidArgument, "not a moco checkpoint"},
      {7, absl::StatusCode::kInvalidArgument, "not a moco checkpoint"},
      {8, absl::StatusCode::kInvalidArgument, "unsupported format version"},
      {12, absl::StatusCode::kDataLoss, "truncated"},        // length too large
      {19, absl::StatusCode::kDataLoss, "truncated"},        // length far too large
      {20, absl::StatusCode::kDataLoss, "checksum mismatch"},
      {f.size() / 2, absl::StatusCode::kDataLoss, "checksum mismatch"},
      {f.size() - 5, absl::StatusCode::kDataLoss, "checksum mismatch"},
      {f.size() - 1, absl::StatusCode::kDataLoss, "checksum mismatch"},  // in the CRC
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.offset);
    std::string bad = f;
    bad[c.offset] = static_cast<char>(bad[c.offset] ^ 0x10);
    WriteBytes(path, bad);
    absl::StatusOr<Checkpoint> r = ReadCheckpoint(path);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), c.code) << r.status();
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(path));
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.message));
  }
  // A length too small leaves bytes after the checksum.
  std::string bad = f;
  bad[12] = static_cast<char>(bad[12] - 1);
  WriteBytes(path, bad);
  EXPECT_EQ(ReadCheckpoint(path).status().code(), absl::StatusCode::kDataLoss);
  // Appended garbage.
  WriteBytes(path, f + "xyz");
  absl::StatusOr<Checkpoint> r = ReadCheckpoint(path);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("3 unexpected bytes"));
}

TEST(CheckpointTest, WrongMagicNamesTheFile) {
  const std::string path = NewDir("magic") + "/notes.txt";
  WriteBytes(path, "hello, this is not a checkpoint at all");
  absl::StatusOr<Checkpoint> r = ReadCheckpoint(path);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(path + " is not a moco checkpoint"));
}

// Frames `payload` as a version-1 file with a correct length and checksum.
std::string Frame(const std::string& payload) {
  std::string f = "MOCOCKPT";
  f += std::string("\x01\x00\x00\x00", 4);
  for (int i = 0; i < 8; ++i) f += static_cast<char>((payload.size() >> (8 * i)) & 0xff);
  f += payload;
  const uint32_t crc = static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(payload.data()), static_cast<uInt>(payload.size())));
  for (int i = 0; i < 4; ++i) f += static_cast<char>((crc >> (8 * i)) & 0xff);
  return f;
}

TEST(CheckpointTest, CorruptPayloadWithValidChecksum) {
  const std::string dir = NewDir("payload");
  const std::string path = dir + "/c.ckpt";
  // Framing round trip sanity: a framed valid payload reads.
  ckpt::Checkpoint proto;
  proto.set_epoch(4);
  ckpt::Array* a = proto.add_arrays();
  a->set_name("w");
  a->add_shape(2);
  a->set_data(std::string(8, '\0'));
  WriteBytes(path, Frame(proto.SerializeAsString()));
  absl::StatusOr<Checkpoint> r = ReadCheckpoint(path);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->epoch, 4);
  EXPECT_EQ(r->arrays.at("w").data(), std::vector<float>({0.0f, 0.0f}));

  // Not protobuf.
  WriteBytes(path, Frame("\xff\xff\xff\xff\xff garbage"));
  r = ReadCheckpoint(path);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("payload is not a valid"));

  // Data size disagrees with the shape.
  a->set_data(std::string(12, '\0'));
  WriteBytes(path, Frame(proto.SerializeAsString()));
  r = ReadCheckpoint(path);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("array 'w' holds 12 bytes"));

  // The same name twice.
  a->set_data(std::string(8, '\0'));
  *proto.add_arrays() = *a;
  WriteBytes(path, Frame(proto.SerializeAsString()));
  r = ReadCheckpoint(path);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("'w' appears twice"));
}

// Lowers the file-size limit for the scope: writes past `bytes` fail with EFBIG (this works as
// root, unlike an unwritable folder). SIGXFSZ is ignored meanwhile so the write just fails.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    getrlimit(RLIMIT_FSIZE, &old_);
    rlimit lim = old_;
    lim.rlim_cur = bytes;
    EXPECT_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
    old_handler_ = signal(SIGXFSZ, SIG_IGN);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &old_);
    signal(SIGXFSZ, old_handler_);
  }

 private:
  rlimit old_;
  sighandler_t old_handler_;
};

TEST(CheckpointTest, FailedWriteLeavesTheOldCheckpointIntact) {
  const std::string dir = NewDir("failedwrite");
  const std::string path = dir + "/c.ckpt";
  const Checkpoint old = MakeCheckpoint(1, 100);
  ASSERT_TRUE(WriteCheckpoint(path, old).ok());
  const std::string before = ReadBytes(path);
  absl::Status s;
  {
    FileSizeLimit limit(before.size() + 100);  // the new one is ~40 KB
    s = WriteCheckpoint(path, MakeCheckpoint(2, 10000));
  }
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr(path));
  EXPECT_THAT(std::string(s.message()), HasSubstr("File too large"));
  EXPECT_EQ(ReadBytes(path), before);
  EXPECT_EQ(ListDir(dir), std::vector<std::string>{"c.ckpt"});  // temp removed
  absl::StatusOr<Checkpoint> r = ReadCheckpoint(path);
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectSameCheckpoint(old, *r);
}

TEST(CheckpointTest, FailedRenameRemovesTheTemporaryFile) {
  // `path` is a non-empty folder: everything succeeds up to the rename, which fails.
  const std::string dir = NewDir("failedrename");
  const std::string path = dir + "/c.ckpt";
  ASSERT_EQ(mkdir(path.c_str(), 0755), 0);
  WriteBytes(path + "/keep", "x");
  absl::Status s = WriteCheckpoint(path, MakeCheckpoint(1));
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("rename"));
  EXPECT_EQ(ListDir(dir), std::vector<std::string>{"c.ckpt"});
  EXPECT_EQ(ListDir(path), std::vector<std::string>{"keep"});
  // Reading a folder is a clear error too.
  EXPECT_THAT(std::string(ReadCheckpoint(path).status().message()),
              HasSubstr("not a regular file"));
}

TEST(CheckpointTest, MissingFolderNamesThePath) {
  const std::string path = NewDir("nofolder") + "/sub/c.ckpt";
  absl::Status s = WriteCheckpoint(path, MakeCheckpoint(1));
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr(path));
  EXPECT_THAT(std::string(s.message()), HasSubstr("No such file or directory"));
}

TEST(RunDirCheckpointTest, PathsInTheRunFolder) {
  EXPECT_EQ(CheckpointPath("runs/a"), "runs/a/checkpoint.ckpt");
  EXPECT_EQ(PreviousCheckpointPath("runs/a"), "runs/a/checkpoint.prev.ckpt");
}

TEST(RunDirCheckpointTest, SaveKeepsThePreviousCheckpoint) {
  const std::string dir = NewDir("rundir");
  EXPECT_EQ(ReadLatestCheckpoint(dir).status().code(), absl::StatusCode::kNotFound);

  ASSERT_TRUE(SaveCheckpointToRunDir(dir, MakeCheckpoint(1)).ok());
  EXPECT_EQ(ListDir(dir), std::vector<std::string>{"checkpoint.ckpt"});
  ASSERT_TRUE(SaveCheckpointToRunDir(dir, MakeCheckpoint(2)).ok());
  ASSERT_TRUE(SaveCheckpointToRunDir(dir, MakeCheckpoint(3)).ok());
  EXPECT_EQ(ListDir(dir), (std::vector<std::string>{"checkpoint.ckpt", "checkpoint.prev.ckpt"}));
  absl::StatusOr<Checkpoint> latest = ReadCheckpoint(CheckpointPath(dir));
  absl::StatusOr<Checkpoint> prev = ReadCheckpoint(PreviousCheckpointPath(dir));
  ASSERT_TRUE(latest.ok() && prev.ok());
  ExpectSameCheckpoint(*latest, MakeCheckpoint(3));
  ExpectSameCheckpoint(*prev, MakeCheckpoint(2));
  // Two separate files, not two names of one: changing the latest leaves the previous.
  struct stat a, b;
  ASSERT_EQ(stat(CheckpointPath(dir).c_str(), &a), 0);
  ASSERT_EQ(stat(PreviousCheckpointPath(dir).c_str(), &b), 0);
  EXPECT_NE(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_nlink, 1u);
  EXPECT_EQ(b.st_nlink, 1u);

  absl::StatusOr<Checkpoint> r = ReadLatestCheckpoint(dir);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->epoch, 3);
}

TEST(RunDirCheckpointTest, SaveAfterACrashBetweenLinkAndRename) {
  // A crash after step 2 leaves P and C as two names of one file; the next save must still
  // end with P = that checkpoint, C = the new one, and no stray files.
  const std::string dir = NewDir("rundir_crash");
  ASSERT_TRUE(SaveCheckpointToRunDir(dir, MakeCheckpoint(1)).ok());
  ASSERT_EQ(link(CheckpointPath(dir).c_str(), PreviousCheckpointPath(dir).c_str()), 0);
  ASSERT_TRUE(SaveCheckpointToRunDir(dir, MakeCheckpoint(2)).ok());
  EXPECT_EQ(ListDir(dir), (std::vector<std::string>{"checkpoint.ckpt", "checkpoint.prev.ckpt"}));
  absl::StatusOr<Checkpoint> latest = ReadCheckpoint(CheckpointPath(dir));
  absl::StatusOr<Checkpoint> prev = ReadCheckpoint(PreviousCheckpointPath(dir));
  ASSERT_TRUE(latest.ok() && prev.ok());
  EXPECT_EQ(latest->epoch, 2);
  EXPECT_EQ(prev->epoch, 1);
}

TEST(RunDirCheckpointTest, FailedSaveLeavesBothCheckpoints) {
  const std::string dir = NewDir("rundir_fail");
  ASSERT_TRUE(SaveCheckpointToRunDir(dir, MakeCheckpoint(1, 100)).ok());
  ASSERT_TRUE(SaveCheckpointToRunDir(dir, MakeCheckpoint(2, 100)).ok());
  const std::string latest = ReadBytes(CheckpointPath(dir));
  const std::string prev = ReadBytes(PreviousCheckpointPath(dir));
  absl::Status s;
  {
    FileSizeLimit limit(latest.size() + 100);
    s = SaveCheckpointToRunDir(dir, MakeCheckpoint(3, 10000));
  }
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(ReadBytes(CheckpointPath(dir)), latest);
  EXPECT_EQ(ReadBytes(PreviousCheckpointPath(dir)), prev);
  EXPECT_EQ(ListDir(dir), (std::vector<std::string>{"checkpoint.ckpt", "checkpoint.prev.ckpt"}));
}

TEST(RunDirCheckpointTest, ReadLatestFallsBackToThePrevious) {
  const std::string dir = NewDir("fallback");
  ASSERT_TRUE(SaveCheckpointToRunDir(dir, MakeCheckpoint(1)).ok());
  ASSERT_TRUE(SaveCheckpointToRunDir(dir, MakeCheckpoint(2)).ok());
  // A corrupt latest: the previous one is used.
  std::string f = ReadBytes(CheckpointPath(dir));
  WriteBytes(CheckpointPath(dir), f.substr(0, f.size() / 2));
  absl::StatusOr<Checkpoint> r = ReadLatestCheckpoint(dir);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->epoch, 1);
  // The corrupt latest was moved aside (issue 18 item 5).
  EXPECT_EQ(ListDir(dir),
            (std::vector<std::string>{"checkpoint.corrupt.ckpt", "checkpoint.prev.ckpt"}));
  // A missing latest (the rename fallback's window): likewise.
  r = ReadLatestCheckpoint(dir);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->epoch, 1);
  // Latest missing, previous corrupt: DataLoss naming the previous file, never NotFound.
  WriteBytes(PreviousCheckpointPath(dir), "MOCOCKPT");
  r = ReadLatestCheckpoint(dir);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(PreviousCheckpointPath(dir)));
}

// Issue 18 deliver 4: a full disk fails the save with the system's reason naming the file,
// and leaves both earlier checkpoints intact and no temporaries.
TEST(RunDirCheckpointTest, DiskFullLeavesThePreviousFiles) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/small_disk_ckpt";
  SmallDisk disk(dir, 256 * 1024);
  ASSERT_TRUE(SaveCheckpointToRunDir(dir, MakeCheckpoint(1, 1000)).ok());   // ~4 KB
  ASSERT_TRUE(SaveCheckpointToRunDir(dir, MakeCheckpoint(2, 1000)).ok());
  const std::string latest = ReadBytes(CheckpointPath(dir));
  const std::string prev = ReadBytes(PreviousCheckpointPath(dir));
  disk.Fill();
  absl::Status s = SaveCheckpointToRunDir(dir, MakeCheckpoint(3, 200000));  // ~800 KB
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr(CheckpointPath(dir)));
  EXPECT_THAT(std::string(s.message()), HasSubstr(disk.reason()));
  EXPECT_EQ(ReadBytes(CheckpointPath(dir)), latest);
  EXPECT_EQ(ReadBytes(PreviousCheckpointPath(dir)), prev);
  EXPECT_EQ(ListDir(dir), (std::vector<std::string>{"checkpoint.ckpt", "checkpoint.prev.ckpt"}));
  std::cerr << "disk full via " << (disk.mounted() ? "tmpfs" : "RLIMIT_FSIZE") << "\n";
}

// Issue 18 item 5: after falling back to P because C was corrupt, the next save must keep P
// (it used to rotate the corrupt C into P and lose the only good checkpoint).
TEST(RunDirCheckpointTest, SaveAfterFallbackKeepsTheGoodPrevious) {
  const std::string dir = NewDir("fallback_save");
  ASSERT_TRUE(SaveCheckpointToRunDir(dir, MakeCheckpoint(1)).ok());
  ASSERT_TRUE(SaveCheckpointToRunDir(dir, MakeCheckpoint(2)).ok());
  const std::string f = ReadBytes(CheckpointPath(dir));
  WriteBytes(CheckpointPath(dir), f.substr(0, f.size() - 3));
  absl::StatusOr<Checkpoint> r = ReadLatestCheckpoint(dir);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->epoch, 1);
  ASSERT_TRUE(SaveCheckpointToRunDir(dir, MakeCheckpoint(3)).ok());
  absl::StatusOr<Checkpoint> latest = ReadCheckpoint(CheckpointPath(dir));
  absl::StatusOr<Checkpoint> prev = ReadCheckpoint(PreviousCheckpointPath(dir));
  ASSERT_TRUE(latest.ok()) << latest.status();
  ASSERT_TRUE(prev.ok()) << prev.status();
  EXPECT_EQ(latest->epoch, 3);
  EXPECT_EQ(prev->epoch, 1);
  EXPECT_EQ(ReadBytes(CorruptCheckpointPath(dir)), f.substr(0, f.size() - 3));
}

// Issue 18 item 4: temporaries left by killed writes are removed by the next save.
TEST(RunDirCheckpointTest, SaveRemovesStaleTemporaries) {
  const std::string dir = NewDir("stale_tmp");
  ASSERT_TRUE(SaveCheckpointToRunDir(dir, MakeCheckpoint(1)).ok());
  WriteBytes(dir + "/.checkpoint.ckpt.tmp.AbC123", "half a checkpoint");
  WriteBytes(dir + "/.checkpoint.ckpt.tmp.zzzzzz", "");
  WriteBytes(dir + "/metrics.csv", "step\n");  // not ours: kept
  ASSERT_TRUE(SaveCheckpointToRunDir(dir, MakeCheckpoint(2)).ok());
  EXPECT_EQ(ListDir(dir), (std::vector<std::string>{"checkpoint.ckpt", "checkpoint.prev.ckpt",
                                                    "metrics.csv"}));
}

// The crash hook kills the process at each point; whatever is left, the next save cleans up
// and ends with C = new, P = a complete older checkpoint.
TEST(RunDirCheckpointDeathTest, KilledAtEveryPointOfASaveRecovers) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  for (const char* point : {"after_write", "after_fsync", "after_prev", "after_rename"}) {
    SCOPED_TRACE(point);
    const std::string dir = NewDir(std::string("crash_") + point);
    ASSERT_TRUE(SaveCheckpointToRunDir(dir, MakeCheckpoint(1)).ok());
    ASSERT_TRUE(SaveCheckpointToRunDir(dir, MakeCheckpoint(2)).ok());
    EXPECT_EXIT(
        {
          setenv("MOCO_TEST_CRASH_AT", point, 1);
          (void)SaveCheckpointToRunDir(dir, MakeCheckpoint(3));
          std::exit(0);
        },
        ::testing::KilledBySignal(SIGKILL), "");
    absl::StatusOr<Checkpoint> r = ReadLatestCheckpoint(dir);
    ASSERT_TRUE(r.ok()) << r.status();
    const bool renamed = std::string(point) == "after_rename";
    EXPECT_EQ(r->epoch, renamed ? 3 : 2);
    ASSERT_TRUE(SaveCheckpointToRunDir(dir, MakeCheckpoint(4)).ok());
    EXPECT_EQ(ListDir(dir),
              (std::vector<std::string>{"checkpoint.ckpt", "checkpoint.prev.ckpt"}));
    absl::StatusOr<Checkpoint> prev = ReadCheckpoint(PreviousCheckpointPath(dir));
    ASSERT_TRUE(prev.ok()) << prev.status();
    EXPECT_EQ(prev->epoch, renamed ? 3 : 2);
  }
}

}  // namespace
}  // namespace moco
