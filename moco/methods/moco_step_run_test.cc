// MocoStep::Run alone, against a recording fake backend: the order of the interface calls, what
// a non-finite loss leaves undone, the symmetric enqueue order and the shuffling-BN round trip.
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "moco/methods/moco_step.h"

namespace moco {
namespace {

using ::testing::ElementsAre;

// Every call the step makes, in order, as "<object>.<call>".
using Log = std::vector<std::string>;

class FakeTensor final : public Tensor {
 public:
  explicit FakeTensor(HostArray a) : array_(std::move(a)) {}
  std::vector<int64_t> shape() const override { return array_.shape(); }
  const std::string& backend_name() const override {
    static const std::string name = "fake";
    return name;
  }
  absl::StatusOr<HostArray> ToHost() const override { return array_; }
  const HostArray& array() const { return array_; }

 private:
  HostArray array_;
};

TensorPtr Make(HostArray a) { return std::make_shared<FakeTensor>(std::move(a)); }
const HostArray& Data(const Tensor& t) { return static_cast<const FakeTensor&>(t).array(); }

// Row i of a (N, D) batch holds the value 100 * sample + d, so rows can be told apart.
HostArray Batch(int n, int d, float offset) {
  std::vector<float> v;
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < d; ++j) v.push_back(offset + 100.0f * i + j);
  }
  return HostArray({n, d}, v);
}

// The identity network: its "features" are its input rows, so the rows a later call receives
// show exactly which samples, in which order, went through it.
class FakeEncoder final : public Encoder {
 public:
  FakeEncoder(std::string name, Log* log) : name_(std::move(name)), log_(log) {}

  absl::StatusOr<TensorPtr> Forward(const Tensor& images, bool train_bn,
                                    bool record_for_backward) override {
    log_->push_back(name_ + ".Forward");
    inputs.push_back(Data(images));
    return Make(Data(images));
  }
  absl::Status Backward(const Tensor& grad_output) override {
    log_->push_back(name_ + ".Backward");
    return absl::OkStatus();
  }
  void ZeroGrad() override { log_->push_back(name_ + ".ZeroGrad"); }
  absl::StatusOr<TensorPtr> BackboneFeatures(const Tensor& images) override {
    return Make(Data(images));
  }
  absl::Status MomentumUpdateFrom(const Encoder& source, float momentum) override {
    log_->push_back(name_ + ".MomentumUpdateFrom");
    momenta.push_back(momentum);
    return absl::OkStatus();
  }
  absl::StatusOr<NamedArrays> ExportState() const override { return NamedArrays(); }
  absl::StatusOr<NamedArrays> ExportGradients() const override { return NamedArrays(); }
  absl::Status ImportState(const NamedArrays& state) override { return absl::OkStatus(); }
  int64_t feature_dim() const override { return 4; }
  int64_t backbone_dim() const override { return 4; }

  std::vector<HostArray> inputs;  // what every Forward received
  std::vector<float> momenta;

 private:
  std::string name_;
  Log* log_;
};

class FakeQueue final : public KeyQueue {
 public:
  explicit FakeQueue(Log* log) : log_(log), keys_(Make(HostArray({8, 4}))) {}
  const Tensor& keys() const override { return *keys_; }
  int64_t pointer() const override { return 0; }
  absl::Status Enqueue(const Tensor& keys) override {
    log_->push_back("queue.Enqueue");
    enqueued.push_back(Data(keys));
    return absl::OkStatus();
  }
  NamedArrays ExportState() const override { return {}; }
  absl::Status ImportState(const NamedArrays& state) override { return absl::OkStatus(); }

  std::vector<HostArray> enqueued;

 private:
  Log* log_;
  TensorPtr keys_;
};

class FakeLoss final : public ContrastiveLoss {
 public:
  explicit FakeLoss(Log* log) : log_(log) {}
  absl::StatusOr<ContrastiveLossResult> Compute(const Tensor& q, const Tensor& k,
                                                const Tensor& negatives,
                                                float temperature) override {
    log_->push_back("loss.Compute");
    queries.push_back(Data(q));
    positives.push_back(Data(k));
    ContrastiveLossResult r;
    r.loss = next_losses.empty() ? 1.0f : next_losses[queries.size() - 1];
    r.top1 = 0.5f;
    r.logits = Make(HostArray({q.shape()[0], 9}));
    r.grad_q = Make(HostArray(q.shape()));
    return r;
  }
  absl::StatusOr<ContrastiveLossResult> ComputeInBatch(const Tensor&, const Tensor&, int64_t,
                                                       float, float) override {
    return absl::UnimplementedError("the queue step never calls the in-batch loss");
  }

  std::vector<float> next_losses;  // loss of the i-th call (default 1)
  std::vector<HostArray> queries, positives;

 private:
  Log* log_;
};

class FakeOptimizer final : public Optimizer {
 public:
  explicit FakeOptimizer(Log* log) : log_(log) {}
  absl::Status Step(float lr) override {
    log_->push_back("optimizer.Step");
    lrs.push_back(lr);
    return absl::OkStatus();
  }
  NamedArrays ExportState() const override { return {}; }
  absl::Status ImportState(const NamedArrays& state) override { return absl::OkStatus(); }
  std::vector<float> lrs;

 private:
  Log* log_;
};

