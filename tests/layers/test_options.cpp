// Layer options a user can get wrong without noticing: per-axis options given as 0 (an explicit
// pad_w=0 beside pad=1 must mean 0, not "the square value"), invalid per-axis values named in
// the error, the same options through the model-spec text and the ONNX export, and MaxPool2d's
// backward after an evaluation-mode forward.
#include <string>

#include "convnet/onnx.hpp"
#include "io/protobuf_wire.hpp"
#include "support/testing.hpp"

namespace convnet {
namespace {

using testing::error_of;
using testing::has;

// --- Conv2d --------------------------------------------------------------------------------

// x (1, 1, 3, 4) = 1..12 row by row, an all-ones 3x3 kernel, no bias, padding (1, 0) as
// torch.nn.Conv2d(1, 1, 3, padding=(1, 0), bias=False): rows padded by one, columns not, so the
// output is 3x2 and y[r][c] sums x over rows r-1..r+1 (inside the image) and columns c..c+2.
template <class T>
void expect_pad_one_by_zero(Backend backend) {
  const testing::BackendScope scope(backend);
  Conv2d<T> conv({.out_channels = 1, .kernel = 3, .pad = 1, .pad_w = 0, .bias = false});
  EXPECT_EQ(conv.build(Shape{1, 1, 3, 4}).str(), (Shape{1, 1, 3, 2}.str()));
  conv.weight().fill(T(1));
  Tensor<T> x(Shape{1, 1, 3, 4});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = static_cast<T>(i + 1);
  Tensor<T> y;
  conv.forward(x, y, Mode::Eval);
  ASSERT_EQ(y.shape().str(), Shape({1, 1, 3, 2}).str());
  // Row sums of three columns: row 0 {6, 9}, row 1 {18, 21}, row 2 {30, 33}.
  const double want[] = {6 + 18, 9 + 21, 6 + 18 + 30, 9 + 21 + 33, 18 + 30, 21 + 33};
  EXPECT_TRUE(testing::all_close(y.data(), want, 6, 0, 0));
  EXPECT_TRUE(has(conv.describe(), "conv2d 3x3 ->1 pad 1x0")) << conv.describe();
}

TEST(Conv2dPerAxisOptions, ExplicitZeroPadWidthIsZero) {
  expect_pad_one_by_zero<double>(Backend::Reference);
  expect_pad_one_by_zero<float>(Backend::Reference);
  expect_pad_one_by_zero<float>(Backend::Fast);
}

TEST(Conv2dPerAxisOptions, UnsetAxesTakeTheSquareValue) {
  Conv2d<float> conv({.out_channels = 1, .kernel = 3, .stride = 2, .pad = 1, .dilation_h = 2});
  // H: (7 + 2 - 2·2 - 1) / 2 + 1 = 3; W: (7 + 2 - 3) / 2 + 1 = 4.
  EXPECT_EQ(conv.build(Shape{1, 1, 7, 7}).str(), (Shape{1, 1, 3, 4}.str()));
  EXPECT_EQ(conv.describe(), "conv2d 3x3 ->1 stride 2x2 pad 1x1 dilation 2x1");
}

TEST(Conv2dPerAxisOptions, InvalidPerAxisValuesNameTheOption) {
  auto make = [](const Conv2dOptions& o) { return error_of([&] { Conv2d<float> c(o); }); };
  EXPECT_TRUE(has(make({.out_channels = 1, .kernel = 3, .kernel_w = 0}),
                  "conv2d: kernel_w must be at least 1, got 0"));
  EXPECT_TRUE(has(make({.out_channels = 1, .kernel_h = 0, .kernel_w = 3}),
                  "conv2d: kernel_h must be at least 1, got 0"));
  EXPECT_TRUE(has(make({.out_channels = 1, .kernel = 3, .stride_h = 0}),
                  "conv2d: stride_h must be at least 1, got 0"));
  EXPECT_TRUE(has(make({.out_channels = 1, .kernel = 3, .pad_w = -1}),
                  "conv2d: pad_w must be >= 0, got -1"));
  EXPECT_TRUE(has(make({.out_channels = 1, .kernel = 3, .dilation_w = 0}),
                  "conv2d: dilation_w must be at least 1, got 0"));
  // The square option is named when the value came from it.
  EXPECT_TRUE(has(make({.out_channels = 1, .kernel = 0}), "conv2d: kernel must be at least 1"));
  EXPECT_TRUE(has(make({.out_channels = 1, .kernel = 3, .stride = 0}),
                  "conv2d: stride must be at least 1, got 0"));
}

// --- ConvTranspose2d -----------------------------------------------------------------------

TEST(ConvTranspose2dPerAxisOptions, ExplicitZerosAreZero) {
  // Output (H − 1)·S − 2P + D·(K − 1) + OP + 1: H (4 − 1)·2 − 2 + 2 + 1 + 1 = 8 with P = OP = 1;
  // W (4 − 1)·2 − 0 + 2 + 0 + 1 = 9 with pad_w = output_padding_w = 0.
  ConvTranspose2d<float> deconv({.out_channels = 1,
                                 .kernel = 3,
                                 .stride = 2,
                                 .pad = 1,
                                 .pad_w = 0,
                                 .output_padding = 1,
                                 .output_padding_w = 0});
  EXPECT_EQ(deconv.build(Shape{1, 1, 4, 4}).str(), (Shape{1, 1, 8, 9}.str()));
}

TEST(ConvTranspose2dPerAxisOptions, InvalidPerAxisValuesNameTheOption) {
  auto make = [](const ConvTranspose2dOptions& o) {
    return error_of([&] { ConvTranspose2d<float> c(o); });
  };
  EXPECT_TRUE(has(make({.out_channels = 1, .kernel = 3, .kernel_w = 0}),
                  "conv_transpose2d: kernel_w must be at least 1, got 0"));
  EXPECT_TRUE(has(make({.out_channels = 1, .kernel = 3, .stride_w = 0}),
                  "conv_transpose2d: stride_w must be at least 1, got 0"));
  EXPECT_TRUE(has(make({.out_channels = 1, .kernel = 3, .stride = 2, .output_padding_h = -1}),
                  "conv_transpose2d: output_padding_h must be >= 0, got -1"));
}

// --- pooling -------------------------------------------------------------------------------

TEST(Pool2dPerAxisOptions, ExplicitZeroPadWidthIsZero) {
  MaxPool2d<float> max_pool({.kernel = 3, .stride = 1, .pad = 1, .pad_w = 0});
  EXPECT_EQ(max_pool.build(Shape{1, 1, 4, 4}).str(), (Shape{1, 1, 4, 2}.str()));
  AvgPool2d<float> avg_pool({.kernel = 3, .stride = 1, .pad = 1, .pad_h = 0});
  EXPECT_EQ(avg_pool.build(Shape{1, 1, 4, 4}).str(), (Shape{1, 1, 2, 4}.str()));
}

TEST(Pool2dPerAxisOptions, StrideNotGivenIsTheKernel) {
  MaxPool2d<float> square({.kernel = 2});
  EXPECT_EQ(square.build(Shape{1, 1, 6, 6}).str(), (Shape{1, 1, 3, 3}.str()));
  // stride_h given, stride not: the width still steps by the kernel's width (3).
  MaxPool2d<float> mixed({.kernel_h = 2, .kernel_w = 3, .stride_h = 1});
  EXPECT_EQ(mixed.build(Shape{1, 1, 6, 6}).str(), (Shape{1, 1, 5, 2}.str()));
  EXPECT_EQ(mixed.describe(), "maxpool2d 2x3 stride 1x3");
}

TEST(Pool2dPerAxisOptions, InvalidValuesNameTheOption) {
  auto make = [](const Pool2dOptions& o) { return error_of([&] { MaxPool2d<float> p(o); }); };
  EXPECT_TRUE(
      has(make({.kernel = 2, .kernel_w = 0}), "maxpool2d: kernel_w must be at least 1, got 0"));
  EXPECT_TRUE(
      has(make({.kernel = 2, .stride_h = 0}), "maxpool2d: stride_h must be at least 1, got 0"));
  EXPECT_TRUE(has(make({.kernel = 2, .stride = 0}), "maxpool2d: stride must be at least 1, got 0"));
  EXPECT_TRUE(has(make({.kernel = 2, .pad_h = -1}), "maxpool2d: pad_h must be >= 0, got -1"));
  EXPECT_TRUE(has(error_of([] { AvgPool2d<float> p({.kernel = 2, .kernel_h = 0}); }),
                  "avgpool2d: kernel_h must be at least 1, got 0"));
}

// --- the same options as model-spec text --------------------------------------------------

TEST(PerAxisOptionsSpec, ExplicitZerosReadAndWriteBackExactly) {
  const std::string text =
      "model sequential\n"
      "layer conv2d out_channels=2 kernel=3 pad=1 pad_w=0\n"
      "layer conv_transpose2d out_channels=2 kernel=3 stride=2 pad=1 pad_h=0 output_padding=1 "
      "output_padding_w=0\n"
      "layer maxpool2d kernel=3 stride=1 pad=1 pad_h=0\n"
      "layer avgpool2d kernel_h=1 kernel_w=2 stride_h=1\n";
  std::unique_ptr<Model<float>> model = parse_model_spec<float>(text, "net.txt");
  EXPECT_EQ(model->spec(), text);
  // conv 3x3 pad (1, 0): 1x2x6x6 -> 2x6x4; deconv pad (0, 1), output padding (1, 0):
  // H (6 − 1)·2 + 2 + 1 + 1 = 14, W (4 − 1)·2 − 2 + 2 + 1 = 7; max pool 3x3/1 pad (0, 1):
  // 12x7; avg pool 1x2, stride (1, 2): 12x3.
  model->build(Shape{1, 2, 6, 6}, 1);
  EXPECT_EQ(model->output_shape().str(), Shape({1, 2, 12, 3}).str());
}

TEST(PerAxisOptionsSpec, InvalidPerAxisValuesPointAtTheLine) {
  auto parse = [](const std::string& layer) {
    return error_of(
        [&] { parse_model_spec<float>("model sequential\n" + layer + "\n", "net.txt"); });
  };
  EXPECT_EQ(parse("layer conv2d out_channels=2 kernel=3 kernel_w=0"),
            "net.txt:2:7: conv2d: kernel_w must be at least 1, got 0");
  EXPECT_EQ(parse("layer maxpool2d kernel=2 stride_h=0"),
            "net.txt:2:7: maxpool2d: stride_h must be at least 1, got 0");
}

// --- and through the ONNX export -----------------------------------------------------------

// The AttributeProto the exporter writes for an INTS attribute (name, type INTS, the values).
std::string ints_attribute_bytes(const std::string& name, std::initializer_list<int64_t> values) {
  protobuf::MessageWriter m;
  m.bytes_field(1, name);                      // AttributeProto.name
  m.varint_field(20, 7);                       // AttributeProto.type = INTS
  for (int64_t v : values) m.int_field(8, v);  // AttributeProto.ints
  return m.bytes();
}

TEST(PerAxisOptionsOnnx, ConvPadsKeepAnExplicitZero) {
  std::unique_ptr<Model<float>> model = parse_model_spec<float>(
      "model sequential\n"
      "layer conv2d out_channels=2 kernel=3 pad=1 pad_w=0\n"
      "layer flatten\n");
  model->build(Shape{1, 1, 4, 4}, 1);
  const std::string onnx = encode_onnx(*model, {});
  // pads are [begin H, begin W, end H, end W].
  EXPECT_NE(onnx.find(ints_attribute_bytes("pads", {1, 0, 1, 0})), std::string::npos);
  EXPECT_EQ(onnx.find(ints_attribute_bytes("pads", {1, 1, 1, 1})), std::string::npos);
}

// --- MaxPool2d backward after an evaluation-mode forward ----------------------------------

// dx of max pooling: each dy goes to its window's largest input (inputs all distinct).
template <class T>
Tensor<T> max_pool_input_gradient(const Tensor<T>& x, const Tensor<T>& dy, int64_t kernel) {
  Tensor<T> dx(x.shape(), T(0));
  const int64_t N = x.shape()[0], C = x.shape()[1], H = x.shape()[2], W = x.shape()[3];
  const int64_t OH = dy.shape()[2], OW = dy.shape()[3];
  for (int64_t plane = 0; plane < N * C; ++plane)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        int64_t best = (oh * kernel) * W + ow * kernel;
        for (int64_t kh = 0; kh < kernel; ++kh)
          for (int64_t kw = 0; kw < kernel; ++kw) {
            const int64_t at = (oh * kernel + kh) * W + ow * kernel + kw;
            if (x[plane * H * W + at] > x[plane * H * W + best]) best = at;
          }
        dx[plane * H * W + best] += dy[(plane * OH + oh) * OW + ow];
      }
  return dx;
}

template <class T>
void expect_backward_after_each_mode(Backend backend) {
  const testing::BackendScope scope(backend);
  Rng rng(5);
  const Shape shape{2, 3, 6, 6};
  const Tensor<T> x = testing::random_distinct<T>(shape, rng);
  const Tensor<T> other = testing::random_distinct<T>(shape, rng);
  const Tensor<T> dy = testing::random_normal<T>(Shape{2, 3, 3, 3}, rng);
  const Tensor<T> want = max_pool_input_gradient(x, dy, 2);
  for (Mode mode : {Mode::Train, Mode::Eval}) {
    SCOPED_TRACE(mode == Mode::Train ? "Train" : "Eval");
    MaxPool2d<T> pool({.kernel = 2});
    pool.build(shape);
    Tensor<T> y;
    pool.forward(other, y, Mode::Train);  // a stale argmax that must not be used
    pool.forward(x, y, mode);
    Tensor<T> dx(shape, T(0));
    pool.backward(x, y, dy, &dx);
    EXPECT_TRUE(testing::all_close(dx.data(), want.data(), dx.numel(), 0, 0));
  }
}

TEST(MaxPool2dBackwardAfterEval, RoutesTheGradientToTheMaximumAsAfterTrain) {
  expect_backward_after_each_mode<double>(Backend::Reference);
  expect_backward_after_each_mode<float>(Backend::Reference);
  expect_backward_after_each_mode<float>(Backend::Fast);
}

}  // namespace
}  // namespace convnet
