// chart_svg: the SVG parses as XML (expat) with the expected elements (markers, lines, error bars,
// legend entries, Pareto rings), every marker inside the plot area, text escaped; the errors for
// bad series. pareto_front on hand cases and against the O(n^2) definition; nice_ticks covers its
// range.
#include "solver/report/plot.h"

#include <expat.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "core/error.h"

namespace ompq::solver {
namespace {

using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::Pointwise;

struct Element {
  std::string name;
  std::map<std::string, std::string> attributes;
  bool in_legend = false;
  std::string text;  // character data directly inside (for <text> and <title>)
};

struct ParsedSvg {
  bool ok = false;
  std::string error;
  std::vector<Element> elements;  // in document order

  size_t count(const std::string& name) const {
    size_t n = 0;
    for (const Element& e : elements) n += e.name == name;
    return n;
  }
  size_t count_class(const std::string& cls) const {
    size_t n = 0;
    for (const Element& e : elements) {
      auto it = e.attributes.find("class");
      n += it != e.attributes.end() && it->second == cls;
    }
    return n;
  }
  std::vector<std::string> texts(const std::string& name) const {
    std::vector<std::string> out;
    for (const Element& e : elements) {
      if (e.name == name) out.push_back(e.text);
    }
    return out;
  }
};

struct ParseState {
  ParsedSvg* out;
  std::vector<size_t> open;  // indices of the open elements
};

ParsedSvg parse_svg(const std::string& text) {
  ParsedSvg parsed;
  ParseState state{&parsed, {}};
  XML_Parser parser = XML_ParserCreate(nullptr);
  XML_SetUserData(parser, &state);
  XML_SetElementHandler(
      parser,
      [](void* data, const XML_Char* name, const XML_Char** attributes) {
        auto* s = static_cast<ParseState*>(data);
        Element e;
        e.name = name;
        for (size_t i = 0; attributes[i] != nullptr; i += 2) {
          e.attributes[attributes[i]] = attributes[i + 1];
        }
        for (size_t i : s->open) {
          const auto& a = s->out->elements[i].attributes;
          auto it = a.find("class");
          e.in_legend = e.in_legend || (it != a.end() && it->second == "legend");
        }
        s->open.push_back(s->out->elements.size());
        s->out->elements.push_back(std::move(e));
      },
      [](void* data, const XML_Char*) { static_cast<ParseState*>(data)->open.pop_back(); });
  XML_SetCharacterDataHandler(parser, [](void* data, const XML_Char* chars, int length) {
    auto* s = static_cast<ParseState*>(data);
    if (!s->open.empty()) s->out->elements[s->open.back()].text.append(chars, length);
  });
  parsed.ok = XML_Parse(parser, text.data(), static_cast<int>(text.size()), 1) == XML_STATUS_OK;
  if (!parsed.ok) parsed.error = XML_ErrorString(XML_GetErrorCode(parser));
  XML_ParserFree(parser);
  return parsed;
}

double attribute(const Element& e, const std::string& name) {
  return std::stod(e.attributes.at(name));
}

Chart two_curves() {
  Chart chart;
  chart.title = "top-1 against size";
  chart.x_label = "size (MiB)";
  chart.y_label = "top-1 (%)";
  PlotSeries ompq;
  ompq.name = "OMPQ";
  ompq.x = {0.1, 0.2, 0.3};
  ompq.y = {80, 88, 90};
  ompq.y_error = {1.5, 0, 0.5};
  PlotSeries uniform;
  uniform.name = "uniform";
  uniform.x = {0.1, 0.25, 0.3};
  uniform.y = {70, 89, 91};
  chart.series = {ompq, uniform};
  return chart;
}

TEST(Plot, LineChartIsWellFormedWithOneMarkerPerPointAndALegend) {
  const absl::StatusOr<std::string> svg = chart_svg(two_curves());
  ASSERT_TRUE(svg.ok()) << svg.status();
  const ParsedSvg parsed = parse_svg(*svg);
  ASSERT_TRUE(parsed.ok) << parsed.error << "\n" << *svg;
  EXPECT_EQ(parsed.elements.front().name, "svg");
  EXPECT_EQ(parsed.elements.front().attributes.at("aria-label"), "top-1 against size");
  EXPECT_EQ(parsed.count("polyline"), 2u);  // one line per series
  // Series 0 draws circles, series 1 squares; one of each in the legend.
  size_t circles = 0, squares = 0;
  for (const Element& e : parsed.elements) {
    if (e.in_legend) continue;
    circles += e.name == "circle";
    squares += e.name == "rect";
  }
  EXPECT_EQ(circles, 3u);
  EXPECT_EQ(squares, 3u);
  // Error bars only where the half-width is positive.
  EXPECT_EQ(parsed.count_class("error-bar"), 2u);
  EXPECT_EQ(parsed.count_class("legend"), 2u);
  EXPECT_EQ(parsed.count_class("pareto-point"), 0u);
  // Six tooltips and the chart's own title.
  const std::vector<std::string> titles = parsed.texts("title");
  ASSERT_EQ(titles.size(), 7u);
  EXPECT_EQ(titles[0], "top-1 against size");
  EXPECT_EQ(titles[1], "OMPQ: 0.1, 80 +- 1.5");
  EXPECT_EQ(titles[4], "uniform: 0.1, 70");
  const std::vector<std::string> texts = parsed.texts("text");
  EXPECT_NE(std::find(texts.begin(), texts.end(), "size (MiB)"), texts.end());
  EXPECT_NE(std::find(texts.begin(), texts.end(), "top-1 (%)"), texts.end());
  EXPECT_NE(std::find(texts.begin(), texts.end(), "uniform"), texts.end());
}

// Every marker and every end of an error bar lies inside the plot area, whatever the ranges.
TEST(Plot, MarkersAndErrorBarsStayInsideThePlotArea) {
  for (const auto& [xs, ys, es] :
       std::vector<std::tuple<std::vector<double>, std::vector<double>, std::vector<double>>>{
           {{0.30000001, 0.2371}, {91.04, 90.5}, {0.2, 3}},
           {{3.0}, {50.0}, {0}},
           {{-5, 1e6, 7}, {-1e-3, 2e-3, 0}, {1e-3, 0, 5e-4}}}) {
    Chart chart;
    chart.title = "t";
    PlotSeries s;
    s.x = xs, s.y = ys, s.y_error = es;
    s.style = SeriesStyle::kMarkers;
    chart.series = {s};
    const absl::StatusOr<std::string> svg = chart_svg(chart);
    ASSERT_TRUE(svg.ok()) << svg.status();
    const ParsedSvg parsed = parse_svg(*svg);
    ASSERT_TRUE(parsed.ok) << parsed.error;
    EXPECT_EQ(parsed.count("polyline"), 0u);      // a scatter plot joins nothing
    EXPECT_EQ(parsed.count_class("legend"), 0u);  // an unnamed series has no legend entry
    const PlotArea a = chart.area;
    size_t markers = 0;
    for (const Element& e : parsed.elements) {
      if (e.name != "circle") continue;
      ++markers;
      EXPECT_GE(attribute(e, "cx"), a.left);
      EXPECT_LE(attribute(e, "cx"), a.left + a.width);
      EXPECT_GE(attribute(e, "cy"), a.top);
      EXPECT_LE(attribute(e, "cy"), a.top + a.height);
    }
    EXPECT_EQ(markers, xs.size());
    for (const Element& e : parsed.elements) {
      auto cls = e.attributes.find("class");
      if (cls == e.attributes.end() || cls->second != "error-bar") continue;
      double x, y0, y1;
      ASSERT_EQ(std::sscanf(e.attributes.at("d").c_str(), "M%lf %lfV%lf", &x, &y0, &y1), 3);
      for (double y : {y0, y1}) {
        EXPECT_GE(y, a.top - 1e-9);
        EXPECT_LE(y, a.top + a.height + 1e-9);
      }
    }
  }
}

TEST(Plot, ParetoFrontIsMarkedOverAllSeries) {
  Chart chart = two_curves();
  chart.mark_pareto_front = true;
  const absl::StatusOr<std::string> svg = chart_svg(chart);
  ASSERT_TRUE(svg.ok()) << svg.status();
  const ParsedSvg parsed = parse_svg(*svg);
  ASSERT_TRUE(parsed.ok) << parsed.error;
  // (0.1, 80), (0.2, 88), (0.25, 89) and (0.3, 91) are not dominated; (0.1, 70) and (0.3, 90) are.
  EXPECT_EQ(parsed.count_class("pareto-point"), 4u);
  ASSERT_EQ(parsed.count_class("pareto-front"), 1u);
  EXPECT_EQ(parsed.count_class("legend"), 3u);
  const std::vector<std::string> texts = parsed.texts("text");
  EXPECT_NE(std::find(texts.begin(), texts.end(), "Pareto front"), texts.end());
  // The staircase: one horizontal and one vertical step per further front point.
  for (const Element& e : parsed.elements) {
    auto cls = e.attributes.find("class");
    if (cls == e.attributes.end() || cls->second != "pareto-front") continue;
    const std::string& d = e.attributes.at("d");
    EXPECT_EQ(std::count(d.begin(), d.end(), 'H'), 3);
    EXPECT_EQ(std::count(d.begin(), d.end(), 'V'), 3);
  }
}

TEST(Plot, TextIsEscapedAndReadsBackUnchanged) {
  Chart chart;
  chart.title = "a<b & \"c\"";
  chart.x_label = "x's";
  PlotSeries s;
  s.name = "<OMPQ & co>";
  s.x = {1, 2};
  s.y = {3, 4};
  s.annotations = {"p<1", "q&2"};
  chart.series = {s};
  const absl::StatusOr<std::string> svg = chart_svg(chart);
  ASSERT_TRUE(svg.ok()) << svg.status();
  EXPECT_THAT(*svg, Not(HasSubstr("<OMPQ")));
  const ParsedSvg parsed = parse_svg(*svg);
  ASSERT_TRUE(parsed.ok) << parsed.error;
  EXPECT_EQ(parsed.elements.front().attributes.at("aria-label"), "a<b & \"c\"");
  const std::vector<std::string> texts = parsed.texts("text");
  for (const char* expected : {"x's", "<OMPQ & co>", "p<1", "q&2"}) {
    EXPECT_NE(std::find(texts.begin(), texts.end(), expected), texts.end()) << expected;
  }
  EXPECT_EQ(parsed.texts("title")[1], "<OMPQ & co>: 1, 3");
}

TEST(Plot, SvgDocumentIsStandaloneXml) {
  const absl::StatusOr<std::string> svg = chart_svg(two_curves());
  ASSERT_TRUE(svg.ok());
  const std::string document = svg_document(*svg);
  EXPECT_EQ(document.rfind("<?xml version=\"1.0\"", 0), 0u);
  const ParsedSvg parsed = parse_svg(document);
  ASSERT_TRUE(parsed.ok) << parsed.error;
  EXPECT_EQ(parsed.elements.front().attributes.at("xmlns"), "http://www.w3.org/2000/svg");
  EXPECT_THROW(svg_document("<p>no chart</p>"), Error);
}

absl::Status status_of(const Chart& chart) { return chart_svg(chart).status(); }

TEST(Plot, BadSeriesAreClearErrors) {
  Chart chart;
  chart.title = "sweep";
  EXPECT_THAT(status_of(chart).message(), HasSubstr("chart 'sweep': no series"));

  PlotSeries s;
  s.name = "OMPQ";
  chart.series = {s};
  EXPECT_THAT(status_of(chart).message(), HasSubstr("chart 'sweep', series 'OMPQ': no points"));

  chart.series[0].x = {1, 2, 3};
  chart.series[0].y = {1, 2};
  EXPECT_THAT(status_of(chart).message(),
              HasSubstr("series 'OMPQ': 3 x values but 2 y values (expected 3)"));

  chart.series[0].y = {1, 2, 3};
  chart.series[0].y_error = {0.1};
  EXPECT_THAT(status_of(chart).message(), HasSubstr("3 x values but 1 y errors (expected 0 or 3)"));

  chart.series[0].y_error = {};
  chart.series[0].tooltips = {"a", "b"};
  EXPECT_THAT(status_of(chart).message(), HasSubstr("2 tooltips"));
  chart.series[0].tooltips = {};
  chart.series[0].annotations = {"a"};
  EXPECT_THAT(status_of(chart).message(), HasSubstr("1 annotations"));
  chart.series[0].annotations = {};

  chart.series[0].y[1] = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THAT(status_of(chart).message(), HasSubstr("series 'OMPQ', point 1: (x 2, y nan"));
  chart.series[0].y[1] = 2;
  chart.series[0].y_error = {0, -0.5, 0};
  EXPECT_THAT(status_of(chart).message(), HasSubstr("point 1"));

  // An unnamed series is named by its index.
  chart.series[0].y_error = {};
  chart.series.push_back(PlotSeries{});
  EXPECT_THAT(status_of(chart).message(), HasSubstr("chart 'sweep', series 1: no points"));

  chart.series.pop_back();
  chart.area.width = 0;
  EXPECT_THAT(status_of(chart).message(), HasSubstr("needs a positive size"));
}

TEST(ParetoFront, HandCases) {
  EXPECT_THAT(pareto_front({}, {}), IsEmpty());
  EXPECT_THAT(pareto_front({2}, {5}), ElementsAre(0u));
  // (2, 5) is beaten by (1, 10); (4, 15) by (3, 20).
  EXPECT_THAT(pareto_front({1, 2, 3, 4}, {10, 5, 20, 15}), ElementsAre(0u, 2u));
  // Ordered by x whatever the input order; all on the front when y rises with x.
  EXPECT_THAT(pareto_front({3, 1, 2}, {3, 1, 2}), ElementsAre(1u, 2u, 0u));
  // Equal x: the higher y dominates; equal y: the smaller x dominates.
  EXPECT_THAT(pareto_front({1, 1, 2}, {5, 7, 7}), ElementsAre(1u));
  // Equal points do not dominate each other.
  EXPECT_THAT(pareto_front({1, 1, 0.5}, {3, 3, 1}), ElementsAre(2u, 0u, 1u));
  EXPECT_THROW(pareto_front({1, 2}, {1}), Error);
  EXPECT_THROW(pareto_front({1, NAN}, {1, 2}), Error);
}

// The front is exactly the set of points no other point dominates, on a coarse grid with ties.
TEST(ParetoFront, MatchesTheDefinition) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> coordinate(0, 6);
  for (int trial = 0; trial < 200; ++trial) {
    const size_t n = 1 + trial % 12;
    std::vector<double> x(n), y(n);
    for (size_t i = 0; i < n; ++i) x[i] = coordinate(rng), y[i] = coordinate(rng);
    std::vector<size_t> expected;
    for (size_t i = 0; i < n; ++i) {
      bool dominated = false;
      for (size_t j = 0; j < n; ++j) {
        dominated = dominated || (x[j] <= x[i] && y[j] >= y[i] && (x[j] < x[i] || y[j] > y[i]));
      }
      if (!dominated) expected.push_back(i);
    }
    std::vector<size_t> front = pareto_front(x, y);
    std::sort(front.begin(), front.end());
    EXPECT_EQ(front, expected) << "trial " << trial;
  }
}

TEST(NiceTicks, CoverTheRangeAtRoundSteps) {
  EXPECT_THAT(nice_ticks(0, 10, 5), Pointwise(DoubleNear(1e-12), {0, 2, 4, 6, 8, 10}));
  // An empty range is widened by 10% of its value each way.
  EXPECT_THAT(nice_ticks(3, 3, 4), Pointwise(DoubleNear(1e-12), {2.6, 2.8, 3.0, 3.2, 3.4}));
  for (const auto& [lo, hi] : std::vector<std::pair<double, double>>{
           {0.2371, 0.30000001}, {-1e-3, 2e-3}, {68.1, 69.76}, {0, 0}, {-5, 1e6}}) {
    const std::vector<double> ticks = nice_ticks(lo, hi, 5);
    ASSERT_GE(ticks.size(), 2u);
    EXPECT_LE(ticks.front(), lo);
    EXPECT_GE(ticks.back(), hi);
    EXPECT_LE(ticks.size(), 12u);
  }
  EXPECT_THROW(nice_ticks(0, INFINITY, 5), Error);
  EXPECT_THROW(nice_ticks(0, 1, 0), Error);
}

}  // namespace
}  // namespace ompq::solver
