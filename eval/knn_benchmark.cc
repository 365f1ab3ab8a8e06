// Times WeightedKnnClassify on random features (default: the Fashion-MNIST-sized problem
// 60000 train x 10000 test x 128 dims, 10 classes, k = 200, T = 0.1).
//
//   bazel run //eval:knn_benchmark -- --train=60000 --test=10000 --dim=128
#include <chrono>
#include <iostream>
#include <random>

#include "eval/knn_classifier.h"
#include "gflags/gflags.h"
#include "glog/logging.h"

DEFINE_int64(train, 60000, "Training (reference) rows.");
DEFINE_int64(test, 10000, "Test rows.");
DEFINE_int64(dim, 128, "Feature dimension.");
DEFINE_int32(k, 200, "Neighbours.");
DEFINE_int32(classes, 10, "Classes.");

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  std::mt19937 gen(1);
  std::normal_distribution<float> normal;
  moco::HostArray train({FLAGS_train, FLAGS_dim}), test({FLAGS_test, FLAGS_dim});
  for (float& x : train.mutable_data()) x = normal(gen);
  for (float& x : test.mutable_data()) x = normal(gen);
  std::vector<int64_t> train_labels(FLAGS_train), test_labels(FLAGS_test);
  for (int64_t i = 0; i < FLAGS_train; ++i) train_labels[i] = i % FLAGS_classes;
  for (int64_t i = 0; i < FLAGS_test; ++i) test_labels[i] = i % FLAGS_classes;
  moco::eval::KnnOptions options;
  options.k = FLAGS_k;
  options.num_classes = FLAGS_classes;
  const auto start = std::chrono::steady_clock::now();
  auto m = moco::eval::WeightedKnnClassify(train, train_labels, test, test_labels, options);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(m.ok()) << m.status();
  const double gflop = 2.0 * FLAGS_train * FLAGS_test * FLAGS_dim / 1e9;
  std::cout << "kNN " << FLAGS_train << " x " << FLAGS_test << " x " << FLAGS_dim << ", k = "
            << FLAGS_k << ": " << seconds << " s (similarity GEMM " << gflop
            << " GFLOP), top-1 " << m->top1 << " (chance " << 1.0 / FLAGS_classes << ")\n";
  return 0;
}
