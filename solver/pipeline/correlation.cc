#include "solver/pipeline/correlation.h"

#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "solver/report/plot.h"
#include "solver/search/allocation_score.h"

namespace ompq::solver {
namespace {

namespace fs = std::filesystem;

constexpr char kCsvFile[] = "correlation.csv";
constexpr char kHtmlFile[] = "correlation.html";
constexpr char kOmpqSvg[] = "correlation_ompq.svg";
constexpr char kHessianSvg[] = "correlation_hessian.svg";

// Runs `f`, turning the ompq::Error that a precondition of the scoring or the statistics throws
// into a status with `code`.
template <typename F>
absl::Status catch_error(absl::StatusCode code, F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return absl::Status(code, e.what());
  }
  return absl::OkStatus();
}

// One score against top-1 as a scatter plot; each point's tooltip names its seed and bits.
absl::StatusOr<std::string> scatter(const std::vector<CorrelationSample>& samples,
                                    const std::string& title, const std::string& x_label,
                                    double CorrelationSample::*score) {
  PlotSeries series;
  series.style = SeriesStyle::kMarkers;
  for (const CorrelationSample& s : samples) {
    series.x.push_back(s.*score);
    series.y.push_back(s.top1);
    series.tooltips.push_back(absl::StrFormat("seed %d: bits %s, %.4f MiB, top-1 %.2f%%",
                                              s.allocation_seed, absl::StrJoin(s.bits, " "),
                                              s.size_mib, s.top1));
  }
  Chart chart;
  chart.title = title;
  chart.x_label = x_label;
  chart.y_label = "top-1 (%)";
  chart.series.push_back(std::move(series));
  return chart_svg(chart);
}

std::string interval_text(const RankCorrelation& r) {
  return absl::StrFormat("%.3f [%.3f, %.3f]", r.rho, r.lower, r.upper);
}

std::string html_page(const CorrelationReport& report, const CorrelationSummary& summary,
                      const std::string& ompq_svg, const std::string& hessian_svg) {
  std::string html = absl::StrCat(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>",
      escape_xml(report.model), " correlation of allocation scores with top-1</title>\n",
      "<style>body { font-family: sans-serif; margin: 2em; max-width: 60em; }\n"
      "table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 0.2em "
      "0.6em; text-align: right; }</style>\n</head>\n<body>\n<h1>",
      escape_xml(report.model), " on ", escape_xml(report.dataset),
      ": allocation scores against quantized top-1</h1>\n<p>", escape_xml(report.settings),
      "</p>\n");
  absl::StrAppendFormat(
      &html,
      "<table>\n<tr><th>score</th><th>a good proxy gives</th><th>Spearman rho [%.0f%% "
      "interval]</th><th>configurations</th></tr>\n"
      "<tr><td>OMPQ: log sum<sub>i</sub> w<sub>i</sub> b<sub>i</sub></td><td>rho &gt; 0</td>"
      "<td>%s</td><td>%d</td></tr>\n"
      "<tr><td>HAWQ-V3: sum<sub>i</sub> trace<sub>i</sub> ||Q(W<sub>i</sub>) - "
      "W<sub>i</sub>||<sup>2</sup></td><td>rho &lt; 0</td><td>%s</td><td>%d</td></tr>\n</table>\n",
      100 * summary.ompq.confidence, interval_text(summary.ompq), summary.ompq.n,
      interval_text(summary.hessian), summary.hessian.n);
  html +=
      "<p>The interval is Fisher's z-transform of rho with Bonett and Wright's variance "
      "(1 + rho<sup>2</sup>/2) / (n - 3); it is approximate.</p>\n"
      "<h2>OMPQ's objective</h2>\n";
  html += ompq_svg;
  html += "<h2>Hessian perturbation</h2>\n";
  html += hessian_svg;
  html += "</body>\n</html>\n";
  return html;
}

}  // namespace

