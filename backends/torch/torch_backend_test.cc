// The torch backend through the backend-neutral interfaces, checked against direct
// computations (autograd for InfoNCE, hand-written updates for SGD and the momentum update).
#include "backends/torch/torch_backend.h"

#include <torch/torch.h>

#include "backends/torch/torch_tensor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "moco/core/backend_registry.h"

namespace moco::torch_backend {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<Backend> MakeBackend() {
  absl::StatusOr<std::unique_ptr<Backend>> backend = CreateBackend("torch", {"cpu", 1});
  CHECK(backend.ok()) << backend.status();
  return std::move(*backend);
}

ModelConfig TinyModel() {
  ModelConfig m;
  m.set_arch("resnet18");
  m.set_cifar_stem(true);
  m.set_width_multiplier(0.0625);  // 4-8-16-32 channels
  m.set_in_channels(1);
  m.set_feature_dim(8);
  m.set_mlp_head(true);
  return m;
}

HostArray RandomArray(std::vector<int64_t> shape, int seed) {
  torch::manual_seed(seed);
  return ToHostArray(torch::randn(shape));
}

TEST(TorchBackendTest, UnknownBackendListsTheAvailableOnes) {
  absl::StatusOr<std::unique_ptr<Backend>> backend = CreateBackend("tpu", {});
  ASSERT_EQ(backend.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(backend.status().message()), HasSubstr("available: torch"));
}

TEST(TorchBackendTest, CudaWithoutCudaIsAClearError) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "this LibTorch has CUDA";
  absl::StatusOr<std::unique_ptr<Backend>> backend = CreateBackend("torch", {"cuda", 1});
  ASSERT_EQ(backend.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(backend.status().message()), HasSubstr("MOCO_LIBTORCH"));
}

