#include "moco/observe/run_data.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "moco/config/config_io.h"
#include "moco/observe/events/event_file.h"

namespace moco {
namespace observe {
namespace {

namespace fs = std::filesystem;

std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void SortByStep(Series* s) {
  std::vector<size_t> order(s->steps.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return s->steps[a] < s->steps[b]; });
  Series sorted;
  for (size_t i : order) {
    sorted.steps.push_back(s->steps[i]);
    sorted.values.push_back(s->values[i]);
  }
  *s = std::move(sorted);
}

}  // namespace

const Series* RunData::Find(const std::string& tag) const {
  auto it = series.find(tag);
  return it == series.end() || it->second.empty() ? nullptr : &it->second;
}

absl::StatusOr<std::map<std::string, Series>> ParseMetricsCsv(const std::string& text,
                                                              const std::string& name) {
  std::map<std::string, Series> out;
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  if (lines.empty()) return out;
  const std::vector<std::string> header = absl::StrSplit(lines[0], ',');
  int step_col = -1;
  for (size_t c = 0; c < header.size(); ++c) {
    if (header[c] == "step") step_col = static_cast<int>(c);
  }
  if (step_col < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(name, ": the header \"", lines[0].substr(0, 80), "\" has no step column"));
  }
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::vector<std::string> cells = absl::StrSplit(lines[i], ',');
    double step = 0;
    // A line cut short by a crash (or any malformed line) is skipped.
    if (cells.size() != header.size() || !absl::SimpleAtod(cells[step_col], &step)) continue;
    for (size_t c = 0; c < header.size(); ++c) {
      double v = 0;
      if (static_cast<int>(c) == step_col || header[c] == "epoch") continue;
      if (cells[c].empty() || !absl::SimpleAtod(cells[c], &v)) continue;
      out[header[c]].steps.push_back(step);
      out[header[c]].values.push_back(v);
    }
  }
  return out;
}

absl::StatusOr<RunData> LoadRunData(const std::string& run_dir) {
  RunData data;
  data.run_dir = run_dir;
  std::error_code ec;
  if (!fs::is_directory(run_dir, ec)) {
    return absl::NotFoundError(absl::StrCat("run folder ", run_dir, " does not exist"));
  }
  if (auto config = ReadFile(run_dir + "/config.pbtxt")) data.config_text = *config;

  // Event files first; metrics.csv then replaces the tags it has.
  std::map<std::string, Series> from_events;
  for (const std::string& path : tfevents::ListEventFiles(run_dir)) {
    absl::StatusOr<std::vector<tfevents::Event>> events = tfevents::ReadEventFile(path);
    if (!events.ok()) {
      data.warnings.push_back(std::string(events.status().message()));
      continue;
    }
    for (const tfevents::Event& e : *events) {
      if (e.wall_time() > 0) {
        if (data.first_wall_time == 0 || e.wall_time() < data.first_wall_time) {
          data.first_wall_time = e.wall_time();
        }
        data.last_wall_time = std::max(data.last_wall_time, e.wall_time());
      }
      for (const tfevents::SummaryValue& v : e.summary().value()) {
        from_events[v.tag()].steps.push_back(static_cast<double>(e.step()));
        from_events[v.tag()].values.push_back(v.simple_value());
      }
    }
  }
  for (auto& [tag, s] : from_events) SortByStep(&s);
  data.series = std::move(from_events);
  const std::string csv_path = run_dir + "/metrics.csv";
  if (auto csv = ReadFile(csv_path)) {
    absl::StatusOr<std::map<std::string, Series>> parsed = ParseMetricsCsv(*csv, csv_path);
    if (!parsed.ok()) return parsed.status();
    for (auto& [tag, s] : *parsed) data.series[tag] = std::move(s);
  }
  if (const Series* r = data.Find("knn_random_init_top1")) data.random_init_knn_top1 = r->values.back();

  // Evaluation results, in name order.
  std::vector<std::string> results_files;
  for (fs::directory_iterator it(run_dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (absl::EndsWith(name, "_results.pbtxt")) results_files.push_back(it->path().string());
  }
  std::sort(results_files.begin(), results_files.end());
  for (const std::string& path : results_files) {
    eval::EvalResults results;
    auto text = ReadFile(path);
    absl::Status s = text ? ParseTextProto(*text, path, &results)
                          : absl::NotFoundError(absl::StrCat("cannot read ", path));
    if (!s.ok()) {
      data.warnings.push_back(std::string(s.message()));
      continue;
    }
    if (!data.random_init_knn_top1.has_value() && results.tool() == "knn") {
      for (const auto& r : results.results()) {
        if (r.encoder() == "RANDOM_INIT") data.random_init_knn_top1 = 100 * r.top1();
      }
    }
    data.eval_results.push_back(std::move(results));
  }
  return data;
}

}  // namespace observe
}  // namespace moco
