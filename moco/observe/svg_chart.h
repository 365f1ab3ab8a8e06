// Line charts as inline SVG, for the self-contained HTML pages (no scripts).
//
//   ChartSpec c; c.id = "loss"; c.title = "loss"; c.lines.push_back({"raw", s.steps, s.values});
//   std::string svg = RenderSvgChart(c);
//
// The data-to-pixel mapping is written on the <svg> element (data-x0/x1/y0/y1: data domain;
// data-left/right/top/bottom: the plot area in pixels), so a test can map each polyline point
// back to data: x = x0 + (px - left) / (right - left) * (x1 - x0), and y likewise with bottom
// at y0. Each line is <polyline class="line" data-series="NAME" points="px,py ...">.
#ifndef MOCO_OBSERVE_SVG_CHART_H_
#define MOCO_OBSERVE_SVG_CHART_H_

#include <optional>
#include <string>
#include <vector>

namespace moco {
namespace observe {

struct ChartLine {
  std::string name;  // data-series, and the legend
  std::vector<double> xs, ys;
  std::string color = "#1f77b4";
  double width = 1.5;
  double opacity = 1.0;
  bool markers = false;  // a dot at every point (sparse series, e.g. kNN per epoch)
  bool dashed = false;
};

struct ChartSpec {
  std::string id;     // data-chart, and the element id "chart-<id>"
  std::string title;
  std::string x_label = "step";
  std::vector<ChartLine> lines;
  // Horizontal reference line (e.g. the random-init kNN), drawn dashed and labelled.
  std::optional<double> reference;
  std::string reference_label;
  int width = 600, height = 240;
};

// The <svg> element; a chart with no points says "no data yet" (same id).
std::string RenderSvgChart(const ChartSpec& spec);

// TensorBoard-style exponential smoothing with debiasing: s_t = w s_{t-1} + (1 - w) y_t,
// divided by 1 - w^t.
std::vector<double> SmoothEma(const std::vector<double>& ys, double weight);

// &, <, >, " escaped.
std::string HtmlEscape(const std::string& text);

}  // namespace observe
}  // namespace moco

#endif  // MOCO_OBSERVE_SVG_CHART_H_
