#include "moco/observe/events/crc32c.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace moco {
namespace tfevents {
namespace {

// Check value of the CRC-32C catalogue entry and the RFC 3720 (iSCSI) appendix B.4 vectors.
TEST(Crc32cTest, KnownVectors) {
  const std::string check = "123456789";
  EXPECT_EQ(Crc32c(check.data(), check.size()), 0xE3069283u);
  std::vector<unsigned char> zeros(32, 0), ones(32, 0xFF), up(32), down(32);
  for (int i = 0; i < 32; ++i) {
    up[i] = static_cast<unsigned char>(i);
    down[i] = static_cast<unsigned char>(31 - i);
  }
  EXPECT_EQ(Crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(ones.data(), ones.size()), 0x62A8AB43u);
  EXPECT_EQ(Crc32c(up.data(), up.size()), 0x46DD794Eu);
  EXPECT_EQ(Crc32c(down.data(), down.size()), 0x113FDB5Cu);
  EXPECT_EQ(Crc32c(nullptr, 0), 0u);
}

TEST(Crc32cTest, ContinuesAcrossChunks) {
  const std::string s = "moco-cpp event files";
  const uint32_t whole = Crc32c(s.data(), s.size());
  const uint32_t first = Crc32c(s.data(), 7);
  EXPECT_EQ(Crc32c(s.data() + 7, s.size() - 7, first), whole);
}

TEST(Crc32cTest, MaskRoundTripsAndChangesTheValue) {
  for (uint32_t c : {0u, 1u, 0xE3069283u, 0xFFFFFFFFu, 0x12345678u}) {
    EXPECT_EQ(UnmaskCrc32c(MaskCrc32c(c)), c);
    EXPECT_NE(MaskCrc32c(c), c);
  }
  // ((0 >> 15) | (0 << 17)) + delta.
  EXPECT_EQ(MaskCrc32c(0), 0xA282EAD8u);
  // 1 rotated right by 15 is 1 << 17.
  EXPECT_EQ(MaskCrc32c(1), (1u << 17) + 0xA282EAD8u);
}

}  // namespace
}  // namespace tfevents
}  // namespace moco
