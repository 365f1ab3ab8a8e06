#include "moco/observe/report.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "moco/observe/svg_chart.h"

namespace moco {
namespace observe {
namespace {

constexpr double kSmoothing = 0.6;

double Mean(const std::vector<double>& v, size_t begin, size_t end) {
  return std::accumulate(v.begin() + begin, v.begin() + end, 0.0) / static_cast<double>(end - begin);
}

std::optional<std::pair<double, double>> BestKnn(const RunData& data) {
  const Series* knn = data.Find("knn_top1");
  if (knn == nullptr) return std::nullopt;
  size_t best = 0;
  for (size_t i = 1; i < knn->values.size(); ++i) {
    if (knn->values[i] > knn->values[best]) best = i;
  }
  return std::make_pair(knn->values[best], knn->steps[best]);
}

std::string RawAndSmoothedChart(const RunData& data, const std::string& tag,
                                const std::string& title, const std::string& color) {
  ChartSpec spec;
  spec.id = tag;
  spec.title = title;
  if (const Series* s = data.Find(tag)) {
    ChartLine raw{"raw", s->steps, s->values, color, 1.0, 0.35};
    ChartLine smooth{"smoothed", s->steps, SmoothEma(s->values, kSmoothing), color, 2.0, 1.0};
    spec.lines = {raw, smooth};
  }
  return RenderSvgChart(spec);
}

std::string SimpleChart(const RunData& data, const std::string& tag, const std::string& title,
                        const std::string& color) {
  ChartSpec spec;
  spec.id = tag;
  spec.title = title;
  if (const Series* s = data.Find(tag)) spec.lines = {{tag, s->steps, s->values, color, 1.5}};
  return RenderSvgChart(spec);
}

std::string EvalTable(const RunData& data) {
  if (data.eval_results.empty()) {
    return "<p>No evaluation results yet (bazel run //eval:knn or //eval:linear_probe writes "
           "them into this folder).</p>";
  }
  std::string html =
      "<table id=\"eval\"><tr><th>tool</th><th>encoder</th><th>top-1 %</th><th>top-5 %</th>"
      "<th>test images</th><th>checkpoint step</th><th>finished</th></tr>";
  for (const auto& r : data.eval_results) {
    for (const auto& e : r.results()) {
      absl::StrAppendFormat(&html,
                            "<tr><td>%s</td><td>%s</td><td>%.2f</td><td>%.2f</td><td>%d</td>"
                            "<td>%d</td><td>%s</td></tr>",
                            HtmlEscape(r.tool()), HtmlEscape(e.encoder()), 100 * e.top1(),
                            100 * e.top5(), e.test_images(), r.checkpoint_global_step(),
                            HtmlEscape(r.finished_at()));
    }
  }
  return html + "</table>";
}

}  // namespace

std::string FormatDuration(double seconds) {
  if (seconds < 0 || !std::isfinite(seconds)) return "unknown";
  const int64_t s = static_cast<int64_t>(std::llround(seconds));
  if (s >= 3600) return absl::StrFormat("%dh %02dm %02ds", s / 3600, s / 60 % 60, s % 60);
  if (s >= 60) return absl::StrFormat("%dm %02ds", s / 60, s % 60);
  return absl::StrFormat("%ds", s);
}

Verdict JudgeRun(const RunData& data, std::optional<double> random_init) {
  const Series* loss = data.Find("loss");
  if (loss == nullptr || loss->values.size() < 4) {
    return {"too early to tell", "fewer than 4 logged losses"};
  }
  const size_t n = loss->values.size(), q = std::max<size_t>(1, n / 4);
  const double first = Mean(loss->values, 0, q), last = Mean(loss->values, n - q, n);
  const bool falling = last < 0.99 * first;
  std::string reason = absl::StrFormat("loss %s: mean of the first quarter %.4g, last quarter %.4g",
                                       falling ? "falling" : "NOT falling", first, last);
  const auto best = BestKnn(data);
  bool knn_ok = true;
  if (best.has_value() && random_init.has_value()) {
    knn_ok = best->first >= *random_init + 1.0;
    absl::StrAppendFormat(&reason, "; best kNN %.2f%% is %+.2f points vs random init %.2f%% (%s)",
                          best->first, best->first - *random_init, *random_init,
                          knn_ok ? "above" : "NOT 1 point above");
  } else if (best.has_value()) {
    absl::StrAppendFormat(&reason, "; best kNN %.2f%%, random-init baseline not measured yet",
                          best->first);
  } else {
    absl::StrAppend(&reason, "; no kNN measurement yet");
  }
  return {falling && knn_ok ? "learning" : "not learning", reason};
}

std::string RenderReport(const RunData& data, const ReportStatus& status) {
  const std::optional<double> random_init = status.random_init_knn_top1.has_value()
                                                ? status.random_init_knn_top1
                                                : data.random_init_knn_top1;
  const Verdict verdict = JudgeRun(data, random_init);
  const Series* loss = data.Find("loss");
  const auto best = BestKnn(data);
  const int64_t last_step = loss ? static_cast<int64_t>(loss->steps.back()) : 0;

  // The plain-text summary: the file's first lines.
  std::string summary;
  auto row = [&](const std::string& k, const std::string& v) {
    absl::StrAppendFormat(&summary, "%-14s %s\n", k, v);
  };
  row("run", data.run_dir);
  row("status", status.state.empty() ? "unknown (rebuilt from the run folder)" : status.state);
  row("steps", status.total_steps > 0 ? absl::StrCat(last_step, " / ", status.total_steps)
                                      : absl::StrCat(last_step));
  if (status.epochs > 0) row("epochs", absl::StrCat(status.epochs_done, " / ", status.epochs));
  row("last loss", loss ? absl::StrFormat("%.4f", loss->values.back()) : "-");
  row("best kNN", best ? absl::StrFormat("%.2f %% (step %d)", best->first,
                                         static_cast<int64_t>(best->second))
                       : "-");
  row("random init", random_init ? absl::StrFormat("%.2f %% (kNN of an untrained encoder)",
                                                   *random_init)
                                 : "not measured yet");
  row("verdict", absl::StrCat(verdict.word, "  (", verdict.reason, ")"));
  const double span = data.last_wall_time - data.first_wall_time;
  row("wall time", status.elapsed_seconds >= 0
                       ? absl::StrCat(FormatDuration(status.elapsed_seconds), " this process",
                                      span > 0 ? absl::StrCat(", ", FormatDuration(span),
                                                              " first to last event")
                                               : "")
                       : (span > 0 ? absl::StrCat(FormatDuration(span), " first to last event")
                                   : "unknown"));
  row("ETA", status.eta_seconds >= 0 ? FormatDuration(status.eta_seconds) : "-");
  row("updated", absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::Now(), absl::UTCTimeZone()));
  for (const std::string& w : data.warnings) row("warning", w);

