// The training report: SVG charts drawn here, PNG pictures inlined, one self-contained page.
#include "convnet/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <numeric>
#include <sstream>

#include "convnet/error.hpp"
#include "convnet/layers.hpp"
#include "convnet/safetensors.hpp"
#include "report/axis.hpp"

namespace convnet {

std::string base64(std::string_view bytes) {
  static const char* kDigits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    // 3 bytes -> 24 bits -> 4 digits of 6 bits; '=' pads a short last group.
    const size_t n = std::min<size_t>(3, bytes.size() - i);
    uint32_t v = 0;
    for (size_t k = 0; k < 3; ++k)
      v = (v << 8) | (k < n ? static_cast<unsigned char>(bytes[i + k]) : 0u);
    for (size_t k = 0; k < 4; ++k) out += k <= n ? kDigits[(v >> (18 - 6 * k)) & 63] : '=';
  }
  return out;
}

std::string html_escape(std::string_view text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

namespace {

// Values scaled to 0-255 by their own minimum and maximum (a constant map is mid-grey).
std::vector<uint8_t> to_bytes(const float* v, int64_t count, int64_t stride = 1) {
  float lo = v[0], hi = v[0];
  for (int64_t i = 0; i < count; ++i) {
    lo = std::min(lo, v[i * stride]);
    hi = std::max(hi, v[i * stride]);
  }
  std::vector<uint8_t> out(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i)
    out[static_cast<size_t>(i)] =
        hi > lo ? static_cast<uint8_t>(std::lround(255.0 * (v[i * stride] - lo) / (hi - lo))) : 128;
  return out;
}

// Tiles (each channels x h x w, planar) in a grid of ceil(sqrt(n)) columns, each enlarged
// `scale` times (nearest neighbour), 2 pixels of white between them.
Image grid(const std::vector<std::vector<uint8_t>>& tiles, int64_t channels, int64_t h, int64_t w,
           int64_t scale) {
  const int64_t n = static_cast<int64_t>(tiles.size());
  const auto cols = static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(n))));
  const int64_t rows = (n + cols - 1) / cols, gap = 2;
  const int64_t th = h * scale, tw = w * scale;
  Image image{channels, rows * th + (rows - 1) * gap, cols * tw + (cols - 1) * gap, {}};
  image.pixels.assign(static_cast<size_t>(channels * image.height * image.width), 255);
  for (int64_t t = 0; t < n; ++t) {
    const int64_t top = t / cols * (th + gap), left = t % cols * (tw + gap);
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t y = 0; y < th; ++y)
        for (int64_t x = 0; x < tw; ++x)
          image.pixels[static_cast<size_t>((c * image.height + top + y) * image.width + left + x)] =
              tiles[static_cast<size_t>(t)][static_cast<size_t>((c * h + y / scale) * w + x / scale)];
  }
  return image;
}

// Shown `zoom` times its size (pixelated), at most max_width wide.
std::string png_img(const Image& image, const std::string& alt, int64_t max_width,
                    int64_t zoom = 1) {
  const int64_t width = std::min(image.width * zoom, max_width);
  return "<img alt=\"" + html_escape(alt) + "\" width=\"" + std::to_string(width) +
         "\" style=\"image-rendering: pixelated\" src=\"data:image/png;base64," +
         base64(encode_png(image)) + "\">";
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

// A fraction as a percentage with one decimal, the precision the CLI prints accuracies with, so
// that a table's column lines up ("2.1%", not "2.128%" above "90.91%").
std::string percent(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100 * fraction);
  return buf;
}

