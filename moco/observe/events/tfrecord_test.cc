#include "moco/observe/events/tfrecord.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "moco/observe/events/crc32c.h"

namespace moco {
namespace tfevents {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(TfRecordTest, FramesAsTheSpecSays) {
  const std::string framed = FrameTfRecord("abc");
  ASSERT_EQ(framed.size(), 3u + 16u);
  // Length 3, little-endian in 8 bytes.
  EXPECT_EQ(framed.substr(0, 8), std::string("\x03\0\0\0\0\0\0\0", 8));
  uint32_t length_crc = 0, payload_crc = 0;
  for (int i = 0; i < 4; ++i) {
    length_crc |= static_cast<uint32_t>(static_cast<unsigned char>(framed[8 + i])) << (8 * i);
    payload_crc |= static_cast<uint32_t>(static_cast<unsigned char>(framed[15 + i])) << (8 * i);
  }
  EXPECT_EQ(length_crc, MaskCrc32c(Crc32c(framed.data(), 8)));
  EXPECT_EQ(framed.substr(12, 3), "abc");
  EXPECT_EQ(payload_crc, MaskCrc32c(Crc32c("abc", 3)));
}

TEST(TfRecordTest, RoundTripsRecords) {
  const std::string data = FrameTfRecord("one") + FrameTfRecord("") + FrameTfRecord(std::string(300, 'x'));
  auto r = ParseTfRecords(data, "mem");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->payloads, ElementsAre("one", "", std::string(300, 'x')));
  EXPECT_EQ(r->incomplete_tail_bytes, 0);
}

TEST(TfRecordTest, ReportsATruncatedLastRecordWithoutFailing) {
  const std::string whole = FrameTfRecord("first") + FrameTfRecord("second");
  for (size_t cut = 1; cut < FrameTfRecord("second").size(); ++cut) {
    auto r = ParseTfRecords(whole.substr(0, whole.size() - cut), "mem");
    ASSERT_TRUE(r.ok()) << "cut " << cut << ": " << r.status();
    EXPECT_THAT(r->payloads, ElementsAre("first"));
    EXPECT_EQ(r->incomplete_tail_bytes, static_cast<int64_t>(FrameTfRecord("second").size() - cut));
  }
}

TEST(TfRecordTest, DetectsEveryCorruptedByte) {
  const std::string good = FrameTfRecord("payload");
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] ^= 0x01;
    auto r = ParseTfRecords(bad, "file.tfevents");
    if (i < 12 && r.ok()) {
      // A flipped length bit can make the record look truncated only if the CRC still
      // matched, which it must not.
      ADD_FAILURE() << "byte " << i << " corrupted but accepted";
      continue;
    }
    ASSERT_FALSE(r.ok()) << "byte " << i;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(r.status().message(), HasSubstr("file.tfevents: record at byte 0"));
  }
}

}  // namespace
}  // namespace tfevents
}  // namespace moco
