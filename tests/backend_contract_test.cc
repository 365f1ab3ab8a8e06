// The backend contract (moco/core/backend.h and the interfaces it creates), checked once for
// every backend registered in this binary (//backends:all): TEST_P over RegisteredBackendNames().
// Each test checks one backend on its own, against closed forms and the model spec; agreement
// between backends is tests/backend_conformance_test. Backend-specific tests (devices, checks
// against LibTorch's autograd) stay beside their backend.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "moco/core/backend.h"
#include "moco/core/backend_registry.h"
#include "moco/core/host_array.h"
#include "moco/core/model_spec.h"

namespace moco {
namespace {

using ::testing::HasSubstr;

ModelConfig Model(const std::string& arch, float width, bool mlp = true) {
  ModelConfig m;
  m.set_arch(arch);
  m.set_cifar_stem(true);
  m.set_width_multiplier(width);  // 0.0625: 4-8-16-32 channels
  m.set_in_channels(1);
  m.set_feature_dim(8);
  m.set_mlp_head(mlp);
  return m;
}

ModelConfig TinyModel() { return Model("resnet18", 0.0625f); }

HostArray Images(int64_t n, uint64_t seed, int64_t side = 8) {
  HostArray a({n, 1, side, side});
  uint64_t s = seed * 2654435761u + 1;
  for (float& v : a.mutable_data()) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    v = static_cast<float>((s >> 33) % 2000) / 1000.0f - 1.0f;
  }
  return a;
}

HostArray Host(const Tensor& t) {
  absl::StatusOr<HostArray> h = t.ToHost();
  EXPECT_TRUE(h.ok()) << h.status();
  return h.ok() ? *std::move(h) : HostArray();
}

NamedArrays State(const Encoder& e) {
  absl::StatusOr<NamedArrays> s = e.ExportState();
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *std::move(s) : NamedArrays();
}

NamedArrays Grads(const Encoder& e) {
  absl::StatusOr<NamedArrays> g = e.ExportGradients();
  EXPECT_TRUE(g.ok()) << g.status();
  return g.ok() ? *std::move(g) : NamedArrays();
}

std::string Message(const absl::Status& s) { return std::string(s.message()); }

class BackendContractTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto b = CreateBackend(GetParam(), BackendOptions{"cpu", 2});
    ASSERT_TRUE(b.ok()) << b.status();
    backend_ = *std::move(b);
  }
  std::unique_ptr<Encoder> NewEncoder(const ModelConfig& m, uint64_t seed, int bn_splits = 1) {
    auto e = backend_->CreateEncoder(m, seed, EncoderOptions{bn_splits});
    EXPECT_TRUE(e.ok()) << e.status();
    return e.ok() ? *std::move(e) : nullptr;
  }
  TensorPtr Upload(const HostArray& a) {
    auto t = backend_->Upload(a);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *std::move(t) : nullptr;
  }

  std::unique_ptr<Backend> backend_;
};

// ---- Registry, host arrays and tensors ---------------------------------------------------------

TEST(BackendRegistryTest, UnknownBackendListsTheAvailableOnes) {
  auto b = CreateBackend("tpu", {});
  ASSERT_EQ(b.status().code(), absl::StatusCode::kNotFound);
  for (const std::string& name : RegisteredBackendNames()) {
    EXPECT_THAT(Message(b.status()), HasSubstr(name));
  }
  EXPECT_GE(RegisteredBackendNames().size(), 2u);  // //backends:all links torch and eigen
}

// A HostArray's data always matches its shape, so no backend can be handed a mismatched one:
// the checked path refuses it.
TEST(HostArrayContractTest, MismatchedDataCannotBeBuilt) {
  auto bad = HostArray::FromData({2, 3}, std::vector<float>(5));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(HostArray::FromData({-1}, {}).ok());
  EXPECT_TRUE(HostArray::FromData({2, 3}, std::vector<float>(6)).ok());
}