// A line chart: x is the epoch, one polyline per series, axes with round-valued ticks (see
// report/axis.hpp); log_y for values spanning orders of magnitude (non-positive values are left
// out there). Series past the tenth repeat the colours dashed, past the twentieth dotted, and
// the chart grows taller and wider when its legend needs the room, so that a deep model's layers
// stay told apart.
struct Series {
  std::string name, colour;
  std::vector<std::pair<double, double>> points;
  int dash = 0;  // 0 solid, 1 dashed, 2 dotted
};
std::string svg_chart(const std::string& id, const std::string& title, const std::string& y_label,
                      const std::vector<Series>& series, bool log_y) {
  constexpr double L = 64, T = 30, B = 40, kPlotWidth = 326, kLegendRow = 14, kCharWidth = 6.5;
  constexpr size_t kLongestName = 40;
  size_t longest = 0;
  for (const Series& s : series) longest = std::max(longest, std::min(s.name.size(), kLongestName));
  // The legend: a 22-pixel swatch, then the name at about 6.5 pixels a character (11-pixel font).
  const double R = std::max(170.0, 40 + kCharWidth * static_cast<double>(longest));
  const double W = L + kPlotWidth + R;
  const double H = std::max(300.0, T + kLegendRow * static_cast<double>(series.size()) + B);
  double x_min = 1e300, x_max = -1e300, y_min = 1e300, y_max = -1e300;
  for (const Series& s : series)
    for (const auto& [x, y] : s.points) {
      if (!std::isfinite(y) || (log_y && !(y > 0))) continue;
      x_min = std::min(x_min, x), x_max = std::max(x_max, x);
      y_min = std::min(y_min, y), y_max = std::max(y_max, y);
    }
  if (x_min > x_max) x_min = x_max = 1, y_min = y_max = log_y ? 1 : 0;  // nothing to plot yet
  const report::Axis xa = report::integer_axis(x_min, x_max);
  const report::Axis ya = log_y ? report::log_axis(y_min, y_max) : report::linear_axis(y_min, y_max);
  auto ty = [&](double v) { return log_y ? std::log10(v) : v; };
  auto px = [&](double x) { return L + (x - xa.lo) / (xa.hi - xa.lo) * (W - L - R); };
  // py takes axis coordinates (log10 of the value on a log axis).
  auto py = [&](double a) { return H - B - (a - ya.lo) / (ya.hi - ya.lo) * (H - T - B); };
  auto plotted = [&](double y) { return std::isfinite(y) && (!log_y || y > 0); };
  std::ostringstream svg;
  svg << "<svg id=\"" << id << "\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\""
      << W << "\" height=\"" << H << "\" viewBox=\"0 0 " << W << " " << H << "\">"
      << "<title>" << html_escape(title) << "</title>"
      << "<text x=\"" << L << "\" y=\"18\" font-weight=\"bold\">" << html_escape(title) << "</text>";
  for (const double t : ya.ticks) {
    const double y = py(t);
    svg << "<line class=\"y-tick\" x1=\"" << L - 4 << "\" y1=\"" << y << "\" x2=\"" << W - R
        << "\" y2=\"" << y << "\" stroke=\"#ddd\"/><text x=\"" << L - 6 << "\" y=\"" << y + 4
        << "\" text-anchor=\"end\" font-size=\"11\">" << number(log_y ? std::pow(10.0, t) : t)
        << "</text>";
  }
  for (const double t : xa.ticks)
    svg << "<line class=\"x-tick\" x1=\"" << px(t) << "\" y1=\"" << H - B << "\" x2=\"" << px(t)
        << "\" y2=\"" << H - B + 4 << "\" stroke=\"#333\"/><text x=\"" << px(t) << "\" y=\""
        << H - B + 16 << "\" text-anchor=\"middle\" font-size=\"11\">" << number(t) << "</text>";
  svg << "<line x1=\"" << L << "\" y1=\"" << H - B << "\" x2=\"" << W - R << "\" y2=\"" << H - B
      << "\" stroke=\"#333\"/><line x1=\"" << L << "\" y1=\"" << T << "\" x2=\"" << L << "\" y2=\""
      << H - B << "\" stroke=\"#333\"/>";
  svg << "<text x=\"" << (L + W - R) / 2 << "\" y=\"" << H - 6
      << "\" text-anchor=\"middle\" font-size=\"12\">epoch</text><text x=\"14\" y=\"" << (T + H - B) / 2
      << "\" transform=\"rotate(-90 14 " << (T + H - B) / 2
      << ")\" text-anchor=\"middle\" font-size=\"12\">" << html_escape(y_label) << "</text>";
  for (size_t k = 0; k < series.size(); ++k) {
    const Series& s = series[k];
    static const char* kDashes[] = {"", "\" stroke-dasharray=\"6 3", "\" stroke-dasharray=\"2 2"};
    const std::string dash = kDashes[s.dash % 3];
    std::string points;
    for (const auto& [x, y] : s.points)
      if (plotted(y)) points += number(px(x)) + "," + number(py(ty(y))) + " ";
    svg << "<polyline class=\"series\" fill=\"none\" stroke=\"" << s.colour << dash
        << "\" stroke-width=\"2\" points=\"" << points << "\"/>";
    for (const auto& [x, y] : s.points)
      if (plotted(y))
        svg << "<circle cx=\"" << px(x) << "\" cy=\"" << py(ty(y)) << "\" r=\"2.5\" fill=\""
            << s.colour << "\"><title>" << html_escape(s.name) << ", epoch " << number(x) << ": "
            << number(y) << "</title></circle>";
    const double ly = T + kLegendRow * static_cast<double>(k);
    svg << "<line x1=\"" << W - R + 8 << "\" y1=\"" << ly - 3 << "\" x2=\"" << W - R + 26
        << "\" y2=\"" << ly - 3 << "\" stroke=\"" << s.colour << dash
        << "\" stroke-width=\"3\"/><text x=\"" << W - R + 30 << "\" y=\"" << ly + 1
        << "\" font-size=\"11\">" << html_escape(s.name.size() > kLongestName ? s.name.substr(0, kLongestName - 1) + "~" : s.name)
        << "</text>";
  }
  svg << "</svg>";
  return svg.str();
}

