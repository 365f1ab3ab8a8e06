#include "moco/observe/compare.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/text_format.h"
#include "moco/config/config.pb.h"
#include "moco/config/config_io.h"
#include "moco/observe/report.h"
#include "moco/observe/svg_chart.h"

namespace moco {
namespace observe {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

const char* const kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                               "#9467bd", "#8c564b", "#e377c2", "#17becf"};

void Flatten(const Message& m, const std::string& prefix,
             std::vector<std::pair<std::string, std::string>>* out) {
  const auto* d = m.GetDescriptor();
  const auto* r = m.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    const std::string name = prefix.empty() ? f->name() : absl::StrCat(prefix, ".", f->name());
    if (f->is_repeated()) {
      std::vector<std::string> items;
      for (int j = 0; j < r->FieldSize(m, f); ++j) {
        std::string v;
        google::protobuf::TextFormat::PrintFieldValueToString(m, f, j, &v);
        items.push_back(v);
      }
      out->push_back({name, absl::StrCat("[", absl::StrJoin(items, ", "), "]")});
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      Flatten(r->GetMessage(m, f), name, out);
    } else {
      std::string v;
      google::protobuf::TextFormat::PrintFieldValueToString(m, f, -1, &v);
      out->push_back({name, v});
    }
  }
}

std::string OverlayChart(const std::vector<RunData>& runs, const std::string& tag,
                         const std::string& title, bool smooth, bool markers) {
  ChartSpec spec;
  spec.id = tag;
  spec.title = title;
  for (size_t i = 0; i < runs.size(); ++i) {
    const Series* s = runs[i].Find(tag);
    if (s == nullptr) continue;
    ChartLine line;
    line.name = absl::StrCat("run ", i + 1);
    line.xs = s->steps;
    line.ys = smooth ? SmoothEma(s->values, 0.6) : s->values;
    line.color = kColors[i % 8];
    line.width = 2;
    line.markers = markers;
    spec.lines.push_back(line);
  }
  return RenderSvgChart(spec);
}

}  // namespace

std::vector<std::pair<std::string, std::string>> FlattenFields(const Message& message) {
  std::vector<std::pair<std::string, std::string>> out;
  Flatten(message, "", &out);
  return out;
}

std::vector<ConfigDiffRow> DiffConfigs(const std::vector<std::string>& texts) {
  std::vector<std::string> order;
  std::map<std::string, ConfigDiffRow> rows;
  for (size_t i = 0; i < texts.size(); ++i) {
    ExperimentConfig config;
    const bool ok = !texts[i].empty() && ParseTextProto(texts[i], "config", &config).ok();
    for (const auto& [field, value] : FlattenFields(config)) {
      auto [it, inserted] = rows.try_emplace(field);
      if (inserted) {
        order.push_back(field);
        it->second.field = field;
        it->second.values.assign(texts.size(), "");
      }
      it->second.values[i] = ok ? value : "(unreadable)";
    }
  }
  std::vector<ConfigDiffRow> out;
  for (const std::string& f : order) {
    ConfigDiffRow& row = rows[f];
    row.differs = std::any_of(row.values.begin(), row.values.end(),
                              [&](const std::string& v) { return v != row.values[0]; });
    out.push_back(std::move(row));
  }
  std::stable_partition(out.begin(), out.end(), [](const ConfigDiffRow& r) { return r.differs; });
  return out;
}

std::string RenderComparison(const std::vector<RunData>& runs) {
  std::vector<std::string> texts;
  for (const RunData& r : runs) texts.push_back(r.config_text);
  const std::vector<ConfigDiffRow> diff = DiffConfigs(texts);
  const int64_t differing =
      std::count_if(diff.begin(), diff.end(), [](const ConfigDiffRow& r) { return r.differs; });

  // Plain-text summary first, as in report.html.
  std::string summary = absl::StrFormat("%-6s %-10s %-12s %-12s %-18s %s\n", "run", "steps",
                                        "last loss", "best kNN", "verdict", "folder");
  for (size_t i = 0; i < runs.size(); ++i) {
    const Series* loss = runs[i].Find("loss");
    const Series* knn = runs[i].Find("knn_top1");
    const Verdict v = JudgeRun(runs[i], runs[i].random_init_knn_top1);
    absl::StrAppendFormat(
        &summary, "%-6s %-10s %-12s %-12s %-18s %s\n", absl::StrCat(i + 1),
        loss ? absl::StrCat(static_cast<int64_t>(loss->steps.back())) : "-",
        loss ? absl::StrFormat("%.4f", loss->values.back()) : "-",
        knn ? absl::StrFormat("%.2f %%", *std::max_element(knn->values.begin(), knn->values.end()))
            : "-",
        v.word, runs[i].run_dir);
  }
  absl::StrAppendFormat(&summary, "\n%d of %d config fields differ.\n", differing, diff.size());

  std::string html = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>moco-cpp: "
                     "comparing runs</title></head><body>\n<pre id=\"summary\">\n";
  absl::StrAppend(&html, HtmlEscape(summary), "</pre>\n");
  absl::StrAppend(&html,
                  "<style>body{font-family:sans-serif;margin:16px;color:#222}"
                  ".charts{display:flex;flex-wrap:wrap;gap:8px}svg .title{font-size:14px;"
                  "font-weight:bold}svg .tick{font-size:11px}table{border-collapse:collapse}"
                  "td,th{border:1px solid #ccc;padding:2px 8px;font-family:monospace}"
                  "tr.differs td{background:#fff3c4}pre{background:#f6f6f6;padding:8px}</style>\n");
  absl::StrAppend(&html, "<h1>Comparing ", runs.size(), " runs</h1>\n<ul>");
  for (size_t i = 0; i < runs.size(); ++i) {
    absl::StrAppendFormat(&html, "<li><span style=\"color:%s\">&#9632;</span> run %d: %s</li>",
                          kColors[i % 8], i + 1, HtmlEscape(runs[i].run_dir));
  }
  absl::StrAppend(&html, "</ul>\n<div class=\"charts\">\n",
                  OverlayChart(runs, "loss", "loss (smoothed)", true, false), "\n",
                  OverlayChart(runs, "knn_top1", "kNN monitor top-1 %", false, true), "\n",
                  OverlayChart(runs, "top1", "contrastive top-1 (smoothed)", true, false), "\n",
                  OverlayChart(runs, "lr", "learning rate", false, false), "\n",
                  OverlayChart(runs, "images_per_sec", "images / s", false, false),
                  "\n</div>\n");
  absl::StrAppendFormat(&html, "<h2>Config: %d of %d fields differ</h2>\n", differing,
                        diff.size());
  absl::StrAppend(&html, "<table id=\"config-diff\"><tr><th>field</th>");
  for (size_t i = 0; i < runs.size(); ++i) absl::StrAppend(&html, "<th>run ", i + 1, "</th>");
  absl::StrAppend(&html, "</tr>\n");
  for (const ConfigDiffRow& row : diff) {
    absl::StrAppend(&html, row.differs ? "<tr class=\"differs\">" : "<tr>", "<td>",
                    HtmlEscape(row.field), "</td>");
    for (const std::string& v : row.values) absl::StrAppend(&html, "<td>", HtmlEscape(v), "</td>");
    absl::StrAppend(&html, "</tr>\n");
  }
  absl::StrAppend(&html, "</table>\n</body></html>\n");
  return html;
}

}  // namespace observe
}  // namespace moco
