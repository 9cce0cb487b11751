#include "solver/report/report.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "solver/report/plot.h"

namespace ompq::solver {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// ---- report.json ----------------------------------------------------------------------------

// JSON has no NaN or Infinity: an unknown or non-finite number is null.
json number(double value) { return std::isfinite(value) ? json(value) : json(nullptr); }

json report_json(const ExperimentReport& r) {
  json layers = json::array();
  for (const ReportLayer& l : r.layers) {
    layers.push_back({{"name", l.name},
                      {"bits", l.bits},
                      {"params", l.params},
                      {"fixed", l.fixed},
                      {"log_theta", l.log_theta ? number(*l.log_theta) : json(nullptr)}});
  }
  json orm = json::array();
  for (const std::vector<double>& row : r.orm) {
    json values = json::array();
    for (double v : row) values.push_back(number(v));
    orm.push_back(std::move(values));
  }
  json results = json::array();
  for (const ReportResult& x : r.results) {
    results.push_back({{"label", x.label},
                       {"size_mib", number(x.size_mib)},
                       {"bops_g", number(x.bops_g)},
                       {"top1", number(x.top1)},
                       {"top5", number(x.top5)}});
  }
  json timings = json::array();
  for (const ReportTiming& t : r.timings) {
    timings.push_back({{"stage", t.stage}, {"seconds", number(t.seconds)}});
  }
  json metrics = json::array();
  for (const ReportMetrics& m : r.metrics) {
    metrics.push_back({{"stage", m.stage},
                       {"epoch", m.epoch},
                       {"train_loss", number(m.train_loss)},
                       {"train_top1", number(m.train_top1)},
                       {"test_loss", number(m.test_loss)},
                       {"test_top1", number(m.test_top1)},
                       {"test_top5", number(m.test_top5)}});
  }
  return {{"model", r.model},
          {"quant", r.quant},
          {"solver", r.solver},
          {"budget_mib", number(r.budget_mib)},
          {"act_bits", r.act_bits},
          {"layers", layers},
          {"orm", orm},
          {"results", results},
          {"timings", timings},
          {"metrics", metrics}};
}

// ---- report.html ----------------------------------------------------------------------------

constexpr int kFontPx = 11;
constexpr double kCharPx = 7.0;         // advance of an 11 px sans-serif character, rounded up
constexpr double kLabelSlope = 0.7071;  // labels under an axis run at 45 degrees

double longest_label_px(const std::vector<std::string>& names) {
  size_t longest = 0;
  for (const std::string& n : names) longest = std::max(longest, n.size());
  return static_cast<double>(longest) * kCharPx;
}

// Names under the x axis, each ending at its x position and running down-left at 45 degrees so
// that long layer names neither overlap nor shrink.
void append_slanted_labels(std::string& svg, const std::vector<std::string>& names,
                           const std::vector<double>& xs, double y) {
  for (size_t i = 0; i < names.size(); ++i) {
    absl::StrAppendFormat(&svg,
                          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" "
                          "transform=\"rotate(-45 %.1f %.1f)\">%s</text>\n",
                          xs[i], y, xs[i], y, escape_xml(names[i]));
  }
}

// Bars of the weight bits of every layer; fixed layers in grey.
std::string bits_chart(const ExperimentReport& r) {
  int max_bits = 8;
  std::vector<std::string> names;
  for (const ReportLayer& l : r.layers) {
    max_bits = std::max(max_bits, l.bits);
    names.push_back(l.name);
  }
  const double bar = 22, step = 28, plot_h = 160, top = 36;  // the legend and bar values above
  const double label_px = longest_label_px(names) * kLabelSlope;
  const double left = std::max(40.0, label_px - step / 2 + 8);
  const double width = left + step * static_cast<double>(r.layers.size()) + 16;
  const double height = top + plot_h + label_px + 24;
  const double unit = plot_h / max_bits;
  std::string svg = absl::StrFormat(
      "<svg class=\"chart\" width=\"%.0f\" height=\"%.0f\" role=\"img\" "
      "aria-label=\"weight bits per layer\" font-size=\"%d\">\n",
      width, height, kFontPx);
  for (int b = 0; b <= max_bits; ++b) {
    const double y = top + plot_h - b * unit;
    absl::StrAppendFormat(&svg,
                          "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>"
                          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%d</text>\n",
                          left, width - 16, y, y, left - 4, y + 4, b);
  }
  std::vector<double> centers;
  for (size_t i = 0; i < r.layers.size(); ++i) {
    const ReportLayer& l = r.layers[i];
    const double x = left + step * static_cast<double>(i) + (step - bar) / 2;
    const double h = std::clamp(l.bits, 0, max_bits) * unit;
    absl::StrAppendFormat(&svg,
                          "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" class=\"%s\">"
                          "<title>%s: %d bits, %d params%s</title></rect>"
                          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%d</text>\n",
                          x, top + plot_h - h, bar, h, l.fixed ? "fixed" : "searched",
                          escape_xml(l.name), l.bits, l.params, l.fixed ? " (fixed)" : "",
                          x + bar / 2, top + plot_h - h - 4, l.bits);
    centers.push_back(x + bar / 2);
  }
  append_slanted_labels(svg, names, centers, top + plot_h + 14);
  absl::StrAppendFormat(&svg,
                        "<rect x=\"%.1f\" y=\"4\" width=\"10\" height=\"10\" class=\"searched\"/>"
                        "<text x=\"%.1f\" y=\"13\">searched</text>"
                        "<rect x=\"%.1f\" y=\"4\" width=\"10\" height=\"10\" class=\"fixed\"/>"
                        "<text x=\"%.1f\" y=\"13\">fixed at 8 bits</text>\n",
                        left, left + 14, left + 80, left + 94);
  svg += "</svg>\n";
  return svg;
}

// Viridis at nine evenly spaced points: perceptually uniform and readable in grey scale.
constexpr std::array<std::array<int, 3>, 9> kViridis = {{{68, 1, 84},
                                                         {71, 45, 123},
                                                         {59, 82, 139},
                                                         {44, 114, 142},
                                                         {33, 145, 140},
                                                         {40, 174, 128},
                                                         {94, 201, 98},
                                                         {173, 220, 48},
                                                         {253, 231, 37}}};

// The colour of t in [0, 1] (clamped), linear between the viridis anchors.
std::string viridis(double t) {
  t = std::clamp(t, 0.0, 1.0) * (kViridis.size() - 1);
  const size_t i = std::min(static_cast<size_t>(t), kViridis.size() - 2);
  const double f = t - static_cast<double>(i);
  int rgb[3];
  for (int c = 0; c < 3; ++c) {
    rgb[c] =
        static_cast<int>(std::lround(kViridis[i][c] + f * (kViridis[i + 1][c] - kViridis[i][c])));
  }
  return absl::StrFormat("#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
}

// The ORM matrix as an L x L grid of cells coloured on [0, 1] (the range of CKA; widened if some
// value lies outside), with a colour bar. Non-finite values are drawn white.
std::string orm_heat_map(const ExperimentReport& r) {
  std::vector<std::string> names;
  for (const ReportLayer& l : r.layers) {
    if (!l.fixed) names.push_back(l.name);
  }
  double lo = 0.0, hi = 1.0;
  for (const auto& row : r.orm) {
    for (double v : row) {
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    }
  }
  const double n = static_cast<double>(names.size());
  const double size = std::clamp(480.0 / n, 8.0, 24.0);
  const int font = std::min(kFontPx, static_cast<int>(size) - 1);
  const double name_px = longest_label_px(names) * font / kFontPx;
  const double left = name_px + 8, top = 8;
  const double grid = size * n;
  const double bar_x = left + grid + 24, bar_h = std::max(grid, 120.0);
  const double width = bar_x + 60,
               height = top + std::max(grid + name_px * kLabelSlope + 20, bar_h + 16);
  std::string svg = absl::StrFormat(
      "<svg class=\"chart\" width=\"%.0f\" height=\"%.0f\" role=\"img\" "
      "aria-label=\"ORM matrix\" font-size=\"%d\">\n",
      width, height, font);
  for (size_t i = 0; i < names.size(); ++i) {
    const double y = top + size * static_cast<double>(i);
    absl::StrAppendFormat(&svg, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                          left - 4, y + size / 2 + font / 3.0, escape_xml(names[i]));
    for (size_t j = 0; j < names.size(); ++j) {
      const double v = r.orm[i][j];
      absl::StrAppendFormat(
          &svg,
          "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">"
          "<title>%s / %s: %s</title></rect>\n",
          left + size * static_cast<double>(j), y, size, size,
          std::isfinite(v) ? viridis((v - lo) / (hi - lo)) : "#ffffff", escape_xml(names[i]),
          escape_xml(names[j]), std::isfinite(v) ? absl::StrFormat("%.4f", v) : "not a number");
    }
  }
  std::vector<double> centers;
  for (size_t j = 0; j < names.size(); ++j) {
    centers.push_back(left + size * (static_cast<double>(j) + 0.5));
  }
  append_slanted_labels(svg, names, centers, top + grid + 12);
  // The colour bar: the gradient's stops are the anchors, so it shows exactly the cells' colours.
  svg += "<defs><linearGradient id=\"orm-scale\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">";
  for (size_t k = 0; k < kViridis.size(); ++k) {
    const double t = static_cast<double>(k) / (kViridis.size() - 1);
    absl::StrAppendFormat(&svg, "<stop offset=\"%.3f\" stop-color=\"%s\"/>", t, viridis(t));
  }
  svg += "</linearGradient></defs>\n";
  absl::StrAppendFormat(&svg,
                        "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"%.1f\" "
                        "fill=\"url(#orm-scale)\" stroke=\"#444\"/>\n",
                        bar_x, top, bar_h);
  for (int k = 0; k <= 4; ++k) {
    const double value = lo + (hi - lo) * k / 4;
    const double y = top + bar_h - bar_h * k / 4;
    absl::StrAppendFormat(&svg,
                          "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>"
                          "<text x=\"%.1f\" y=\"%.1f\">%.2f</text>\n",
                          bar_x + 14, bar_x + 18, y, y, bar_x + 20, y + 4, value);
  }
  svg += "</svg>\n";
  return svg;
}

// Top-1 against model size, one labelled point per result with both numbers; empty when there are
// none.
std::string accuracy_chart(const ExperimentReport& r) {
  PlotSeries results;
  results.style = SeriesStyle::kMarkers;
  for (const ReportResult& x : r.results) {
    if (!std::isfinite(x.size_mib) || !std::isfinite(x.top1)) continue;
    results.x.push_back(x.size_mib);
    results.y.push_back(x.top1);
    results.tooltips.push_back(
        absl::StrFormat("%s: %.4f MiB, top-1 %.2f%%", x.label, x.size_mib, x.top1));
    results.annotations.push_back(x.label);
  }
  if (results.x.empty()) return "";
  Chart chart;
  chart.title = "top-1 accuracy against model size";
  chart.x_label = "model size (MiB)";
  chart.y_label = "top-1 (%)";
  chart.series.push_back(std::move(results));
  absl::StatusOr<std::string> svg = chart_svg(chart);
  throw_if_error(svg.status());  // every point is finite: the chart cannot refuse it
  return *svg;
}

// A table cell's text: "-" for an unknown number.
std::string number_cell(double value, int decimals) {
  return std::isfinite(value) ? absl::StrFormat("%.*f", decimals, value) : "-";
}

std::string report_html(const ExperimentReport& r) {
  std::string title = absl::StrCat("ompq report: ", r.model, " ", r.quant, " (", r.solver, ")");
  std::string html =
      absl::StrCat("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>",
                   escape_xml(title),
                   "</title>\n<style>\n"
                   "body { font-family: sans-serif; margin: 24px; color: #222; }\n"
                   "table { border-collapse: collapse; margin: 8px 0 24px; }\n"
                   "th, td { border: 1px solid #ccc; padding: 3px 10px; text-align: right; }\n"
                   "th:first-child, td:first-child { text-align: left; }\n"
                   ".scroll { overflow-x: auto; }\n"
                   ".chart text { fill: #222; font-family: sans-serif; }\n"
                   ".grid { stroke: #ddd; }\n"
                   ".searched { fill: #3b6ea8; } .fixed { fill: #9a9a9a; }\n"
                   "</style>\n</head>\n<body>\n<h1>",
                   escape_xml(title), "</h1>\n");
  int64_t params = 0;
  for (const ReportLayer& l : r.layers) params += l.params;
  absl::StrAppendFormat(&html,
                        "<p>Model %s, %s, solver %s, size budget %s MiB, activations at %d bits; "
                        "%d quantized layers, %d parameters.</p>\n",
                        escape_xml(r.model), escape_xml(r.quant), escape_xml(r.solver),
                        number_cell(r.budget_mib, 4), r.act_bits, r.layers.size(), params);

  html += "<h2>Weight bits per layer</h2>\n<div class=\"scroll\">\n";
  html += bits_chart(r);
  html += "</div>\n<h2>ORM matrix</h2>\n";
  if (r.orm.empty()) {
    html += "<p>No ORM matrix: this allocation used no data (projection solver or baseline).</p>\n";
  } else {
    html += "<div class=\"scroll\">\n" + orm_heat_map(r) + "</div>\n";
  }

  html +=
      "<h2>Results</h2>\n<table>\n<tr><th>model</th><th>size (MiB)</th><th>BOPs (G)</th>"
      "<th>top-1 (%)</th><th>top-5 (%)</th></tr>\n";
  for (const ReportResult& x : r.results) {
    absl::StrAppend(&html, "<tr><td>", escape_xml(x.label), "</td><td>", number_cell(x.size_mib, 4),
                    "</td><td>", number_cell(x.bops_g, 3), "</td><td>", number_cell(x.top1, 2),
                    "</td><td>", number_cell(x.top5, 2), "</td></tr>\n");
  }
  html += "</table>\n<h2>Top-1 against model size</h2>\n";
  const std::string accuracy = accuracy_chart(r);
  html += accuracy.empty() ? "<p>No result has both a size and a top-1 accuracy.</p>\n" : accuracy;

  html += "<h2>Stage times</h2>\n<table>\n<tr><th>stage</th><th>seconds</th></tr>\n";
  for (const ReportTiming& t : r.timings) {
    absl::StrAppend(&html, "<tr><td>", escape_xml(t.stage), "</td><td>", number_cell(t.seconds, 2),
                    "</td></tr>\n");
  }
  html +=
      "</table>\n<h2>Metrics</h2>\n<table>\n<tr><th>stage</th><th>epoch</th>"
      "<th>train loss</th><th>train top-1 (%)</th><th>test loss</th><th>test top-1 (%)</th>"
      "<th>test top-5 (%)</th></tr>\n";
  for (const ReportMetrics& m : r.metrics) {
    absl::StrAppend(&html, "<tr><td>", escape_xml(m.stage), "</td><td>", m.epoch, "</td><td>",
                    number_cell(m.train_loss, 4), "</td><td>", number_cell(m.train_top1, 2),
                    "</td><td>", number_cell(m.test_loss, 4), "</td><td>",
                    number_cell(m.test_top1, 2), "</td><td>", number_cell(m.test_top5, 2),
                    "</td></tr>\n");
  }
  html += "</table>\n</body>\n</html>\n";
  return html;
}

// ---- writing --------------------------------------------------------------------------------

absl::Status check_orm_shape(const ExperimentReport& r) {
  if (r.orm.empty()) return absl::OkStatus();
  size_t searched = 0;
  for (const ReportLayer& l : r.layers) searched += !l.fixed;
  bool square = r.orm.size() == searched;
  for (const auto& row : r.orm) square = square && row.size() == searched;
  if (square) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrFormat(
      "write_report: the ORM matrix has %d rows of %d values, expected [%d, %d] for the %d "
      "non-fixed layers",
      r.orm.size(), r.orm.front().size(), searched, searched, searched));
}

}  // namespace