class FakeBackend final : public Backend {
 public:
  explicit FakeBackend(Log* log) : log_(log) {}
  const std::string& name() const override {
    static const std::string name = "fake";
    return name;
  }
  std::string device() const override { return "cpu"; }
  absl::StatusOr<std::unique_ptr<Encoder>> CreateEncoder(const ModelConfig&, uint64_t,
                                                         const EncoderOptions&) override {
    return absl::UnimplementedError("fake");
  }
  absl::StatusOr<std::unique_ptr<KeyQueue>> CreateQueue(int64_t, int64_t, uint64_t) override {
    return absl::UnimplementedError("fake");
  }
  absl::StatusOr<std::unique_ptr<ContrastiveLoss>> CreateInfoNceLoss() override {
    return absl::UnimplementedError("fake");
  }
  absl::StatusOr<std::unique_ptr<Optimizer>> CreateSgd(Encoder&, const OptimizerConfig&) override {
    return absl::UnimplementedError("fake");
  }
  absl::StatusOr<TensorPtr> Upload(const HostArray& array) override { return Make(array); }
  absl::StatusOr<TensorPtr> GatherRows(const Tensor& x, const std::vector<int64_t>& rows) override {
    log_->push_back("backend.GatherRows");
    const HostArray& in = Data(x);
    const int64_t width = in.shape()[1];
    std::vector<float> out;
    for (int64_t r : rows) {
      out.insert(out.end(), in.data().begin() + r * width, in.data().begin() + (r + 1) * width);
    }
    return Make(HostArray({static_cast<int64_t>(rows.size()), width}, out));
  }

 private:
  Log* log_;
};

struct Rig {
  Log log;
  FakeBackend backend{&log};
  FakeEncoder query{"query", &log};
  FakeEncoder key{"key", &log};
  FakeQueue queue{&log};
  FakeLoss loss{&log};
  FakeOptimizer optimizer{&log};

  absl::StatusOr<MocoStepResult> Run(bool symmetric, const HostArray& v1, const HostArray& v2,
                                     uint64_t seed = 3) {
    MocoConfig config;
    config.set_symmetric_loss(symmetric);
    config.set_temperature(0.2f);
    MocoStep step(backend, query, key, queue, loss, optimizer, config);
    return step.Run(*Make(v1), *Make(v2), /*lr=*/0.25f, /*key_momentum=*/0.9f, seed);
  }
};

TEST(MocoStepRunTest, MomentumUpdateComesBeforeTheKeyForwardAndUpdatesFollowTheLoss) {
  Rig rig;
  ASSERT_TRUE(rig.Run(false, Batch(8, 4, 0), Batch(8, 4, 0.5f)).ok());
  EXPECT_THAT(rig.log, ElementsAre("query.ZeroGrad", "key.MomentumUpdateFrom", "query.Forward",
                                   "backend.GatherRows", "key.Forward", "backend.GatherRows",
                                   "loss.Compute", "query.Backward", "optimizer.Step",
                                   "queue.Enqueue"));
  EXPECT_THAT(rig.key.momenta, ElementsAre(0.9f));
  EXPECT_THAT(rig.optimizer.lrs, ElementsAre(0.25f));
}

TEST(MocoStepRunTest, ShufflingBnPermutesTheKeyBatchAndUndoesIt) {
  Rig rig;
  const HostArray v1 = Batch(16, 4, 0), v2 = Batch(16, 4, 0.5f);
  ASSERT_TRUE(rig.Run(false, v1, v2).ok());
  ASSERT_EQ(rig.key.inputs.size(), 1u);
  EXPECT_FALSE(rig.key.inputs[0] == v2) << "the key encoder must see a shuffled batch";
  EXPECT_EQ(rig.loss.queries[0], v1);
  EXPECT_EQ(rig.loss.positives[0], v2) << "k must be back in the queries' sample order";
  EXPECT_EQ(rig.queue.enqueued[0], v2);
}

TEST(MocoStepRunTest, NonFiniteLossSkipsTheOptimizerAndTheEnqueue) {
  for (float bad : {std::nanf(""), INFINITY}) {
    Rig rig;
    rig.loss.next_losses = {bad};
    absl::StatusOr<MocoStepResult> r = rig.Run(false, Batch(8, 4, 0), Batch(8, 4, 0.5f));
    ASSERT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(r.status().message()), ::testing::HasSubstr("diverged"));
    EXPECT_TRUE(rig.optimizer.lrs.empty());
    EXPECT_TRUE(rig.queue.enqueued.empty());
  }
}

TEST(MocoStepRunTest, SymmetricLossAddsBothTermsAndEnqueuesK1ThenK2) {
  Rig rig;
  rig.loss.next_losses = {1.5f, 2.0f};
  const HostArray v1 = Batch(8, 4, 0), v2 = Batch(8, 4, 0.5f);
  absl::StatusOr<MocoStepResult> r = rig.Run(true, v1, v2);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FLOAT_EQ(r->loss, 3.5f);
  // loss(q1, k2) then loss(q2, k1), one optimizer step over both gradients.
  EXPECT_EQ(rig.loss.queries[0], v1);
  EXPECT_EQ(rig.loss.positives[0], v2);
  EXPECT_EQ(rig.loss.queries[1], v2);
  EXPECT_EQ(rig.loss.positives[1], v1);
  EXPECT_THAT(rig.optimizer.lrs, ElementsAre(0.25f));
  ASSERT_EQ(rig.queue.enqueued.size(), 2u);
  EXPECT_EQ(rig.queue.enqueued[0], v1);  // k1
  EXPECT_EQ(rig.queue.enqueued[1], v2);  // k2
}

TEST(MocoStepRunTest, SymmetricNonFiniteSecondTermUpdatesNothing) {
  Rig rig;
  rig.loss.next_losses = {1.0f, std::nanf("")};
  EXPECT_FALSE(rig.Run(true, Batch(8, 4, 0), Batch(8, 4, 0.5f)).ok());
  EXPECT_TRUE(rig.optimizer.lrs.empty());
  EXPECT_TRUE(rig.queue.enqueued.empty());
}

}  // namespace
}  // namespace moco