const char* kColours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                          "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
std::string colour(size_t i) { return kColours[i % 10]; }

std::string confusion_table(const ConfusionMatrix& m, const std::vector<std::string>& names) {
  std::ostringstream out;
  auto name = [&](int64_t c) {
    return html_escape(names.empty() ? std::to_string(c) : names[static_cast<size_t>(c)]);
  };
  out << "<table id=\"confusion\" class=\"heatmap\"><tr><th>true \\ predicted</th>";
  for (int64_t c = 0; c < m.classes(); ++c) out << "<th>" << name(c) << "</th>";
  out << "<th>recall</th></tr>";
  for (int64_t l = 0; l < m.classes(); ++l) {
    out << "<tr><th>" << name(l) << "</th>";
    const double row = static_cast<double>(std::max<int64_t>(m.row_sum(l), 1));
    for (int64_t p = 0; p < m.classes(); ++p) {
      // Shade by the share of the true class's samples: the diagonal is recall.
      const double share = static_cast<double>(m.count(l, p)) / row;
      out << "<td style=\"background: rgba(" << (l == p ? "31,119,180" : "214,39,40") << ","
          << number(share) << ")\" title=\"" << m.count(l, p) << " of " << m.row_sum(l) << "\">"
          << m.count(l, p) << "</td>";
    }
    out << "<td>" << percent(m.recall(l)) << "</td></tr>";
  }
  out << "<tr><th>precision</th>";
  for (int64_t p = 0; p < m.classes(); ++p) out << "<td>" << percent(m.precision(p)) << "</td>";
  out << "<td>" << percent(m.accuracy()) << " acc.</td></tr></table>";
  return out.str();
}

