// The MoCo augmentation recipes as parameter sets.
//
//   AugmentationConfig aug = ResolveAugmentation(config.data().augmentation());
//   // every field of `aug` is now set: the preset's value, or the user's where they set one.
#ifndef MOCO_CONFIG_AUGMENTATION_PRESETS_H_
#define MOCO_CONFIG_AUGMENTATION_PRESETS_H_

#include "moco/config/config.pb.h"

namespace moco {

// Returns the preset's full parameter set with every field explicitly set in `config`
// (has_*() true, or a non-empty repeated field) taking precedence. CUSTOM starts from
// "no augmentation": full-image crop, no flip, jitter, grayscale or blur, no normalization.
//
// Preset values (torchvision operations as in the papers and the official CIFAR demo):
//   MOCO_V1: RandomResizedCrop(scale 0.2-1), RandomGrayscale(0.2), ColorJitter(0.4,0.4,0.4,0.4)
//            always applied, flip 0.5; ImageNet normalization.
//   MOCO_V2: RandomResizedCrop(0.2-1), ColorJitter(0.4,0.4,0.4,0.1) with p 0.8,
//            RandomGrayscale(0.2), GaussianBlur(sigma 0.1-2.0) with p 0.5, flip 0.5; ImageNet
//            normalization.
//   CIFAR:   RandomResizedCrop(0.08-1, torchvision's default), ColorJitter(0.4,0.4,0.4,0.1)
//            with p 0.8, RandomGrayscale(0.2), flip 0.5, no blur; CIFAR-10 normalization.
// Aspect ratio range is 3/4..4/3 in all of them.
AugmentationConfig ResolveAugmentation(const AugmentationConfig& config);

}  // namespace moco

#endif  // MOCO_CONFIG_AUGMENTATION_PRESETS_H_
