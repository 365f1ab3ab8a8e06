#include "moco/observe/svg_chart.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace moco {
namespace observe {
namespace {

constexpr double kLeft = 64, kRight = 16, kTop = 28, kBottom = 36;

// Tick label: compact, enough digits for the range.
std::string Tick(double v, double span) {
  if (std::abs(v) < span * 1e-9) v = 0;  // rounding residue of y0 + i * span / 4
  if (std::abs(v) >= 1e5 || (std::abs(v) < 1e-3 && v != 0)) return absl::StrFormat("%.2g", v);
  if (span >= 20) return absl::StrFormat("%.0f", v);
  if (span >= 2) return absl::StrFormat("%.1f", v);
  if (span >= 0.2) return absl::StrFormat("%.2f", v);
  return absl::StrFormat("%.4g", v);
}

}  // namespace

std::string HtmlEscape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::vector<double> SmoothEma(const std::vector<double>& ys, double weight) {
  std::vector<double> out;
  double last = 0, debias = 1;
  for (double y : ys) {
    if (!std::isfinite(y)) {
      out.push_back(y);
      continue;
    }
    last = weight * last + (1 - weight) * y;
    debias *= weight;
    out.push_back(last / (1 - debias));
  }
  return out;
}

std::string RenderSvgChart(const ChartSpec& spec) {
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const ChartLine& l : spec.lines) {
    for (size_t i = 0; i < l.xs.size() && i < l.ys.size(); ++i) {
      if (!std::isfinite(l.ys[i])) continue;
      x0 = std::min(x0, l.xs[i]);
      x1 = std::max(x1, l.xs[i]);
      y0 = std::min(y0, l.ys[i]);
      y1 = std::max(y1, l.ys[i]);
    }
  }
  const bool has_data = std::isfinite(x0);
  if (has_data && spec.reference.has_value()) {
    y0 = std::min(y0, *spec.reference);
    y1 = std::max(y1, *spec.reference);
  }
  const double w = spec.width, h = spec.height;
  const double right = w - kRight, bottom = h - kBottom;
  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" id=\"chart-%s\" "
      "data-chart=\"%s\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\"",
      spec.id, spec.id, spec.width, spec.height, spec.width, spec.height);
  if (!has_data) {
    absl::StrAppendFormat(&svg,
                          " data-empty=\"1\"><rect x=\"0.5\" y=\"0.5\" width=\"%d\" height=\"%d\" "
                          "fill=\"#fafafa\" stroke=\"#ccc\"/><text x=\"%g\" y=\"18\" "
                          "class=\"title\">%s</text><text x=\"%g\" y=\"%g\" fill=\"#888\" "
                          "text-anchor=\"middle\">no data yet</text></svg>",
                          spec.width - 1, spec.height - 1, kLeft, HtmlEscape(spec.title), w / 2,
                          h / 2);
    return svg;
  }
  // Pad a flat range so that the line is visible; a little headroom either way.
  if (y1 - y0 < 1e-12) {
    const double pad = std::max(std::abs(y0) * 0.05, 1e-6);
    y0 -= pad;
    y1 += pad;
  } else {
    const double pad = (y1 - y0) * 0.05;
    y0 -= pad;
    y1 += pad;
  }
  if (x1 - x0 < 1e-12) {
    x0 -= 1;
    x1 += 1;
  }
  auto px = [&](double x) { return kLeft + (x - x0) / (x1 - x0) * (right - kLeft); };
  auto py = [&](double y) { return bottom - (y - y0) / (y1 - y0) * (bottom - kTop); };
  absl::StrAppendFormat(&svg,
                        " data-x0=\"%.17g\" data-x1=\"%.17g\" data-y0=\"%.17g\" data-y1=\"%.17g\" "
                        "data-left=\"%g\" data-right=\"%g\" data-top=\"%g\" data-bottom=\"%g\">",
                        x0, x1, y0, y1, kLeft, right, kTop, bottom);
  absl::StrAppendFormat(&svg,
                        "<rect x=\"0.5\" y=\"0.5\" width=\"%d\" height=\"%d\" fill=\"#fff\" "
                        "stroke=\"#ccc\"/><text x=\"%g\" y=\"18\" class=\"title\">%s</text>",
                        spec.width - 1, spec.height - 1, kLeft, HtmlEscape(spec.title));
  // Grid and ticks: 5 on each axis.
  for (int i = 0; i <= 4; ++i) {
    const double yv = y0 + (y1 - y0) * i / 4, yp = py(yv);
    absl::StrAppendFormat(&svg,
                          "<line x1=\"%g\" y1=\"%.2f\" x2=\"%g\" y2=\"%.2f\" stroke=\"#eee\"/>"
                          "<text x=\"%g\" y=\"%.2f\" class=\"tick\" text-anchor=\"end\">%s</text>",
                          kLeft, yp, right, yp, kLeft - 4, yp + 4, Tick(yv, y1 - y0));
    const double xv = x0 + (x1 - x0) * i / 4, xp = px(xv);
    absl::StrAppendFormat(&svg,
                          "<line x1=\"%.2f\" y1=\"%g\" x2=\"%.2f\" y2=\"%g\" stroke=\"#eee\"/>"
                          "<text x=\"%.2f\" y=\"%g\" class=\"tick\" text-anchor=\"middle\">%s"
                          "</text>",
                          xp, kTop, xp, bottom, xp, bottom + 14, Tick(xv, x1 - x0));
  }
  absl::StrAppendFormat(&svg,
                        "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" "
                        "stroke=\"#999\"/><text x=\"%g\" y=\"%g\" class=\"tick\" "
                        "text-anchor=\"middle\">%s</text>",
                        kLeft, kTop, right - kLeft, bottom - kTop, (kLeft + right) / 2, h - 6,
                        HtmlEscape(spec.x_label));
  if (spec.reference.has_value()) {
    const double yp = py(*spec.reference);
    absl::StrAppendFormat(&svg,
                          "<line class=\"reference\" data-value=\"%.17g\" x1=\"%g\" y1=\"%.3f\" "
                          "x2=\"%g\" y2=\"%.3f\" stroke=\"#d62728\" stroke-dasharray=\"6 4\" "
                          "stroke-width=\"1.5\"/><text x=\"%g\" y=\"%.2f\" class=\"tick\" "
                          "fill=\"#d62728\" text-anchor=\"end\">%s</text>",
                          *spec.reference, kLeft, yp, right, yp, right - 4, yp - 4,
                          HtmlEscape(spec.reference_label));
  }
  double legend_x = right;
  for (auto it = spec.lines.rbegin(); it != spec.lines.rend(); ++it) {
    const ChartLine& l = *it;
    std::string points;
    std::string dots;
    for (size_t i = 0; i < l.xs.size() && i < l.ys.size(); ++i) {
      if (!std::isfinite(l.ys[i])) continue;
      absl::StrAppendFormat(&points, "%s%.3f,%.3f", points.empty() ? "" : " ", px(l.xs[i]),
                            py(l.ys[i]));
      if (l.markers) {
        absl::StrAppendFormat(&dots, "<circle cx=\"%.3f\" cy=\"%.3f\" r=\"3\" fill=\"%s\"/>",
                              px(l.xs[i]), py(l.ys[i]), l.color);
      }
    }
    absl::StrAppendFormat(&svg,
                          "<polyline class=\"line\" data-series=\"%s\" fill=\"none\" "
                          "stroke=\"%s\" stroke-width=\"%g\" stroke-opacity=\"%g\"%s "
                          "points=\"%s\"/>%s",
                          HtmlEscape(l.name), l.color, l.width, l.opacity,
                          l.dashed ? " stroke-dasharray=\"4 3\"" : "", points, dots);
    legend_x -= 8 + 7 * static_cast<double>(l.name.size()) + 18;
    absl::StrAppendFormat(&svg,
                          "<rect x=\"%.1f\" y=\"10\" width=\"14\" height=\"4\" fill=\"%s\" "
                          "fill-opacity=\"%g\"/>"
                          "<text x=\"%.1f\" y=\"16\" class=\"tick\">%s</text>",
                          legend_x, l.color, std::max(l.opacity, 0.5), legend_x + 18, HtmlEscape(l.name));
  }
  svg += "</svg>";
  return svg;
}

}  // namespace observe
}  // namespace moco