TEST_P(BackendContractTest, NameUploadAndGatherRows) {
  EXPECT_EQ(backend_->name(), GetParam());
  const HostArray x({3, 2}, {0, 1, 2, 3, 4, 5});
  TensorPtr t = Upload(x);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->backend_name(), GetParam());
  EXPECT_EQ(t->shape(), (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(Host(*t), x);
  auto g = backend_->GatherRows(*t, {2, 0, 2});
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(Host(**g).data(), (std::vector<float>{4, 5, 0, 1, 4, 5}));
  auto shuffled = backend_->GatherRows(*t, {1, 2, 0});
  auto restored = backend_->GatherRows(**shuffled, {2, 0, 1});  // the inverse permutation
  EXPECT_EQ(Host(**restored), x);
  EXPECT_FALSE(backend_->GatherRows(*t, {3}).ok());
  EXPECT_FALSE(backend_->GatherRows(*t, {-1}).ok());
}

// ---- Encoder ------------------------------------------------------------------------------------

TEST_P(BackendContractTest, CreateEncoderRefusesBadOptions) {
  auto bad = backend_->CreateEncoder(Model("resnet19", 0.0625f), 1, {});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(bad.status()), HasSubstr("model.arch"));
  bad = backend_->CreateEncoder(TinyModel(), 1, EncoderOptions{0});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(bad.status()), HasSubstr("bn_splits"));
}

TEST_P(BackendContractTest, ForwardGivesUnitRowsAndChecksInput) {
  auto enc = NewEncoder(TinyModel(), 1, /*bn_splits=*/2);
  ASSERT_NE(enc, nullptr);
  EXPECT_EQ(enc->feature_dim(), 8);
  EXPECT_EQ(enc->backbone_dim(), 32);
  TensorPtr x = Upload(Images(4, 1));
  for (bool train : {true, false}) {
    auto z = enc->Forward(*x, train, false);
    ASSERT_TRUE(z.ok()) << z.status();
    const HostArray zh = Host(**z);
    ASSERT_EQ(zh.shape(), (std::vector<int64_t>{4, 8}));
    for (int i = 0; i < 4; ++i) {
      double sq = 0;
      for (int j = 0; j < 8; ++j) sq += zh.data()[i * 8 + j] * zh.data()[i * 8 + j];
      EXPECT_NEAR(sq, 1.0, 1e-5);
    }
  }
  auto features = enc->BackboneFeatures(*x);
  ASSERT_TRUE(features.ok()) << features.status();
  EXPECT_EQ((*features)->shape(), (std::vector<int64_t>{4, 32}));
  // Six images do not split into 4 BN groups (train mode only).
  auto four = NewEncoder(TinyModel(), 1, /*bn_splits=*/4);
  TensorPtr six = Upload(Images(6, 1));
  EXPECT_FALSE(four->Forward(*six, true, true).ok());
  EXPECT_TRUE(four->Forward(*six, false, false).ok());
  TensorPtr rgb = Upload(HostArray({4, 3, 8, 8}));
  EXPECT_FALSE(enc->Forward(*rgb, false, false).ok());
  EXPECT_EQ(enc->Backward(*Upload(HostArray({4, 8}))).code(),
            absl::StatusCode::kFailedPrecondition);
}

// Names and shapes are the model spec's (torchvision's state_dict; see StateLayoutIsTorchvisions).
TEST_P(BackendContractTest, StateNamesAndShapesAreTheSpecs) {
  for (const ModelConfig& m : {TinyModel(), Model("resnet18", 0.0625f, false),
                               Model("resnet50", 0.0625f, true)}) {
    SCOPED_TRACE(m.ShortDebugString());
    auto enc = NewEncoder(m, 1);
    ASSERT_NE(enc, nullptr);
    const NamedArrays state = State(*enc);
    const NamedArrays grads = Grads(*enc);
    NamedArrays expected_state, expected_grads;
    for (const StateEntry& e : EncoderStateLayout(*EncoderSpecFromConfig(m))) {
      expected_state[e.name] = HostArray(e.shape);
      if (e.is_parameter) expected_grads[e.name] = HostArray(e.shape);
    }
    ASSERT_EQ(state.size(), expected_state.size());
    for (const auto& [name, array] : expected_state) {
      ASSERT_EQ(state.count(name), 1u) << name;
      EXPECT_EQ(state.at(name).shape(), array.shape()) << name;
    }
    EXPECT_EQ(grads, expected_grads);  // names, shapes and zeros before any backward
  }
}