// Predicted against true values of one output, with the line y = x a perfect model would lie on.
std::string svg_scatter(const std::string& id, const std::string& name,
                        const std::vector<std::pair<float, float>>& points) {
  constexpr double L = 64, T = 30, B = 40, R = 16, W = 380, H = 340;
  double lo = 1e300, hi = -1e300;
  for (const auto& [t, p] : points) {
    if (!std::isfinite(t) || !std::isfinite(p)) continue;
    lo = std::min({lo, static_cast<double>(t), static_cast<double>(p)});
    hi = std::max({hi, static_cast<double>(t), static_cast<double>(p)});
  }
  if (lo > hi) lo = 0, hi = 1;
  const report::Axis a = report::linear_axis(lo, hi);
  auto px = [&](double v) { return L + (v - a.lo) / (a.hi - a.lo) * (W - L - R); };
  auto py = [&](double v) { return H - B - (v - a.lo) / (a.hi - a.lo) * (H - T - B); };
  std::ostringstream svg;
  const std::string title = "Predicted against true: " + name;
  svg << "<svg id=\"" << id << "\" class=\"chart scatter\" xmlns=\"http://www.w3.org/2000/svg\" "
      << "width=\"" << W << "\" height=\"" << H << "\" viewBox=\"0 0 " << W << " " << H << "\"><title>"
      << html_escape(title) << "</title><text x=\"" << L << "\" y=\"18\" font-weight=\"bold\">"
      << html_escape(title) << "</text>";
  for (const double t : a.ticks)
    svg << "<line x1=\"" << L - 4 << "\" y1=\"" << py(t) << "\" x2=\"" << W - R << "\" y2=\""
        << py(t) << "\" stroke=\"#eee\"/><text x=\"" << L - 6 << "\" y=\"" << py(t) + 4
        << "\" text-anchor=\"end\" font-size=\"11\">" << number(t) << "</text><text x=\"" << px(t)
        << "\" y=\"" << H - B + 16 << "\" text-anchor=\"middle\" font-size=\"11\">" << number(t)
        << "</text>";
  svg << "<line class=\"identity\" x1=\"" << px(a.lo) << "\" y1=\"" << py(a.lo) << "\" x2=\""
      << px(a.hi) << "\" y2=\"" << py(a.hi) << "\" stroke=\"#999\" stroke-dasharray=\"4 3\"/>";
  for (const auto& [t, p] : points)
    if (std::isfinite(t) && std::isfinite(p))
      svg << "<circle cx=\"" << number(px(t)) << "\" cy=\"" << number(py(p))
          << "\" r=\"1.6\" fill=\"" << colour(0) << "\" fill-opacity=\"0.5\"/>";
  svg << "<text x=\"" << (L + W - R) / 2 << "\" y=\"" << H - 6
      << "\" text-anchor=\"middle\" font-size=\"12\">true</text><text x=\"14\" y=\"" << (T + H - B) / 2
      << "\" transform=\"rotate(-90 14 " << (T + H - B) / 2
      << ")\" text-anchor=\"middle\" font-size=\"12\">predicted</text></svg>";
  return svg.str();
}

// The residuals (predicted - true) of every output together, in `bins` equal bins.
std::string svg_histogram(const std::string& id, const std::vector<double>& residuals,
                          int bins = 30) {
  constexpr double L = 64, T = 30, B = 40, R = 16, W = 380, H = 300;
  double lo = 1e300, hi = -1e300;
  for (const double r : residuals)
    if (std::isfinite(r)) lo = std::min(lo, r), hi = std::max(hi, r);
  if (lo > hi) lo = -1, hi = 1;
  if (lo == hi) lo -= 0.5, hi += 0.5;
  std::vector<int64_t> counts(static_cast<size_t>(bins), 0);
  for (const double r : residuals)
    if (std::isfinite(r))
      ++counts[static_cast<size_t>(
          std::clamp<int64_t>(static_cast<int64_t>((r - lo) / (hi - lo) * bins), 0, bins - 1))];
  const int64_t most = std::max<int64_t>(1, *std::max_element(counts.begin(), counts.end()));
  const report::Axis xa = report::linear_axis(lo, hi);
  const report::Axis ya = report::linear_axis(0, static_cast<double>(most));
  auto px = [&](double v) { return L + (v - xa.lo) / (xa.hi - xa.lo) * (W - L - R); };
  auto py = [&](double v) { return H - B - (v - ya.lo) / (ya.hi - ya.lo) * (H - T - B); };
  std::ostringstream svg;
  svg << "<svg id=\"" << id << "\" class=\"chart histogram\" xmlns=\"http://www.w3.org/2000/svg\" "
      << "width=\"" << W << "\" height=\"" << H << "\" viewBox=\"0 0 " << W << " " << H
      << "\"><title>Residuals</title><text x=\"" << L
      << "\" y=\"18\" font-weight=\"bold\">Residuals (predicted - true)</text>";
  for (const double t : ya.ticks)
    svg << "<line x1=\"" << L - 4 << "\" y1=\"" << py(t) << "\" x2=\"" << W - R << "\" y2=\""
        << py(t) << "\" stroke=\"#eee\"/><text x=\"" << L - 6 << "\" y=\"" << py(t) + 4
        << "\" text-anchor=\"end\" font-size=\"11\">" << number(t) << "</text>";
  for (const double t : xa.ticks)
    svg << "<text x=\"" << px(t) << "\" y=\"" << H - B + 16
        << "\" text-anchor=\"middle\" font-size=\"11\">" << number(t) << "</text>";
  for (int b = 0; b < bins; ++b) {
    const double x0 = lo + (hi - lo) * b / bins, x1 = lo + (hi - lo) * (b + 1) / bins;
    const int64_t n = counts[static_cast<size_t>(b)];
    svg << "<rect class=\"bin\" x=\"" << number(px(x0)) << "\" y=\"" << number(py(static_cast<double>(n)))
        << "\" width=\"" << number(std::max(0.5, px(x1) - px(x0) - 0.5)) << "\" height=\""
        << number(py(0) - py(static_cast<double>(n))) << "\" fill=\"" << colour(1) << "\"><title>"
        << number(x0) << " to " << number(x1) << ": " << n << "</title></rect>";
  }
  svg << "<text x=\"" << (L + W - R) / 2 << "\" y=\"" << H - 6
      << "\" text-anchor=\"middle\" font-size=\"12\">residual</text><text x=\"14\" y=\""
      << (T + H - B) / 2 << "\" transform=\"rotate(-90 14 " << (T + H - B) / 2
      << ")\" text-anchor=\"middle\" font-size=\"12\">samples</text></svg>";
  return svg.str();
}

