#include "solver/report/sweep_report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "solver/report/plot.h"
#include "solver/report/statistics.h"

namespace ompq::solver {
namespace {

namespace fs = std::filesystem;

constexpr char kReportHtml[] = "report.html";
// The charts of report.html as standalone files, for documents that include images.
constexpr const char* kChartFiles[] = {"top1_vs_size.svg", "top1_vs_bops.svg"};

std::string number_cell(double value, int decimals) {
  return std::isfinite(value) ? absl::StrFormat("%.*f", decimals, value) : "";
}

absl::Status bad_line(const std::string& source, size_t line, const std::string& what) {
  return absl::DataLossError(absl::StrCat(source, " line ", line, ": ", what));
}

// ---- report.html ----------------------------------------------------------------------------

// One series per method: its curve's points ordered by mean size.
std::vector<PlotSeries> curve_series(const std::vector<SweepCurvePoint>& curves, bool by_bops) {
  std::vector<PlotSeries> series;
  std::map<std::string, size_t> index;
  for (const SweepCurvePoint& c : curves) {
    auto [it, added] = index.emplace(c.method, series.size());
    if (added) {
      series.emplace_back();
      series.back().name = c.method;
    }
    PlotSeries& s = series[it->second];
    s.x.push_back(by_bops ? c.bops_g : c.size_mib);
    s.y.push_back(c.top1);
    s.y_error.push_back(c.top1_std);
    s.tooltips.push_back(absl::StrFormat(
        "%s, budget %.4f MiB: %.4f MiB, %.4f G BOPs, top-1 %.2f%% +- %.2f (%d point%s)", c.method,
        c.budget_mib, c.size_mib, c.bops_g, c.top1, c.top1_std, c.count, c.count == 1 ? "" : "s"));
  }
  for (PlotSeries& s : series) {
    std::vector<size_t> order(s.x.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return s.x[a] < s.x[b]; });
    PlotSeries sorted = s;
    for (size_t i = 0; i < order.size(); ++i) {
      sorted.x[i] = s.x[order[i]];
      sorted.y[i] = s.y[order[i]];
      sorted.y_error[i] = s.y_error[order[i]];
      sorted.tooltips[i] = s.tooltips[order[i]];
    }
    s = std::move(sorted);
  }
  return series;
}

absl::StatusOr<std::string> curve_chart(const std::vector<SweepCurvePoint>& curves, bool by_bops) {
  Chart chart;
  chart.title = by_bops ? "Top-1 against BOPs" : "Top-1 against model size";
  chart.x_label = by_bops ? "BOPs (G)" : "model size (MiB)";
  chart.y_label = "top-1 (%)";
  chart.series = curve_series(curves, by_bops);
  chart.mark_pareto_front = true;
  return chart_svg(chart);
}

std::string html_text(const std::string& text) { return escape_xml(text); }

// `charts`: the size chart's and the BOPs chart's <svg> elements.
std::string report_html(const SweepReport& r, const std::vector<SweepCurvePoint>& curves,
                        const std::vector<std::string>& charts) {
  const std::string title = absl::StrCat("ompq budget sweep: ", r.model, " on ", r.dataset);
  std::string html =
      absl::StrCat("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>",
                   html_text(title),
                   "</title>\n<style>\n"
                   "body { font-family: sans-serif; margin: 24px; color: #222; }\n"
                   "table { border-collapse: collapse; margin: 8px 0 24px; }\n"
                   "th, td { border: 1px solid #ccc; padding: 3px 10px; text-align: right; }\n"
                   "th:first-child, td:first-child { text-align: left; }\n"
                   "</style>\n</head>\n<body>\n<h1>",
                   html_text(title), "</h1>\n");
  absl::StrAppendFormat(&html,
                        "<p>%d quantized models. %s FP32 size %.4f MiB. Each curve point is the "
                        "mean over one budget's seeds; error bars: one standard deviation; "
                        "ringed points: the Pareto front of all curves.</p>\n",
                        r.points.size(), html_text(r.settings), r.fp32_size_mib);
  absl::StrAppend(&html, "<h2>Top-1 against model size</h2>\n", charts[0],
                  "\n<h2>Top-1 against BOPs</h2>\n", charts[1], "\n");
  html +=
      "<h2>Curves</h2>\n<table>\n<tr><th>method</th><th>budget (MiB)</th><th>size (MiB)</th>"
      "<th>BOPs (G)</th><th>top-1 (%)</th><th>std</th><th>top-5 (%)</th><th>points</th></tr>\n";
  for (const SweepCurvePoint& c : curves) {
    absl::StrAppend(&html, "<tr><td>", html_text(c.method), "</td><td>",
                    number_cell(c.budget_mib, 4), "</td><td>", number_cell(c.size_mib, 4),
                    "</td><td>", number_cell(c.bops_g, 4), "</td><td>", number_cell(c.top1, 2),
                    "</td><td>", number_cell(c.top1_std, 2), "</td><td>", number_cell(c.top5, 2),
                    "</td><td>", c.count, "</td></tr>\n");
  }
  html += "</table>\n<p>Every point: points.csv.</p>\n</body>\n</html>\n";
  return html;
}

}  // namespace