absl::Status write_report(const ExperimentReport& report, const std::string& dir) {
  OMPQ_RETURN_IF_ERROR(check_orm_shape(report));
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(
        absl::StrCat("write_report: report folder '", dir, "' does not exist or is not a folder"));
  }
  // Invalid UTF-8 in a name becomes U+FFFD instead of failing the whole report.
  const std::string json_text =
      report_json(report).dump(2, ' ', false, json::error_handler_t::replace) + "\n";
  const std::string html_text = report_html(report);

  // Both files are complete on disk before either is renamed: a failure changes neither report.
  auto failed = [](const absl::Status& status) {
    return absl::Status(status.code(), absl::StrCat("write_report: ", status.message()));
  };
  std::vector<AtomicFile> files;
  for (const auto& [name, text] :
       {std::pair{"report.json", &json_text}, std::pair{"report.html", &html_text}}) {
    absl::StatusOr<AtomicFile> file = AtomicFile::create((fs::path(dir) / name).string());
    absl::Status status = file.status();
    if (status.ok()) status = file->append(*text);
    if (status.ok()) status = file->finish();
    if (!status.ok()) return failed(status);
    files.push_back(std::move(*file));
  }
  for (AtomicFile& file : files) {
    if (absl::Status status = file.commit(); !status.ok()) return failed(status);
  }
  return absl::OkStatus();
}

}  // namespace ompq::solver