std::vector<NodeTrace<float>> conv_nodes(Model<float>& model) {
  std::vector<NodeTrace<float>> out;
  for (const NodeTrace<float>& n : model.trace())
    if (dynamic_cast<Conv2d<float>*>(n.layer)) out.push_back(n);
  return out;
}

}  // namespace

NamedImage filter_grid(Model<float>& model) {
  for (const NamedLayer<float>& l : model.named_layers()) {
    auto* conv = dynamic_cast<Conv2d<float>*>(l.layer);
    if (!conv) continue;
    const Tensor<float>& w = conv->weight();  // OC x IC x KH x KW
    const int64_t oc = w.dim(0), ic = w.dim(1), kh = w.dim(2), kw = w.dim(3);
    const int64_t channels = ic == 3 ? 3 : 1;
    std::vector<std::vector<uint8_t>> tiles;
    for (int64_t o = 0; o < oc; ++o) {
      // One filter scaled as a whole, so its channels keep their relative strength.
      const std::vector<uint8_t> all = to_bytes(w.data() + o * ic * kh * kw, ic * kh * kw);
      tiles.emplace_back(all.begin(), all.begin() + channels * kh * kw);
    }
    const int64_t scale = std::max<int64_t>(1, 40 / std::max(kh, kw));
    return {"filters of " + l.name + " (" + conv->describe() + ")",
            grid(tiles, channels, kh, kw, scale)};
  }
  throw Error("the model has no convolution, so no filters to show");
}

std::vector<NamedImage> feature_maps(Model<float>& model, const Tensor<float>& sample) {
  CONVNET_CHECK(sample.shape().rank() == 4 && sample.dim(0) == 1, "feature maps: expected one ",
                "sample (1 x C x H x W), got ", sample.shape().str());
  model.forward(sample, Mode::Eval);
  std::vector<NamedImage> out;
  for (const NodeTrace<float>& n : conv_nodes(model)) {
    const Tensor<float>& y = *n.output;  // the first sample's channels
    const int64_t c = y.dim(1), h = y.dim(2), w = y.dim(3);
    std::vector<std::vector<uint8_t>> tiles;
    for (int64_t k = 0; k < c; ++k) tiles.push_back(to_bytes(y.data() + k * h * w, h * w));
    const int64_t scale = std::max<int64_t>(1, 56 / std::max(h, w));
    out.push_back({n.name + " " + n.description + ": " + std::to_string(c) + " maps of " +
                       std::to_string(h) + "x" + std::to_string(w),
                   grid(tiles, 1, h, w, scale)});
  }
  return out;
}

