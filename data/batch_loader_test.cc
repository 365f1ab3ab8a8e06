#include "data/batch_loader.h"

#include <algorithm>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "data/image_codec.h"
#include "data/image_folder_dataset.h"
#include "data/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moco {
namespace data {
namespace {

using ::testing::HasSubstr;

// Synthetic RGB images whose pixels depend on the index; indices in `corrupt` fail to load.
class FakeDataset final : public Dataset {
 public:
  FakeDataset(int64_t n, std::set<int64_t> corrupt = {}) : n_(n), corrupt_(std::move(corrupt)) {}
  int64_t size() const override { return n_; }
  int num_classes() const override { return 7; }
  int channels() const override { return 3; }
  int label(int64_t index) const override { return static_cast<int>(index % 7); }
  absl::Status ReadImage(int64_t index, Image* img) const override {
    if (corrupt_.count(index)) {
      return absl::DataLossError(absl::StrCat(Describe(index), ": corrupt JPEG data"));
    }
    img->Reshape(10, 12, 3);
    for (size_t p = 0; p < img->pixels.size(); ++p) {
      img->pixels[p] = static_cast<uint8_t>((p * 7 + index * 31) % 256);
    }
    return absl::OkStatus();
  }
  std::string Describe(int64_t index) const override { return absl::StrCat("fake/", index, ".jpg"); }

 private:
  int64_t n_;
  std::set<int64_t> corrupt_;
};

std::shared_ptr<const Transform> CifarAugment(int size) {
  DataConfig c;
  c.set_image_size(size);
  c.mutable_augmentation()->set_preset(AugmentationConfig::CIFAR);
  return *MakeTrainTransform(c, 3);
}

LoaderOptions Options(int workers, int batch = 8) {
  LoaderOptions o;
  o.batch_size = batch;
  o.num_workers = workers;
  o.prefetch_batches = 3;
  o.seed = 42;
  return o;
}

std::vector<HostBatch> Epoch(BatchLoader& loader, int64_t epoch) {
  std::vector<HostBatch> out;
  EXPECT_TRUE(loader.StartEpoch(epoch).ok());
  while (true) {
    auto next = loader.Next();
    EXPECT_TRUE(next.ok()) << next.status();
    if (!next.ok() || !next->has_value()) break;
    out.push_back(**std::move(next));
  }
  return out;
}

void ExpectSameBatches(const std::vector<HostBatch>& a, const std::vector<HostBatch>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].indices, b[i].indices) << "batch " << i;
    EXPECT_EQ(a[i].labels, b[i].labels) << "batch " << i;
    ASSERT_EQ(a[i].views.size(), b[i].views.size());
    for (size_t v = 0; v < a[i].views.size(); ++v) {
      EXPECT_EQ(a[i].views[v].shape(), b[i].views[v].shape());
      EXPECT_TRUE(a[i].views[v].data() == b[i].views[v].data()) << "batch " << i << " view " << v;
    }
  }
}

TEST(BatchLoaderTest, ShapesLabelsAndPermutation) {
  auto ds = std::make_shared<FakeDataset>(21);
  LoaderOptions o = Options(2);
  o.drop_last = false;
  auto loader = BatchLoader::Create(ds, CifarAugment(6), o);
  ASSERT_TRUE(loader.ok()) << loader.status();
  EXPECT_EQ((*loader)->batches_per_epoch(), 3);
  const std::vector<HostBatch> batches = Epoch(**loader, 0);
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[2].indices.size(), 5u);  // partial last batch
  std::vector<int64_t> seen;
  for (const HostBatch& b : batches) {
    ASSERT_EQ(b.views.size(), 2u);
    const int64_t n = static_cast<int64_t>(b.indices.size());
    EXPECT_EQ(b.views[0].shape(), (std::vector<int64_t>{n, 3, 6, 6}));
    EXPECT_EQ(b.views[0].numel(), n * 3 * 36);
    EXPECT_NE(b.views[0].data(), b.views[1].data());  // two independent crops
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(b.labels[i], b.indices[i] % 7);
    seen.insert(seen.end(), b.indices.begin(), b.indices.end());
  }
  std::vector<int64_t> sorted = seen;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 21; ++i) EXPECT_EQ(sorted[i], i);
  std::vector<int64_t> identity(21);
  for (int i = 0; i < 21; ++i) identity[i] = i;
  EXPECT_NE(seen, identity);  // shuffled
}

