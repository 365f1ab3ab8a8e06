// Torch vs eigen optimizers on the same parameters and gradients: a tiny resnet18's parameters
// and the gradients of one real backward pass (so every kind of tensor an encoder has: 4-D
// convs, 2-D linears, 1-D BN weights/biases and linear biases), given identically to
// TorchLars/TorchAdamW and EigenLars/EigenAdamW for five steps with a changing learning rate and
// gradients scaled per step. Identical inputs isolate the optimizers: the differences left are
// float32 rounding (torch sums norms in float vector lanes where eigen sums in double, and
// fuses some multiply-adds). The MoCo step end to end across backends is
// tests/backend_conformance_test.
#include <algorithm>
#include <cmath>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/eigen/array_parameters.h"
#include "backends/eigen/eigen_adamw.h"
#include "backends/eigen/eigen_lars.h"
#include "backends/torch/torch_adamw.h"
#include "backends/torch/torch_lars.h"
#include "backends/torch/torch_tensor.h"
#include "gtest/gtest.h"
#include "moco/core/backend.h"
#include "moco/core/backend_registry.h"

namespace moco {
namespace {

HostArray Random(std::vector<int64_t> shape, uint64_t seed) {
  HostArray a(std::move(shape));
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd;
  for (float& v : a.mutable_data()) v = nd(rng);
  return a;
}

// A tiny resnet18's parameters and the gradients of sum(output * r) on a random batch.
void EncoderParametersAndGradients(NamedArrays* params, NamedArrays* grads) {
  auto backend = CreateBackend("torch", BackendOptions{"cpu", 1});
  ASSERT_TRUE(backend.ok()) << backend.status();
  ModelConfig m;
  m.set_arch("resnet18");
  m.set_cifar_stem(true);
  m.set_width_multiplier(0.125f);
  m.set_in_channels(1);
  m.set_feature_dim(16);
  m.set_mlp_head(true);
  auto enc = (*backend)->CreateEncoder(m, 7).value();
  auto x = (*backend)->Upload(Random({4, 1, 8, 8}, 1)).value();
  ASSERT_TRUE(enc->Forward(*x, /*train_bn=*/true, /*record=*/true).ok());
  ASSERT_TRUE(enc->Backward(*(*backend)->Upload(Random({4, 16}, 2)).value()).ok());
  *grads = enc->ExportGradients().value();
  const NamedArrays state = enc->ExportState().value();
  for (const auto& [name, g] : *grads) (*params)[name] = state.at(name);
}

torch::OrderedDict<std::string, torch::Tensor> TorchParams(const NamedArrays& arrays) {
  torch::OrderedDict<std::string, torch::Tensor> params;
  for (const auto& [name, a] : arrays) {
    params.insert(name, torch_backend::FromHostArray(a, torch::kCPU).requires_grad_(true));
  }
  return params;
}

NamedArrays Scaled(const NamedArrays& grads, float c) {
  NamedArrays out = grads;
  for (auto& [name, a] : out) {
    for (float& v : a.mutable_data()) v *= c;
  }
  return out;
}

// max |a - b| / max |b| over one tensor: scale-relative, so that an element where an update
// cancels most of a value does not read as a large error.
double ScaleRelative(const HostArray& a, const HostArray& b) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < b.data().size(); ++i) {
    diff = std::max(diff, std::abs(double{a.data()[i]} - b.data()[i]));
    scale = std::max(scale, std::abs(double{b.data()[i]}));
  }
  return diff == 0 ? 0 : diff / scale;
}

// The worst tensor of `a` vs `b`, optionally of their differences from `base`.
double Worst(const NamedArrays& a, const NamedArrays& b, const NamedArrays* base,
             std::string* where) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (const auto& [name, expected] : b) {
    auto it = a.find(name);
    if (it == a.end() || it->second.shape() != expected.shape()) {
      ADD_FAILURE() << "missing or misshaped " << name;
      continue;
    }
    HostArray x = it->second, y = expected;
    if (base != nullptr) {
      for (size_t i = 0; i < x.data().size(); ++i) {
        x.mutable_data()[i] -= base->at(name).data()[i];
        y.mutable_data()[i] -= base->at(name).data()[i];
      }
    }
    const double d = ScaleRelative(x, y);
    if (d > worst) worst = d, *where = name;
  }
  return worst;
}

