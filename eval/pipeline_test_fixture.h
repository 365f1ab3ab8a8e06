// Test fixture shared by the evaluation pipelines' tests (eval/pipelines_test.cc,
// tests/eval_data_parallel_test.cc): a tiny three-class IDX dataset, a checkpoint of a tiny
// LibTorch resnet18, and an eval config over both.
//
//   WriteThreeClassIdxSplit(dir, "train", 150, 1);
//   WriteThreeClassIdxSplit(dir, "t10k", 60, 2);
//   ASSERT_TRUE(WriteTinyEvalCheckpoint(dir + "/run/checkpoint.ckpt", 0.0625f).ok());
//   EvalConfig c = TinyEvalConfig(dir, dir + "/run/checkpoint.ckpt");
#ifndef EVAL_PIPELINE_TEST_FIXTURE_H_
#define EVAL_PIPELINE_TEST_FIXTURE_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "eval/eval_config.pb.h"
#include "moco/config/config.pb.h"

namespace moco {
namespace eval {

// `dir`/`prefix`-{images-idx3,labels-idx1}-ubyte: n 8x8 gray images; image i is of class
// i % 3, a bright 3x3 block at column 3c (rows 2..4) over noise drawn from `seed`.
void WriteThreeClassIdxSplit(const std::string& dir, const std::string& prefix, int n,
                             uint32_t seed);

// The pretraining config of the tiny encoder: 1-channel CIFAR-stem resnet18 on 8 px, feature 8.
ExperimentConfig TinyPretrainConfig(float width);

// A checkpoint with query and key encoders of a 4-channel-wide resnet18 (width 0.0625, seed 5)
// whose stored config says `config_width` (another width makes a mismatched checkpoint).
absl::Status WriteTinyEvalCheckpoint(const std::string& path, float config_width);

// kNN (k 5) and linear probe (features mode, 10 cosine epochs) over `dir`'s IDX splits, one
// thread, results in `dir`/results.
EvalConfig TinyEvalConfig(const std::string& dir, const std::string& checkpoint);

}  // namespace eval
}  // namespace moco

#endif  // EVAL_PIPELINE_TEST_FIXTURE_H_