TEST(BatchLoaderTest, SameSeedSameBatchesForAnyWorkerCount) {
  auto ds = std::make_shared<FakeDataset>(64);
  auto transform = CifarAugment(8);
  auto one = BatchLoader::Create(ds, transform, Options(1));
  auto two = BatchLoader::Create(ds, transform, Options(2));
  auto inline_loader = BatchLoader::Create(ds, transform, Options(0));
  ASSERT_TRUE(one.ok() && two.ok() && inline_loader.ok());
  for (int64_t epoch : {0, 1}) {
    const auto a = Epoch(**one, epoch);
    const auto b = Epoch(**two, epoch);
    const auto c = Epoch(**inline_loader, epoch);
    ASSERT_EQ(a.size(), 8u);
    ExpectSameBatches(a, b);
    ExpectSameBatches(a, c);
  }
  // Epochs differ in order and augmentation.
  const auto e0 = Epoch(**one, 0);
  const auto e1 = Epoch(**one, 1);
  EXPECT_NE(e0[0].indices, e1[0].indices);
  // A fresh loader started at epoch 1 (a resumed run) gives epoch 1's batches.
  auto resumed = BatchLoader::Create(ds, transform, Options(2));
  ExpectSameBatches(Epoch(**resumed, 1), e1);
  // Another seed, other batches.
  LoaderOptions other = Options(2);
  other.seed = 43;
  auto reseeded = BatchLoader::Create(ds, transform, other);
  EXPECT_NE(Epoch(**reseeded, 0)[0].indices, e0[0].indices);
}

// The MoCo presets (jitter, grayscale, blur, solarize: every op with per-thread scratch) on
// single-channel 28 px images as the quickstarts load them: 1 and 2 workers, twice each.
TEST(BatchLoaderTest, MocoPresetsGiveTheSameBatchesForAnyWorkerCount) {
  for (auto preset : {AugmentationConfig::MOCO_V2, AugmentationConfig::MOCO_V3}) {
    SCOPED_TRACE(AugmentationConfig::Preset_Name(preset));
    DataConfig c;
    c.set_image_size(28);
    c.mutable_augmentation()->set_preset(preset);
    c.mutable_augmentation()->set_crop_scale_min(0.2f);
    c.mutable_augmentation()->set_blur_sigma_max(0.25f);
    c.mutable_augmentation()->add_normalize_mean(0.286f);
    c.mutable_augmentation()->add_normalize_std(0.353f);
    auto transform = MakeTrainTransform(c, 1);
    ASSERT_TRUE(transform.ok()) << transform.status();
    auto ds = std::make_shared<FakeDataset>(512);
    std::vector<HostBatch> reference;
    for (int workers : {1, 2, 2, 1, 2}) {
      auto loader = BatchLoader::Create(ds, *transform, Options(workers, 64));
      ASSERT_TRUE(loader.ok()) << loader.status();
      std::vector<HostBatch> batches = Epoch(**loader, 3);
      if (reference.empty()) {
        reference = std::move(batches);
      } else {
        ExpectSameBatches(reference, batches);
      }
    }
  }
}

TEST(BatchLoaderTest, RecycledBuffersGiveIdenticalBatches) {
  auto ds = std::make_shared<FakeDataset>(40);
  auto transform = CifarAugment(8);
  auto plain = BatchLoader::Create(ds, transform, Options(2));
  auto recycling = BatchLoader::Create(ds, transform, Options(2));
  const auto want = Epoch(**plain, 3);
  ASSERT_TRUE((*recycling)->StartEpoch(3).ok());
  for (size_t i = 0;; ++i) {
    auto next = (*recycling)->Next();
    ASSERT_TRUE(next.ok());
    if (!next->has_value()) break;
    ExpectSameBatches({want[i]}, {**next});
    (*recycling)->Recycle(**std::move(next));
  }
}

TEST(BatchLoaderTest, MaxBatchesAndRestartMidEpoch) {
  auto ds = std::make_shared<FakeDataset>(100);
  LoaderOptions o = Options(2, 10);
  o.max_batches_per_epoch = 4;
  auto loader = BatchLoader::Create(ds, CifarAugment(4), o);
  ASSERT_TRUE(loader.ok());
  EXPECT_EQ((*loader)->batches_per_epoch(), 4);
  ASSERT_TRUE((*loader)->StartEpoch(0).ok());
  ASSERT_TRUE((*loader)->Next().ok());  // then abandon epoch 0 with batches in flight
  const auto e5 = Epoch(**loader, 5);
  EXPECT_EQ(e5.size(), 4u);
  auto fresh = BatchLoader::Create(ds, CifarAugment(4), o);
  ExpectSameBatches(Epoch(**fresh, 5), e5);
}