RegressionView regression_view(Model<float>& model, const Dataset& test, bool reconstruct,
                               int64_t samples, int64_t pairs) {
  RegressionView view;
  const Shape& out_shape = model.output_shape();
  const int64_t per = out_shape.numel() / std::max<int64_t>(out_shape[0], 1);
  const int64_t outputs = reconstruct ? 1 : per;
  view.names = reconstruct ? std::vector<std::string>{"pixels"} : test.target_names();
  view.points.resize(static_cast<size_t>(outputs));
  const std::vector<float>&mean = test.target_mean(), &stddev = test.target_stddev();
  const int64_t n = std::min(samples, test.size()), batch = model.input_shape()[0];
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  Tensor<float> x(test.shape().with_batch(batch));
  std::vector<int32_t> labels(static_cast<size_t>(batch));
  std::vector<float> targets(static_cast<size_t>(batch * per));
  // A reconstruction plots about this many pixels in all, every pixel_stride-th of the images
  // read as one sequence; a stride sharing no factor with the image size moves through every
  // position in the image rather than hitting the same few (the corners) in each.
  const int64_t pixel_points = 2000;
  int64_t pixel_stride = std::max<int64_t>(1, n * per / pixel_points);
  while (std::gcd(pixel_stride, per) != 1) ++pixel_stride;
  for (int64_t first = 0; first < n; first += batch) {
    const int64_t count = std::min(batch, n - first);
    x.resize(test.shape().with_batch(count));
    test.gather(std::span(order).subspan(static_cast<size_t>(first), static_cast<size_t>(count)),
                x.data(), labels.data(), reconstruct ? nullptr : targets.data());
    const float* t = reconstruct ? x.data() : targets.data();
    const Tensor<float>& y = model.forward(x, Mode::Eval);
    for (int64_t i = 0; i < count * per; ++i) {
      const int64_t k = i % per;
      if (reconstruct) {
        if ((first * per + i) % pixel_stride == 0) view.points[0].emplace_back(t[i], y.data()[i]);
        continue;
      }
      const float sd = mean.empty() ? 1.0f : stddev[static_cast<size_t>(k)];
      const float m = mean.empty() ? 0.0f : mean[static_cast<size_t>(k)];
      view.points[static_cast<size_t>(k)].emplace_back(t[i] * sd + m, y.data()[i] * sd + m);
    }
    if (reconstruct)
      for (int64_t j = 0; j < count && static_cast<int64_t>(view.reconstructions.size()) < pairs; ++j) {
        const int64_t C = x.dim(1), H = x.dim(2), W = x.dim(3), plane = C * H * W;
        // Both scaled together by the input's range, so that a faint reconstruction looks faint.
        const float* in = x.data() + j * plane;
        const float* rec = y.data() + j * plane;
        const auto [lo_it, hi_it] = std::minmax_element(in, in + plane);
        const float lo = *lo_it, hi = std::max(*hi_it, lo + 1e-6f);
        auto image = [&](const float* v) {
          Image img{C == 3 ? 3 : 1, H, W, {}};
          for (int64_t i = 0; i < img.channels * H * W; ++i)
            img.pixels.push_back(static_cast<uint8_t>(
                std::lround(255.0f * std::clamp((v[i] - lo) / (hi - lo), 0.0f, 1.0f))));
          return img;
        };
        view.reconstructions.emplace_back(image(in), image(rec));
      }
  }
  return view;
}

