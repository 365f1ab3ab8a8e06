#include "moco/validation/config_validator.h"

#include <functional>
#include <set>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "moco/config/config_io.h"
#include "moco/core/backend_registry.h"

namespace moco {
namespace {

// The validator asks the registry; two stand-in backends with their own device rules (the real
// backends' rules are tested in tests/backend_devices_test.cc).
absl::StatusOr<std::unique_ptr<Backend>> NotBuilt(const BackendOptions&) {
  return absl::UnimplementedError("a validator test stand-in");
}
std::string CpuOnly(const std::string& device) {
  return device == "cpu" ? "" : "must be \"cpu\" for the cpu_only backend";
}
std::string CpuOrCuda(const std::string& device) {
  return device == "cpu" || device == "cuda" ? "" : "must be \"cpu\" or \"cuda\"";
}
MOCO_REGISTER_BACKEND(cpu_only, NotBuilt, CpuOnly);
MOCO_REGISTER_BACKEND(gpu_capable, NotBuilt, CpuOrCuda,
                      BackendCapabilities{/*bf16=*/true, /*channels_last=*/true, /*fp16=*/true});

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// A small valid config whose dataset folder exists (the test's temp dir).
ExperimentConfig ValidConfig() {
  ExperimentConfig c;
  absl::Status s = ParseTextProto(R"pb(
    data {
      dataset: IDX
      image_size: 28
      augmentation { preset: CIFAR normalize_mean: 0.5 normalize_std: 0.5 }
    }
    model { arch: "resnet18" cifar_stem: true width_multiplier: 0.25 in_channels: 1 }
    moco { queue_size: 512 bn_splits: 4 }
    optimizer { schedule: MULTI_STEP milestones: 2 milestones: 3 }
    run { epochs: 4 batch_size: 64 }
    backend { name: "gpu_capable" }
  )pb", "valid", &c);
  EXPECT_TRUE(s.ok()) << s;
  c.mutable_data()->set_train_path(getenv("TEST_TMPDIR"));
  return c;
}

std::vector<std::string> ErrorFields(const ExperimentConfig& c) {
  std::vector<std::string> fields;
  for (const ConfigError& e : FindConfigErrors(c)) fields.push_back(e.field);
  return fields;
}

TEST(ConfigValidatorTest, ValidConfigHasNoErrors) {
  EXPECT_THAT(FindConfigErrors(ValidConfig()), IsEmpty());
  EXPECT_TRUE(ValidateExperimentConfig(ValidConfig()).ok());
}

TEST(ConfigValidatorTest, ReportsAllThreeMistakesAtOnceWithFieldPaths) {
  ExperimentConfig c = ValidConfig();
  c.mutable_moco()->set_queue_size(513);
  c.mutable_moco()->set_temperature(0);
  c.mutable_backend()->set_name("tensorflow");
  absl::Status s = ValidateExperimentConfig(c, {}, "my.pbtxt");
  ASSERT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  const std::string msg(s.message());
  EXPECT_THAT(msg, HasSubstr("my.pbtxt: 3 config errors"));
  EXPECT_THAT(msg, HasSubstr("moco.queue_size (513) must be a positive multiple of "
                             "run.batch_size (64)"));
  EXPECT_THAT(msg, HasSubstr("moco.temperature (0) must be > 0"));
  EXPECT_THAT(msg, HasSubstr("backend.name (tensorflow) is not a backend of this binary "
                             "(available: cpu_only, gpu_capable)"));
}

struct RuleCase {
  std::string name;
  std::function<void(ExperimentConfig&)> mutate;
  std::string field;  // the one field that must be reported
};

void PrintTo(const RuleCase& c, std::ostream* os) { *os << c.name; }

class ConfigRuleTest : public ::testing::TestWithParam<RuleCase> {};

TEST_P(ConfigRuleTest, BreakingOneRuleReportsExactlyThatField) {
  ExperimentConfig c = ValidConfig();
  GetParam().mutate(c);
  EXPECT_THAT(ErrorFields(c), ElementsAre(GetParam().field));
}

#define RULE(name, body, field) \
  RuleCase { #name, [](ExperimentConfig& c) { body; }, field }

INSTANTIATE_TEST_SUITE_P(
    AllRules, ConfigRuleTest,
    ::testing::Values(
        RULE(DatasetUnset, c.mutable_data()->clear_dataset(), "data.dataset"),
        RULE(TrainPathEmpty, c.mutable_data()->clear_train_path(), "data.train_path"),
        RULE(TrainPathMissing, c.mutable_data()->set_train_path("/no/such/dir"),
             "data.train_path"),
        RULE(TestPathMissing, c.mutable_data()->set_test_path("/no/such/dir"), "data.test_path"),
        RULE(ImageFolderNeedsTestPath,
             c.mutable_data()->set_dataset(DataConfig::IMAGE_FOLDER), "data.test_path"),
        RULE(ImageSizeZero, c.mutable_data()->set_image_size(0), "data.image_size"),
        RULE(NoWorkers, c.mutable_data()->set_num_workers(0), "data.num_workers"),
        RULE(NoPrefetch, c.mutable_data()->set_prefetch_batches(0), "data.prefetch_batches"),
        RULE(IdxNeedsOneChannel,
             {
               c.mutable_model()->set_in_channels(3);
               c.mutable_data()->mutable_augmentation()->add_normalize_mean(0.5);
               c.mutable_data()->mutable_augmentation()->add_normalize_mean(0.5);
               c.mutable_data()->mutable_augmentation()->add_normalize_std(0.5);
               c.mutable_data()->mutable_augmentation()->add_normalize_std(0.5);
             },
             "model.in_channels"),
        RULE(CifarNeedsThreeChannels, c.mutable_data()->set_dataset(DataConfig::CIFAR10),
             "model.in_channels"),
        RULE(ScaleMinAboveMax, c.mutable_data()->mutable_augmentation()->set_crop_scale_min(0.9);
             c.mutable_data()->mutable_augmentation()->set_crop_scale_max(0.5),
             "data.augmentation.crop_scale_min"),
        RULE(ScaleMaxAboveOne, c.mutable_data()->mutable_augmentation()->set_crop_scale_max(1.5),
             "data.augmentation.crop_scale_max"),
        RULE(RatioNonPositive, c.mutable_data()->mutable_augmentation()->set_crop_ratio_min(0),
             "data.augmentation.crop_ratio_min"),
        RULE(FlipProb, c.mutable_data()->mutable_augmentation()->set_hflip_prob(1.5),
             "data.augmentation.hflip_prob"),
        RULE(JitterProb, c.mutable_data()->mutable_augmentation()->set_color_jitter_prob(-0.1),
             "data.augmentation.color_jitter_prob"),
        RULE(GrayProb, c.mutable_data()->mutable_augmentation()->set_grayscale_prob(2),
             "data.augmentation.grayscale_prob"),
        RULE(BlurProb, c.mutable_data()->mutable_augmentation()->set_blur_prob(-1),
             "data.augmentation.blur_prob"),
        RULE(Brightness, c.mutable_data()->mutable_augmentation()->set_brightness(-0.4),
             "data.augmentation.brightness"),
        RULE(Contrast, c.mutable_data()->mutable_augmentation()->set_contrast(-0.4),
             "data.augmentation.contrast"),
        RULE(Saturation, c.mutable_data()->mutable_augmentation()->set_saturation(-0.4),
             "data.augmentation.saturation"),
        RULE(Hue, c.mutable_data()->mutable_augmentation()->set_hue(0.6),
             "data.augmentation.hue"),
        RULE(BlurSigma, c.mutable_data()->mutable_augmentation()->set_blur_sigma_min(0),
             "data.augmentation.blur_sigma_min"),
        RULE(NormalizeMeanPerChannel,
             c.mutable_data()->mutable_augmentation()->add_normalize_mean(0.5);
             c.mutable_data()->mutable_augmentation()->add_normalize_std(0.5),
             "data.augmentation.normalize_mean"),
        RULE(NormalizeStdCount, c.mutable_data()->mutable_augmentation()->add_normalize_std(0.5),
             "data.augmentation.normalize_std"),
        RULE(NormalizeStdPositive,
             c.mutable_data()->mutable_augmentation()->set_normalize_std(0, 0),
             "data.augmentation.normalize_std[0]"),
        RULE(UnknownArch, c.mutable_model()->set_arch("vgg16"), "model.arch"),
        RULE(ViTOptionOnResNet, c.mutable_model()->set_patch_size(4), "model.patch_size"),
        RULE(ResNetOptionOnViT,
             c.mutable_model()->set_arch("vit_micro"); c.mutable_model()->clear_width_multiplier();
             c.mutable_model()->set_image_size(28),
             "model.cifar_stem"),
        RULE(ViTImageSizeMatchesData,
             c.mutable_model()->set_arch("vit_micro"); c.mutable_model()->clear_cifar_stem();
             c.mutable_model()->clear_width_multiplier(),
             "model.image_size"),
        RULE(ViTPatchDividesImage,
             c.mutable_model()->set_arch("vit_micro"); c.mutable_model()->clear_cifar_stem();
             c.mutable_model()->clear_width_multiplier(); c.mutable_model()->set_image_size(28);
             c.mutable_model()->set_patch_size(5),
             "model.patch_size"),
        RULE(ProjectorLayers, c.mutable_model()->set_projector_layers(1),
             "model.projector_layers"),
        RULE(ProjectorLayersNeedV3Head, c.mutable_model()->set_projector_layers(3),
             "model.projector_layers"),
        RULE(WidthTooSmall, c.mutable_model()->set_width_multiplier(0.001),
             "model.width_multiplier"),
        RULE(FeatureDim, c.mutable_model()->set_feature_dim(0), "model.feature_dim"),
        RULE(QueueNotMultiple, c.mutable_moco()->set_queue_size(100), "moco.queue_size"),
        RULE(SymmetricQueueNotMultipleOfTwoBatches,
             c.mutable_moco()->set_queue_size(192); c.mutable_moco()->set_symmetric_loss(true),
             "moco.queue_size"),
        RULE(BnSplitsDivideBatch, c.mutable_moco()->set_bn_splits(5), "moco.bn_splits"),
        RULE(MomentumOne, c.mutable_moco()->set_momentum(1.0), "moco.momentum"),
        RULE(MomentumZero, c.mutable_moco()->set_momentum(0.0), "moco.momentum"),
        RULE(Temperature, c.mutable_moco()->set_temperature(-1), "moco.temperature"),
        RULE(Lr, c.mutable_optimizer()->set_lr(0), "optimizer.lr"),
        RULE(SgdMomentum, c.mutable_optimizer()->set_momentum(1), "optimizer.momentum"),
        RULE(WeightDecay, c.mutable_optimizer()->set_weight_decay(-1e-4),
             "optimizer.weight_decay"),
        RULE(Warmup, c.mutable_optimizer()->set_warmup_epochs(4), "optimizer.warmup_epochs"),
        RULE(MilestonesRequired, c.mutable_optimizer()->clear_milestones(),
             "optimizer.milestones"),
        RULE(MilestonesIncrease, c.mutable_optimizer()->set_milestones(1, 2),
             "optimizer.milestones[1]"),
        RULE(MilestoneBeyondEpochs, c.mutable_optimizer()->set_milestones(1, 9),
             "optimizer.milestones[1]"),
        RULE(Gamma, c.mutable_optimizer()->set_gamma(0), "optimizer.gamma"),
        RULE(LarsTrustCoefficient,
             c.mutable_optimizer()->set_algorithm(OptimizerConfig::LARS);
             c.mutable_optimizer()->set_lars_trust_coefficient(0),
             "optimizer.lars_trust_coefficient"),
        RULE(AdamBeta1, c.mutable_optimizer()->set_algorithm(OptimizerConfig::ADAMW);
             c.mutable_optimizer()->set_adam_beta1(1), "optimizer.adam_beta1"),
        RULE(AdamBeta1Negative, c.mutable_optimizer()->set_algorithm(OptimizerConfig::ADAMW);
             c.mutable_optimizer()->set_adam_beta1(-0.1), "optimizer.adam_beta1"),
        RULE(AdamBeta2, c.mutable_optimizer()->set_algorithm(OptimizerConfig::ADAMW);
             c.mutable_optimizer()->set_adam_beta2(1), "optimizer.adam_beta2"),
        RULE(AdamEps, c.mutable_optimizer()->set_algorithm(OptimizerConfig::ADAMW);
             c.mutable_optimizer()->set_adam_eps(0), "optimizer.adam_eps"),
        RULE(Epochs, c.mutable_run()->set_epochs(0); c.mutable_optimizer()->clear_milestones();
             c.mutable_optimizer()->set_schedule(OptimizerConfig::COSINE), "run.epochs"),
        RULE(BatchSize, c.mutable_run()->set_batch_size(0), "run.batch_size"),
        RULE(Threads, c.mutable_run()->set_threads(-1), "run.threads"),
        RULE(RunDir, c.mutable_run()->set_run_dir(""), "run.run_dir"),
        RULE(CheckpointCadence, c.mutable_run()->set_checkpoint_every_epochs(0),
             "run.checkpoint_every_epochs"),
        RULE(LogCadence, c.mutable_run()->set_log_every_steps(0), "run.log_every_steps"),
        RULE(GradientBucket, c.mutable_run()->set_gradient_bucket_mb(0), "run.gradient_bucket_mb"),
        RULE(KnnCadence, c.mutable_run()->set_knn_every_epochs(-1), "run.knn_every_epochs"),
        RULE(KnnK, c.mutable_run()->set_knn_k(0), "run.knn_k"),
        RULE(KnnTemperature, c.mutable_run()->set_knn_temperature(0), "run.knn_temperature"),
        RULE(KnnMaxTest, c.mutable_run()->set_knn_max_test_images(-5),
             "run.knn_max_test_images"),
        RULE(KnnMaxTrain, c.mutable_run()->set_knn_max_train_images(-1),
             "run.knn_max_train_images"),
        RULE(MaxSteps, c.mutable_run()->set_max_steps_per_epoch(-1), "run.max_steps_per_epoch"),
        RULE(UnknownBackend, c.mutable_backend()->set_name("jax"), "backend.name"),
        RULE(UnknownDevice, c.mutable_backend()->set_device("tpu"), "backend.device"),
        RULE(UnknownMethod, c.mutable_moco()->set_method("simclr"), "moco.method"),
        RULE(EachBackendJudgesItsDevice, c.mutable_backend()->set_name("cpu_only");
             c.mutable_backend()->set_device("cuda"), "backend.device")),
    [](const ::testing::TestParamInfo<RuleCase>& info) { return info.param.name; });

TEST(ConfigValidatorTest, BackendsMethodsAndDeviceRulesComeFromTheRegistries) {
  ExperimentConfig c = ValidConfig();
  c.mutable_backend()->set_name("cpu_only");
  c.mutable_backend()->set_device("cuda");
  c.mutable_moco()->set_method("byol");
  const auto errors = FindConfigErrors(c);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_THAT(errors[0].message, HasSubstr("(available: moco_v1, moco_v2, moco_v3)"));
  EXPECT_EQ(errors[1].message, "backend.device (cuda) must be \"cpu\" for the cpu_only backend");
  c.mutable_backend()->set_name("gpu_capable");
  c.mutable_moco()->set_method("moco_v1");
  EXPECT_THAT(FindConfigErrors(c), IsEmpty());
}

TEST(ConfigValidatorTest, OptimizerParametersAreCheckedForTheAlgorithmThatUsesThem) {
  ExperimentConfig c = ValidConfig();
  OptimizerConfig& o = *c.mutable_optimizer();
  o.set_lars_trust_coefficient(-1);  // SGD: LARS and AdamW fields are not used
  o.set_adam_beta1(1.5);
  o.set_adam_eps(0);
  EXPECT_THAT(FindConfigErrors(c), IsEmpty());
  o.set_algorithm(OptimizerConfig::LARS);
  EXPECT_THAT(ErrorFields(c), ElementsAre("optimizer.lars_trust_coefficient"));
  o.set_algorithm(OptimizerConfig::ADAMW);
  const auto errors = FindConfigErrors(c);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].message, "optimizer.adam_beta1 (1.5) must be in [0, 1)");
  EXPECT_EQ(errors[1].message, "optimizer.adam_eps (0) must be > 0 for ADAMW");
  o.set_adam_beta1(0);  // beta 0 is allowed (no averaging), as torch allows it
  o.set_adam_eps(1e-8);
  EXPECT_THAT(FindConfigErrors(c), IsEmpty());
}

// backend.precision and channels_last: against the backend's capabilities and the CPU's flags
// (given here, not this machine's, so the test means the same everywhere).
std::vector<ConfigError> BackendErrors(const std::string& name, const std::string& device,
                                       BackendConfig::Precision precision, bool channels_last,
                                       const std::set<std::string>& cpu_flags) {
  BackendConfig b;
  b.set_name(name);
  b.set_device(device);
  b.set_precision(precision);
  b.set_channels_last(channels_last);
  ConfigErrorList errors;
  CheckBackendConfig(b, errors, cpu_flags);
  return errors.Take();
}

TEST(ConfigValidatorTest, Bf16NeedsABackendThatHasItAndACpuWithBf16Instructions) {
  const std::set<std::string> amx = {"avx512f", "amx_bf16"}, avx512 = {"avx512f"};
  EXPECT_THAT(BackendErrors("gpu_capable", "cpu", BackendConfig::BF16, true, amx), IsEmpty());
  EXPECT_THAT(BackendErrors("gpu_capable", "cpu", BackendConfig::BF16, false, {"avx512_bf16"}),
              IsEmpty());
  EXPECT_THAT(BackendErrors("gpu_capable", "cuda", BackendConfig::BF16, false, avx512), IsEmpty());

  auto errors = BackendErrors("gpu_capable", "cpu", BackendConfig::BF16, false, avx512);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].field, "backend.precision");
  EXPECT_THAT(errors[0].message, HasSubstr("avx512_bf16 or amx_bf16; this one has neither"));

  errors = BackendErrors("cpu_only", "cpu", BackendConfig::BF16, true, amx);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].field, "backend.precision");
  EXPECT_THAT(errors[0].message, HasSubstr("not offered by the cpu_only backend"));
  EXPECT_EQ(errors[1].field, "backend.channels_last");

}