TEST(BatchLoaderTest, FailPolicyReturnsErrorNamingTheFile) {
  auto ds = std::make_shared<FakeDataset>(32, std::set<int64_t>{5});
  for (int workers : {0, 2}) {
    auto loader = BatchLoader::Create(ds, CifarAugment(4), Options(workers));
    ASSERT_TRUE(loader.ok());
    ASSERT_TRUE((*loader)->StartEpoch(0).ok());
    absl::Status error;
    for (int i = 0; i < 4 && error.ok(); ++i) {
      auto next = (*loader)->Next();
      if (!next.ok()) error = next.status();
    }
    EXPECT_EQ(error.code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(error.message(), HasSubstr("fake/5.jpg"));
    EXPECT_EQ((*loader)->Next().status(), error);  // sticky for the epoch
    // The loader is destroyed here with workers possibly mid-batch: must not hang.
  }
}

TEST(BatchLoaderTest, SkipPolicyKeepsBatchesFullAndCounts) {
  const std::set<int64_t> corrupt = {3, 4, 17};
  auto ds = std::make_shared<FakeDataset>(40, corrupt);
  LoaderOptions o = Options(1);
  o.on_corrupt_image = DataConfig::SKIP;
  auto one = BatchLoader::Create(ds, CifarAugment(4), o);
  o.num_workers = 2;
  auto two = BatchLoader::Create(ds, CifarAugment(4), o);
  const auto a = Epoch(**one, 0);
  const auto b = Epoch(**two, 0);
  ExpectSameBatches(a, b);
  ASSERT_EQ(a.size(), 5u);
  for (const HostBatch& batch : a) {
    EXPECT_EQ(batch.indices.size(), 8u);
    for (int64_t i : batch.indices) EXPECT_EQ(corrupt.count(i), 0u) << i;
  }
  EXPECT_EQ((*one)->skipped_in_epoch(), 3);
  EXPECT_EQ((*two)->skipped_in_epoch(), 3);
}

// A real image folder with one truncated JPEG: FAIL names it, SKIP replaces and counts it.
TEST(BatchLoaderTest, ImageFolderWithTruncatedJpeg) {
  const std::string root = MakeTempDir("loader_folder");
  std::filesystem::create_directories(root + "/a");
  std::filesystem::create_directories(root + "/b");
  Image img;
  img.Reshape(24, 20, 3);
  for (size_t p = 0; p < img.pixels.size(); ++p) img.pixels[p] = static_cast<uint8_t>(p * 3);
  const std::string jpg = *EncodeJpeg(img, 90);
  for (int i = 0; i < 6; ++i) {
    WriteFileOrDie(absl::StrCat(root, i % 2 ? "/a/" : "/b/", i, ".jpg"), jpg);
  }
  WriteFileOrDie(root + "/b/bad.jpg", jpg.substr(0, jpg.size() / 2));
  auto ds = OpenImageFolder(root);
  ASSERT_TRUE(ds.ok()) << ds.status();
  ASSERT_EQ((*ds)->size(), 7);
  LoaderOptions o = Options(2, 7);
  auto fail = BatchLoader::Create(*ds, CifarAugment(8), o);
  ASSERT_TRUE((*fail)->StartEpoch(0).ok());
  auto error = (*fail)->Next();
  ASSERT_FALSE(error.ok());
  EXPECT_THAT(error.status().message(), HasSubstr(root + "/b/bad.jpg"));
  o.on_corrupt_image = DataConfig::SKIP;
  auto skip = BatchLoader::Create(*ds, CifarAugment(8), o);
  const auto batches = Epoch(**skip, 0);
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].indices.size(), 7u);
  EXPECT_EQ((*skip)->skipped_in_epoch(), 1);
  for (int64_t i : batches[0].indices) EXPECT_NE((*ds)->Describe(i), root + "/b/bad.jpg");
}

// Rank r's batch k, for every rank in order, concatenated: what world 1 gives as batch k.
HostBatch ConcatenateRanks(const std::vector<std::vector<HostBatch>>& ranks, size_t k) {
  HostBatch out;
  out.views.resize(ranks[0][k].views.size());
  std::vector<std::vector<float>> data(out.views.size());
  int64_t n = 0;
  for (const auto& rank : ranks) {
    const HostBatch& b = rank[k];
    out.indices.insert(out.indices.end(), b.indices.begin(), b.indices.end());
    out.labels.insert(out.labels.end(), b.labels.begin(), b.labels.end());
    n += static_cast<int64_t>(b.indices.size());
    for (size_t v = 0; v < b.views.size(); ++v) {
      data[v].insert(data[v].end(), b.views[v].data().begin(), b.views[v].data().end());
    }
  }
  for (size_t v = 0; v < out.views.size(); ++v) {
    std::vector<int64_t> shape = ranks[0][k].views[v].shape();
    shape[0] = n;
    out.views[v] = HostArray(shape, std::move(data[v]));
  }
  return out;
}

