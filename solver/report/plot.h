// SVG charts for the reports: line charts (several named series, optional symmetric y error bars)
// and scatter plots, with ticked axes, axis labels, a legend and, on request, the Pareto front of
// all points (smaller x and higher y are better: top-1 against size or BOPs).
//
// chart_svg returns one <svg> element for inline use in an HTML page (no xmlns, so that the page
// names no URL); svg_document makes it a standalone .svg file. Every colour and stroke is an
// attribute, so a chart looks the same with or without the page's style sheet. Text is escaped.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace ompq::solver {

// How a series is drawn. Either way each point gets a marker with a tooltip (<title>).
enum class SeriesStyle {
  kLinesAndMarkers,  // points joined in the order given (sort them by x for a curve)
  kMarkers,          // a scatter plot
};

struct PlotSeries {
  std::string name;  // legend entry; an empty name keeps the series out of the legend
  std::vector<double> x, y;
  // Empty, or one non-negative half-width per point: a bar from y - e to y + e.
  std::vector<double> y_error;
  // Empty, or one text per point for its tooltip; empty: "name: x, y (+- e)".
  std::vector<std::string> tooltips;
  // Empty, or one text per point written beside its marker.
  std::vector<std::string> annotations;
  SeriesStyle style = SeriesStyle::kLinesAndMarkers;
};

// The plot area inside the SVG, in pixels; margins for the tick labels, the axis labels and the
// legend are added around it.
struct PlotArea {
  double left = 56;
  double top = 12;
  double width = 420;
  double height = 220;
};

struct Chart {
  std::string title;  // the SVG's accessible name (aria-label and <title>)
  std::string x_label, y_label;
  std::vector<PlotSeries> series;
  // Marks the points of all series that no other point dominates (pareto_front) with a ring, and
  // joins them by the staircase of the best y reachable at each x (dashed, in the legend).
  bool mark_pareto_front = false;
  PlotArea area;
};

// One <svg> element. Errors name the chart, the series and the point: no series, a series without
// points, x and y (or y_error, tooltips, annotations) of different lengths, a value that is not
// finite, a negative error bar.
absl::StatusOr<std::string> chart_svg(const Chart& chart);

// `svg` (chart_svg's element) as a standalone SVG file: XML declaration and the SVG namespace.
std::string svg_document(const std::string& svg);

// The indices of the points that no other point dominates, i.e. no other point has x <= and y >=
// with at least one strictly, ordered by x (ties by index). Equal points do not dominate each
// other: both are on the front. Throws ompq::Error when x and y differ in length or a value is
// not finite.
std::vector<size_t> pareto_front(const std::vector<double>& x, const std::vector<double>& y);

// About `count` (>= 1) tick values at a spacing of 1, 2 or 5 times a power of ten, the first at or
// below `lo` and the last at or above `hi`; an empty range (hi <= lo) is widened around lo.
std::vector<double> nice_ticks(double lo, double hi, int count);

// `text` with & < > " ' replaced by their entities: safe in XML/HTML text and attribute values.
std::string escape_xml(std::string_view text);

}  // namespace ompq::solver
