#include "moco/core/vit_spec.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace moco {

const std::vector<ViTArchitecture>& ViTArchitectures() {
  static const auto* const kArchitectures = new std::vector<ViTArchitecture>{
      {"vit_micro", 128, 4, 4, 4, 4},
      {"vit_tiny", 192, 12, 3, 4, 16},
      {"vit_small", 384, 12, 12, 4, 16},
      {"vit_base", 768, 12, 12, 4, 16},
  };
  return *kArchitectures;
}

std::vector<std::string> ViTArchitectureNames() {
  std::vector<std::string> names;
  for (const ViTArchitecture& a : ViTArchitectures()) names.push_back(a.name);
  return names;
}

const ViTArchitecture* FindViTArchitecture(const std::string& name) {
  for (const ViTArchitecture& a : ViTArchitectures()) {
    if (name == a.name) return &a;
  }
  return nullptr;
}

std::string ViTSpec::BlockName(int i) { return absl::StrCat("blocks.", i); }

std::vector<double> SinCosPositionEmbedding(const ViTSpec& spec) {
  const int64_t d = spec.embed_dim, g = spec.grid(), quarter = d / 4;
  std::vector<double> table(static_cast<size_t>(spec.num_tokens() * d), 0.0);
  for (int64_t r = 0; r < g; ++r) {
    for (int64_t c = 0; c < g; ++c) {
      double* row = &table[static_cast<size_t>((1 + r * g + c) * d)];
      for (int64_t i = 0; i < quarter; ++i) {
        const double omega =
            1.0 / std::pow(10000.0, static_cast<double>(i) / static_cast<double>(quarter));
        row[i] = std::sin(static_cast<double>(r) * omega);
        row[quarter + i] = std::cos(static_cast<double>(r) * omega);
        row[2 * quarter + i] = std::sin(static_cast<double>(c) * omega);
        row[3 * quarter + i] = std::cos(static_cast<double>(c) * omega);
      }
    }
  }
  return table;
}

int64_t ViTBackboneMacs(const ViTSpec& s) {
  const int64_t t = s.num_tokens(), d = s.embed_dim, h = s.mlp_hidden;
  const int64_t patch = s.num_patches() * d * s.in_channels * s.patch_size * s.patch_size;
  const int64_t block = t * d * 3 * d     // qkv
                        + 2 * t * t * d   // q k^T and attn v, over all heads
                        + t * d * d       // proj
                        + 2 * t * d * h;  // fc1, fc2
  return patch + s.depth * block;
}

absl::Status CheckViTImageShape(const ViTSpec& spec, const std::vector<int64_t>& shape) {
  if (shape.size() == 4 && shape[0] >= 1 && shape[1] == spec.in_channels &&
      shape[2] == spec.image_size && shape[3] == spec.image_size) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "images must be (N, ", spec.in_channels, ", ", spec.image_size, ", ", spec.image_size,
      "), got (", absl::StrJoin(shape, ", "),
      ") (a ViT's position embedding fixes the image size: model.image_size)"));
}

}  // namespace moco