TEST(ConfigValidatorTest, Fp16RunsOnCudaOnlyAndTheCpuErrorSaysWhatToUse) {
  const std::set<std::string> amx = {"avx512f", "avx512_fp16", "amx_bf16"};
  EXPECT_THAT(BackendErrors("gpu_capable", "cuda", BackendConfig::FP16, true, amx), IsEmpty());

  auto errors = BackendErrors("gpu_capable", "cpu", BackendConfig::FP16, false, amx);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].field, "backend.precision");
  EXPECT_THAT(errors[0].message, HasSubstr("backend.precision (FP16) needs backend.device \"cuda\""));
  EXPECT_THAT(errors[0].message, HasSubstr("has avx512_fp16, but no LibTorch 1.13 kernel uses it"));
  EXPECT_THAT(errors[0].message, HasSubstr("use BF16"));

  errors = BackendErrors("cpu_only", "cpu", BackendConfig::FP16, false, amx);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0].message, HasSubstr("(FP16) is not offered by the cpu_only backend"));
}

TEST(ConfigValidatorTest, LossScalingOptionsAreChecked) {
  BackendConfig b;
  b.set_name("gpu_capable");
  LossScalingConfig* s = b.mutable_loss_scaling();
  s->set_init_scale(0);
  s->set_growth_factor(1);
  s->set_backoff_factor(1.5f);
  s->set_growth_interval(0);
  ConfigErrorList list;
  CheckBackendConfig(b, list, {});
  const std::vector<ConfigError> errors = list.Take();
  ASSERT_EQ(errors.size(), 4u);
  EXPECT_EQ(errors[0].field, "backend.loss_scaling.init_scale");
  EXPECT_THAT(errors[0].message, HasSubstr("init_scale (0) must be finite and > 0"));
  EXPECT_EQ(errors[1].field, "backend.loss_scaling.growth_factor");
  EXPECT_EQ(errors[2].field, "backend.loss_scaling.backoff_factor");
  EXPECT_THAT(errors[2].message, HasSubstr("(1.5) must be in (0, 1)"));
  EXPECT_EQ(errors[3].field, "backend.loss_scaling.growth_interval");
  // The defaults (GradScaler's) pass.
  b.clear_loss_scaling();
  ConfigErrorList defaults;
  CheckBackendConfig(b, defaults, {});
  EXPECT_THAT(defaults.Take(), IsEmpty());
}

