// report.html of a tiny synthetic run: the expected charts are there, the plotted points map
// back (through the chart's own axes) to the values in metrics.csv, and headless Chromium
// renders the page to a PNG that is not blank.
#include <png.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "moco/observe/report.h"
#include "moco/observe/run_data.h"
#include "moco/observe/synthetic_run.h"

namespace moco {
namespace observe {
namespace {

namespace fs = std::filesystem;

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Attr(const std::string& element, const std::string& name) {
  std::smatch m;
  if (!std::regex_search(element, m, std::regex(" " + name + "=\"([^\"]*)\""))) return "";
  return m[1];
}

double NumAttr(const std::string& element, const std::string& name) {
  double v = NAN;
  EXPECT_TRUE(absl::SimpleAtod(Attr(element, name), &v)) << name << " in " << element.substr(0, 200);
  return v;
}

struct Chart {
  std::string open_tag;
  std::map<std::string, std::vector<std::pair<double, double>>> lines;  // series -> data points
  std::optional<double> reference;  // data value of the reference line, from its pixel y
};

// The chart <svg id="chart-ID">, its polylines mapped back to data coordinates.
Chart ParseChart(const std::string& html, const std::string& id) {
  Chart chart;
  const size_t start = html.find("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" id=\"chart-" + id + "\"");
  EXPECT_NE(start, std::string::npos) << "no chart " << id;
  if (start == std::string::npos) return chart;
  const std::string svg = html.substr(start, html.find("</svg>", start) - start);
  chart.open_tag = svg.substr(0, svg.find('>'));
  if (!Attr(chart.open_tag, "data-empty").empty()) return chart;
  const double x0 = NumAttr(chart.open_tag, "data-x0"), x1 = NumAttr(chart.open_tag, "data-x1");
  const double y0 = NumAttr(chart.open_tag, "data-y0"), y1 = NumAttr(chart.open_tag, "data-y1");
  const double left = NumAttr(chart.open_tag, "data-left");
  const double right = NumAttr(chart.open_tag, "data-right");
  const double top = NumAttr(chart.open_tag, "data-top");
  const double bottom = NumAttr(chart.open_tag, "data-bottom");
  auto data_y = [&](double py) { return y0 + (bottom - py) / (bottom - top) * (y1 - y0); };
  std::regex polyline("<polyline [^>]*>");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), polyline); it != std::sregex_iterator(); ++it) {
    const std::string el = it->str();
    auto& points = chart.lines[Attr(el, "data-series")];
    const std::string points_attr = Attr(el, "points");
    for (absl::string_view p : absl::StrSplit(points_attr, ' ', absl::SkipEmpty())) {
      const std::vector<std::string> xy = absl::StrSplit(p, ',');
      double px = 0, py = 0;
      EXPECT_TRUE(xy.size() == 2 && absl::SimpleAtod(xy[0], &px) && absl::SimpleAtod(xy[1], &py));
      points.push_back({x0 + (px - left) / (right - left) * (x1 - x0), data_y(py)});
    }
  }
  std::smatch m;
  if (std::regex_search(svg, m, std::regex("<line class=\"reference\"[^>]*>"))) {
    chart.reference = data_y(NumAttr(m.str(), "y1"));
  }
  return chart;
}

// Tolerance of a value read back from a pixel coordinate written with 3 decimals.
double PixelTolerance(const Chart& c) {
  return 0.002 * (NumAttr(c.open_tag, "data-y1") - NumAttr(c.open_tag, "data-y0")) /
         (NumAttr(c.open_tag, "data-bottom") - NumAttr(c.open_tag, "data-top"));
}

// The number of plotted points of `series` that differ from `csv` (-1: no such line or a
// different number of points).
int Mismatches(const Chart& chart, const std::string& series, const Series& csv) {
  const auto it = chart.lines.find(series);
  if (it == chart.lines.end() || it->second.size() != csv.steps.size()) return -1;
  const double tol = PixelTolerance(chart);
  int bad = 0;
  for (size_t i = 0; i < csv.steps.size(); ++i) {
    if (std::abs(it->second[i].first - csv.steps[i]) > 0.05 ||
        std::abs(it->second[i].second - csv.values[i]) > tol) {
      ++bad;
    }
  }
  return bad;
}

class ReportBrowserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    run_.run_dir = (fs::path(std::getenv("TEST_TMPDIR")) / "tiny").string();
    fs::remove_all(run_.run_dir);
    ASSERT_TRUE(DriveSyntheticRun(run_).ok());
    html_ = ReadText(run_.run_dir + "/report.html");
    auto csv = ParseMetricsCsv(ReadText(run_.run_dir + "/metrics.csv"), "metrics.csv");
    ASSERT_TRUE(csv.ok());
    csv_ = *csv;
  }
  SyntheticRun run_;
  std::string html_;
  std::map<std::string, Series> csv_;
};