// A ViT encoder: timm's names and shapes with the v3 heads, unit outputs, cls-token features,
// gradients for every parameter but the frozen patch projection, and a wrong image size named
// as the config field that fixes it.
TEST_P(BackendContractTest, ViTEncoderFollowsTheSpecAndChecksTheImageSize) {
  ModelConfig m;
  m.set_arch("vit_micro");
  m.set_image_size(8);
  m.set_in_channels(1);
  m.set_feature_dim(8);
  m.set_projector_hidden_dim(16);
  m.set_predictor_hidden_dim(16);
  m.set_stop_grad_conv1(true);
  auto made = backend_->CreateEncoder(m, 1, EncoderOptions{1, /*with_predictor=*/true});
  ASSERT_TRUE(made.ok()) << made.status();
  Encoder& enc = **made;
  const EncoderSpec spec = *EncoderSpecForEncoder(m, 1, true);
  const NamedArrays state = State(enc);
  ASSERT_EQ(state.size(), EncoderStateLayout(spec).size());
  for (const StateEntry& e : EncoderStateLayout(spec)) {
    ASSERT_EQ(state.count(e.name), 1u) << e.name;
    EXPECT_EQ(state.at(e.name).shape(), e.shape) << e.name;
  }
  EXPECT_EQ(enc.backbone_dim(), 128);
  TensorPtr x = Upload(Images(4, 5, /*side=*/8));
  auto z = enc.Forward(*x, true, true);
  ASSERT_TRUE(z.ok()) << z.status();
  const HostArray zh = Host(**z);
  ASSERT_EQ(zh.shape(), (std::vector<int64_t>{4, 8}));
  double sq = 0;
  for (int j = 0; j < 8; ++j) sq += zh.data()[j] * zh.data()[j];
  EXPECT_NEAR(sq, 1.0, 1e-5);
  enc.ZeroGrad();
  HostArray g({4, 8});
  for (size_t i = 0; i < g.data().size(); ++i) g.mutable_data()[i] = static_cast<float>(i % 3) - 1;
  ASSERT_TRUE(enc.Backward(*Upload(g)).ok());
  const NamedArrays grads = Grads(enc);
  EXPECT_EQ(grads.count("patch_embed.proj.weight"), 0u) << "frozen: a buffer";
  for (const char* name : {"cls_token", "blocks.0.attn.qkv.weight", "blocks.3.mlp.fc2.bias",
                           "norm.weight", "head.0.weight", "predictor.3.weight"}) {
    ASSERT_EQ(grads.count(name), 1u) << name;
    double sum = 0;
    for (float g : grads.at(name).data()) sum += std::abs(g);
    EXPECT_GT(sum, 0) << name;
  }
  auto features = enc.BackboneFeatures(*x);
  ASSERT_TRUE(features.ok()) << features.status();
  EXPECT_EQ((*features)->shape(), (std::vector<int64_t>{4, 128}));
  const absl::Status wrong = enc.Forward(*Upload(Images(4, 1, /*side=*/12)), false, false).status();
  EXPECT_EQ(wrong.code(), absl::StatusCode::kInvalidArgument) << wrong;
  EXPECT_THAT(Message(wrong), HasSubstr("model.image_size")) << wrong;
}

TEST_P(BackendContractTest, TrainForwardMovesRunningStatsEvalDoesNot) {
  auto enc = NewEncoder(TinyModel(), 1, /*bn_splits=*/2);
  TensorPtr x = Upload(Images(4, 2));
  const NamedArrays before = State(*enc);
  ASSERT_TRUE(enc->Forward(*x, false, false).ok());
  ASSERT_TRUE(enc->BackboneFeatures(*x).ok());
  EXPECT_EQ(State(*enc), before);
  ASSERT_TRUE(enc->Forward(*x, true, false).ok());
  const NamedArrays after = State(*enc);
  EXPECT_NE(after.at("bn1.running_mean").data(), before.at("bn1.running_mean").data());
  EXPECT_NE(after.at("layer4.1.bn2.running_var").data(),
            before.at("layer4.1.bn2.running_var").data());
  EXPECT_EQ(after.at("layer3.0.bn2.num_batches_tracked").data(), std::vector<float>{1});
  EXPECT_EQ(after.at("layer3.0.bn2.num_batches_tracked").shape(), std::vector<int64_t>{});
  for (const auto& [name, g] : Grads(*enc)) {  // parameters unchanged
    EXPECT_EQ(after.at(name), before.at(name)) << name;
  }
}

