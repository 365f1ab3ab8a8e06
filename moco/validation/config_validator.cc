#include "moco/validation/config_validator.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "moco/config/augmentation_presets.h"
#include "moco/core/backend_registry.h"
#include "moco/core/dynamic_loss_scale.h"
#include "moco/core/method_registry.h"
#include "moco/core/model_spec.h"

namespace moco {
namespace {

bool Contains(const std::vector<std::string>& list, const std::string& s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

void CheckProbability(ConfigErrorList& e, const std::string& field, float p) {
  e.Require(p >= 0 && p <= 1, field, p, "must be a probability in [0, 1]");
}

void CheckDataChannels(const ExperimentConfig& c, ConfigErrorList& e) {
  const DataConfig& d = c.data();
  const int channels = c.model().in_channels();
  if (d.dataset() == DataConfig::IDX) {
    e.Require(channels == 1, "model.in_channels", channels, "must be 1 for IDX (grayscale) data");
  } else if (d.dataset() == DataConfig::CIFAR10 || d.dataset() == DataConfig::CIFAR100) {
    e.Require(channels == 3, "model.in_channels", channels, "must be 3 for CIFAR (RGB) data");
  }
}

}  // namespace

void CheckDataConfig(const DataConfig& d, int in_channels, bool check_paths, ConfigErrorList& e) {
  e.Require(d.dataset() != DataConfig::DATASET_UNSPECIFIED, "data.dataset",
            DataConfig::Dataset_Name(d.dataset()),
            "must be set to IDX, CIFAR10, CIFAR100 or IMAGE_FOLDER");
  if (d.train_path().empty()) {
    e.Add("data.train_path", "data.train_path must be set");
  } else if (check_paths) {
    e.Require(std::filesystem::exists(d.train_path()), "data.train_path", d.train_path(),
              "does not exist");
  }
  if (!d.test_path().empty() && check_paths) {
    e.Require(std::filesystem::exists(d.test_path()), "data.test_path", d.test_path(),
              "does not exist");
  }
  if (d.dataset() == DataConfig::IMAGE_FOLDER && d.test_path().empty()) {
    e.Add("data.test_path", "data.test_path must be set for IMAGE_FOLDER (a held-out folder)");
  }
  e.Require(d.image_size() > 0 && d.image_size() <= 4096, "data.image_size", d.image_size(),
            "must be in [1, 4096] pixels");
  e.Require(d.num_workers() >= 1 && d.num_workers() <= 256, "data.num_workers", d.num_workers(),
            "must be in [1, 256]");
  e.Require(d.prefetch_batches() >= 1 && d.prefetch_batches() <= 64, "data.prefetch_batches",
            d.prefetch_batches(), "must be in [1, 64]");
  const AugmentationConfig a = ResolveAugmentation(d.augmentation());
  const std::string p = "data.augmentation.";
  e.Require(a.crop_scale_min() > 0 && a.crop_scale_min() <= a.crop_scale_max(),
            p + "crop_scale_min", a.crop_scale_min(), "must be in (0, crop_scale_max]");
  e.Require(a.crop_scale_max() <= 1, p + "crop_scale_max", a.crop_scale_max(),
            "must be at most 1 (a fraction of the image area)");
  e.Require(a.crop_ratio_min() > 0 && a.crop_ratio_min() <= a.crop_ratio_max(),
            p + "crop_ratio_min", a.crop_ratio_min(), "must be in (0, crop_ratio_max]");
  CheckProbability(e, p + "hflip_prob", a.hflip_prob());
  CheckProbability(e, p + "color_jitter_prob", a.color_jitter_prob());
  CheckProbability(e, p + "grayscale_prob", a.grayscale_prob());
  CheckProbability(e, p + "blur_prob", a.blur_prob());
  CheckProbability(e, p + "solarize_prob", a.solarize_prob());
  CheckProbability(e, p + "view2_blur_prob", a.view2_blur_prob());
  CheckProbability(e, p + "view2_solarize_prob", a.view2_solarize_prob());
  e.Require(a.brightness() >= 0, p + "brightness", a.brightness(), "must be >= 0");
  e.Require(a.contrast() >= 0, p + "contrast", a.contrast(), "must be >= 0");
  e.Require(a.saturation() >= 0, p + "saturation", a.saturation(), "must be >= 0");
  e.Require(a.hue() >= 0 && a.hue() <= 0.5f, p + "hue", a.hue(), "must be in [0, 0.5]");
  e.Require(a.blur_sigma_min() > 0 && a.blur_sigma_min() <= a.blur_sigma_max(),
            p + "blur_sigma_min", a.blur_sigma_min(), "must be in (0, blur_sigma_max]");
  if (in_channels > 0) {
    e.Require(a.normalize_mean_size() == in_channels, p + "normalize_mean",
              absl::StrCat(a.normalize_mean_size(), " values"),
              absl::StrCat("must have one value per channel (model.in_channels = ", in_channels,
                           ")"));
  } else {
    e.Require(a.normalize_mean_size() == 1 || a.normalize_mean_size() == 3, p + "normalize_mean",
              absl::StrCat(a.normalize_mean_size(), " values"),
              "must have 1 or 3 values (one per image channel)");
  }
  e.Require(a.normalize_std_size() == a.normalize_mean_size(), p + "normalize_std",
            absl::StrCat(a.normalize_std_size(), " values"),
            "must have as many values as normalize_mean");
  for (int i = 0; i < a.normalize_std_size(); ++i) {
    e.Require(a.normalize_std(i) > 0, absl::StrCat(p, "normalize_std[", i, "]"),
              a.normalize_std(i), "must be > 0");
  }
}

namespace {

// ViT-only fields with a ResNet and ResNet-only fields with a ViT are errors, not ignored.
void CheckViTFields(const ExperimentConfig& c, ConfigErrorList& e) {
  const ModelConfig& m = c.model();
  const ViTArchitecture* vit = FindViTArchitecture(m.arch());
  const std::vector<std::pair<const char*, bool>> vit_only = {
      {"image_size", m.has_image_size()},
      {"patch_size", m.has_patch_size()},
      {"stop_grad_conv1", m.has_stop_grad_conv1()}};
  const std::vector<std::pair<const char*, bool>> resnet_only = {
      {"cifar_stem", m.has_cifar_stem()},
      {"width_multiplier", m.has_width_multiplier()},
      {"zero_init_residual", m.has_zero_init_residual()}};
  for (const auto& [field, set] : vit == nullptr ? vit_only : resnet_only) {
    if (!set) continue;
    e.Add(absl::StrCat("model.", field),
          absl::StrCat("model.", field, " is a ", vit == nullptr ? "ViT" : "ResNet",
                       " option but model.arch (", m.arch(), ") is a ",
                       vit == nullptr ? "ResNet" : "ViT", ": remove it"));
  }
  if (vit == nullptr) return;
  const int patch = m.patch_size() == 0 ? static_cast<int>(vit->default_patch_size)
                                        : m.patch_size();
  e.Require(patch >= 1 && m.image_size() >= 1 && m.image_size() % patch == 0, "model.patch_size",
            patch, absl::StrCat("must divide model.image_size (", m.image_size(), ")"));
  e.Require(m.image_size() == c.data().image_size(), "model.image_size", m.image_size(),
            absl::StrCat("must equal data.image_size (", c.data().image_size(),
                         "): the ViT's position embedding has one entry per patch of that "
                         "input"));
}

void CheckModel(const ExperimentConfig& c, ConfigErrorList& e) {
  const ModelConfig& m = c.model();
  e.Require(FindResNetArchitecture(m.arch()) != nullptr || FindViTArchitecture(m.arch()) != nullptr,
            "model.arch", m.arch(),
            absl::StrCat("is not a known architecture (known: ",
                         absl::StrJoin(ResNetArchitectureNames(), ", "), ", ",
                         absl::StrJoin(ViTArchitectureNames(), ", "), ")"));
  CheckViTFields(c, e);
  e.Require(m.projector_layers() == 0 || m.projector_layers() >= 2, "model.projector_layers",
            m.projector_layers(), "must be 0 (the arch's default: ResNet 2, ViT 3) or >= 2");
  e.Require(m.projector_layers() < 2 || m.projector_hidden_dim() > 0, "model.projector_layers",
            m.projector_layers(), "needs the v3 projector (model.projector_hidden_dim > 0)");
  // The narrowest stage has kStageBaseWidths[0] (64) * width channels; it must keep at least
  // one channel without the rounding's help.
  e.Require(m.width_multiplier() > 0 && kStageBaseWidths[0] * m.width_multiplier() >= 1,
            "model.width_multiplier", m.width_multiplier(),
            absl::StrCat("must be >= 1/", kStageBaseWidths[0]));
  e.Require(m.in_channels() == 1 || m.in_channels() == 3, "model.in_channels", m.in_channels(),
            "must be 1 or 3");
  e.Require(m.feature_dim() > 0, "model.feature_dim", m.feature_dim(), "must be > 0");
}

// MoCo v3: no queue, no shuffling BN, always symmetric; fields that mean nothing to it are
// errors when set, not silently ignored.
void CheckMocoV3(const ExperimentConfig& c, ConfigErrorList& e) {
  const MocoConfig& m = c.moco();
  if (m.has_queue_size()) {
    e.Add("moco.queue_size", "moco.queue_size is set but moco_v3 has no queue: remove it");
  }
  if (m.has_bn_splits() && m.bn_splits() != 1) {
    e.Add("moco.bn_splits", absl::StrCat("moco.bn_splits (", m.bn_splits(),
                                         ") must be 1 for moco_v3: its BatchNorm normalizes over "
                                         "the whole batch (SyncBN), without shuffling"));
  }
  if (m.has_symmetric_loss()) {
    e.Add("moco.symmetric_loss",
          "moco.symmetric_loss is set but the moco_v3 loss is always symmetric: remove it");
  }
  e.Require(c.model().projector_hidden_dim() > 0, "model.projector_hidden_dim",
            c.model().projector_hidden_dim(), "must be > 0 for moco_v3 (v3: 4096)");
  e.Require(c.model().predictor_hidden_dim() > 0, "model.predictor_hidden_dim",
            c.model().predictor_hidden_dim(), "must be > 0 for moco_v3 (v3: 4096)");
  e.Require(c.run().batch_size() >= 2, "run.batch_size", c.run().batch_size(),
            "must be >= 2 for moco_v3 (training-mode BatchNorm over the batch)");
}

void CheckMocoQueue(const ExperimentConfig& c, ConfigErrorList& e) {
  const MocoConfig& m = c.moco();
  const int batch = c.run().batch_size();
  const int keys_per_step = m.symmetric_loss() ? 2 * batch : batch;
  if (batch > 0) {
    e.Require(m.queue_size() > 0 && m.queue_size() % keys_per_step == 0, "moco.queue_size",
              m.queue_size(),
              m.symmetric_loss()
                  ? absl::StrCat("must be a positive multiple of 2 * run.batch_size (",
                                 keys_per_step, "): symmetric_loss enqueues both key batches")
                  : absl::StrCat("must be a positive multiple of run.batch_size (", batch, ")"));
    e.Require(m.bn_splits() >= 1 && batch % std::max(1, m.bn_splits()) == 0, "moco.bn_splits",
              m.bn_splits(), absl::StrCat("must be >= 1 and divide run.batch_size (", batch, ")"));
  }
  const std::string method = absl::StrCat(" (moco.method \"", m.method(), "\")");
  e.Require(c.model().projector_hidden_dim() == 0, "model.projector_hidden_dim",
            c.model().projector_hidden_dim(),
            "must be 0: the v3 heads belong to moco.method \"moco_v3\"" + method);
  e.Require(c.model().predictor_hidden_dim() == 0, "model.predictor_hidden_dim",
            c.model().predictor_hidden_dim(),
            "must be 0: the queue step has no predictor" + method);
}

void CheckMoco(const ExperimentConfig& c, ConfigErrorList& e) {
  const MocoConfig& m = c.moco();
  if (m.method() == "moco_v3") {
    CheckMocoV3(c, e);
  } else {
    CheckMocoQueue(c, e);
  }
  e.Require(m.momentum() > 0 && m.momentum() < 1, "moco.momentum", m.momentum(),
            "must be in (0, 1)");
  e.Require(m.temperature() > 0, "moco.temperature", m.temperature(), "must be > 0");
  const std::vector<std::string> methods = RegisteredMethodNames();
  e.Require(Contains(methods, m.method()), "moco.method", m.method(),
            absl::StrCat("is not a training method of this binary (available: ",
                         absl::StrJoin(methods, ", "), ")"));
}

void CheckOptimizer(const ExperimentConfig& c, ConfigErrorList& e) {
  const OptimizerConfig& o = c.optimizer();
  e.Require(o.lr() > 0, "optimizer.lr", o.lr(), "must be > 0");
  e.Require(o.momentum() >= 0 && o.momentum() < 1, "optimizer.momentum", o.momentum(),
            "must be in [0, 1)");
  e.Require(o.weight_decay() >= 0, "optimizer.weight_decay", o.weight_decay(), "must be >= 0");
  e.Require(o.warmup_epochs() >= 0 &&
                (c.run().epochs() <= 0 || o.warmup_epochs() < c.run().epochs()),
            "optimizer.warmup_epochs", o.warmup_epochs(), "must be in [0, run.epochs)");
  if (o.algorithm() == OptimizerConfig::LARS) {
    e.Require(o.lars_trust_coefficient() > 0, "optimizer.lars_trust_coefficient",
              o.lars_trust_coefficient(), "must be > 0 for LARS");
  }
  if (o.algorithm() == OptimizerConfig::ADAMW) {
    e.Require(o.adam_beta1() >= 0 && o.adam_beta1() < 1, "optimizer.adam_beta1", o.adam_beta1(),
              "must be in [0, 1)");
    e.Require(o.adam_beta2() >= 0 && o.adam_beta2() < 1, "optimizer.adam_beta2", o.adam_beta2(),
              "must be in [0, 1)");
    e.Require(o.adam_eps() > 0, "optimizer.adam_eps", o.adam_eps(), "must be > 0 for ADAMW");
  }
  if (o.schedule() == OptimizerConfig::MULTI_STEP) {
    if (o.milestones_size() == 0) {
      e.Add("optimizer.milestones", "optimizer.milestones must be set for MULTI_STEP");
    }
    for (int i = 0; i < o.milestones_size(); ++i) {
      const int prev = i == 0 ? 0 : o.milestones(i - 1);
      e.Require(o.milestones(i) > prev && o.milestones(i) <= c.run().epochs(),
                absl::StrCat("optimizer.milestones[", i, "]"), o.milestones(i),
                "must increase and lie in [1, run.epochs]");
    }
    e.Require(o.gamma() > 0 && o.gamma() <= 1, "optimizer.gamma", o.gamma(),
              "must be in (0, 1]");
  }
}

void CheckRun(const ExperimentConfig& c, ConfigErrorList& e) {
  const RunConfig& r = c.run();
  e.Require(r.epochs() > 0, "run.epochs", r.epochs(), "must be > 0");
  e.Require(r.batch_size() > 0, "run.batch_size", r.batch_size(), "must be > 0");
  e.Require(r.threads() >= 0, "run.threads", r.threads(), "must be >= 0 (0 = all cores)");
  if (r.run_dir().empty()) e.Add("run.run_dir", "run.run_dir must be set");
  e.Require(r.checkpoint_every_epochs() >= 1, "run.checkpoint_every_epochs",
            r.checkpoint_every_epochs(), "must be >= 1");
  e.Require(r.log_every_steps() >= 1, "run.log_every_steps", r.log_every_steps(),
            "must be >= 1");
  e.Require(r.knn_every_epochs() >= 0, "run.knn_every_epochs", r.knn_every_epochs(),
            "must be >= 0");
  e.Require(r.knn_k() >= 1, "run.knn_k", r.knn_k(), "must be >= 1");
  e.Require(r.knn_temperature() > 0, "run.knn_temperature", r.knn_temperature(),
            "must be > 0");
  e.Require(r.knn_max_test_images() >= 0, "run.knn_max_test_images", r.knn_max_test_images(),
            "must be >= 0");
  e.Require(r.knn_max_train_images() >= 0, "run.knn_max_train_images",
            r.knn_max_train_images(), "must be >= 0");
  e.Require(r.max_steps_per_epoch() >= 0, "run.max_steps_per_epoch", r.max_steps_per_epoch(),
            "must be >= 0");
  e.Require(r.gradient_bucket_mb() > 0 && r.gradient_bucket_mb() <= 4096,
            "run.gradient_bucket_mb", r.gradient_bucket_mb(), "must be in (0, 4096] MiB");
  const OnlineProbeConfig& probe = r.online_probe();
  if (probe.enabled()) {
    e.Require(probe.lr() > 0, "run.online_probe.lr", probe.lr(), "must be > 0");
    e.Require(probe.momentum() >= 0 && probe.momentum() < 1, "run.online_probe.momentum",
              probe.momentum(), "must be in [0, 1)");
    e.Require(probe.weight_decay() >= 0, "run.online_probe.weight_decay", probe.weight_decay(),
              "must be >= 0");
  }
}

// Data parallelism: run.batch_size is the global batch, split evenly over the processes; each
// process's share is further split into moco.bn_splits BN groups. moco.queue_size needs no rule
// of its own here: every process enqueues the all-gathered keys, run.batch_size of them per key
// batch, which CheckMoco's multiple-of-run.batch_size rule already covers.
void CheckDataParallel(const ExperimentConfig& c, int world, ConfigErrorList& e) {
  if (world <= 1) return;
  const int batch = c.run().batch_size();
  const std::string processes = absl::StrCat(world, " processes (WORLD_SIZE)");
  if (batch > 0) {
    e.Require(batch % world == 0, "run.batch_size", batch,
              absl::StrCat("is the global batch and must be a multiple of the world size: ",
                           processes));
    const int splits = c.moco().method() == "moco_v3" ? 1 : c.moco().bn_splits();  // v3: SyncBN
    if (batch % world == 0 && splits >= 1) {
      const int local = batch / world;
      e.Require(local % splits == 0, "moco.bn_splits", splits,
                absl::StrCat("must divide each process's batch (run.batch_size ", batch, " / ",
                             processes, " = ", local, ")"));
    }
  }
}

}  // namespace

void CheckBackendConfig(const BackendConfig& b, ConfigErrorList& e,
                        const std::set<std::string>& cpu_flags) {
  const std::vector<std::string> known = RegisteredBackendNames();
  if (!Contains(known, b.name())) {
    e.Add("backend.name", absl::StrCat("backend.name (", b.name(),
                                       ") is not a backend of this binary (available: ",
                                       absl::StrJoin(known, ", "), ")"));
    return;
  }
  // Each backend judges its own device strings.
  absl::StatusOr<std::string> problem = DeviceProblem(b.name(), b.device());
  if (problem.ok() && !problem->empty()) {
    e.Add("backend.device", absl::StrCat("backend.device (", b.device(), ") ", *problem));
  }
  absl::StatusOr<BackendCapabilities> can = Capabilities(b.name());
  if (!can.ok()) return;
  if (b.precision() == BackendConfig::FP16) {
    if (!can->fp16) {
      e.Add("backend.precision", absl::StrCat("backend.precision (FP16) is not offered by the ",
                                              b.name(), " backend (FP32 only; FP16 runs on torch)"));
    } else if (!absl::StartsWith(b.device(), "cuda")) {
      e.Add("backend.precision",
            absl::StrCat("backend.precision (FP16) ", Fp16CpuProblem(cpu_flags)));
    }
  } else if (b.precision() == BackendConfig::BF16) {
    if (!can->bf16) {
      e.Add("backend.precision", absl::StrCat("backend.precision (BF16) is not offered by the ",
                                              b.name(), " backend (FP32 only; BF16 runs on torch)"));
    } else if (!absl::StartsWith(b.device(), "cuda")) {
      const std::string cpu = Bf16CpuProblem(cpu_flags);
      if (!cpu.empty()) e.Add("backend.precision", absl::StrCat("backend.precision (BF16) ", cpu));
    }
  }
  for (const auto& [option, problem] :
       LossScaleOptionProblems(LossScaleOptionsFromConfig(b.loss_scaling()))) {
    e.Add("backend.loss_scaling." + option, "backend.loss_scaling." + problem);
  }
  if (b.channels_last() && !can->channels_last) {
    e.Add("backend.channels_last", absl::StrCat("backend.channels_last (true) is not offered by the ",
                                                b.name(), " backend (NCHW only)"));
  }
}

std::vector<ConfigError> FindConfigErrors(const ExperimentConfig& config,
                                          const ValidationOptions& options) {
  ConfigErrorList errors;
  CheckDataConfig(config.data(), config.model().in_channels(), options.check_paths, errors);
  CheckDataChannels(config, errors);
  CheckModel(config, errors);
  CheckMoco(config, errors);
  CheckOptimizer(config, errors);
  CheckRun(config, errors);
  CheckBackendConfig(config.backend(), errors);
  CheckDataParallel(config, options.world_size, errors);
  return errors.Take();
}

absl::Status ValidateExperimentConfig(const ExperimentConfig& config,
                                      const ValidationOptions& options,
                                      const std::string& source) {
  return ConfigErrorsToStatus(FindConfigErrors(config, options), source);
}

}  // namespace moco