TEST_F(ReportBrowserTest, ChartsPlotTheMetricsCsvValues) {
  for (const char* id : {"loss", "knn_top1", "top1", "lr", "key_momentum", "images_per_sec",
                         "data_wait_share"}) {
    const Chart c = ParseChart(html_, id);
    EXPECT_TRUE(Attr(c.open_tag, "data-empty").empty()) << id << " is empty";
  }
  const Chart loss = ParseChart(html_, "loss");
  EXPECT_EQ(Mismatches(loss, "raw", csv_.at("loss")), 0);
  ASSERT_EQ(loss.lines.at("smoothed").size(), csv_.at("loss").steps.size());
  EXPECT_EQ(Mismatches(ParseChart(html_, "lr"), "lr", csv_.at("lr")), 0);
  EXPECT_EQ(Mismatches(ParseChart(html_, "images_per_sec"), "images_per_sec",
                       csv_.at("images_per_sec")),
            0);
  const Chart knn = ParseChart(html_, "knn_top1");
  EXPECT_EQ(Mismatches(knn, "kNN top-1", csv_.at("knn_top1")), 0);
  EXPECT_EQ(csv_.at("knn_top1").steps.size(), 3u);
  ASSERT_TRUE(knn.reference.has_value());
  EXPECT_NEAR(*knn.reference, run_.random_init, PixelTolerance(knn));
  // A point that is not in metrics.csv would be caught: the check can fail.
  Series shifted = csv_.at("loss");
  shifted.values[3] += 0.5;
  EXPECT_EQ(Mismatches(loss, "raw", shifted), 1);
}

// Reads an RGB(A) PNG; returns false when it cannot.
bool ReadPng(const std::string& path, int* width, int* height, std::vector<uint8_t>* rgb) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, path.c_str())) return false;
  image.format = PNG_FORMAT_RGB;
  rgb->resize(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, rgb->data(), 0, nullptr)) return false;
  *width = image.width;
  *height = image.height;
  return true;
}

TEST_F(ReportBrowserTest, ChromiumRendersANonBlankPage) {
  const char* candidates[] = {"/usr/bin/chromium", "/usr/bin/chromium-browser"};
  std::string chromium;
  for (const char* c : candidates) {
    if (fs::exists(c)) chromium = c;
  }
  if (chromium.empty()) {
    GTEST_SKIP() << "chromium is not installed (apt-get install chromium, or tools/setup.sh): "
                    "the browser rendering check is skipped";
  }
  const std::string tmp = std::getenv("TEST_TMPDIR");
  const std::string png = tmp + "/report.png";
  const std::string cmd = "HOME='" + tmp + "' timeout 60 '" + chromium +
                          "' --headless --no-sandbox --disable-gpu --disable-dev-shm-usage "
                          "--hide-scrollbars --screenshot='" + png +
                          "' --window-size=1280,1400 'file://" + run_.run_dir +
                          "/report.html' >'" + tmp + "/chromium.log' 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << ReadText(tmp + "/chromium.log");
  int w = 0, h = 0;
  std::vector<uint8_t> rgb;
  ASSERT_TRUE(ReadPng(png, &w, &h, &rgb)) << png;
  EXPECT_EQ(w, 1280);
  EXPECT_EQ(h, 1400);
  int64_t non_white = 0;
  std::set<uint32_t> colors;
  for (size_t i = 0; i + 2 < rgb.size(); i += 3) {
    if (rgb[i] < 240 || rgb[i + 1] < 240 || rgb[i + 2] < 240) ++non_white;
    colors.insert(rgb[i] << 16 | rgb[i + 1] << 8 | rgb[i + 2]);
  }
  // Text, axes and coloured curves: well over 1% of the pixels, and many colours.
  EXPECT_GT(non_white, int64_t{w} * h / 100);
  EXPECT_GT(colors.size(), 20u);
  // Some of the loss curve's blue (#1f77b4, anti-aliased) must be on screen.
  int64_t bluish = 0;
  for (size_t i = 0; i + 2 < rgb.size(); i += 3) {
    if (rgb[i + 2] > 150 && rgb[i] < 120 && rgb[i + 1] > 90 && rgb[i + 1] < 160) ++bluish;
  }
  EXPECT_GT(bluish, 100);
  if (const char* out = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR")) {
    fs::copy_file(png, fs::path(out) / "report.png", fs::copy_options::overwrite_existing);
  }
}

}  // namespace
}  // namespace observe
}  // namespace moco
