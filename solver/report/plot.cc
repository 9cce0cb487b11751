#include "solver/report/plot.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <numeric>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/error.h"

namespace ompq::solver {
namespace {

constexpr int kFontPx = 11;
constexpr double kCharPx = 7.0;  // advance of an 11 px sans-serif character, rounded up
constexpr double kMarkerRadius = 4.0;
constexpr double kLegendRow = 16.0;
constexpr double kLegendSwatch = 24.0;  // the line sample in front of a legend entry

// Okabe and Ito's eight colours, told apart with every common colour-vision deficiency.
constexpr std::array<const char*, 8> kColours = {"#0072b2", "#d55e00", "#009e73", "#cc79a7",
                                                 "#e69f00", "#56b4e9", "#000000", "#f0e442"};
enum class Marker { kCircle, kSquare, kTriangle, kDiamond };
constexpr std::array<Marker, 4> kMarkers = {Marker::kCircle, Marker::kSquare, Marker::kTriangle,
                                            Marker::kDiamond};

const char* colour_of(size_t series) { return kColours[series % kColours.size()]; }
// Markers cycle out of step with the colours, so series 0 and 8 still differ in shape.
Marker marker_of(size_t series) { return kMarkers[series % kMarkers.size()]; }

// A marker centred at (x, y); `inner` goes inside the element (a tooltip), may be empty.
std::string marker_svg(Marker marker, double x, double y, const char* colour,
                       const std::string& inner) {
  const double r = kMarkerRadius;
  std::string element;
  switch (marker) {
    case Marker::kCircle:
      element = absl::StrFormat("circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\"", x, y, r);
      break;
    case Marker::kSquare:
      element = absl::StrFormat("rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"", x - r,
                                y - r, 2 * r, 2 * r);
      break;
    case Marker::kTriangle:
      element = absl::StrFormat("polygon points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f\"", x, y - r - 1,
                                x + r + 1, y + r, x - r - 1, y + r);
      break;
    case Marker::kDiamond:
      element = absl::StrFormat("polygon points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f %.1f,%.1f\"", x,
                                y - r - 1, x + r + 1, y, x, y + r + 1, x - r - 1, y);
      break;
  }
  const std::string tag = element.substr(0, element.find(' '));
  if (inner.empty()) return absl::StrFormat("<%s fill=\"%s\"/>", element, colour);
  return absl::StrFormat("<%s fill=\"%s\">%s</%s>", element, colour, inner, tag);
}

std::string series_label(const Chart& chart, size_t s) {
  const std::string& name = chart.series[s].name;
  return absl::StrCat("chart '", chart.title, "', series ",
                      name.empty() ? absl::StrCat(s) : absl::StrCat("'", name, "'"));
}

absl::Status check_series(const Chart& chart, size_t s) {
  const PlotSeries& series = chart.series[s];
  const size_t n = series.x.size();
  if (n == 0 && series.y.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(series_label(chart, s), ": no points"));
  }
  auto check_length = [&](size_t size, const char* what, bool may_be_empty) {
    if (size == n || (may_be_empty && size == 0)) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrFormat("%s: %d x values but %d %s (expected %s%d)",
                                                      series_label(chart, s), n, size, what,
                                                      may_be_empty ? "0 or " : "", n));
  };
  OMPQ_RETURN_IF_ERROR(check_length(series.y.size(), "y values", false));
  OMPQ_RETURN_IF_ERROR(check_length(series.y_error.size(), "y errors", true));
  OMPQ_RETURN_IF_ERROR(check_length(series.tooltips.size(), "tooltips", true));
  OMPQ_RETURN_IF_ERROR(check_length(series.annotations.size(), "annotations", true));
  for (size_t i = 0; i < n; ++i) {
    const double e = series.y_error.empty() ? 0.0 : series.y_error[i];
    if (!std::isfinite(series.x[i]) || !std::isfinite(series.y[i]) || !std::isfinite(e) || e < 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s, point %d: (x %g, y %g, y error %g) must be finite with a y error >= 0",
          series_label(chart, s), i, series.x[i], series.y[i], e));
    }
  }
  return absl::OkStatus();
}