enum class Algo { kLars, kAdamW };

void PrintTo(Algo a, std::ostream* os) { *os << (a == Algo::kLars ? "LARS" : "AdamW"); }

class OptimizerConformanceTest : public ::testing::TestWithParam<Algo> {};

// Scale-relative per tensor (parameters: their displacement from the start). Measured
// (printed): LARS 5e-6..1e-5 at most steps; 4e-5 (momentum buffers) and 1.3e-5 (displacement)
// at the step where the gradient flips sign and the new buffer cancels most of the old one. The
// source is torch's float32 norms (float lane sums, ~1e-6 relative on 37k elements) in the trust
// ratio. AdamW: displacement 2.4e-6, moments 2e-7. Bound 2e-4; a wrong rule in either backend
// (weight decay or trust ratio on the wrong parameters, eps or bias correction misplaced) is
// off by > 1e-3.
TEST_P(OptimizerConformanceTest, TorchAndEigenAgreeOnTheSameStateAndGradients) {
  NamedArrays init, grads;
  EncoderParametersAndGradients(&init, &grads);
  ASSERT_FALSE(HasFailure());
  OptimizerConfig oc;
  oc.set_momentum(0.9f);
  oc.set_weight_decay(0.01f);
  oc.set_lars_trust_coefficient(0.01f);
  auto torch_params = TorchParams(init);
  eigen_backend::ArrayParameters eigen_params(init);
  std::unique_ptr<Optimizer> t, e;
  if (GetParam() == Algo::kLars) {
    t = std::make_unique<torch_backend::TorchLars>(torch_params, oc);
    e = std::make_unique<eigen_backend::EigenLars>(eigen_params.Source(), oc);
  } else {
    t = std::make_unique<torch_backend::TorchAdamW>(torch_params, oc);
    e = std::make_unique<eigen_backend::EigenAdamW>(eigen_params.Source(), oc);
  }
  float lrs[5] = {0.5f, 1.0f, 0.75f, 0.25f, 0.1f};
  const float scale[5] = {1.0f, -0.5f, 2.0f, 0.75f, 1.5f};
  if (GetParam() == Algo::kAdamW) {
    for (float& lr : lrs) lr *= 1e-2f;  // AdamW moves each element by ~lr
  }
  for (int k = 0; k < 5; ++k) {
    SCOPED_TRACE("step " + std::to_string(k + 1));
    const NamedArrays g = Scaled(grads, scale[k]);
    for (auto& p : torch_params) {
      p.value().mutable_grad() = torch_backend::FromHostArray(g.at(p.key()), torch::kCPU);
    }
    eigen_params.SetGrads(g);
    ASSERT_TRUE(t->Step(lrs[k]).ok());
    ASSERT_TRUE(e->Step(lrs[k]).ok());
    NamedArrays torch_values;
    for (const auto& p : torch_params) {
      torch_values[p.key()] = torch_backend::ToHostArray(p.value().detach());
    }
    std::string where_p, where_s;
    const double d_params = Worst(eigen_params.Values(), torch_values, &init, &where_p);
    const double d_state = Worst(e->ExportState(), t->ExportState(), nullptr, &where_s);
    std::cout << (GetParam() == Algo::kLars ? "LARS" : "AdamW") << " step " << k + 1
              << ": parameter displacement " << d_params << " (" << where_p << "), state "
              << d_state << " (" << where_s << ")\n";
    EXPECT_LT(d_params, 2e-4) << where_p;
    EXPECT_LT(d_state, 2e-4) << where_s;
  }
}

INSTANTIATE_TEST_SUITE_P(Optimizers, OptimizerConformanceTest,
                         ::testing::Values(Algo::kLars, Algo::kAdamW),
                         [](const ::testing::TestParamInfo<Algo>& info) {
                           return info.param == Algo::kLars ? "lars" : "adamw";
                         });

}  // namespace
}  // namespace moco