absl::StatusOr<CorrelationSample> score_configuration(const CorrelationInputs& inputs,
                                                      uint64_t allocation_seed,
                                                      const proto::BitConfig& bits, double top1) {
  CorrelationSample sample;
  sample.allocation_seed = allocation_seed;
  sample.size_mib = bits.size_mib();
  sample.bops_g = bits.bops_g();
  sample.top1 = top1;
  for (const proto::LayerBits& layer : bits.layer()) sample.bits.push_back(layer.bits());
  if (sample.bits.size() != inputs.log_weights.size()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("correlation: the configuration of seed %d has %d layers, the search %d "
                        "units",
                        allocation_seed, sample.bits.size(), inputs.log_weights.size()));
  }
  OMPQ_RETURN_IF_ERROR(catch_error(absl::StatusCode::kInvalidArgument, [&] {
    sample.ompq_log_objective = log_lp_objective(inputs.log_weights, sample.bits);
    sample.hessian_objective =
        hessian_objective(inputs.hessian_costs, sample.bits, inputs.min_bits);
  }));
  return sample;
}

absl::StatusOr<CorrelationSummary> summarize_correlation(
    const std::vector<CorrelationSample>& samples, double confidence) {
  std::vector<double> top1, ompq, hessian;
  for (const CorrelationSample& s : samples) {
    top1.push_back(s.top1);
    ompq.push_back(s.ompq_log_objective);
    hessian.push_back(s.hessian_objective);
  }
  CorrelationSummary summary;
  OMPQ_RETURN_IF_ERROR(catch_error(absl::StatusCode::kFailedPrecondition, [&] {
    summary.ompq = spearman(ompq, top1, confidence);
    summary.hessian = spearman(hessian, top1, confidence);
  }));
  return summary;
}

std::string correlation_csv(const std::vector<CorrelationSample>& samples) {
  std::string csv =
      "allocation_seed,size_mib,bops_g,top1,ompq_log_objective,hessian_objective,bits\n";
  for (const CorrelationSample& s : samples) {
    absl::StrAppendFormat(&csv, "%d,%.17g,%.17g,%.17g,%.17g,%.17g,%s\n", s.allocation_seed,
                          s.size_mib, s.bops_g, s.top1, s.ompq_log_objective, s.hessian_objective,
                          absl::StrJoin(s.bits, " "));
  }
  return csv;
}

absl::StatusOr<CorrelationSummary> write_correlation_report(const CorrelationReport& report,
                                                            const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(
        absl::StrCat("correlation: folder '", dir, "' does not exist or is not a folder"));
  }
  OMPQ_ASSIGN_OR_RETURN(CorrelationSummary summary, summarize_correlation(report.samples));
  OMPQ_ASSIGN_OR_RETURN(std::string ompq_svg,
                        scatter(report.samples,
                                absl::StrFormat("top-1 against OMPQ's objective (Spearman rho %s)",
                                                interval_text(summary.ompq)),
                                "OMPQ: log sum of w_i b_i (higher: predicted better)",
                                &CorrelationSample::ompq_log_objective));
  OMPQ_ASSIGN_OR_RETURN(
      std::string hessian_svg,
      scatter(report.samples,
              absl::StrFormat("top-1 against the Hessian perturbation (Spearman rho %s)",
                              interval_text(summary.hessian)),
              "HAWQ-V3: sum of trace_i x ||Q(W_i) - W_i||^2 (lower: predicted better)",
              &CorrelationSample::hessian_objective));
  const std::pair<const char*, std::string> files[] = {
      {kCsvFile, correlation_csv(report.samples)},
      {kOmpqSvg, svg_document(ompq_svg)},
      {kHessianSvg, svg_document(hessian_svg)},
      {kHtmlFile, html_page(report, summary, ompq_svg, hessian_svg)}};
  for (const auto& [name, text] : files) {
    absl::Status written = write_file_atomically((fs::path(dir) / name).string(), text);
    if (!written.ok()) {
      return absl::Status(written.code(), absl::StrCat("correlation: ", written.message()));
    }
  }
  return summary;
}

}  // namespace ompq::solver
