#include "moco/config/augmentation_presets.h"

namespace moco {
namespace {

AugmentationConfig PresetValues(AugmentationConfig::Preset preset) {
  AugmentationConfig a;
  a.set_preset(preset);
  a.set_crop_ratio_min(3.0f / 4.0f);
  a.set_crop_ratio_max(4.0f / 3.0f);
  a.set_crop_scale_max(1.0f);
  a.set_blur_sigma_min(0.1f);
  a.set_blur_sigma_max(2.0f);
  if (preset == AugmentationConfig::CUSTOM) {
    a.set_crop_scale_min(1.0f);
    a.set_crop_ratio_min(1.0f);
    a.set_crop_ratio_max(1.0f);
    a.set_hflip_prob(0);
    a.set_brightness(0);
    a.set_contrast(0);
    a.set_saturation(0);
    a.set_hue(0);
    a.set_color_jitter_prob(0);
    a.set_grayscale_prob(0);
    a.set_blur_prob(0);
    return a;
  }
  a.set_hflip_prob(0.5f);
  a.set_brightness(0.4f);
  a.set_contrast(0.4f);
  a.set_saturation(0.4f);
  a.set_grayscale_prob(0.2f);
  const bool cifar = preset == AugmentationConfig::CIFAR;
  a.set_crop_scale_min(cifar ? 0.08f : 0.2f);
  if (preset == AugmentationConfig::MOCO_V3) {
    // moco-v3 main_moco.py: augmentation1 (view 1) and augmentation2 (view 2); crop_min 0.08
    // by default (0.2 in its ResNet-50 recipes: set crop_scale_min).
    a.set_crop_scale_min(0.08f);
    a.set_saturation(0.2f);
    a.set_blur_prob(1.0f);
    a.set_view2_blur_prob(0.1f);
    a.set_solarize_prob(0.0f);
    a.set_view2_solarize_prob(0.2f);
  }
  a.set_hue(preset == AugmentationConfig::MOCO_V1 ? 0.4f : 0.1f);
  a.set_color_jitter_prob(preset == AugmentationConfig::MOCO_V1 ? 1.0f : 0.8f);
  if (preset != AugmentationConfig::MOCO_V3) {
    a.set_blur_prob(preset == AugmentationConfig::MOCO_V2 ? 0.5f : 0.0f);
  }
  if (cifar) {
    for (float m : {0.4914f, 0.4822f, 0.4465f}) a.add_normalize_mean(m);
    for (float s : {0.2470f, 0.2435f, 0.2616f}) a.add_normalize_std(s);
  } else {
    for (float m : {0.485f, 0.456f, 0.406f}) a.add_normalize_mean(m);
    for (float s : {0.229f, 0.224f, 0.225f}) a.add_normalize_std(s);
  }
  return a;
}

}  // namespace

AugmentationConfig ResolveAugmentation(const AugmentationConfig& config) {
  AugmentationConfig resolved = PresetValues(config.preset());
  // Explicit singular fields win; repeated fields win when non-empty.
  AugmentationConfig overrides = config;
  overrides.clear_normalize_mean();
  overrides.clear_normalize_std();
  resolved.MergeFrom(overrides);
  if (config.normalize_mean_size() > 0) *resolved.mutable_normalize_mean() = config.normalize_mean();
  if (config.normalize_std_size() > 0) *resolved.mutable_normalize_std() = config.normalize_std();
  return resolved;
}

}  // namespace moco
