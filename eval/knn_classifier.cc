#include "eval/knn_classifier.h"

#include <optional>

#include <algorithm>
#include <cmath>
#include <functional>

#include "Eigen/Core"
#include "absl/strings/str_cat.h"

namespace moco {
namespace eval {
namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Test rows per GEMM chunk: keeps the (chunk x N) similarity block near 64 MB.
constexpr int64_t kSimilarityBlockFloats = int64_t{16} << 20;

absl::Status CheckFeatures(const HostArray& features, const char* name) {
  if (features.shape().size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(name, " must be 2-D (rows, dim), got ",
                                                   features.shape().size(), "-D"));
  }
  if (features.numel() != features.shape()[0] * features.shape()[1]) {
    return absl::InvalidArgumentError(absl::StrCat(name, " holds ", features.numel(),
                                                   " values, its shape says ",
                                                   features.shape()[0] * features.shape()[1]));
  }
  for (int64_t i = 0; i < features.numel(); ++i) {
    if (!std::isfinite(features.data()[i])) {
      return absl::InvalidArgumentError(absl::StrCat(name, " has a non-finite value at row ",
                                                     i / features.shape()[1], ", column ",
                                                     i % features.shape()[1]));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckInputs(const HostArray& train_features, const std::vector<int64_t>& train_labels,
                         const HostArray& test_features, const KnnOptions& options) {
  if (options.k <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("options.k (", options.k, ") must be > 0"));
  }
  if (!(options.temperature > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("options.temperature (", options.temperature, ") must be > 0"));
  }
  if (options.num_classes <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("options.num_classes (", options.num_classes, ") must be > 0"));
  }
  if (absl::Status s = CheckFeatures(train_features, "train_features"); !s.ok()) return s;
  if (absl::Status s = CheckFeatures(test_features, "test_features"); !s.ok()) return s;
  if (train_features.shape()[0] == 0) {
    return absl::InvalidArgumentError("train_features has no rows: nothing to vote");
  }
  if (static_cast<int64_t>(train_labels.size()) != train_features.shape()[0]) {
    return absl::InvalidArgumentError(absl::StrCat("train_labels has ", train_labels.size(),
                                                   " entries, train_features has ",
                                                   train_features.shape()[0], " rows"));
  }
  if (test_features.shape()[1] != train_features.shape()[1]) {
    return absl::InvalidArgumentError(absl::StrCat(
        "test_features has dimension ", test_features.shape()[1], ", train_features has ",
        train_features.shape()[1]));
  }
  for (size_t i = 0; i < train_labels.size(); ++i) {
    if (train_labels[i] < 0 || train_labels[i] >= options.num_classes) {
      return absl::InvalidArgumentError(absl::StrCat("train_labels[", i, "] (", train_labels[i],
                                                     ") is outside [0, options.num_classes = ",
                                                     options.num_classes, ")"));
    }
  }
  return absl::OkStatus();
}

// Row-wise L2 normalization as torch.nn.functional.normalize (norm clamped below by 1e-12).
RowMatrix NormalizedRows(const HostArray& features, int64_t begin, int64_t end) {
  const int64_t d = features.shape()[1];
  Eigen::Map<const RowMatrix> all(features.data().data(), features.shape()[0], d);
  RowMatrix rows = all.middleRows(begin, end - begin);
  for (int64_t i = 0; i < rows.rows(); ++i) {
    const float norm = rows.row(i).norm();
    rows.row(i) /= std::max(norm, 1e-12f);
  }
  return rows;
}

// Calls visit(test_row, class_scores) for each test row with the weighted vote in double.
absl::Status ForEachVote(const HostArray& train_features,
                         const std::vector<int64_t>& train_labels,
                         const HostArray& test_features, const KnnOptions& options,
                         const std::function<void(int64_t, const double*)>& visit) {
  if (absl::Status s = CheckInputs(train_features, train_labels, test_features, options); !s.ok())
    return s;
  const int64_t n = train_features.shape()[0];
  const int64_t m = test_features.shape()[0];
  const int k = static_cast<int>(std::min<int64_t>(options.k, n));
  const int c = options.num_classes;
  const double inv_t = 1.0 / static_cast<double>(options.temperature);
  const RowMatrix train = NormalizedRows(train_features, 0, n);
  const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(m, kSimilarityBlockFloats / n));