  std::string html = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>";
  absl::StrAppend(&html, "moco-cpp run report: ", HtmlEscape(data.run_dir),
                  "</title></head><body>\n<pre id=\"summary\">\n", HtmlEscape(summary), "</pre>\n");
  absl::StrAppend(
      &html,
      "<style>body{font-family:sans-serif;margin:16px;color:#222}"
      "pre{background:#f6f6f6;padding:8px;overflow-x:auto}h1{font-size:22px;overflow-wrap:anywhere}"
      ".verdict{font-size:20px;font-weight:bold;padding:6px 10px;display:inline-block}"
      ".learning{background:#d4f4d4}.not{background:#f8d0d0}.early{background:#eee}"
      ".charts{display:flex;flex-wrap:wrap;gap:8px}"
      "svg .title{font-size:14px;font-weight:bold}svg .tick{font-size:11px}"
      "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px}"
      "</style>\n");
  const std::string cls = verdict.word == "learning"       ? "learning"
                          : verdict.word == "not learning" ? "not"
                                                           : "early";
  absl::StrAppend(&html, "<h1>", HtmlEscape(data.run_dir), "</h1>\n<div class=\"verdict ", cls,
                  "\" id=\"verdict\">", HtmlEscape(verdict.word), "</div> <span>",
                  HtmlEscape(verdict.reason), "</span>\n");

  ChartSpec knn;
  knn.id = "knn_top1";
  knn.title = "kNN monitor top-1 % (per epoch) vs random init";
  if (const Series* s = data.Find("knn_top1")) {
    knn.lines = {{"kNN top-1", s->steps, s->values, "#2ca02c", 2.0, 1.0, true}};
  }
  // run.online_probe: its test and training top-1 on the same axes.
  if (const Series* s = data.Find("probe_test_top1")) {
    knn.title = "kNN monitor and online probe top-1 % (per epoch) vs random init";
    knn.lines.push_back({"probe test top-1", s->steps, s->values, "#d62728", 2.0, 1.0, true});
  }
  if (const Series* s = data.Find("probe_train_top1")) {
    knn.lines.push_back({"probe train top-1", s->steps, s->values, "#d62728", 1.5, 0.6, true, true});
  }
  if (random_init) {
    knn.reference = random_init;
    knn.reference_label = absl::StrFormat("random init %.2f%%", *random_init);
  }
  absl::StrAppend(&html, "<h2>Training</h2>\n<div class=\"charts\">\n",
                  RawAndSmoothedChart(data, "loss", "loss (raw, smoothed)", "#1f77b4"), "\n",
                  RenderSvgChart(knn), "\n",
                  RawAndSmoothedChart(data, "top1", "contrastive top-1 (raw, smoothed)",
                                      "#ff7f0e"),
                  "\n", SimpleChart(data, "lr", "learning rate", "#9467bd"), "\n",
                  SimpleChart(data, "key_momentum", "key encoder momentum", "#8c564b"), "\n",
                  SimpleChart(data, "images_per_sec", "images / s", "#17becf"), "\n",
                  SimpleChart(data, "data_wait_share", "share of time waiting for data",
                              "#7f7f7f"),
                  "\n</div>\n");
  absl::StrAppend(&html, "<h2>Evaluation</h2>\n", EvalTable(data), "\n");
  absl::StrAppend(&html, "<h2>Config</h2>\n<pre id=\"config\">",
                  data.config_text.empty() ? "(no config.pbtxt)" : HtmlEscape(data.config_text),
                  "</pre>\n</body></html>\n");
  return html;
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) {
    return absl::UnknownError(absl::StrCat("cannot create ", tmp, ": ", std::strerror(errno)));
  }
  bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    return absl::UnknownError(absl::StrCat("cannot write ", path, ": ", why));
  }
  return absl::OkStatus();
}

absl::Status WriteReport(const std::string& run_dir, const ReportStatus& status) {
  absl::StatusOr<RunData> data = LoadRunData(run_dir);
  if (!data.ok()) return data.status();
  return WriteFileAtomically(run_dir + "/report.html", RenderReport(*data, status));
}

}  // namespace observe
}  // namespace moco