absl::Status check_chart(const Chart& chart) {
  if (chart.series.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("chart '", chart.title, "': no series"));
  }
  for (size_t s = 0; s < chart.series.size(); ++s) OMPQ_RETURN_IF_ERROR(check_series(chart, s));
  const PlotArea& a = chart.area;
  if (!(a.width > 0 && a.height > 0 && a.left >= 0 && a.top >= 0)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "chart '%s': plot area (left %g, top %g, width %g, height %g) needs a positive size",
        chart.title, a.left, a.top, a.width, a.height));
  }
  return absl::OkStatus();
}

// Maps data coordinates onto the plot area spanned by the first and last ticks.
struct Axes {
  PlotArea area;
  std::vector<double> x_ticks, y_ticks;
  double px(double x) const {
    return area.left + area.width * (x - x_ticks.front()) / (x_ticks.back() - x_ticks.front());
  }
  double py(double y) const {
    return area.top + area.height -
           area.height * (y - y_ticks.front()) / (y_ticks.back() - y_ticks.front());
  }
};

Axes make_axes(const Chart& chart) {
  double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
  for (const PlotSeries& s : chart.series) {
    for (size_t i = 0; i < s.x.size(); ++i) {
      const double e = s.y_error.empty() ? 0.0 : s.y_error[i];
      x_lo = std::min(x_lo, s.x[i]), x_hi = std::max(x_hi, s.x[i]);
      y_lo = std::min(y_lo, s.y[i] - e), y_hi = std::max(y_hi, s.y[i] + e);
    }
  }
  return {chart.area, nice_ticks(x_lo, x_hi, 5), nice_ticks(y_lo, y_hi, 4)};
}

std::string grid_and_labels(const Chart& chart, const Axes& axes) {
  const PlotArea& a = axes.area;
  const double bottom = a.top + a.height, right = a.left + a.width;
  std::string svg;
  for (double x : axes.x_ticks) {
    absl::StrAppendFormat(&svg,
                          "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\" "
                          "class=\"grid\"/><text x=\"%.1f\" y=\"%.1f\" "
                          "text-anchor=\"middle\">%g</text>\n",
                          axes.px(x), axes.px(x), a.top, bottom, axes.px(x), bottom + 14, x);
  }
  for (double y : axes.y_ticks) {
    absl::StrAppendFormat(&svg,
                          "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\" "
                          "class=\"grid\"/><text x=\"%.1f\" y=\"%.1f\" "
                          "text-anchor=\"end\">%g</text>\n",
                          a.left, right, axes.py(y), axes.py(y), a.left - 4, axes.py(y) + 4, y);
  }
  absl::StrAppendFormat(&svg,
                        "<path d=\"M%.1f %.1fH%.1fV%.1fH%.1fZ\" fill=\"none\" stroke=\"#888\"/>\n",
                        a.left, a.top, right, bottom, a.left);
  absl::StrAppendFormat(&svg,
                        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>"
                        "<text x=\"12\" y=\"%.1f\" text-anchor=\"middle\" "
                        "transform=\"rotate(-90 12 %.1f)\">%s</text>\n",
                        a.left + a.width / 2, bottom + 34, escape_xml(chart.x_label),
                        a.top + a.height / 2, a.top + a.height / 2, escape_xml(chart.y_label));
  return svg;
}

std::string default_tooltip(const PlotSeries& s, size_t i) {
  std::string text =
      absl::StrFormat("%s%s%g, %g", s.name, s.name.empty() ? "" : ": ", s.x[i], s.y[i]);
  if (!s.y_error.empty()) absl::StrAppendFormat(&text, " +- %g", s.y_error[i]);
  return text;
}

