// The evaluation tools as two ranks of a data-parallel group (torchrun's variables; this
// binary re-executes itself with MOCO_EVAL_DP_WORKER=1): kNN and the linear probe on features
// shard extraction over the ranks, the augmented linear probe splits every batch over them,
// every rank returns the same results, rank 0 alone writes the results file, and the numbers
// are those of one process.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "data/test_util.h"
#include "eval/knn_eval.h"
#include "eval/linear_probe_eval.h"
#include "eval/pipeline_test_fixture.h"
#include "gtest/gtest.h"
#include "moco/config/config_io.h"
#include "tests/spawn_ranks.h"

namespace moco {
namespace eval {
namespace {

namespace fs = std::filesystem;

// EVAL_TOOL (knn, or linear / augmented: the linear probe) on EVAL_CONFIG; this rank's results to EVAL_OUT/rank<r>.pbtxt.
int Worker() {
  const std::string tool = std::getenv("EVAL_TOOL");
  const std::string config = std::getenv("EVAL_CONFIG");
  auto results = tool == "knn" ? RunKnnEval(config, /*dist_timeout_s=*/60)
                               : RunLinearProbeEval(config, /*dist_timeout_s=*/60);
  if (!results.ok()) {
    std::cerr << "rank " << std::getenv("RANK") << ": " << results.status() << "\n";
    return 3;
  }
  data::WriteFileOrDie(
      absl::StrCat(std::getenv("EVAL_OUT"), "/rank", std::getenv("RANK"), ".pbtxt"),
      ToTextProto(*results));
  return 0;
}

EvalResults ReadResults(const fs::path& path) {
  EvalResults r;
  const absl::Status read = ParseTextProtoFile(path.string(), &r);
  EXPECT_TRUE(read.ok()) << read;
  return r;
}

class EvalDataParallelTest : public ::testing::TestWithParam<std::string> {};

TEST_P(EvalDataParallelTest, TwoRanksReportWhatOneProcessReportsAndOnlyRankZeroWrites) {
  const std::string tool = GetParam();
  const std::string file = tool == "knn" ? "knn_results.pbtxt" : "linear_probe_results.pbtxt";
  const fs::path dir = data::MakeTempDir("eval_dp_" + tool);
  WriteThreeClassIdxSplit(dir, "train", 150, 1);
  WriteThreeClassIdxSplit(dir, "t10k", 61, 2);  // odd: the shards are 31 and 30
  fs::create_directories(dir / "run");
  const std::string checkpoint = (dir / "run/checkpoint.ckpt").string();
  ASSERT_TRUE(WriteTinyEvalCheckpoint(checkpoint, 0.0625f).ok());

  EvalConfig alone_config = TinyEvalConfig(dir, checkpoint);
  if (tool == "augmented") {  // 150 train images: 5 whole batches of 30 (15 per rank)
    alone_config.mutable_linear()->set_mode(LinearConfig::AUGMENTED);
    alone_config.mutable_linear()->set_standardize_features(false);
    alone_config.mutable_linear()->set_epochs(2);
    alone_config.mutable_linear()->set_batch_size(30);
  }
  alone_config.set_results_dir((dir / "alone").string());
  const std::string alone_path = (dir / "alone.pbtxt").string();
  data::WriteFileOrDie(alone_path, ToTextProto(alone_config));
  auto alone = tool == "knn" ? RunKnnEval(alone_path) : RunLinearProbeEval(alone_path);
  ASSERT_TRUE(alone.ok()) << alone.status();

  EvalConfig group_config = alone_config;
  group_config.set_results_dir((dir / "group").string());
  const std::string group_path = (dir / "group.pbtxt").string();
  data::WriteFileOrDie(group_path, ToTextProto(group_config));
  const fs::path out = dir / "ranks";
  fs::create_directories(out);
  const std::vector<int> codes = testing::RunRanks(
      2,
      {"MOCO_EVAL_DP_WORKER=1", "EVAL_TOOL=" + tool, "EVAL_CONFIG=" + group_path,
       "EVAL_OUT=" + out.string()},
      120);
  ASSERT_EQ(codes, (std::vector<int>{0, 0}));

  const EvalResults rank0 = ReadResults(out / "rank0.pbtxt");
  const EvalResults rank1 = ReadResults(out / "rank1.pbtxt");
  const EvalResults written = ReadResults(dir / "group" / file);
  ASSERT_EQ(alone->results_size(), 3);
  for (const EvalResults* r : {&rank0, &rank1, &written}) ASSERT_EQ(r->results_size(), 3);
  for (int e = 0; e < 3; ++e) {
    const auto& a = alone->results(e);
    SCOPED_TRACE(a.encoder());
    EXPECT_EQ(rank0.results(e).encoder(), a.encoder());
    EXPECT_EQ(rank0.results(e).test_images(), 61);
    EXPECT_EQ(rank0.results(e).train_images(), 150);
    // Every rank classifies the same gathered features: identical numbers on both ranks and in
    // the file rank 0 wrote.
    EXPECT_EQ(rank1.results(e).top1(), rank0.results(e).top1());
    EXPECT_EQ(rank1.results(e).top5(), rank0.results(e).top5());
    EXPECT_EQ(written.results(e).top1(), rank0.results(e).top1());
    EXPECT_EQ(rank1.results(e).final_train_loss(), rank0.results(e).final_train_loss());
    if (a.encoder() == "RAW_PIXELS") {
      // Pixels do not depend on how images are batched: exactly one process's result.
      EXPECT_EQ(rank0.results(e).top1(), a.top1());
      EXPECT_EQ(rank0.results(e).top5(), a.top5());
      EXPECT_EQ(rank0.results(e).final_train_loss(), a.final_train_loss());
    } else {
      // A network's features may round differently in other batch sizes: <= 1 test image.
      EXPECT_NEAR(rank0.results(e).top1(), a.top1(), 1.5 / 61);
    }
  }
  // Rank 0 alone writes: what one process writes (the results file, one event file whose
  // name carries its creation time), not one set per rank.
  auto kinds = [](const fs::path& d) {
    std::vector<std::string> k;
    for (const auto& entry : fs::directory_iterator(d)) {
      const std::string name = entry.path().filename().string();
      k.push_back(name.rfind("events.", 0) == 0 ? "events" : name);
    }
    std::sort(k.begin(), k.end());
    return k;
  };
  EXPECT_EQ(kinds(dir / "group"), kinds(dir / "alone"));
  EXPECT_EQ(kinds(dir / "group"), (std::vector<std::string>{"events", file}));
}

INSTANTIATE_TEST_SUITE_P(Tools, EvalDataParallelTest,
                         ::testing::Values("knn", "linear", "augmented"));

}  // namespace
}  // namespace eval
}  // namespace moco

int main(int argc, char** argv) {
  if (const char* worker = std::getenv("MOCO_EVAL_DP_WORKER"); worker && *worker == '1') {
    return moco::eval::Worker();
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
