// The Eigen backend through moco/'s interfaces (registry, encoder, queue, loss, SGD, tensors).
#include "backends/eigen/eigen_backend.h"

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "moco/core/backend_registry.h"

namespace moco {
namespace eigen_backend {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<Backend> NewBackend() {
  auto b = CreateBackend("eigen", BackendOptions{"cpu", 2});
  EXPECT_TRUE(b.ok()) << b.status();
  return std::move(b).value();
}

ModelConfig TinyModel() {
  ModelConfig m;
  m.set_arch("resnet18");
  m.set_cifar_stem(true);
  m.set_width_multiplier(0.0625);
  m.set_in_channels(1);
  m.set_feature_dim(8);
  m.set_mlp_head(true);
  return m;
}

HostArray Images(int64_t n, uint64_t seed, int64_t side = 8) {
  HostArray a({n, 1, side, side});
  uint64_t s = seed * 2654435761u + 1;
  for (float& v : a.mutable_data()) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    v = static_cast<float>((s >> 33) % 2000) / 1000.0f - 1.0f;
  }
  return a;
}

std::vector<float> Host(const Tensor& t) { return t.ToHost().value().data(); }

TEST(EigenBackendTest, RegisteredAndRejectsOtherDevices) {
  EXPECT_THAT(RegisteredBackendNames(), ::testing::Contains("eigen"));
  auto b = CreateBackend("eigen", BackendOptions{"cuda", 0});
  EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(b.status().message()), HasSubstr("backend.device"));
  EXPECT_EQ(NewBackend()->name(), "eigen");
}