TEST_P(BackendContractTest, BackwardAccumulatesAndZeroGradClears) {
  auto enc = NewEncoder(TinyModel(), 3, /*bn_splits=*/2);
  TensorPtr x = Upload(Images(4, 3));
  HostArray g({4, 8});
  for (int64_t i = 0; i < g.numel(); ++i) g.mutable_data()[i] = std::sin(static_cast<float>(i));
  TensorPtr gt = Upload(g);
  // An unrecorded forward in between must not disturb the recording.
  ASSERT_TRUE(enc->Forward(*x, true, true).ok());
  ASSERT_TRUE(enc->Forward(*x, false, false).ok());
  ASSERT_TRUE(enc->BackboneFeatures(*x).ok());
  ASSERT_TRUE(enc->Backward(*gt).ok());
  EXPECT_EQ(enc->Backward(*gt).code(), absl::StatusCode::kFailedPrecondition);  // consumed
  const NamedArrays once = Grads(*enc);
  EXPECT_EQ(once.count("bn1.running_mean"), 0u);  // buffers have no gradient
  ASSERT_TRUE(enc->Forward(*x, true, true).ok());  // BN uses batch statistics: same gradient
  ASSERT_TRUE(enc->Backward(*gt).ok());
  const NamedArrays twice = Grads(*enc);
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
  const NamedArrays cleared = Grads(*enc);
  for (const auto& [name, a] : cleared) {
    for (float v : a.data()) ASSERT_EQ(v, 0.0f) << name;
  }
}

// ImportState refuses a missing, unexpected or mis-shaped entry, naming it, and changes nothing.
TEST_P(BackendContractTest, StateRoundTripAndImportErrorsNameTheEntry) {
  auto a = NewEncoder(TinyModel(), 1);
  auto b = NewEncoder(TinyModel(), 2);
  const NamedArrays sa = State(*a);
  const NamedArrays sb = State(*b);
  EXPECT_FALSE(sa.at("conv1.weight") == sb.at("conv1.weight"));  // seeds differ
  NamedArrays bad = sa;
  bad.erase("layer2.0.downsample.1.running_var");
  absl::Status st = b->ImportState(bad);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(st), HasSubstr("missing entry 'layer2.0.downsample.1.running_var'"));
  bad = sa;
  bad["fc.1.weight"] = HostArray({1});
  st = b->ImportState(bad);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(st), HasSubstr("unexpected entry 'fc.1.weight'"));
  for (const auto& [name, shape] : std::vector<std::pair<std::string, std::vector<int64_t>>>{
           {"fc.2.bias", {7}}, {"fc.2.weight", {9, 32}}, {"conv1.weight", {4, 1, 3}},
           {"bn1.num_batches_tracked", {1}}}) {
    bad = sa;
    bad[name] = HostArray(shape);
    st = b->ImportState(bad);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_THAT(Message(st), HasSubstr("'" + name + "' has shape")) << name;
  }
  EXPECT_EQ(State(*b), sb);  // nothing changed
  ASSERT_TRUE(b->ImportState(sa).ok());
  EXPECT_EQ(State(*b), sa);
  // Same state -> bitwise the same outputs.
  TensorPtr x = Upload(Images(2, 5));
  EXPECT_EQ(Host(**a->Forward(*x, false, false)), Host(**b->Forward(*x, false, false)));
}