const std::vector<std::string>& sweep_point_columns() {
  static const std::vector<std::string> columns = {"method",     "allocation_seed",
                                                   "ptq_seed",   "budget_fraction",
                                                   "budget_mib", "size_mib",
                                                   "bops_g",     "top1",
                                                   "top5",       "loss",
                                                   "search_s",   "ptq_s",
                                                   "eval_s"};
  return columns;
}

std::string sweep_points_csv(const std::vector<SweepPoint>& points) {
  std::string csv = absl::StrCat(absl::StrJoin(sweep_point_columns(), ","), "\n");
  for (const SweepPoint& p : points) {
    absl::StrAppend(&csv, p.method, ",", p.allocation_seed, ",", p.ptq_seed, ",",
                    number_cell(p.budget_fraction, 6), ",", number_cell(p.budget_mib, 6), ",",
                    number_cell(p.size_mib, 6), ",", number_cell(p.bops_g, 6), ",",
                    number_cell(p.top1, 4), ",", number_cell(p.top5, 4), ",",
                    number_cell(p.loss, 6), ",", number_cell(p.search_s, 3), ",",
                    number_cell(p.ptq_s, 3), ",", number_cell(p.eval_s, 3), "\n");
  }
  return csv;
}

absl::StatusOr<std::vector<SweepPoint>> parse_sweep_points_csv(const std::string& text,
                                                               const std::string& source) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  const std::string header = absl::StrJoin(sweep_point_columns(), ",");
  if (lines.empty() || lines[0] != header) {
    return bad_line(source, 1, absl::StrCat("expected the header \"", header, "\""));
  }
  std::vector<SweepPoint> points;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<std::string> cells = absl::StrSplit(lines[i], ',');
    if (cells.size() != sweep_point_columns().size()) {
      return bad_line(
          source, i + 1,
          absl::StrCat(cells.size(), " cells, expected ", sweep_point_columns().size()));
    }
    SweepPoint p;
    p.method = cells[0];
    if (p.method.empty()) return bad_line(source, i + 1, "no method");
    if (!absl::SimpleAtoi(cells[1], &p.allocation_seed) ||
        !absl::SimpleAtoi(cells[2], &p.ptq_seed)) {
      return bad_line(source, i + 1, "a seed that is not an unsigned integer");
    }
    double* numbers[] = {
        &p.budget_fraction, &p.budget_mib, &p.size_mib, &p.bops_g, &p.top1, &p.top5, &p.loss,
        &p.search_s,        &p.ptq_s,      &p.eval_s};
    for (size_t k = 0; k < std::size(numbers); ++k) {
      const std::string& cell = cells[3 + k];
      // Only the fraction may be empty: a budget given in MiB has none.
      if (cell.empty() && k == 0) {
        *numbers[k] = std::numeric_limits<double>::quiet_NaN();
      } else if (!absl::SimpleAtod(cell, numbers[k])) {
        return bad_line(
            source, i + 1,
            absl::StrCat(sweep_point_columns()[3 + k], " \"", cell, "\" is not a number"));
      }
    }
    points.push_back(std::move(p));
  }
  return points;
}

std::vector<SweepCurvePoint> sweep_curves(const std::vector<SweepPoint>& points) {
  // Method in order of first appearance, then budget.
  std::vector<std::string> methods;
  std::map<std::pair<std::string, double>, std::vector<const SweepPoint*>> groups;
  for (const SweepPoint& p : points) {
    if (std::find(methods.begin(), methods.end(), p.method) == methods.end()) {
      methods.push_back(p.method);
    }
    groups[{p.method, p.budget_mib}].push_back(&p);
  }
  std::vector<SweepCurvePoint> curves;
  for (const std::string& method : methods) {
    for (const auto& [key, group] : groups) {
      if (key.first != method) continue;
      std::vector<double> size, bops, top1, top5;
      for (const SweepPoint* p : group) {
        size.push_back(p->size_mib);
        bops.push_back(p->bops_g);
        top1.push_back(p->top1);
        top5.push_back(p->top5);
      }
      SweepCurvePoint c;
      c.method = method;
      c.budget_mib = key.second;
      c.size_mib = mean(size);
      c.bops_g = mean(bops);
      c.top1 = mean(top1);
      c.top1_std = top1.size() > 1 ? standard_deviation(top1) : 0.0;
      c.top5 = mean(top5);
      c.count = static_cast<int64_t>(group.size());
      curves.push_back(c);
    }
  }
  return curves;
}

absl::Status write_sweep_report(const SweepReport& report, const std::string& dir) {
  if (report.points.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("sweep report for ", dir, ": no finished points"));
  }
  const std::vector<SweepCurvePoint> curves = sweep_curves(report.points);
  std::vector<std::string> charts;
  for (bool by_bops : {false, true}) {
    OMPQ_ASSIGN_OR_RETURN(std::string svg, curve_chart(curves, by_bops));
    OMPQ_RETURN_IF_ERROR(
        write_file_atomically((fs::path(dir) / kChartFiles[by_bops]).string(), svg_document(svg)));
    charts.push_back(std::move(svg));
  }
  return write_file_atomically((fs::path(dir) / kReportHtml).string(),
                               report_html(report, curves, charts));
}

}  // namespace ompq::solver