TEST(EigenBackendTest, UploadAndGatherRows) {
  auto backend = NewBackend();
  auto t = backend->Upload(HostArray({3, 2}, {0, 1, 2, 3, 4, 5})).value();
  EXPECT_EQ(t->backend_name(), "eigen");
  auto g = backend->GatherRows(*t, {2, 0, 2}).value();
  EXPECT_EQ(g->shape(), (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(Host(*g), (std::vector<float>{4, 5, 0, 1, 4, 5}));
  EXPECT_THAT(std::string(backend->GatherRows(*t, {3}).status().message()),
              HasSubstr("out of range"));
}

TEST(EigenEncoderTest, ForwardGivesUnitRowsAndChecksInput) {
  auto backend = NewBackend();
  auto enc = backend->CreateEncoder(TinyModel(), 1).value();
  EXPECT_EQ(enc->feature_dim(), 8);
  EXPECT_EQ(enc->backbone_dim(), 32);
  enc->SetBnSplits(2);
  auto x = backend->Upload(Images(4, 1)).value();
  auto z = enc->Forward(*x, true, false).value();
  ASSERT_EQ(z->shape(), (std::vector<int64_t>{4, 8}));
  std::vector<float> zh = Host(*z);
  for (int i = 0; i < 4; ++i) {
    double sq = 0;
    for (int j = 0; j < 8; ++j) sq += zh[i * 8 + j] * zh[i * 8 + j];
    EXPECT_NEAR(sq, 1.0, 1e-5);
  }
  enc->SetBnSplits(3);
  EXPECT_THAT(std::string(enc->Forward(*x, true, true).status().message()),
              HasSubstr("bn_splits"));
  auto wrong = backend->Upload(HostArray({4, 3, 8, 8})).value();
  EXPECT_FALSE(enc->Forward(*wrong, false, false).ok());
  EXPECT_EQ(enc->Backward(*z).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(enc->BackboneFeatures(*x).value()->shape(), (std::vector<int64_t>{4, 32}));
}

TEST(EigenEncoderTest, TrainForwardMovesRunningStatsEvalDoesNot) {
  auto backend = NewBackend();
  auto enc = backend->CreateEncoder(TinyModel(), 1).value();
  enc->SetBnSplits(2);
  auto x = backend->Upload(Images(4, 2)).value();
  const NamedArrays before = enc->ExportState();
  ASSERT_TRUE(enc->Forward(*x, false, false).ok());
  EXPECT_EQ(enc->ExportState().at("bn1.running_mean").data(), before.at("bn1.running_mean").data());
  ASSERT_TRUE(enc->Forward(*x, true, false).ok());
  const NamedArrays after = enc->ExportState();
  EXPECT_NE(after.at("bn1.running_mean").data(), before.at("bn1.running_mean").data());
  EXPECT_EQ(after.at("layer3.0.bn2.num_batches_tracked").data(), std::vector<float>{1});
  EXPECT_EQ(after.at("layer3.0.bn2.num_batches_tracked").shape(), std::vector<int64_t>{});
  EXPECT_EQ(after.at("conv1.weight").data(), before.at("conv1.weight").data());
}

TEST(EigenEncoderTest, BackwardAccumulatesAndZeroGradClears) {
  auto backend = NewBackend();
  auto enc = backend->CreateEncoder(TinyModel(), 3).value();
  enc->SetBnSplits(2);
  auto x = backend->Upload(Images(4, 3)).value();
  HostArray g({4, 8});
  for (size_t i = 0; i < g.data().size(); ++i) g.mutable_data()[i] = std::sin(static_cast<float>(i));
  auto gt = backend->Upload(g).value();
  // An unrecorded forward in between must not disturb the recording.
  ASSERT_TRUE(enc->Forward(*x, true, true).ok());
  ASSERT_TRUE(enc->BackboneFeatures(*x).ok());
  ASSERT_TRUE(enc->Backward(*gt).ok());
  const NamedArrays once = enc->ExportGradients();
  EXPECT_EQ(once.count("bn1.running_mean"), 0u);  // buffers have no gradient
  ASSERT_TRUE(enc->Forward(*x, true, true).ok());  // running stats moved; BN uses batch stats
  ASSERT_TRUE(enc->Backward(*gt).ok());
  const NamedArrays twice = enc->ExportGradients();
  double norm = 0;
  for (const auto& [name, a] : once) {
    for (size_t i = 0; i < a.data().size(); ++i) {
      EXPECT_NEAR(twice.at(name).data()[i], 2 * a.data()[i], 1e-5 + 1e-4 * std::abs(a.data()[i]))
          << name;
      norm += a.data()[i] * a.data()[i];
    }
  }
  EXPECT_GT(norm, 0);
  enc->ZeroGrad();
  for (const auto& [name, a] : enc->ExportGradients()) {
    for (float v : a.data()) ASSERT_EQ(v, 0.0f) << name;
  }
}

TEST(EigenEncoderTest, StateRoundTripAndImportErrorsChangeNothing) {
  auto backend = NewBackend();
  auto a = backend->CreateEncoder(TinyModel(), 1).value();
  auto b = backend->CreateEncoder(TinyModel(), 2).value();
  const NamedArrays sa = a->ExportState();
  const NamedArrays sb = b->ExportState();
  EXPECT_NE(sa.at("conv1.weight").data(), sb.at("conv1.weight").data());
  NamedArrays bad = sa;
  bad.erase("layer2.0.downsample.1.running_var");
  auto st = b->ImportState(bad);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("missing entry 'layer2.0.downsample.1.running_var'"));
  bad = sa;
  bad["fc.1.weight"] = HostArray({1});
  EXPECT_THAT(std::string(b->ImportState(bad).message()), HasSubstr("unexpected entry 'fc.1.weight'"));
  bad = sa;
  bad["fc.2.bias"] = HostArray({7});
  EXPECT_THAT(std::string(b->ImportState(bad).message()), HasSubstr("'fc.2.bias' has shape [7]"));
  EXPECT_EQ(b->ExportState().at("conv1.weight").data(), sb.at("conv1.weight").data());  // unchanged
  ASSERT_TRUE(b->ImportState(sa).ok());
  for (const auto& [name, arr] : b->ExportState()) EXPECT_EQ(arr.data(), sa.at(name).data()) << name;
  // Same weights -> same outputs.
  auto x = backend->Upload(Images(2, 5)).value();
  EXPECT_EQ(Host(*a->Forward(*x, false, false).value()), Host(*b->Forward(*x, false, false).value()));
}

TEST(EigenEncoderTest, MomentumUpdateBlendsParametersOnly) {
  auto backend = NewBackend();
  auto key = backend->CreateEncoder(TinyModel(), 1).value();
  auto query = backend->CreateEncoder(TinyModel(), 2).value();
  NamedArrays qs = query->ExportState();
  std::fill(qs["bn1.running_mean"].mutable_data().begin(), qs["bn1.running_mean"].mutable_data().end(), 5.0f);
  ASSERT_TRUE(query->ImportState(qs).ok());
  const NamedArrays k0 = key->ExportState();
  ASSERT_TRUE(key->MomentumUpdateFrom(*query, 0.75f).ok());
  const NamedArrays k1 = key->ExportState();
  for (size_t i = 0; i < k0.at("fc.0.weight").data().size(); ++i) {
    EXPECT_NEAR(k1.at("fc.0.weight").data()[i],
                0.75 * k0.at("fc.0.weight").data()[i] + 0.25 * qs.at("fc.0.weight").data()[i],
                1e-7);  // a few float ulps (|w| < 0.2); swapping m and 1 - m errs by ~1e-2
  }
  EXPECT_EQ(k1.at("bn1.running_mean").data(), k0.at("bn1.running_mean").data());
}

TEST(EigenKeyQueueTest, UnitKeysWrapAroundAndState) {
  auto backend = NewBackend();
  auto queue = backend->CreateQueue(6, 3, 7).value();
  std::vector<float> q = Host(queue->keys());
  for (int i = 0; i < 6; ++i) {
    EXPECT_NEAR(q[i * 3] * q[i * 3] + q[i * 3 + 1] * q[i * 3 + 1] + q[i * 3 + 2] * q[i * 3 + 2],
                1.0, 1e-6);
  }
  EXPECT_EQ(Host(backend->CreateQueue(6, 3, 7).value()->keys()), q);  // deterministic in seed
  for (int step = 0; step < 4; ++step) {
    const float v = static_cast<float>(step + 1);
    auto k = backend->Upload(HostArray({2, 3}, {v, v, v, -v, -v, -v})).value();
    ASSERT_TRUE(queue->Enqueue(*k).ok());
  }
  EXPECT_EQ(queue->pointer(), 2);  // 4 * 2 = 8 = 6 + 2: wrapped once
  EXPECT_EQ(Host(queue->keys()),
            (std::vector<float>{4, 4, 4, -4, -4, -4, 2, 2, 2, -2, -2, -2, 3, 3, 3, -3, -3, -3}));
  auto bad = backend->Upload(HostArray({4, 3})).value();
  EXPECT_FALSE(queue->Enqueue(*bad).ok());  // 6 is not a multiple of 4
  NamedArrays s = queue->ExportState();
  EXPECT_EQ(s.at("queue_ptr").data(), std::vector<float>{2});
  auto other = backend->CreateQueue(6, 3, 8).value();
  ASSERT_TRUE(other->ImportState(s).ok());
  EXPECT_EQ(other->pointer(), 2);
  EXPECT_EQ(Host(other->keys()), Host(queue->keys()));
  s["queue_ptr"] = HostArray({1}, {6});
  EXPECT_FALSE(other->ImportState(s).ok());
}

TEST(EigenInfoNceLossTest, OrthogonalQueueGivesClosedFormLoss) {
  auto backend = NewBackend();
  auto queue = backend->CreateQueue(4, 4, 0).value();
  NamedArrays s;
  s["queue"] = HostArray({4, 4}, {0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0});
  s["queue_ptr"] = HostArray({1}, {0});
  ASSERT_TRUE(queue->ImportState(s).ok());
  auto q = backend->Upload(HostArray({2, 4}, {1, 0, 0, 0, 1, 0, 0, 0})).value();
  auto loss = backend->CreateInfoNceLoss().value();
  auto r = loss->Compute(*q, *q, queue->keys(), 0.5f).value();
  // logits per row: [1/T, 0, 0, 0, 0] -> loss = -log(e^2 / (e^2 + 4)).
  EXPECT_NEAR(r.loss, -std::log(std::exp(2.0) / (std::exp(2.0) + 4)), 1e-6);
  EXPECT_FLOAT_EQ(r.top1, 1.0f);
  EXPECT_EQ(r.logits->shape(), (std::vector<int64_t>{2, 5}));
  EXPECT_EQ(r.grad_q->shape(), (std::vector<int64_t>{2, 4}));
  EXPECT_FALSE(loss->Compute(*q, *q, queue->keys(), 0.0f).ok());
}

TEST(EigenSgdTest, StepFollowsTorchSemanticsAndStateRoundTrips) {
  auto backend = NewBackend();
  auto enc = backend->CreateEncoder(TinyModel(), 1).value();
  OptimizerConfig oc;
  oc.set_momentum(0.9f);
  oc.set_weight_decay(0.1f);
  auto sgd = backend->CreateSgd(*enc, oc).value();
  EXPECT_TRUE(sgd->ExportState().empty());
  enc->SetBnSplits(1);
  auto x = backend->Upload(Images(2, 9)).value();
  auto z = enc->Forward(*x, true, true).value();
  ASSERT_TRUE(enc->Backward(*z).ok());
  const NamedArrays p0 = enc->ExportState(), g = enc->ExportGradients();
  ASSERT_TRUE(sgd->Step(0.5f).ok());
  const NamedArrays p1 = enc->ExportState(), buf = sgd->ExportState();
  const std::string n = "layer1.0.conv1.weight";
  for (size_t i = 0; i < 5; ++i) {
    const float d = g.at(n).data()[i] + 0.1f * p0.at(n).data()[i];  // buf = g + wd p on step 1
    EXPECT_FLOAT_EQ(buf.at(n).data()[i], d);
    EXPECT_FLOAT_EQ(p1.at(n).data()[i], p0.at(n).data()[i] - 0.5f * d);
  }
  ASSERT_TRUE(sgd->Step(0.5f).ok());  // same grads: buf = 0.9 buf + g + wd p1
  const NamedArrays p2 = enc->ExportState();
  for (size_t i = 0; i < 5; ++i) {
    const float b2 = 0.9f * buf.at(n).data()[i] + (g.at(n).data()[i] + 0.1f * p1.at(n).data()[i]);
    EXPECT_NEAR(p2.at(n).data()[i], p1.at(n).data()[i] - 0.5f * b2, 1e-6);
  }
  auto sgd2 = backend->CreateSgd(*enc, oc).value();
  ASSERT_TRUE(sgd2->ImportState(buf).ok());
  EXPECT_EQ(sgd2->ExportState().at(n).data(), buf.at(n).data());
  NamedArrays bad = buf;
  bad["nope.weight"] = HostArray({1});
  EXPECT_THAT(std::string(sgd2->ImportState(bad).message()), HasSubstr("nope.weight"));
}

}  // namespace
}  // namespace eigen_backend
}  // namespace moco