// key = m key + (1 - m) query for parameters, matched by name; BN statistics are the key's own.
TEST_P(BackendContractTest, MomentumUpdateBlendsParametersByName) {
  auto key = NewEncoder(TinyModel(), 1);
  auto query = NewEncoder(TinyModel(), 2);
  ASSERT_TRUE(query->Forward(*Upload(Images(4, 9)), true, false).ok());  // query BN stats move
  const NamedArrays q = State(*query);
  const NamedArrays k0 = State(*key);
  ASSERT_TRUE(key->MomentumUpdateFrom(*query, 0.75f).ok());
  const NamedArrays k1 = State(*key);
  const NamedArrays params = Grads(*key);
  for (const auto& [name, array] : k1) {
    const bool is_param = params.count(name) > 0;
    for (size_t i = 0; i < array.data().size(); ++i) {
      // A few float ulps (|w| < 1); swapping m and 1 - m errs by ~1e-2.
      const double expected =
          is_param ? 0.75 * k0.at(name).data()[i] + 0.25 * q.at(name).data()[i]
                   : k0.at(name).data()[i];
      ASSERT_NEAR(array.data()[i], expected, 1e-6) << name;
    }
  }
  EXPECT_FALSE(k1.at("bn1.running_mean") == q.at("bn1.running_mean"));
}

// resnet18's parameters are a subset (same names and shapes) of resnet34's at the same width:
// a resnet18 key follows a resnet34 source (extra source parameters are ignored, as a v3
// predictor would be); the other way round names the first parameter the source lacks.
TEST_P(BackendContractTest, MomentumUpdateNeedsEveryKeyParameterInTheSource) {
  auto r18 = NewEncoder(Model("resnet18", 0.0625f), 1);
  auto r34 = NewEncoder(Model("resnet34", 0.0625f), 2);
  auto wide = NewEncoder(Model("resnet18", 0.125f), 3);
  const NamedArrays k0 = State(*r18);
  const NamedArrays src = State(*r34);
  ASSERT_TRUE(r18->MomentumUpdateFrom(*r34, 0.5f).ok());
  const NamedArrays k1 = State(*r18);
  const std::string n = "layer4.1.conv2.weight";
  for (size_t i = 0; i < k1.at(n).data().size(); ++i) {
    ASSERT_NEAR(k1.at(n).data()[i], 0.5 * k0.at(n).data()[i] + 0.5 * src.at(n).data()[i], 1e-6);
  }
  const NamedArrays r34_before = State(*r34);
  absl::Status st = r34->MomentumUpdateFrom(*r18, 0.5f);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(st), HasSubstr("'layer1.2.conv1.weight'"));
  EXPECT_EQ(State(*r34), r34_before);  // checked before anything changes
  st = r18->MomentumUpdateFrom(*wide, 0.5f);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(st), HasSubstr("'conv1.weight' has shape"));
  EXPECT_EQ(State(*r18), k1);
}

TEST_P(BackendContractTest, MomentumUpdateRefusesAnotherBackendsEncoder) {
  for (const std::string& other : RegisteredBackendNames()) {
    if (other == GetParam()) continue;
    auto other_backend = CreateBackend(other, BackendOptions{"cpu", 1});
    ASSERT_TRUE(other_backend.ok());
    auto source = (*other_backend)->CreateEncoder(TinyModel(), 1, {});
    ASSERT_TRUE(source.ok());
    auto key = NewEncoder(TinyModel(), 1);
    EXPECT_EQ(key->MomentumUpdateFrom(**source, 0.5f).code(),
              absl::StatusCode::kInvalidArgument);
  }
}

TEST_P(BackendContractTest, ActivationCaptureIsOfferedAndOffByDefault) {
  auto enc = NewEncoder(TinyModel(), 1);
  ActivationCapture* capture = enc->activation_capture();
  ASSERT_NE(capture, nullptr);  // both backends offer it (tests/compare_backends needs it)
  TensorPtr x = Upload(Images(2, 1));
  ASSERT_TRUE(enc->Forward(*x, false, false).ok());
  EXPECT_TRUE(capture->Activations().empty());
  capture->Enable(true);
  ASSERT_TRUE(enc->Forward(*x, false, false).ok());
  ASSERT_FALSE(capture->Activations().empty());
  EXPECT_EQ(capture->Activations().front().first, "conv1");
  EXPECT_EQ(capture->Activations().back().first, "fc.2");
  capture->Enable(false);
  EXPECT_TRUE(capture->Activations().empty());
}