TEST(TorchInfoNceTest, LossLogitsAndGradientMatchAutograd) {
  auto backend = MakeBackend();
  const float t = 0.07f;
  torch::manual_seed(3);
  torch::Tensor q = torch::nn::functional::normalize(
      torch::randn({6, 8}), torch::nn::functional::NormalizeFuncOptions().dim(1));
  torch::Tensor k = torch::nn::functional::normalize(
      torch::randn({6, 8}), torch::nn::functional::NormalizeFuncOptions().dim(1));
  auto queue = *backend->CreateQueue(12, 8, 5);
  torch::Tensor negatives = *Unwrap(queue->keys());

  // Reference: autograd through the paper's formula.
  torch::Tensor q_ref = q.clone().requires_grad_(true);
  torch::Tensor logits_ref =
      torch::cat({(q_ref * k).sum(1, true), q_ref.mm(negatives.t())}, 1) / t;
  torch::Tensor loss_ref =
      torch::nn::functional::cross_entropy(logits_ref, torch::zeros({6}, torch::kLong));
  loss_ref.backward();

  auto loss = *backend->CreateInfoNceLoss();
  absl::StatusOr<ContrastiveLossResult> r = loss->Compute(*Wrap(q), *Wrap(k), queue->keys(), t);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NEAR(r->loss, loss_ref.item<float>(), 1e-5);
  EXPECT_TRUE(torch::allclose(*Unwrap(*r->logits), logits_ref.detach(), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(*Unwrap(*r->grad_q), q_ref.grad(), 1e-5, 1e-6));
  const float top1 = (logits_ref.argmax(1) == 0).to(torch::kFloat).mean().item<float>();
  EXPECT_FLOAT_EQ(r->top1, top1);
}

TEST(TorchKeyQueueTest, EnqueueWrapsAroundOverwritingTheOldest) {
  auto backend = MakeBackend();
  auto queue = *backend->CreateQueue(8, 4, 1);
  HostArray initial = *queue->keys().ToHost();
  for (int64_t r = 0; r < 8; ++r) {  // random unit rows
    float norm = 0;
    for (int c = 0; c < 4; ++c) norm += initial.data()[r * 4 + c] * initial.data()[r * 4 + c];
    EXPECT_NEAR(norm, 1.0f, 1e-5);
  }
  auto batch = [&](float base) {
    HostArray a({4, 4});
    for (int i = 0; i < 16; ++i) a.mutable_data()[i] = base + i;
    return *backend->Upload(a);
  };
  ASSERT_TRUE(queue->Enqueue(*batch(100)).ok());
  EXPECT_EQ(queue->pointer(), 4);
  ASSERT_TRUE(queue->Enqueue(*batch(200)).ok());
  EXPECT_EQ(queue->pointer(), 0);
  ASSERT_TRUE(queue->Enqueue(*batch(300)).ok());  // overwrites rows 0-3 (the oldest)
  EXPECT_EQ(queue->pointer(), 4);
  HostArray keys = *queue->keys().ToHost();
  EXPECT_EQ(keys.data()[0], 300);
  EXPECT_EQ(keys.data()[15], 315);
  EXPECT_EQ(keys.data()[16], 200);
  EXPECT_EQ(keys.data()[31], 215);
  // A batch that does not divide K is rejected and changes nothing.
  HostArray three({3, 4});
  EXPECT_FALSE(queue->Enqueue(**backend->Upload(three)).ok());
  EXPECT_EQ(queue->pointer(), 4);

  auto other = *backend->CreateQueue(8, 4, 2);
  ASSERT_TRUE(other->ImportState(queue->ExportState()).ok());
  EXPECT_EQ(other->pointer(), 4);
  EXPECT_EQ(other->keys().ToHost()->data(), keys.data());
}

TEST(TorchEncoderTest, MomentumUpdateMixesParametersOnly) {
  auto backend = MakeBackend();
  auto query = *backend->CreateEncoder(TinyModel(), 1);
  auto key = *backend->CreateEncoder(TinyModel(), 2);
  // Make the key's BN buffers differ from the query's so we can see they are untouched.
  HostArray images = RandomArray({4, 1, 8, 8}, 9);
  ASSERT_TRUE(key->Forward(**backend->Upload(images), true, false).ok());
  const NamedArrays q = query->ExportState();
  const NamedArrays k = key->ExportState();
  ASSERT_TRUE(key->MomentumUpdateFrom(*query, 0.9f).ok());
  const NamedArrays after = key->ExportState();
  const NamedArrays grads = key->ExportGradients();  // names of parameters only
  for (const auto& [name, array] : after) {
    const bool is_param = grads.count(name) > 0;
    for (size_t i = 0; i < array.data().size(); ++i) {
      const float expected =
          is_param ? 0.9f * k.at(name).data()[i] + 0.1f * q.at(name).data()[i] : k.at(name).data()[i];
      ASSERT_NEAR(array.data()[i], expected, 1e-6) << name;
    }
  }
  EXPECT_NE(k.at("bn1.running_mean").data(), q.at("bn1.running_mean").data());
}

TEST(TorchEncoderTest, OutputsAreUnitVectorsAndStateRoundTrips) {
  auto backend = MakeBackend();
  auto a = *backend->CreateEncoder(TinyModel(), 1);
  auto b = *backend->CreateEncoder(TinyModel(), 2);
  auto images = *backend->Upload(RandomArray({4, 1, 8, 8}, 4));
  HostArray out_a = *(*a->Forward(*images, false, false))->ToHost();
  ASSERT_EQ(out_a.shape(), (std::vector<int64_t>{4, 8}));
  for (int r = 0; r < 4; ++r) {
    float norm = 0;
    for (int c = 0; c < 8; ++c) norm += out_a.data()[r * 8 + c] * out_a.data()[r * 8 + c];
    EXPECT_NEAR(norm, 1.0f, 1e-5);
  }
  ASSERT_TRUE(b->ImportState(a->ExportState()).ok());
  EXPECT_EQ((*(*b->Forward(*images, false, false))->ToHost()).data(), out_a.data());
  EXPECT_EQ(a->backbone_dim(), 32);
  EXPECT_EQ((*(*a->BackboneFeatures(*images))->ToHost()).shape(), (std::vector<int64_t>{4, 32}));
}

TEST(TorchEncoderTest, ImportStateNamesTheFirstMismatchAndChangesNothing) {
  auto backend = MakeBackend();
  auto encoder = *backend->CreateEncoder(TinyModel(), 1);
  const NamedArrays before = encoder->ExportState();

  NamedArrays missing = before;
  missing.erase("layer2.0.conv1.weight");
  EXPECT_THAT(std::string(encoder->ImportState(missing).message()),
              HasSubstr("missing entry 'layer2.0.conv1.weight'"));

  NamedArrays misshaped = before;
  for (auto& v : misshaped) std::fill(v.second.mutable_data().begin(), v.second.mutable_data().end(), 7.0f);
  misshaped["fc.2.weight"] = HostArray({9, 32});
  EXPECT_THAT(std::string(encoder->ImportState(misshaped).message()),
              HasSubstr("'fc.2.weight' has shape [9, 32] but this encoder's is [8, 32]"));

  NamedArrays extra = before;
  extra["fc.3.weight"] = HostArray({1});
  EXPECT_THAT(std::string(encoder->ImportState(extra).message()), HasSubstr("'fc.3.weight'"));

  EXPECT_EQ(encoder->ExportState().at("conv1.weight").data(), before.at("conv1.weight").data());
}

TEST(TorchSgdTest, TwoStepsMatchTorchSgdSemantics) {
  auto backend = MakeBackend();
  auto encoder = *backend->CreateEncoder(TinyModel(), 1);
  OptimizerConfig config;
  config.set_momentum(0.9f);
  config.set_weight_decay(0.01f);
  auto sgd = *backend->CreateSgd(*encoder, config);
  auto images = *backend->Upload(RandomArray({4, 1, 8, 8}, 4));
  auto out = *encoder->Forward(*images, true, true);
  ASSERT_TRUE(encoder->Backward(**backend->Upload(RandomArray({4, 8}, 5))).ok());
  const NamedArrays p0 = encoder->ExportState();
  const NamedArrays g = encoder->ExportGradients();
  const float lr = 0.5f;
  ASSERT_TRUE(sgd->Step(lr).ok());
  ASSERT_TRUE(sgd->Step(lr).ok());  // same gradient again: exercises the momentum buffer
  const NamedArrays p2 = encoder->ExportState();
  for (const auto& [name, grad] : g) {
    for (size_t i = 0; i < grad.data().size(); i += 7) {
      const float w0 = p0.at(name).data()[i];
      const float d0 = grad.data()[i] + 0.01f * w0;  // buf = d0
      const float w1 = w0 - lr * d0;
      const float buf1 = 0.9f * d0 + grad.data()[i] + 0.01f * w1;
      const float w2 = w1 - lr * buf1;
      ASSERT_NEAR(p2.at(name).data()[i], w2, 1e-5f * (1 + std::abs(w2))) << name << "[" << i << "]";
    }
  }
  EXPECT_EQ(sgd->ExportState().size(), g.size());
}

TEST(TorchBackendTest, GatherRowsThenInverseRestoresOrder) {
  auto backend = MakeBackend();
  HostArray x = RandomArray({5, 3}, 1);
  auto t = *backend->Upload(x);
  auto shuffled = *backend->GatherRows(*t, {3, 0, 4, 1, 2});
  auto restored = *backend->GatherRows(*shuffled, {1, 3, 4, 0, 2});
  EXPECT_EQ((*restored->ToHost()).data(), x.data());
  EXPECT_EQ((*shuffled->ToHost()).data()[0], x.data()[9]);
}

}  // namespace
}  // namespace moco::torch_backend
