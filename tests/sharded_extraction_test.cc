// Feature extraction sharded over a data-parallel group (eval/feature_extractor.h with a
// communicator): two real processes over Gloo loopback (this binary re-executes itself with
// MOCO_SHARD_TEST_WORKER=1 and torchrun's variables). Each rank must
//   - return exactly what one process extracts (features bitwise, labels, dataset order), for
//     the whole split, a cap that splits unevenly and a cap smaller than the world;
//   - have pushed only its own contiguous shard through the feature source.
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backends/distributed/dist_env.h"
#include "backends/distributed/gloo_communicator.h"
#include "eval/feature_extractor.h"
#include "gtest/gtest.h"
#include "tests/spawn_ranks.h"

namespace moco {
namespace {

namespace fs = std::filesystem;

// 13 RGB 2x2 images; image i has value (7 * i + p) % 256 at byte p and label i % 5.
class Thirteen final : public data::Dataset {
 public:
  int64_t size() const override { return 13; }
  int num_classes() const override { return 5; }
  int channels() const override { return 3; }
  int label(int64_t index) const override { return static_cast<int>(index % 5); }
  absl::Status ReadImage(int64_t index, data::Image* out) const override {
    out->Reshape(2, 2, 3);
    for (int p = 0; p < 12; ++p) out->pixels[p] = static_cast<uint8_t>((7 * index + p) % 256);
    return absl::OkStatus();
  }
  std::string Describe(int64_t index) const override { return absl::StrCat("image ", index); }
};

// Raw pixels, counting the images it was given.
class CountingSource final : public eval::FeatureSource {
 public:
  absl::StatusOr<HostArray> Features(const HostArray& images) override {
    seen += images.shape()[0];
    return pixels_->Features(images);
  }
  int64_t seen = 0;

 private:
  std::unique_ptr<eval::FeatureSource> pixels_ = eval::RawPixelFeatures();
};

// The cases every process runs, in this order: max_images 0 (all 13), 5, 1.
const std::vector<int64_t> kCaps = {0, 5, 1};

std::shared_ptr<const data::Transform> EvalView() {
  DataConfig d;
  d.set_dataset(DataConfig::IDX);
  d.set_image_size(2);
  for (int c = 0; c < 3; ++c) {
    d.mutable_augmentation()->add_normalize_mean(0.5f);
    d.mutable_augmentation()->add_normalize_std(0.25f);
  }
  auto view = data::MakeEvalTransform(d, 3);
  if (!view.ok()) {
    std::cerr << view.status() << "\n";
    std::abort();
  }
  return *view;
}

struct Extracted {
  eval::FeatureSet set;
  int64_t seen = 0;  // images through this process's source
};

absl::StatusOr<Extracted> Extract(int64_t cap, Communicator* comm) {
  eval::ExtractOptions o;
  o.loader.batch_size = 4;
  o.loader.num_workers = 1;
  o.max_images = cap;
  o.communicator = comm;
  CountingSource source;
  auto set = eval::ExtractFeatures(std::make_shared<Thirteen>(), EvalView(), source, o);
  if (!set.ok()) return set.status();
  return Extracted{*std::move(set), source.seen};
}

// One line per case: seen, labels, then the features' floats as hex bit patterns.
std::string Serialize(const Extracted& e) {
  std::string line = absl::StrCat(e.seen, " |");
  for (int64_t l : e.set.labels) absl::StrAppend(&line, " ", l);
  absl::StrAppend(&line, " |");
  for (float f : e.set.features.data()) {
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof(bits));
    absl::StrAppend(&line, " ", absl::Hex(bits));
  }
  return line;
}

std::string Payload(const std::string& line) {  // everything after "seen |"
  return line.substr(line.find('|'));
}

int Worker() {
  auto env = distributed::DistributedEnvFromEnvironment();
  if (!env.ok()) return 2;
  distributed::GlooOptions gloo;
  gloo.timeout = std::chrono::seconds(30);
  auto comm = distributed::CreateGlooCommunicator(*env, gloo);
  if (!comm.ok()) {
    std::cerr << comm.status() << "\n";
    return 3;
  }
  std::ofstream out(absl::StrCat(std::getenv("SHARD_OUT"), "/rank", env->rank, ".txt"));
  for (int64_t cap : kCaps) {
    auto e = Extract(cap, comm->get());
    if (!e.ok()) {
      std::cerr << "rank " << env->rank << ": " << e.status() << "\n";
      return 4;
    }
    out << Serialize(*e) << "\n";
  }
  return out.good() ? 0 : 5;
}

TEST(ShardedExtractionTest, EachRankExtractsItsShardAndGetsTheWholeSplitInOrder) {
  const fs::path dir = fs::path(std::getenv("TEST_TMPDIR")) / "shards";
  fs::create_directories(dir);
  const std::vector<int> codes =
      testing::RunRanks(2, {"MOCO_SHARD_TEST_WORKER=1", "SHARD_OUT=" + dir.string()}, 120);
  ASSERT_EQ(codes, (std::vector<int>{0, 0}));
  std::vector<std::vector<std::string>> lines(2);
  for (int r = 0; r < 2; ++r) {
    std::ifstream in(dir / absl::StrCat("rank", r, ".txt"));
    for (std::string line; std::getline(in, line);) lines[r].push_back(line);
    ASSERT_EQ(lines[r].size(), kCaps.size()) << "rank " << r;
  }
  // Shards of ceil(n / 2): 13 -> 7 + 6, 5 -> 3 + 2, 1 -> 1 + 0.
  const std::vector<std::vector<int64_t>> expected_seen = {{7, 6}, {3, 2}, {1, 0}};
  for (size_t c = 0; c < kCaps.size(); ++c) {
    auto alone = Extract(kCaps[c], nullptr);
    ASSERT_TRUE(alone.ok()) << alone.status();
    const int64_t n = kCaps[c] == 0 ? 13 : kCaps[c];
    ASSERT_EQ(alone->set.labels.size(), static_cast<size_t>(n));
    EXPECT_EQ(alone->seen, n);
    for (int r = 0; r < 2; ++r) {
      EXPECT_EQ(Payload(lines[r][c]), Payload(Serialize(*alone)))
          << "cap " << kCaps[c] << ", rank " << r << ": not what one process extracts";
      EXPECT_EQ(std::stoll(lines[r][c]), expected_seen[c][r])
          << "cap " << kCaps[c] << ", rank " << r << " extracted another share";
    }
  }
}

}  // namespace
}  // namespace moco

int main(int argc, char** argv) {
  if (const char* worker = std::getenv("MOCO_SHARD_TEST_WORKER"); worker && *worker == '1') {
    return moco::Worker();
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