// ---- Queue, loss, optimizer ---------------------------------------------------------------------

TEST_P(BackendContractTest, QueueHoldsUnitKeysWrapsAroundAndRoundTrips) {
  auto queue = *backend_->CreateQueue(6, 3, 7);
  const HostArray q = Host(queue->keys());
  ASSERT_EQ(q.shape(), (std::vector<int64_t>{6, 3}));
  for (int i = 0; i < 6; ++i) {
    double sq = 0;
    for (int j = 0; j < 3; ++j) sq += q.data()[i * 3 + j] * q.data()[i * 3 + j];
    EXPECT_NEAR(sq, 1.0, 1e-6);
  }
  EXPECT_EQ(Host((*backend_->CreateQueue(6, 3, 7))->keys()), q);  // deterministic in seed
  for (int step = 0; step < 4; ++step) {
    const float v = static_cast<float>(step + 1);
    ASSERT_TRUE(queue->Enqueue(*Upload(HostArray({2, 3}, {v, v, v, -v, -v, -v}))).ok());
  }
  EXPECT_EQ(queue->pointer(), 2);  // 4 * 2 = 8 = 6 + 2: wrapped once, oldest overwritten
  EXPECT_EQ(Host(queue->keys()).data(),
            (std::vector<float>{4, 4, 4, -4, -4, -4, 2, 2, 2, -2, -2, -2, 3, 3, 3, -3, -3, -3}));
  EXPECT_FALSE(queue->Enqueue(*Upload(HostArray({4, 3}))).ok());  // 6 is not a multiple of 4
  EXPECT_EQ(queue->pointer(), 2);
  NamedArrays s = queue->ExportState();
  EXPECT_EQ(s.at("queue_ptr").data(), std::vector<float>{2});
  auto other = *backend_->CreateQueue(6, 3, 8);
  ASSERT_TRUE(other->ImportState(s).ok());
  EXPECT_EQ(other->pointer(), 2);
  EXPECT_EQ(Host(other->keys()), Host(queue->keys()));
  s["queue_ptr"] = HostArray({1}, {6});
  EXPECT_FALSE(other->ImportState(s).ok());
  s = queue->ExportState();
  s["queue"] = HostArray({6, 4});
  const absl::Status st = other->ImportState(s);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(st), HasSubstr("queue"));
}

TEST_P(BackendContractTest, InfoNceWithAnOrthogonalQueueHasAClosedForm) {
  auto queue = *backend_->CreateQueue(4, 4, 0);
  NamedArrays s;
  s["queue"] = HostArray({4, 4}, {0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0});
  s["queue_ptr"] = HostArray({1}, {0});
  ASSERT_TRUE(queue->ImportState(s).ok());
  TensorPtr q = Upload(HostArray({2, 4}, {1, 0, 0, 0, 1, 0, 0, 0}));
  auto loss = *backend_->CreateInfoNceLoss();
  auto r = loss->Compute(*q, *q, queue->keys(), 0.5f);
  ASSERT_TRUE(r.ok()) << r.status();
  // logits per row: [1/T, 0, 0, 0, 0] -> loss = -log(e^2 / (e^2 + 4)).
  EXPECT_NEAR(r->loss, -std::log(std::exp(2.0) / (std::exp(2.0) + 4)), 1e-6);
  EXPECT_FLOAT_EQ(r->top1, 1.0f);
  EXPECT_EQ(r->logits->shape(), (std::vector<int64_t>{2, 5}));
  EXPECT_EQ(r->grad_q->shape(), (std::vector<int64_t>{2, 4}));
  EXPECT_FALSE(loss->Compute(*q, *q, queue->keys(), 0.0f).ok());
}