ExperimentConfig ValidV3Config() {
  ExperimentConfig c = ValidConfig();
  c.clear_moco();
  c.mutable_moco()->set_method("moco_v3");
  c.mutable_model()->set_projector_hidden_dim(64);
  c.mutable_model()->set_predictor_hidden_dim(64);
  return c;
}

TEST(ConfigValidatorTest, V3RejectsQueueFieldsInsteadOfIgnoringThem) {
  ExperimentConfig c = ValidV3Config();
  EXPECT_THAT(FindConfigErrors(c), IsEmpty());
  c.mutable_moco()->set_queue_size(512);
  c.mutable_moco()->set_bn_splits(4);
  c.mutable_moco()->set_symmetric_loss(true);
  c.mutable_model()->set_predictor_hidden_dim(0);
  EXPECT_THAT(ErrorFields(c), ElementsAre("moco.queue_size", "moco.bn_splits",
                                          "moco.symmetric_loss", "model.predictor_hidden_dim"));
  // bn_splits 1 says what v3 does anyway: accepted.
  ExperimentConfig ok = ValidV3Config();
  ok.mutable_moco()->set_bn_splits(1);
  EXPECT_THAT(FindConfigErrors(ok), IsEmpty());
}

TEST(ConfigValidatorTest, V3UnderDataParallelismNeedsAnEvenSplitOnly) {
  ValidationOptions world;
  world.world_size = 2;
  ExperimentConfig c = ValidV3Config();
  c.mutable_run()->set_batch_size(64);
  EXPECT_THAT(FindConfigErrors(c, world), IsEmpty());  // SyncBatchNorm over the 2 processes
  c.mutable_run()->set_batch_size(65);
  const auto errors = FindConfigErrors(c, world);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].field, "run.batch_size");
  EXPECT_THAT(errors[0].message, HasSubstr("multiple of the world size"));
}

