// The optimizer goldens (testdata/optimizer_goldens.txt, written by
// testdata/make_optimizer_goldens.py from torch.optim.AdamW and a Python LARS) as test cases.
//
//   ASSIGN_OR_RETURN(OptimizerGolden g, LoadOptimizerGolden("lars"));
//   ... start from g.init; at step k give g.grads[k], Step(g.lr[k]), compare with g.params[k]
//   and g.states[k] ...
#ifndef BACKENDS_TORCH_OPTIMIZER_GOLDEN_H_
#define BACKENDS_TORCH_OPTIMIZER_GOLDEN_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "moco/core/host_array.h"

namespace moco {

struct OptimizerGolden {
  // "<case>/hyper/<field>" by field name: momentum, weight_decay, lars_trust_coefficient,
  // adam_beta1, adam_beta2, adam_eps (those the case uses).
  std::map<std::string, float> hyper;
  std::vector<float> lr;                // one per step
  NamedArrays init;                     // parameters before the first step
  std::vector<NamedArrays> grads;       // [k]: the gradients given at step k (0-based)
  std::vector<NamedArrays> params;      // [k]: the parameters after step k
  std::vector<NamedArrays> states;      // [k]: the optimizer state after step k
};

// max_i |a_i - b_i| / max(|b_i|, 1e-3 max_j |b_j|): relative to each expected value, with a
// floor at 1e-3 of the tensor's scale for values near zero. Infinity if the shapes differ.
double RelativeDifference(const HostArray& actual, const HostArray& expected);

// Every tensor in the file by name ("lars/step1/param/fc.weight", ...).
absl::StatusOr<NamedArrays> ReadOptimizerGoldenFile(const std::string& path);

// The case "lars" or "adamw" from the file in the test's runfiles.
absl::StatusOr<OptimizerGolden> LoadOptimizerGolden(const std::string& case_name);

}  // namespace moco

#endif  // BACKENDS_TORCH_OPTIMIZER_GOLDEN_H_
