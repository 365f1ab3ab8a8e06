#include "backends/eigen/mlp_head.h"

#include <random>
#include <string>
#include <vector>

#include "backends/eigen/grad_check.h"
#include "gtest/gtest.h"
#include "moco/config/config.pb.h"

namespace moco {
namespace eigen_backend {
namespace {

// The v3 heads of a small config: projector 6 -> 5 [BN, ReLU] -> 4 [BN affine=False],
// predictor 4 -> 3 [BN, ReLU] -> 4.
EncoderSpec V3Spec() {
  ModelConfig m;
  m.set_arch("resnet18");
  m.set_width_multiplier(6.0 / 512.0);  // backbone output 6
  m.set_feature_dim(4);
  m.set_projector_hidden_dim(5);
  m.set_predictor_hidden_dim(3);
  absl::StatusOr<EncoderSpec> spec = EncoderSpecFromConfig(m);
  EXPECT_TRUE(spec.ok()) << spec.status();
  return *spec;
}

// sum(output * weights): a loss whose gradient w.r.t. the output is `weights`.
double WeightedSum(const Blob<double>& y, const Blob<double>& w) { return Dot(y.data, w.data); }

void CheckGradients(const HeadSpec& spec, bool train) {
  std::mt19937_64 rng(7);
  MlpHead<double> head = MlpHead<double>::Make(spec, &rng);
  std::vector<StateRef<double>> params;
  head.AddParameters(&params);
  // Non-trivial BN affine parameters, so their gradients are exercised.
  std::mt19937_64 perturb(3);
  std::uniform_real_distribution<double> u(0.5, 1.5);
  for (StateRef<double>& p : params) {
    if (p.name.find(".1.") != std::string::npos) {
      for (int64_t i = 0; i < p.size; ++i) p.value[i] = u(perturb);
    }
  }
  Blob<double> x = RandomBlob({6, spec.in_dim()}, 11);
  const Blob<double> w = RandomBlob({6, spec.out_dim()}, 12);
  BatchNormOptions bn;
  bn.train = train;
  bn.update_running = false;  // finite differences must not move the running statistics
  MlpHeadCache<double> cache;
  auto loss = [&] {
    MlpHeadCache<double> c;
    return WeightedSum(head.Forward(x, bn, &c), w);
  };
  head.Forward(x, bn, &cache);
  Blob<double> dx;
  head.Backward(x, w, &cache, &dx);
  EXPECT_TRUE(AllClose(dx.data, NumericGradient(loss, &x.data), 1e-7, 1e-5)) << "input";
  for (StateRef<double>& p : params) {
    std::vector<double> values(p.value, p.value + p.size);
    auto param_loss = [&] {
      std::copy(values.begin(), values.end(), p.value);
      return loss();
    };
    const std::vector<double> numeric = NumericGradient(param_loss, &values);
    std::copy(values.begin(), values.end(), p.value);
    EXPECT_TRUE(AllClose(std::vector<double>(p.grad, p.grad + p.size), numeric, 1e-7, 1e-5))
        << p.name << (train ? " (train)" : " (eval)");
  }
}

TEST(MlpHeadTest, V3ProjectorGradientsMatchFiniteDifferences) {
  CheckGradients(V3Spec().projector, /*train=*/true);
  CheckGradients(V3Spec().projector, /*train=*/false);
}

TEST(MlpHeadTest, V3PredictorGradientsMatchFiniteDifferences) {
  CheckGradients(*V3Spec().predictor, /*train=*/true);
}

TEST(MlpHeadTest, V2HeadGradientsMatchFiniteDifferences) {
  HeadSpec v2;
  v2.widths = {6, 6, 4};
  CheckGradients(v2, /*train=*/true);
}

// Names and shapes are EncoderStateLayout's: bias-free linears, an affine-free last BN with
// buffers only.
TEST(MlpHeadTest, StateNamesFollowMocoV3) {
  std::mt19937_64 rng(1);
  MlpHead<float> head = MlpHead<float>::Make(V3Spec().projector, &rng);
  std::vector<StateRef<float>> params, buffers;
  head.AddParameters(&params);
  head.AddBuffers(&buffers);
  std::vector<std::string> names;
  for (const auto& p : params) names.push_back(p.name);
  EXPECT_EQ(names, (std::vector<std::string>{"fc.0.weight", "fc.1.weight", "fc.1.bias",
                                             "fc.3.weight"}));
  names.clear();
  for (const auto& b : buffers) names.push_back(b.name);
  EXPECT_EQ(names, (std::vector<std::string>{
                       "fc.1.running_mean", "fc.1.running_var", "fc.1.num_batches_tracked",
                       "fc.4.running_mean", "fc.4.running_var", "fc.4.num_batches_tracked"}));
}

// The affine-free last BN standardizes every output column over the batch in train mode.
TEST(MlpHeadTest, ProjectorOutputIsStandardizedPerColumnInTrainMode) {
  std::mt19937_64 rng(2);
  MlpHead<double> head = MlpHead<double>::Make(V3Spec().projector, &rng);
  const Blob<double> x = RandomBlob({16, 6}, 5);
  MlpHeadCache<double> cache;
  BatchNormOptions bn;
  const Blob<double>& y = head.Forward(x, bn, &cache);
  for (int64_t c = 0; c < 4; ++c) {
    double mean = 0, sq = 0;
    for (int64_t i = 0; i < 16; ++i) mean += y.data[i * 4 + c] / 16;
    for (int64_t i = 0; i < 16; ++i) sq += (y.data[i * 4 + c] - mean) * (y.data[i * 4 + c] - mean) / 16;
    EXPECT_NEAR(mean, 0, 1e-12);
    EXPECT_NEAR(sq, 1, 1e-3);  // var / (var + eps)
  }
}

}  // namespace
}  // namespace eigen_backend
}  // namespace moco