std::string series_svg(const PlotSeries& s, size_t index, const Axes& axes) {
  const char* colour = colour_of(index);
  std::string svg;
  if (s.style == SeriesStyle::kLinesAndMarkers && s.x.size() > 1) {
    std::vector<std::string> points;
    for (size_t i = 0; i < s.x.size(); ++i) {
      points.push_back(absl::StrFormat("%.1f,%.1f", axes.px(s.x[i]), axes.py(s.y[i])));
    }
    absl::StrAppendFormat(&svg,
                          "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" "
                          "stroke-width=\"1.5\"/>\n",
                          absl::StrJoin(points, " "), colour);
  }
  for (size_t i = 0; i < s.x.size(); ++i) {
    const double x = axes.px(s.x[i]), y = axes.py(s.y[i]);
    if (!s.y_error.empty() && s.y_error[i] > 0) {
      const double lo = axes.py(s.y[i] - s.y_error[i]), hi = axes.py(s.y[i] + s.y_error[i]);
      absl::StrAppendFormat(&svg,
                            "<path d=\"M%.1f %.1fV%.1fM%.1f %.1fH%.1fM%.1f %.1fH%.1f\" "
                            "stroke=\"%s\" class=\"error-bar\"/>\n",
                            x, lo, hi, x - 3, lo, x + 3, x - 3, hi, x + 3, colour);
    }
    const std::string tooltip = s.tooltips.empty() ? default_tooltip(s, i) : s.tooltips[i];
    svg += marker_svg(marker_of(index), x, y, colour,
                      absl::StrCat("<title>", escape_xml(tooltip), "</title>"));
    if (!s.annotations.empty()) {
      absl::StrAppendFormat(&svg, "<text x=\"%.1f\" y=\"%.1f\">%s</text>", x + 6, y - 6,
                            escape_xml(s.annotations[i]));
    }
    svg += "\n";
  }
  return svg;
}

struct AllPoints {
  std::vector<double> x, y;
};

AllPoints all_points(const Chart& chart) {
  AllPoints all;
  for (const PlotSeries& s : chart.series) {
    all.x.insert(all.x.end(), s.x.begin(), s.x.end());
    all.y.insert(all.y.end(), s.y.begin(), s.y.end());
  }
  return all;
}

// Rings around the front's points and the staircase of the best y reachable at each x: level
// with a point until the next one's x, then up to it.
std::string pareto_svg(const Chart& chart, const Axes& axes) {
  const AllPoints all = all_points(chart);
  const std::vector<size_t> front = pareto_front(all.x, all.y);
  std::string steps =
      absl::StrFormat("M%.1f %.1f", axes.px(all.x[front[0]]), axes.py(all.y[front[0]]));
  for (size_t k = 1; k < front.size(); ++k) {
    absl::StrAppendFormat(&steps, "H%.1fV%.1f", axes.px(all.x[front[k]]), axes.py(all.y[front[k]]));
  }
  std::string svg = absl::StrFormat(
      "<path d=\"%s\" fill=\"none\" stroke=\"#444\" stroke-dasharray=\"4 3\" "
      "class=\"pareto-front\"/>\n",
      steps);
  for (size_t i : front) {
    absl::StrAppendFormat(
        &svg,
        "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"none\" stroke=\"#444\" "
        "stroke-width=\"1.5\" class=\"pareto-point\"/>\n",
        axes.px(all.x[i]), axes.py(all.y[i]), kMarkerRadius + 3);
  }
  return svg;
}

struct LegendEntry {
  std::string name;
  std::string swatch;  // drawn in a kLegendSwatch x kLegendRow box at the origin
};

std::vector<LegendEntry> legend_entries(const Chart& chart) {
  std::vector<LegendEntry> entries;
  const double mid = kLegendSwatch / 2, y = kLegendRow / 2;
  for (size_t s = 0; s < chart.series.size(); ++s) {
    const PlotSeries& series = chart.series[s];
    if (series.name.empty()) continue;
    std::string swatch;
    if (series.style == SeriesStyle::kLinesAndMarkers) {
      swatch = absl::StrFormat(
          "<line x1=\"0\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"1.5\"/>",
          kLegendSwatch, y, y, colour_of(s));
    }
    swatch += marker_svg(marker_of(s), mid, y, colour_of(s), "");
    entries.push_back({series.name, swatch});
  }
  if (chart.mark_pareto_front) {
    entries.push_back(
        {"Pareto front",
         absl::StrFormat("<path d=\"M0 %.1fH%.1f\" stroke=\"#444\" stroke-dasharray=\"4 3\"/>"
                         "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"none\" "
                         "stroke=\"#444\" stroke-width=\"1.5\"/>",
                         y, kLegendSwatch, mid, y, kMarkerRadius + 3)});
  }
  return entries;
}

double longest_px(const std::vector<std::string>& texts) {
  size_t longest = 0;
  for (const std::string& t : texts) longest = std::max(longest, t.size());
  return static_cast<double>(longest) * kCharPx;
}

}  // namespace

