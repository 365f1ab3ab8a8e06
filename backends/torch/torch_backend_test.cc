// What is specific to the torch backend: CUDA errors, and InfoNCE checked against LibTorch's
// autograd. The backend contract (encoder, queue, loss, SGD, tensors) is
// tests/backend_contract_test, run over every registered backend.
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

}  // namespace
}  // namespace moco::torch_backend