// torch.optim.SGD: buf = m buf + (g + wd w) (buf = g + wd w on the first step), w -= lr buf.
TEST_P(BackendContractTest, SgdFollowsTorchSemanticsAndStateRoundTrips) {
  auto enc = NewEncoder(TinyModel(), 1);
  OptimizerConfig oc;
  oc.set_momentum(0.9f);
  oc.set_weight_decay(0.1f);
  auto sgd = *backend_->CreateSgd(*enc, oc);
  TensorPtr x = Upload(Images(2, 9));
  auto z = enc->Forward(*x, true, true);
  ASSERT_TRUE(z.ok());
  ASSERT_TRUE(enc->Backward(**z).ok());
  const NamedArrays p0 = State(*enc), g = Grads(*enc);
  ASSERT_TRUE(sgd->Step(0.5f).ok());
  const NamedArrays p1 = State(*enc), buf = sgd->ExportState();
  EXPECT_EQ(buf.size(), g.size());
  for (const auto& [n, grad] : g) {
    for (size_t i = 0; i < grad.data().size(); i += 5) {
      const float d = grad.data()[i] + 0.1f * p0.at(n).data()[i];
      ASSERT_NEAR(buf.at(n).data()[i], d, 1e-6 * (1 + std::abs(d))) << n;
      ASSERT_NEAR(p1.at(n).data()[i], p0.at(n).data()[i] - 0.5f * d, 1e-6) << n;
    }
  }
  ASSERT_TRUE(sgd->Step(0.5f).ok());  // the same gradients again
  const NamedArrays p2 = State(*enc);
  for (const auto& [n, grad] : g) {
    for (size_t i = 0; i < grad.data().size(); i += 5) {
      const float b2 = 0.9f * buf.at(n).data()[i] + (grad.data()[i] + 0.1f * p1.at(n).data()[i]);
      ASSERT_NEAR(p2.at(n).data()[i], p1.at(n).data()[i] - 0.5f * b2, 1e-5) << n;
    }
  }
  auto sgd2 = *backend_->CreateSgd(*enc, oc);
  ASSERT_TRUE(sgd2->ImportState(buf).ok());
  EXPECT_EQ(sgd2->ExportState(), buf);
  NamedArrays bad = buf;
  bad["nope.weight"] = HostArray({1});
  EXPECT_THAT(Message(sgd2->ImportState(bad)), HasSubstr("nope.weight"));
  bad = buf;
  bad["fc.2.bias"] = HostArray({3});
  const absl::Status st = sgd2->ImportState(bad);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(st), HasSubstr("fc.2.bias"));
}

INSTANTIATE_TEST_SUITE_P(AllBackends, BackendContractTest,
                         ::testing::ValuesIn(RegisteredBackendNames()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

// ---- The spec's layout is torchvision's (golden lists, backends/torch/testdata) ----------------

TEST(ModelSpecTorchvisionTest, StateLayoutIsTorchvisions) {
  struct Case {
    std::string file, arch;
    bool mlp;
  };
  for (const Case& c : std::vector<Case>{{"resnet18_mlp_names.txt", "resnet18", true},
                                         {"resnet18_linear_names.txt", "resnet18", false},
                                         {"resnet50_mlp_names.txt", "resnet50", true},
                                         {"resnet50_linear_names.txt", "resnet50", false}}) {
    SCOPED_TRACE(c.file);
    std::ifstream in("backends/torch/testdata/" + c.file);
    ASSERT_TRUE(in.good());
    std::vector<std::string> golden_params;
    std::set<std::string> golden_buffers;
    std::string kind, name, shape;
    while (in >> kind >> name >> shape) {
      (kind == "param" ? golden_params.push_back(name + " " + shape)
                       : (void)golden_buffers.insert(name + " " + shape));
    }
    ModelConfig m;
    m.set_arch(c.arch);
    m.set_mlp_head(c.mlp);  // defaults: ImageNet stem, width 1, 3 channels, 128-d
    std::vector<std::string> params;
    std::set<std::string> buffers;
    for (const StateEntry& e : EncoderStateLayout(*EncoderSpecFromConfig(m))) {
      std::string s = e.name + " [";
      for (size_t i = 0; i < e.shape.size(); ++i) s += (i ? "," : "") + std::to_string(e.shape[i]);
      s += "]";
      (e.is_parameter ? params.push_back(s) : (void)buffers.insert(s));
    }
    EXPECT_EQ(params, golden_params);  // in torchvision's order
    EXPECT_EQ(buffers, golden_buffers);
  }
}

}  // namespace
}  // namespace moco