absl::StatusOr<std::string> chart_svg(const Chart& chart) {
  OMPQ_RETURN_IF_ERROR(check_chart(chart));
  const Axes axes = make_axes(chart);
  const PlotArea& a = chart.area;
  const std::vector<LegendEntry> legend = legend_entries(chart);
  std::vector<std::string> names, annotations;
  for (const LegendEntry& e : legend) names.push_back(e.name);
  for (const PlotSeries& s : chart.series) {
    annotations.insert(annotations.end(), s.annotations.begin(), s.annotations.end());
  }
  // Annotations of the rightmost points run past the plot area; the legend sits right of it.
  const double legend_left = a.left + a.width + 16;
  const double legend_w = legend.empty() ? 0.0 : kLegendSwatch + 6 + longest_px(names);
  const double width = legend_left + std::max(legend_w, longest_px(annotations)) + 8;
  const double height =
      std::max(a.top + a.height + 44, a.top + kLegendRow * static_cast<double>(legend.size()) + 8);

  std::string svg = absl::StrFormat(
      "<svg class=\"chart\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
      "role=\"img\" aria-label=\"%s\" font-size=\"%d\" font-family=\"sans-serif\">\n"
      "<title>%s</title>\n",
      width, height, width, height, escape_xml(chart.title), kFontPx, escape_xml(chart.title));
  svg += grid_and_labels(chart, axes);
  if (chart.mark_pareto_front) svg += pareto_svg(chart, axes);
  for (size_t s = 0; s < chart.series.size(); ++s) svg += series_svg(chart.series[s], s, axes);
  for (size_t k = 0; k < legend.size(); ++k) {
    const double y = a.top + kLegendRow * static_cast<double>(k);
    absl::StrAppendFormat(&svg,
                          "<g transform=\"translate(%.1f %.1f)\" class=\"legend\">%s"
                          "<text x=\"%.1f\" y=\"%.1f\">%s</text></g>\n",
                          legend_left, y, legend[k].swatch, kLegendSwatch + 6, kLegendRow / 2 + 4,
                          escape_xml(legend[k].name));
  }
  svg += "</svg>\n";
  return svg;
}

std::string svg_document(const std::string& svg) {
  std::string document = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  const size_t open = svg.find("<svg");
  OMPQ_CHECK(open != std::string::npos, "svg_document: the text has no <svg element");
  document += svg.substr(0, open + 4);
  document += " xmlns=\"http://www.w3.org/2000/svg\"";
  document += svg.substr(open + 4);
  return document;
}

std::vector<size_t> pareto_front(const std::vector<double>& x, const std::vector<double>& y) {
  OMPQ_CHECK(x.size() == y.size(), "pareto_front: ", x.size(), " x values but ", y.size(),
             " y values");
  for (size_t i = 0; i < x.size(); ++i) {
    OMPQ_CHECK(std::isfinite(x[i]) && std::isfinite(y[i]), "pareto_front: point ", i, " (", x[i],
               ", ", y[i], ") is not finite");
  }
  // By x ascending, equal x by y descending: a point is on the front when its y is at least the
  // best y of every point before it, and strictly above it unless it equals that best point.
  std::vector<size_t> order(x.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return x[a] != x[b] ? x[a] < x[b] : y[a] > y[b]; });
  std::vector<size_t> front;
  for (size_t i : order) {
    if (front.empty()) {
      front.push_back(i);
      continue;
    }
    const size_t best = front.back();
    const bool equal = x[i] == x[best] && y[i] == y[best];
    if (equal || y[i] > y[best]) front.push_back(i);
  }
  return front;
}

std::vector<double> nice_ticks(double lo, double hi, int count) {
  OMPQ_CHECK(count >= 1 && std::isfinite(lo) && std::isfinite(hi), "nice_ticks: range [", lo, ", ",
             hi, "] with ", count, " ticks; expected finite bounds and count >= 1");
  if (hi <= lo) {
    const double pad = lo != 0.0 ? std::abs(lo) * 0.1 : 1.0;
    lo -= pad, hi += pad;
  }
  const double raw = (hi - lo) / count;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude * 10;
  for (double m : {1.0, 2.0, 5.0}) {
    if (m * magnitude >= raw) {
      step = m * magnitude;
      break;
    }
  }
  std::vector<double> ticks;
  const int64_t last = static_cast<int64_t>(std::ceil(hi / step));
  for (int64_t k = static_cast<int64_t>(std::floor(lo / step)); k <= last; ++k) {
    ticks.push_back(static_cast<double>(k) * step);
  }
  return ticks;
}

std::string escape_xml(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace ompq::solver
