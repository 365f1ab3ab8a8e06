// The Python-made files (testdata/make_torch_files.py) through the readers, both backends and
// the writers.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>

#include "gtest/gtest.h"
#include "moco/core/backend_registry.h"
#include "moco/core/method_registry.h"
#include "moco/interop/encoder_init.h"
#include "moco/interop/torch_file.h"
#include "moco/interop/weights_file.h"

namespace moco {
namespace interop {
namespace {

const std::string kDir = "moco/interop/testdata/";

WeightsFile MustRead(const std::string& path) {
  auto f = ReadWeightsFile(path);
  EXPECT_TRUE(f.ok()) << f.status();
  return f.ok() ? *std::move(f) : WeightsFile{};
}

// Same names, shapes and bits; otherwise the first difference.
std::string Diff(const NamedArrays& a, const NamedArrays& b) {
  if (a.size() != b.size()) return "sizes " + std::to_string(a.size()) + " vs " + std::to_string(b.size());
  for (auto ia = a.begin(), ib = b.begin(); ia != a.end(); ++ia, ++ib) {
    if (ia->first != ib->first) return "names " + ia->first + " vs " + ib->first;
    if (ia->second.shape() != ib->second.shape()) return "shape of " + ia->first;
    if (std::memcmp(ia->second.data().data(), ib->second.data().data(), ia->second.numel() * 4) != 0) {
      return "values of " + ia->first;
    }
  }
  return "";
}

NamedArrays WithoutHead(NamedArrays a) {
  for (auto it = a.begin(); it != a.end();) it = it->first.rfind("fc.", 0) == 0 ? a.erase(it) : std::next(it);
  return a;
}

ExperimentConfig ConfigFor(const MocoWeights& w) {
  ExperimentConfig c;
  auto model = InferModelConfig(w.query, w.arch);
  EXPECT_TRUE(model.ok()) << model.status();
  *c.mutable_model() = *model;
  return c;
}

std::string Tmp(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/" + name;
}

TEST(InteropTest, ZipAndLegacyOfficialCheckpointsAgree) {
  WeightsFile zip = MustRead(kDir + "moco_v2_zip.pth");
  WeightsFile legacy = MustRead(kDir + "moco_v2_legacy.pth.tar");
  EXPECT_EQ(zip.format, Format::kMoco);
  EXPECT_EQ(legacy.format, Format::kMoco);
  EXPECT_EQ(Diff(zip.weights.query, legacy.weights.query), "");
  EXPECT_EQ(Diff(zip.weights.key, legacy.weights.key), "");
  EXPECT_NE(Diff(zip.weights.query, zip.weights.key), "");
  ASSERT_TRUE(zip.weights.queue && legacy.weights.queue);
  EXPECT_EQ(zip.weights.queue->shape(), (std::vector<int64_t>{32, 16}));  // (K, dim)
  EXPECT_EQ(*zip.weights.queue, *legacy.weights.queue);  // legacy stores a strided view
  // Rows of the project's queue are unit keys (the file normalized its columns).
  double norm = 0;
  for (int c = 0; c < 16; ++c) norm += std::pow(zip.weights.queue->data()[c], 2);
  EXPECT_NEAR(norm, 1.0, 1e-5);
  EXPECT_EQ(zip.weights.queue_ptr->data()[0], 8.0f);
  EXPECT_EQ(zip.weights.query.at("bn1.num_batches_tracked").data()[0], 1234.0f);
  EXPECT_EQ(zip.weights.epoch, 3);
  EXPECT_EQ(legacy.weights.epoch, 200);
  EXPECT_EQ(zip.weights.arch, "resnet18");
  EXPECT_FLOAT_EQ(zip.weights.lr, 0.03);
  int params = 0;
  for (const auto& [n, a] : zip.weights.query) params += IsBuffer(n) ? 0 : 1;
  EXPECT_EQ(static_cast<int>(zip.weights.momentum.size()), params);
  EXPECT_TRUE(legacy.weights.momentum.empty());
}

TEST(InteropTest, OfficialDetectron2FileHoldsTheBackbone) {
  WeightsFile d2 = MustRead(kDir + "moco_v2_d2.pkl");
  WeightsFile zip = MustRead(kDir + "moco_v2_zip.pth");
  EXPECT_EQ(d2.format, Format::kDetectron2);
  EXPECT_EQ(Diff(d2.weights.query, WithoutHead(zip.weights.query)), "");
  EXPECT_EQ(ToDetectron2Name("layer2.0.downsample.1.running_var"), "res3.0.shortcut.norm.running_var");
  EXPECT_EQ(ToDetectron2Name("bn1.weight"), "stem.conv1.norm.weight");
  EXPECT_EQ(FromDetectron2Name("res5.1.conv2.norm.bias"), "layer4.1.bn2.bias");
}

TEST(InteropTest, InfersTheArchitecture) {
  WeightsFile zip = MustRead(kDir + "moco_v2_zip.pth");
  ExperimentConfig c = ConfigFor(zip.weights);
  EXPECT_EQ(c.model().arch(), "resnet18");
  EXPECT_FLOAT_EQ(c.model().width_multiplier(), 1.0f / 32);
  EXPECT_FALSE(c.model().cifar_stem());
  EXPECT_EQ(c.model().in_channels(), 3);
  EXPECT_EQ(c.model().feature_dim(), 16);
  EXPECT_TRUE(c.model().mlp_head());
}

TEST(InteropTest, InfersEveryArchitectureFromAFreshEncoder) {
  auto backend = CreateBackend("eigen", BackendOptions{});
  ASSERT_TRUE(backend.ok());
  for (const char* arch : {"resnet18", "resnet34", "resnet50"}) {
    for (bool cifar : {false, true}) {
      ModelConfig m;
      m.set_arch(arch);
      m.set_width_multiplier(1.0f / 32);
      m.set_cifar_stem(cifar);
      m.set_in_channels(cifar ? 1 : 3);
      m.set_feature_dim(8);
      m.set_mlp_head(!cifar);
      auto state = ArchitectureState(**backend, m);
      ASSERT_TRUE(state.ok()) << state.status();
      auto inferred = InferModelConfig(*state, arch);
      ASSERT_TRUE(inferred.ok()) << inferred.status();
      EXPECT_EQ(inferred->SerializeAsString(), m.SerializeAsString()) << arch << " " << cifar;
    }
  }
  auto r18 = ArchitectureState(**backend, ModelConfig());
  ASSERT_TRUE(r18.ok());
  EXPECT_FALSE(InferModelConfig(*r18, "resnet18").ok());  // the default is a resnet50
}

double RelErr(const HostArray& got, const HostArray& want) {
  EXPECT_EQ(got.shape(), want.shape());
  double err = 0, scale = 0;
  for (int64_t i = 0; i < want.numel() && i < got.numel(); ++i) {
    err = std::max(err, std::abs(double(got.data()[i]) - want.data()[i]));
    scale = std::max(scale, std::abs(double(want.data()[i])));
  }
  return err / scale;
}

TEST(InteropTest, ImportReproducesTorchvisionForwardOnEveryBackend) {
  auto golden_bytes = ReadFileBytes(kDir + "golden.pth");
  ASSERT_TRUE(golden_bytes.ok());
  auto golden = LoadPickleFile(*golden_bytes, "golden.pth");
  ASSERT_TRUE(golden.ok()) << golden.status();
  const HostArray& input = DictGet(*golden->value, "input")->array;
  const HostArray& features = DictGet(*golden->value, "features")->array;
  const HostArray& output = DictGet(*golden->value, "output")->array;
  const ExperimentConfig config = ConfigFor(MustRead(kDir + "moco_v2_zip.pth").weights);
  for (const char* backend_name : {"eigen", "torch"}) {
    for (const char* file : {"moco_v2_zip.pth", "moco_v2_legacy.pth.tar"}) {
      SCOPED_TRACE(std::string(backend_name) + " " + file);
      auto backend = CreateBackend(backend_name, BackendOptions{});
      ASSERT_TRUE(backend.ok()) << backend.status();
      auto encoder = (*backend)->CreateEncoder(config.model(), 7);
      ASSERT_TRUE(encoder.ok()) << encoder.status();
      ASSERT_TRUE(InitEncoderFromFile(kDir + file, **encoder).ok());
      auto x = (*backend)->Upload(input);
      ASSERT_TRUE(x.ok());
      auto f = (*encoder)->BackboneFeatures(**x);
      ASSERT_TRUE(f.ok()) << f.status();
      auto out = (*encoder)->Forward(**x, /*train_bn=*/false, /*record_for_backward=*/false);
      ASSERT_TRUE(out.ok()) << out.status();
      const double ef = RelErr(*(*f)->ToHost(), features);
      const double eo = RelErr(*(*out)->ToHost(), output);
      std::cout << backend_name << " " << file << ": rel err features " << ef << ", output " << eo << "\n";
      EXPECT_LE(ef, 1e-5);
      EXPECT_LE(eo, 1e-5);
    }
  }
}

// facebookresearch/moco-v3's layout (testdata/make_moco_v3_file.py): the query encoder (base
// encoder + predictor) and the momentum encoder reproduce PyTorch's eval-mode outputs.
TEST(InteropTest, MocoV3FileReproducesItsForwardOnEveryBackend) {
  auto golden_bytes = ReadFileBytes(kDir + "moco_v3_golden.pth");
  ASSERT_TRUE(golden_bytes.ok());
  auto golden = LoadPickleFile(*golden_bytes, "moco_v3_golden.pth");
  ASSERT_TRUE(golden.ok()) << golden.status();
  const HostArray& input = DictGet(*golden->value, "input")->array;
  WeightsFile v3 = MustRead(kDir + "moco_v3_zip.pth");
  ASSERT_EQ(v3.format, Format::kMocoV3);
  EXPECT_EQ(v3.weights.epoch, 7);
  EXPECT_TRUE(v3.weights.query.count("predictor.3.weight"));
  EXPECT_FALSE(v3.weights.key.count("predictor.0.weight"));
  const ExperimentConfig config = ConfigFor(v3.weights);
  EXPECT_EQ(config.model().projector_hidden_dim(), 12);
  EXPECT_EQ(config.model().predictor_hidden_dim(), 12);
  EXPECT_EQ(config.model().feature_dim(), 8);
  for (const char* backend_name : {"eigen", "torch"}) {
    SCOPED_TRACE(backend_name);
    auto backend = CreateBackend(backend_name, BackendOptions{});
    ASSERT_TRUE(backend.ok()) << backend.status();
    auto query = (*backend)->CreateEncoder(config.model(), 7);
    ASSERT_TRUE(query.ok()) << query.status();
    ASSERT_TRUE(InitEncoderFromFile(kDir + "moco_v3_zip.pth", **query).ok());
    EncoderOptions key_options;
    key_options.with_predictor = false;
    auto key = (*backend)->CreateEncoder(config.model(), 8, key_options);
    ASSERT_TRUE(key.ok()) << key.status();
    ASSERT_TRUE((*key)->ImportState(v3.weights.key).ok());
    auto x = (*backend)->Upload(input);
    ASSERT_TRUE(x.ok());
    auto f = (*query)->BackboneFeatures(**x);
    auto q = (*query)->Forward(**x, /*train_bn=*/false, /*record_for_backward=*/false);
    auto k = (*key)->Forward(**x, /*train_bn=*/false, /*record_for_backward=*/false);
    ASSERT_TRUE(f.ok() && q.ok() && k.ok());
    const double ef = RelErr(*(*f)->ToHost(), DictGet(*golden->value, "features")->array);
    const double eq = RelErr(*(*q)->ToHost(), DictGet(*golden->value, "query")->array);
    const double ek = RelErr(*(*k)->ToHost(), DictGet(*golden->value, "key")->array);
    std::cout << backend_name << " moco-v3: rel err features " << ef << ", query " << eq
              << ", key " << ek << "\n";
    EXPECT_LE(ef, 1e-5);
    EXPECT_LE(eq, 1e-5);
    EXPECT_LE(ek, 1e-5);
  }
}

TEST(InteropTest, MocoV3RoundTripsAreBitExact) {
  WeightsFile v3 = MustRead(kDir + "moco_v3_zip.pth");
  const ExperimentConfig config = ConfigFor(v3.weights);
  ASSERT_TRUE(WriteWeightsFile(Tmp("v3.ckpt"), Format::kNative, v3.weights, config).ok());
  WeightsFile native = MustRead(Tmp("v3.ckpt"));
  ASSERT_TRUE(WriteWeightsFile(Tmp("v3.pth"), Format::kMocoV3, native.weights, *native.config).ok());
  WeightsFile back = MustRead(Tmp("v3.pth"));
  EXPECT_EQ(back.format, Format::kMocoV3);
  EXPECT_EQ(Diff(back.weights.query, v3.weights.query), "");
  EXPECT_EQ(Diff(back.weights.key, v3.weights.key), "");
  EXPECT_EQ(back.weights.arch, "resnet18");
  // torchvision export drops both heads.
  ASSERT_TRUE(WriteWeightsFile(Tmp("v3_tv.pth"), Format::kTorchvision, v3.weights, config).ok());
  for (const auto& [n, a] : MustRead(Tmp("v3_tv.pth")).weights.query) {
    EXPECT_TRUE(n.rfind("fc.", 0) != 0 && n.rfind("predictor.", 0) != 0) << n;
  }
}

TEST(InteropTest, HeadlessFilesKeepTheEncodersHead) {
  // The detectron2 file has no fc: the backbone comes from the file, the head stays.
  auto backend = CreateBackend("eigen", BackendOptions{});
  ASSERT_TRUE(backend.ok());
  const ExperimentConfig config = ConfigFor(MustRead(kDir + "moco_v2_zip.pth").weights);
  auto encoder = (*backend)->CreateEncoder(config.model(), 3);
  ASSERT_TRUE(encoder.ok());
  absl::StatusOr<NamedArrays> before = (*encoder)->ExportState();
  ASSERT_TRUE(InitEncoderFromFile(kDir + "moco_v2_d2.pkl", **encoder).ok());
  absl::StatusOr<NamedArrays> after = (*encoder)->ExportState();
  EXPECT_EQ(Diff(WithoutHead(*after), MustRead(kDir + "moco_v2_d2.pkl").weights.query), "");
  EXPECT_EQ(after->at("fc.2.weight"), before->at("fc.2.weight"));
}

// model.init_from: a real training method's state takes the file's encoders and queue and
// keeps its fresh optimizer state.
TEST(InteropTest, StateWithWeightsFromFileSetsQueryKeyAndQueue) {
  WeightsFile zip = MustRead(kDir + "moco_v2_zip.pth");
  ExperimentConfig config = ConfigFor(zip.weights);
  config.mutable_moco()->set_queue_size(static_cast<int32_t>(zip.weights.queue->shape()[0]));
  for (const char* name : {"eigen", "torch"}) {
    auto backend = CreateBackend(name, BackendOptions{});
    ASSERT_TRUE(backend.ok());
    auto method = CreateTrainingMethod(config, **backend);
    ASSERT_TRUE(method.ok()) << method.status();
    absl::StatusOr<NamedArrays> fresh = (*method)->ExportState();
    ASSERT_TRUE(fresh.ok());
    auto state = StateWithWeightsFromFile(kDir + "moco_v2_zip.pth", *fresh);
    ASSERT_TRUE(state.ok()) << state.status();
    ASSERT_TRUE((*method)->ImportState(*state).ok());
    absl::StatusOr<NamedArrays> after = (*method)->ExportState();
    NamedArrays q, k;
    for (const auto& [n, a] : *after) {
      if (n.rfind("query/", 0) == 0) q[n.substr(6)] = a;
      if (n.rfind("key/", 0) == 0) k[n.substr(4)] = a;
      if (n.rfind("optimizer/", 0) == 0) EXPECT_EQ(a, fresh->at(n)) << name << " " << n;
    }
    EXPECT_EQ(Diff(q, zip.weights.query), "") << name;
    EXPECT_EQ(Diff(k, zip.weights.key), "") << name;
    EXPECT_EQ(after->at("queue/queue"), *zip.weights.queue) << name;
    EXPECT_EQ(after->at("queue/queue_ptr").data()[0], 8.0f) << name;
  }
  // A queue of another size is refused with both shapes.
  config.mutable_moco()->set_queue_size(config.moco().queue_size() * 2);
  auto backend = CreateBackend("eigen", BackendOptions{});
  auto method = CreateTrainingMethod(config, **backend);
  ASSERT_TRUE(method.ok());
  auto state = StateWithWeightsFromFile(kDir + "moco_v2_zip.pth", *(*method)->ExportState());
  ASSERT_FALSE(state.ok());
  EXPECT_NE(state.status().message().find("queue has shape"), std::string::npos) << state.status();
}

TEST(InteropTest, RoundTripsAreBitExact) {
  WeightsFile zip = MustRead(kDir + "moco_v2_zip.pth");
  const ExperimentConfig config = ConfigFor(zip.weights);
  const std::string native = Tmp("a.ckpt");
  ASSERT_TRUE(WriteWeightsFile(native, Format::kNative, zip.weights, config).ok());
  WeightsFile start = MustRead(native);
  ASSERT_EQ(start.format, Format::kNative);
  const Checkpoint& original = *start.native;

  // native -> moco -> native: every array.
  ASSERT_TRUE(WriteWeightsFile(Tmp("b.pth"), Format::kMoco, start.weights, *start.config).ok());
  WeightsFile moco = MustRead(Tmp("b.pth"));
  ASSERT_TRUE(WriteWeightsFile(Tmp("c.ckpt"), Format::kNative, moco.weights, *start.config).ok());
  EXPECT_EQ(Diff(MustRead(Tmp("c.ckpt")).native->arrays, original.arrays), "");
  EXPECT_EQ(moco.weights.epoch, 3);

  // native -> torchvision -> native: the backbone.
  ASSERT_TRUE(WriteWeightsFile(Tmp("d.pth"), Format::kTorchvision, start.weights, *start.config).ok());
  WeightsFile tv = MustRead(Tmp("d.pth"));
  EXPECT_EQ(tv.format, Format::kTorchvision);
  EXPECT_EQ(Diff(tv.weights.query, WithoutHead(start.weights.query)), "");

  // native -> detectron2 -> read: the backbone.
  ASSERT_TRUE(WriteWeightsFile(Tmp("e.pkl"), Format::kDetectron2, start.weights, *start.config).ok());
  WeightsFile d2 = MustRead(Tmp("e.pkl"));
  EXPECT_EQ(d2.format, Format::kDetectron2);
  EXPECT_EQ(Diff(d2.weights.query, WithoutHead(start.weights.query)), "");
}

TEST(InteropTest, TheMocoLayoutRefusesANonSgdOptimizerStateInsteadOfMislabellingIt) {
  WeightsFile zip = MustRead(kDir + "moco_v2_zip.pth");
  ASSERT_FALSE(zip.weights.momentum.empty());
  ExperimentConfig lars = ConfigFor(zip.weights);
  lars.mutable_optimizer()->set_algorithm(OptimizerConfig::LARS);
  const std::string path = Tmp("lars.pth");
  const absl::Status refused = WriteWeightsFile(path, Format::kMoco, zip.weights, lars);
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.message().find("LARS (optimizer.algorithm)"), std::string::npos)
      << refused.message();
  EXPECT_NE(refused.message().find("--with_optimizer=false"), std::string::npos);
  EXPECT_FALSE(std::ifstream(path).good()) << "nothing may be written on refusal";
  // Without the optimizer the same weights are written.
  EXPECT_TRUE(WriteWeightsFile(path, Format::kMoco, zip.weights, lars, /*with_optimizer=*/false).ok());
  EXPECT_TRUE(MustRead(path).weights.momentum.empty());
}

TEST(InteropTest, MismatchedArchitectureNamesTheFirstEntryAndBothShapes) {
  WeightsFile zip = MustRead(kDir + "moco_v2_zip.pth");
  ModelConfig wider = ConfigFor(zip.weights).model();
  wider.set_width_multiplier(1.0f / 16);
  auto backend = CreateBackend("eigen", BackendOptions{});
  ASSERT_TRUE(backend.ok());
  auto expected = ArchitectureState(**backend, wider);
  ASSERT_TRUE(expected.ok()) << expected.status();
  const absl::Status s = MatchArchitecture(*expected, zip.weights.query, true, "f.pth");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("'conv1.weight' has shape (2, 3, 7, 7) in the file but the "
                             "architecture needs (4, 3, 7, 7)"), std::string::npos) << s;
  // An encoder refuses the file and keeps its weights.
  auto encoder = (*backend)->CreateEncoder(wider, 0);
  ASSERT_TRUE(encoder.ok());
  EXPECT_FALSE(InitEncoderFromFile(kDir + "moco_v2_zip.pth", **encoder).ok());
}

}  // namespace
}  // namespace interop
}  // namespace moco