TEST(ConfigValidatorTest, V3HeadsBelongToV3) {
  ExperimentConfig c = ValidConfig();
  c.mutable_model()->set_projector_hidden_dim(64);
  c.mutable_model()->set_predictor_hidden_dim(64);
  const auto errors = FindConfigErrors(c);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].field, "model.projector_hidden_dim");
  EXPECT_THAT(errors[1].message, HasSubstr("the queue step has no predictor"));
}

// Data parallelism: run.batch_size (64) is the global batch; bn_splits (4) splits each
// process's share.
TEST(ConfigValidatorTest, DataParallelRulesNameTheFieldsAndTheWorldSize) {
  ValidationOptions world;
  for (int w : {1, 2, 4, 16}) {
    world.world_size = w;
    EXPECT_THAT(FindConfigErrors(ValidConfig(), world), IsEmpty()) << "world " << w;
  }
  ExperimentConfig c = ValidConfig();
  world.world_size = 3;
  std::vector<ConfigError> errors = FindConfigErrors(c, world);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].message,
            "run.batch_size (64) is the global batch and must be a multiple of the world "
            "size: 3 processes (WORLD_SIZE)");
  world.world_size = 32;  // 2 images per process cannot make 4 BN groups
  errors = FindConfigErrors(c, world);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].message,
            "moco.bn_splits (4) must divide each process's batch (run.batch_size 64 / 32 "
            "processes (WORLD_SIZE) = 2)");
  // The queue rule is on the global keys per step, whatever the world.
  world.world_size = 2;
  c.mutable_moco()->set_queue_size(96);
  errors = FindConfigErrors(c, world);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].field, "moco.queue_size");
  EXPECT_THAT(errors[0].message, HasSubstr("multiple of run.batch_size (64)"));
  // The online probe trains on the all-gathered global batch: allowed on any world.
  c = ValidConfig();
  c.mutable_run()->mutable_online_probe()->set_enabled(true);
  EXPECT_THAT(FindConfigErrors(c, world), IsEmpty());
}

TEST(ConfigValidatorTest, PathChecksCanBeTurnedOff) {
  ExperimentConfig c = ValidConfig();
  c.mutable_data()->set_train_path("/data/elsewhere");
  ValidationOptions options;
  options.check_paths = false;
  EXPECT_THAT(FindConfigErrors(c, options), IsEmpty());
}

}  // namespace
}  // namespace moco