// DistributedSampler semantics: world W's data order is world 1's regrouped; augmentations and
// SKIP replacements follow the global position, not the rank.
TEST(BatchLoaderTest, RanksSplitEveryGlobalBatchIntoContiguousBlocks) {
  const std::set<int64_t> corrupt = {3, 4, 17};
  auto ds = std::make_shared<FakeDataset>(50, corrupt);
  auto transform = CifarAugment(6);
  for (DataConfig::CorruptImagePolicy policy : {DataConfig::SKIP, DataConfig::FAIL}) {
    if (policy == DataConfig::FAIL) ds = std::make_shared<FakeDataset>(50);
    LoaderOptions o = Options(2, 8);
    o.on_corrupt_image = policy;
    auto world1 = BatchLoader::Create(ds, transform, o);
    ASSERT_TRUE(world1.ok()) << world1.status();
    for (int world : {2, 4}) {
      for (int64_t epoch : {0, 3}) {
        const std::vector<HostBatch> want = Epoch(**world1, epoch);
        ASSERT_EQ(want.size(), 6u);  // 50 / 8 with drop_last
        std::vector<std::vector<HostBatch>> ranks;
        int64_t skipped = 0;
        for (int r = 0; r < world; ++r) {
          LoaderOptions ro = o;
          ro.rank = r;
          ro.world_size = world;
          ro.num_workers = r % 2;  // threading never matters
          auto loader = BatchLoader::Create(ds, transform, ro);
          ASSERT_TRUE(loader.ok()) << loader.status();
          EXPECT_EQ((*loader)->batches_per_epoch(), 6);
          EXPECT_EQ((*loader)->local_batch_size(), 8 / world);
          ranks.push_back(Epoch(**loader, epoch));
          skipped += (*loader)->skipped_in_epoch();
          ASSERT_EQ(ranks.back().size(), 6u);
          for (const HostBatch& b : ranks.back()) {
            EXPECT_EQ(b.indices.size(), static_cast<size_t>(8 / world));
            EXPECT_EQ(b.views[0].shape()[0], 8 / world);
          }
        }
        for (size_t k = 0; k < want.size(); ++k) {
          ExpectSameBatches({want[k]}, {ConcatenateRanks(ranks, k)});
        }
        // The ranks' shares are disjoint.
        std::set<int64_t> seen;
        for (const auto& rank : ranks) {
          for (const HostBatch& b : rank) seen.insert(b.indices.begin(), b.indices.end());
        }
        if (policy == DataConfig::FAIL) {
          EXPECT_EQ(seen.size(), 48u);
        }
        if (policy == DataConfig::SKIP) {
          EXPECT_EQ(skipped, (*world1)->skipped_in_epoch());
          for (const auto& rank : ranks) {
            for (const HostBatch& b : rank) {
              for (int64_t i : b.indices) EXPECT_EQ(corrupt.count(i), 0u);
            }
          }
        }
      }
    }
  }
}

TEST(BatchLoaderTest, BadRankOptionsNameTheOption) {
  auto ds = std::make_shared<FakeDataset>(40);
  LoaderOptions o = Options(1, 6);
  o.world_size = 4;
  absl::Status s = BatchLoader::Create(ds, CifarAugment(4), o).status();
  EXPECT_THAT(s.message(), HasSubstr("batch_size (6)"));
  EXPECT_THAT(s.message(), HasSubstr("world_size (4)"));
  o = Options(1, 8);
  o.world_size = 2;
  o.rank = 2;
  EXPECT_THAT(BatchLoader::Create(ds, CifarAugment(4), o).status().message(),
              HasSubstr("rank (2) must be in [0, world_size (2))"));
  o.rank = 1;
  o.drop_last = false;
  EXPECT_THAT(BatchLoader::Create(ds, CifarAugment(4), o).status().message(),
              HasSubstr("drop_last"));
  o.drop_last = true;
  o.world_size = 0;
  EXPECT_THAT(BatchLoader::Create(ds, CifarAugment(4), o).status().message(),
              HasSubstr("world_size (0)"));
}

TEST(BatchLoaderTest, BadOptionsAndUsage) {
  auto ds = std::make_shared<FakeDataset>(5);
  auto too_small = BatchLoader::Create(ds, CifarAugment(4), Options(1, 8));
  ASSERT_FALSE(too_small.ok());
  EXPECT_THAT(too_small.status().message(), HasSubstr("fewer than one batch of 8"));
  LoaderOptions o = Options(1, 2);
  o.prefetch_batches = 0;
  EXPECT_THAT(BatchLoader::Create(ds, CifarAugment(4), o).status().message(),
              HasSubstr("prefetch_batches"));
  auto loader = BatchLoader::Create(ds, CifarAugment(4), Options(1, 2));
  ASSERT_TRUE(loader.ok());
  EXPECT_EQ((*loader)->Next().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE((*loader)->StartEpoch(-1).ok());
}

}  // namespace
}  // namespace data
}  // namespace moco