std::string report_html(const ReportData& data, Model<float>& model, const Tensor<float>& sample) {
  std::vector<Series> loss = {{"train loss", colour(0), {}}, {"test loss", colour(1), {}}};
  std::vector<Series> acc = {{"train accuracy", colour(0), {}}, {"test accuracy", colour(1), {}}};
  if (data.regression) acc = {{"test MAE", colour(1), {}}};
  std::vector<Series> lr = {{"learning rate", colour(2), {}}};
  const bool has_val = !data.epochs.empty() && data.epochs.front().has_validation;
  if (has_val) {
    loss.push_back({"validation loss", colour(2), {}});
    acc.push_back({data.regression ? "validation MAE" : "validation accuracy", colour(2), {}});
  }
  // Gradient norms per layer: the tensors named "<layer>.<tensor>" joined as sqrt(sum of squares).
  const auto params = model.params();
  // The legend names each layer with its kind ("layer0 conv2d"), so that the lines of the
  // convolutions and of the fully connected layers can be told apart.
  std::map<std::string, std::string> kinds;
  for (const NamedLayer<float>& l : model.named_layers()) kinds[l.name] = l.layer->kind();
  std::map<std::string, size_t> layer_index;
  std::vector<Series> grads;
  for (const Param<float>& p : params) {
    const std::string layer = p.name.substr(0, p.name.rfind('.'));
    if (layer_index.emplace(layer, grads.size()).second) {
      const auto kind = kinds.find(layer);
      grads.push_back({kind == kinds.end() ? layer : layer + " " + kind->second,
                       colour(grads.size()), {}, static_cast<int>(grads.size() / 10)});
    }
  }
  for (const ReportEpoch& e : data.epochs) {
    const double x = e.epoch;
    loss[0].points.push_back({x, e.train_loss});
    loss[1].points.push_back({x, e.test_loss});
    if (data.regression) {
      acc[0].points.push_back({x, e.test_mae});
      if (has_val) acc[1].points.push_back({x, e.val_mae});
    } else {
      acc[0].points.push_back({x, 100 * e.train_acc});
      acc[1].points.push_back({x, 100 * e.test_acc});
      if (has_val) acc[2].points.push_back({x, 100 * e.val_acc});
    }
    if (has_val) loss[2].points.push_back({x, e.val_loss});
    lr[0].points.push_back({x, e.learning_rate});
    std::vector<double> squares(grads.size(), 0.0);
    for (size_t i = 0; i < params.size() && i < e.grad_norms.size(); ++i)
      squares[layer_index[params[i].name.substr(0, params[i].name.rfind('.'))]] +=
          e.grad_norms[i] * e.grad_norms[i];
    if (!e.grad_norms.empty())
      for (size_t k = 0; k < grads.size(); ++k) grads[k].points.push_back({x, std::sqrt(squares[k])});
  }

  std::ostringstream html;
  html << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>"
       << html_escape(data.title) << "</title><style>"
       << "body{font-family:sans-serif;margin:24px;color:#222;max-width:1200px}"
       << "section{margin:28px 0}h2{border-bottom:1px solid #ccc;padding-bottom:4px}"
       << ".charts{display:flex;flex-wrap:wrap;gap:12px}"
       << "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;"
       << "text-align:right}th{background:#f4f4f4}pre{background:#f7f7f7;padding:8px;font-size:12px;"
       << "overflow-x:auto}.maps img{margin:6px 12px 6px 0;vertical-align:top}"
       << "figure{display:inline-block;margin:4px 16px 4px 0}figcaption{font-size:12px}"
       << "</style></head><body>\n";
  html << "<h1>" << html_escape(data.title) << "</h1><p>" << data.epochs.size()
       << " epochs. This page is rewritten after every epoch; reload to follow the run.</p>\n";
  if (!data.epochs.empty()) {
    const ReportEpoch& last = data.epochs.back();
    if (data.regression)
      html << "<p id=\"latest\">Epoch " << last.epoch << ": train loss " << number(last.train_loss)
           << "; test loss " << number(last.test_loss) << ", MAE " << number(last.test_mae)
           << ", R&sup2; " << number(last.test_r2)
           << (last.has_validation ? "; validation MAE " + number(last.val_mae) : "") << "; "
           << number(last.seconds) << " s.</p>\n";
    else
      html << "<p id=\"latest\">Epoch " << last.epoch << ": train loss " << number(last.train_loss)
           << ", accuracy " << percent(last.train_acc) << "; test loss "
           << number(last.test_loss) << ", accuracy " << percent(last.test_acc)
           << (last.has_validation ? "; validation accuracy " + percent(last.val_acc) : "")
           << "; " << number(last.seconds) << " s.</p>\n";
  }
  html << "<section id=\"curves\"><h2>Learning curves</h2><div class=\"charts\">"
       << svg_chart("loss-chart", "Loss", data.regression ? "mean loss" : "mean cross-entropy",
                    loss, false)
       << (data.regression ? svg_chart("mae-chart", "Mean absolute error", "MAE", acc, false)
                           : svg_chart("accuracy-chart", "Accuracy", "% correct", acc, false))
       << svg_chart("lr-chart", "Learning rate", "rate", lr, false) << "</div></section>\n";
  html << "<section id=\"gradients\"><h2>Gradient norm per layer</h2><p>||&part;L/&part;W|| of each "
          "layer's parameters, averaged over the epoch's batches, on a log scale: lines that sink "
          "by orders of magnitude toward the input layers are vanishing gradients, lines that "
          "climb are exploding ones.</p>"
       << svg_chart("grad-norm-chart", "Gradient norm per layer", "L2 norm (log scale)", grads, true)
       << "</section>\n";
  if (data.regression) {
    const RegressionView& v = data.predictions;
    html << "<section id=\"predictions\"><h2>Predictions (test set)</h2><p>Each point is a test "
            "sample's prediction against its true value (the first "
         << (v.points.empty() ? 0 : v.points[0].size())
         << " points), in the targets' units; a perfect model lies on the dashed line. The "
            "histogram pools the residuals of every output.</p><div class=\"charts\">";
    std::vector<double> residuals;
    for (size_t k = 0; k < v.points.size(); ++k) {
      html << svg_scatter("scatter-" + std::to_string(k), k < v.names.size() ? v.names[k] : "y",
                          v.points[k]);
      for (const auto& [t, p] : v.points[k]) residuals.push_back(static_cast<double>(p) - t);
    }
    html << svg_histogram("residual-histogram", residuals) << "</div>";
    if (!v.reconstructions.empty()) {
      html << "<h3>Inputs and their reconstructions</h3><div class=\"maps\">";
      for (size_t i = 0; i < v.reconstructions.size(); ++i)
        html << "<figure>" << png_img(v.reconstructions[i].first, "input", 96, 3)
             << png_img(v.reconstructions[i].second, "reconstruction", 96, 3)
             << "<figcaption>test image " << i << ": input, reconstruction</figcaption></figure>";
      html << "</div>";
    }
    html << "</section>\n";
  } else {
    html << "<section id=\"confusion-matrix\"><h2>Confusion matrix (test set)</h2><p>Rows are the "
            "true classes, columns the predictions; a cell's shade is its share of the row.</p>"
         << confusion_table(data.confusion, data.class_names) << "</section>\n";
  }
  html << "<section id=\"filters\"><h2>First convolution's filters</h2>";
  try {
    const NamedImage f = filter_grid(model);
    html << "<figure>" << png_img(f.image, f.name, 480, 3) << "<figcaption>" << html_escape(f.name)
         << " (each scaled to its own range)</figcaption></figure>";
  } catch (const Error& e) {
    html << "<p>" << html_escape(e.what()) << "</p>";
  }
  html << "</section>\n<section id=\"feature-maps\" class=\"maps\"><h2>Feature maps of a test "
          "image</h2>";
  {
    // The sample as the model sees it (normalised): in colour when it has three channels, each
    // channel scaled to its own range (which undoes a per-channel normalisation up to contrast),
    // else its first channel in grey.
    const int64_t h = sample.dim(2), w = sample.dim(3), channels = sample.dim(1) == 3 ? 3 : 1;
    std::vector<uint8_t> pixels;
    for (int64_t c = 0; c < channels; ++c) {
      const std::vector<uint8_t> plane = to_bytes(sample.data() + c * h * w, h * w);
      pixels.insert(pixels.end(), plane.begin(), plane.end());
    }
    const Image input = grid({pixels}, channels, h, w, std::max<int64_t>(1, 112 / std::max(h, w)));
    html << "<figure>" << png_img(input, "input", 240) << "<figcaption>input</figcaption></figure>";
    for (const NamedImage& m : feature_maps(model, sample))
      html << "<figure>" << png_img(m.image, m.name, 520) << "<figcaption>" << html_escape(m.name)
           << "</figcaption></figure>";
  }
  html << "</section>\n<section id=\"summary\"><h2>Model</h2><pre>" << html_escape(model.summary())
       << "</pre></section>\n<section id=\"config\"><h2>Run configuration</h2><table>";
  for (const auto& [key, value] : data.config)
    html << "<tr><th>" << html_escape(key) << "</th><td style=\"text-align:left\">"
         << html_escape(value) << "</td></tr>";
  html << "</table></section>\n</body></html>\n";
  return html.str();
}

void write_report(const std::string& dir, const ReportData& data, Model<float>& model,
                  const Tensor<float>& sample) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  CONVNET_CHECK(!ec, dir, ": cannot create the report folder: ", ec.message());
  write_file_atomic((std::filesystem::path(dir) / "index.html").string(),
                    report_html(data, model, sample));
}

}  // namespace convnet