  for (int64_t begin = 0; begin < m; begin += chunk) {
    const int64_t end = std::min(m, begin + chunk);
    const RowMatrix test = NormalizedRows(test_features, begin, end);
    RowMatrix sim(end - begin, n);
    sim.noalias() = test * train.transpose();
    const int64_t rows = end - begin;
    std::vector<double> scores(static_cast<size_t>(rows * c), 0.0);
#pragma omp parallel
    {
      std::vector<float> buffer(static_cast<size_t>(k));
#pragma omp for schedule(dynamic, 8)
      for (int64_t r = 0; r < rows; ++r) {
        const float* s = sim.data() + r * n;
        double* votes = scores.data() + r * c;
        // The k-th largest similarity (a min-heap of the k largest seen: after the first few
        // thousand rows of random order almost every value fails the first comparison);
        // everything above it votes, then ties at it in increasing index.
        std::copy(s, s + k, buffer.begin());
        std::make_heap(buffer.begin(), buffer.begin() + k, std::greater<float>());
        for (int64_t j = k; j < n; ++j) {
          if (s[j] > buffer[0]) {
            std::pop_heap(buffer.begin(), buffer.begin() + k, std::greater<float>());
            buffer[k - 1] = s[j];
            std::push_heap(buffer.begin(), buffer.begin() + k, std::greater<float>());
          }
        }
        const float kth = buffer[0];
        int taken = 0;
        for (int64_t j = 0; j < n; ++j) {
          if (s[j] > kth) {
            votes[train_labels[j]] += std::exp((static_cast<double>(s[j]) - 1.0) * inv_t);
            ++taken;
          }
        }
        const double tie_weight = std::exp((static_cast<double>(kth) - 1.0) * inv_t);
        for (int64_t j = 0; j < n && taken < k; ++j) {
          if (s[j] == kth) {
            votes[train_labels[j]] += tie_weight;
            ++taken;
          }
        }
      }
    }
    for (int64_t r = 0; r < rows; ++r) visit(begin + r, scores.data() + r * c);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ClassificationMetrics> WeightedKnnClassify(const HostArray& train_features,
                                                          const std::vector<int64_t>& train_labels,
                                                          const HostArray& test_features,
                                                          const std::vector<int64_t>& test_labels,
                                                          const KnnOptions& options) {
  if (test_features.shape().size() == 2 &&
      static_cast<int64_t>(test_labels.size()) != test_features.shape()[0]) {
    return absl::InvalidArgumentError(absl::StrCat("test_labels has ", test_labels.size(),
                                                   " entries, test_features has ",
                                                   test_features.shape()[0], " rows"));
  }
  for (size_t i = 0; i < test_labels.size(); ++i) {
    if (test_labels[i] < 0 || test_labels[i] >= options.num_classes) {
      return absl::InvalidArgumentError(absl::StrCat("test_labels[", i, "] (", test_labels[i],
                                                     ") is outside [0, options.num_classes = ",
                                                     options.num_classes, ")"));
    }
  }
  MetricsAccumulator acc(options.num_classes);
  absl::Status status = ForEachVote(
      train_features, train_labels, test_features, options,
      [&](int64_t row, const double* votes) { acc.Add(votes, test_labels[row]); });
  if (!status.ok()) return status;
  return acc.Result();
}

absl::StatusOr<HostArray> WeightedKnnScores(const HostArray& train_features,
                                            const std::vector<int64_t>& train_labels,
                                            const HostArray& test_features,
                                            const KnnOptions& options) {
  const int c = std::max(options.num_classes, 0);
  std::optional<HostArray> scores;  // allocated once the inputs are known to be valid
  absl::Status status =
      ForEachVote(train_features, train_labels, test_features, options,
                  [&](int64_t row, const double* votes) {
                    if (!scores) scores.emplace(std::vector<int64_t>{test_features.shape()[0], c});
                    absl::Span<float> out = scores->mutable_data();
                    for (int j = 0; j < c; ++j) out[row * c + j] = static_cast<float>(votes[j]);
                  });
  if (!status.ok()) return status;
  if (!scores) scores.emplace(std::vector<int64_t>{test_features.shape()[0], c});
  return *std::move(scores);
}

}  // namespace eval
}  // namespace moco
