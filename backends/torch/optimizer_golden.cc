#include "backends/torch/optimizer_golden.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace moco {

double RelativeDifference(const HostArray& actual, const HostArray& expected) {
  if (actual.shape() != expected.shape()) return INFINITY;
  double scale = 0;
  for (const float v : expected.data()) scale = std::max(scale, std::abs(double{v}));
  double worst = 0;
  for (size_t i = 0; i < expected.data().size(); ++i) {
    const double e = expected.data()[i], a = actual.data()[i];
    const double floor = std::max(std::abs(e), 1e-3 * scale);
    if (a == e) continue;
    worst = std::max(worst, floor > 0 ? std::abs(a - e) / floor : INFINITY);
  }
  return worst;
}

absl::StatusOr<NamedArrays> ReadOptimizerGoldenFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  NamedArrays out;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ss(line);
    std::string name, shape_text;
    ss >> name >> shape_text;
    absl::string_view dims = shape_text;
    if (!absl::ConsumePrefix(&dims, "[") || !absl::ConsumeSuffix(&dims, "]")) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line_no, ": bad shape"));
    }
    std::vector<int64_t> shape;
    if (!dims.empty()) {
      for (absl::string_view d : absl::StrSplit(dims, ',')) {
        int64_t v;
        if (!absl::SimpleAtoi(d, &v)) {
          return absl::InvalidArgumentError(absl::StrCat(path, ":", line_no, ": bad dimension"));
        }
        shape.push_back(v);
      }
    }
    std::vector<float> data;
    std::string token;
    while (ss >> token) {
      // strtof rounds correctly, so "%.9g" text gives back the exact float32.
      char* end = nullptr;
      const float v = std::strtof(token.c_str(), &end);
      if (end == token.c_str() || *end != '\0') {
        return absl::InvalidArgumentError(absl::StrCat(path, ":", line_no, ": bad value"));
      }
      data.push_back(v);
    }
    absl::StatusOr<HostArray> array = HostArray::FromData(shape, std::move(data));
    if (!array.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_no, ": ", array.status().message()));
    }
    out[name] = *std::move(array);
  }
  return out;
}

absl::StatusOr<OptimizerGolden> LoadOptimizerGolden(const std::string& case_name) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const std::string rel = "backends/torch/testdata/optimizer_goldens.txt";
  const std::string path = srcdir == nullptr ? rel : absl::StrCat(srcdir, "/moco_cpp/", rel);
  absl::StatusOr<NamedArrays> all = ReadOptimizerGoldenFile(path);
  if (!all.ok()) return all.status();
  OptimizerGolden g;
  const std::string prefix = case_name + "/";
  auto lr = all->find(prefix + "lr");
  if (lr == all->end()) {
    return absl::NotFoundError(absl::StrCat(path, " has no case '", case_name, "'"));
  }
  g.lr = lr->second.data();
  g.grads.resize(g.lr.size());
  g.params.resize(g.lr.size());
  g.states.resize(g.lr.size());
  for (const auto& [name, array] : *all) {
    absl::string_view rest = name;
    if (!absl::ConsumePrefix(&rest, prefix)) continue;
    if (absl::ConsumePrefix(&rest, "hyper/")) {
      g.hyper[std::string(rest)] = array.data().at(0);
    } else if (absl::ConsumePrefix(&rest, "init/")) {
      g.init[std::string(rest)] = array;
    } else if (absl::ConsumePrefix(&rest, "step")) {
      const std::vector<std::string> parts = absl::StrSplit(rest, absl::MaxSplits('/', 2));
      int step;
      if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &step) || step < 1 ||
          step > static_cast<int>(g.lr.size())) {
        return absl::InvalidArgumentError(absl::StrCat(path, ": bad entry name ", name));
      }
      std::vector<NamedArrays>& dst = parts[1] == "grad"    ? g.grads
                                      : parts[1] == "param" ? g.params
                                                            : g.states;
      if (parts[1] != "grad" && parts[1] != "param" && parts[1] != "state") {
        return absl::InvalidArgumentError(absl::StrCat(path, ": bad entry name ", name));
      }
      dst[step - 1][parts[2]] = array;
    }
  }
  return g;
}

}  // namespace moco
