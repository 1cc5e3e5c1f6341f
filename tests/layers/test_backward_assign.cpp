// backward_assign() against backward(): for every layer kind, on both kernel families, assigning
// dx into a buffer full of NaN must give bit for bit what accumulating into zeros gives, and the
// parameter gradients must be the same. Then the graph, whose gradient buffers are no longer
// zeroed: a second backward over stale buffers equals a fresh model's first.
#include <cmath>
#include <cstring>
#include <limits>

#include "convnet/spec.hpp"
#include "support/testing.hpp"

namespace convnet {
namespace {

struct AssignCase {
  const char* name;
  const char* layer;  // one model-spec layer line
  Shape input;
};

void PrintTo(const AssignCase& c, std::ostream* os) { *os << c.name; }

using testing::BackendScope;

std::vector<std::vector<float>> param_grads(Model<float>& m) {
  std::vector<std::vector<float>> out;
  for (const Param<float>& p : m.params())
    out.emplace_back(p.grad->data(), p.grad->data() + p.grad->numel());
  return out;
}

void expect_same_bits(const Tensor<float>& got, const Tensor<float>& want, const char* what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  int64_t differ = 0, first = -1;
  for (int64_t i = 0; i < got.numel(); ++i)
    if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0 && differ++ == 0) first = i;
  EXPECT_EQ(differ, 0) << what << ": " << differ << " of " << got.numel()
                       << " elements differ, first at " << first << " (" << got[first]
                       << " vs " << want[first] << ")";
}

class BackwardAssign : public ::testing::TestWithParam<std::tuple<AssignCase, Backend>> {};

TEST_P(BackwardAssign, EqualsAccumulatingIntoZeros) {
  const auto& [c, kernels] = GetParam();
  BackendScope scope(kernels);
  auto model = parse_model_spec<float>(std::string("model sequential\nlayer ") + c.layer + "\n");
  model->build(c.input, 7);
  Layer<float>& layer = *model->named_layers().at(0).layer;
  Rng rng(3);
  const Tensor<float> x = testing::random_normal<float>(c.input, rng);
  Tensor<float> y;
  layer.forward(x, y, Mode::Train);
  const Tensor<float> dy = testing::random_normal<float>(y.shape(), rng);

  model->zero_grad();
  Tensor<float> added(c.input);  // zeros
  layer.backward(x, y, dy, &added);
  const auto grads_added = param_grads(*model);

  model->zero_grad();
  Tensor<float> assigned(c.input, std::numeric_limits<float>::quiet_NaN());
  layer.backward_assign(x, y, dy, assigned);
  expect_same_bits(assigned, added, "dx");
  const auto grads_assigned = param_grads(*model);
  ASSERT_EQ(grads_assigned.size(), grads_added.size());
  for (size_t i = 0; i < grads_added.size(); ++i)
    EXPECT_EQ(grads_assigned[i], grads_added[i]) << "parameter gradient " << i;
}

INSTANTIATE_TEST_SUITE_P(
    EveryLayerKind, BackwardAssign,
    ::testing::Combine(
        ::testing::Values(
            // Convolutions: one shape per fast kernel family (Winograd, direct, 1x1 GEMM
            // straight into dx, im2col with col2im for stride 2, grouped, depthwise).
            AssignCase{"ConvWinograd", "conv2d out_channels=16 kernel=3 pad=1", {2, 16, 9, 11}},
            AssignCase{"ConvDirect5x5", "conv2d out_channels=8 kernel=5 pad=2", {2, 6, 12, 10}},
            AssignCase{"Conv1x1", "conv2d out_channels=5 kernel=1 bias=false", {3, 7, 5, 6}},
            AssignCase{"ConvStride2", "conv2d out_channels=8 kernel=3 stride=2 pad=1",
                       {1, 4, 9, 7}},
            AssignCase{"ConvStride3Kernel2", "conv2d out_channels=3 kernel=2 stride=3",
                       {2, 2, 8, 8}},
            AssignCase{"ConvGroups2", "conv2d out_channels=6 kernel=3 pad=1 groups=2",
                       {2, 4, 5, 6}},
            AssignCase{"ConvDepthwise", "conv2d out_channels=4 kernel=3 stride=2 pad=1 groups=4",
                       {2, 4, 7, 7}},
            AssignCase{"ConvTranspose", "conv_transpose2d out_channels=3 kernel=3 stride=2",
                       {2, 4, 5, 5}},
            AssignCase{"BatchNorm2d", "batchnorm2d", {3, 5, 4, 7}},
            AssignCase{"BatchNorm1d", "batchnorm1d", {6, 9}},
            AssignCase{"Linear", "linear out_features=7", {3, 11}},
            AssignCase{"MaxPool", "maxpool2d kernel=3 stride=2 pad=1", {2, 3, 7, 8}},
            AssignCase{"AvgPool", "avgpool2d kernel=2", {2, 3, 6, 6}},
            AssignCase{"GlobalAvgPool", "global_avgpool2d", {2, 3, 5, 4}},
            AssignCase{"Flatten", "flatten", {2, 3, 2, 2}},
            AssignCase{"ReLU", "relu", {2, 3, 33, 17}},
            AssignCase{"LeakyReLU", "leaky_relu", {2, 5, 3}},
            AssignCase{"Sigmoid", "sigmoid", {2, 5, 3}},
            AssignCase{"Tanh", "tanh", {2, 5, 3}},
            AssignCase{"Softmax", "softmax", {2, 6}},
            AssignCase{"GELU", "gelu", {2, 5, 3}},
            AssignCase{"SiLU", "silu", {2, 5, 3}},
            AssignCase{"ELU", "elu", {2, 5, 3}},
            AssignCase{"Dropout", "dropout p=0.3", {2, 5, 7}}),
        ::testing::Values(Backend::Fast, Backend::Reference)),
    [](const auto& test_info) {
      return std::string(std::get<0>(test_info.param).name) +
             (std::get<1>(test_info.param) == Backend::Fast ? "_Fast" : "_Reference");
    });

// A graph of every wiring the assignment plan must get right: a node read by three consumers,
// Add and Concat reading one tensor twice, the graph input read twice. The first backward leaves
// every gradient buffer full of its values; the second (another dy, dx full of NaN) must not see
// them: it equals a fresh, identical model's first backward bit for bit.
TEST(BackwardAssign, GraphBuffersNeedNoZeroing) {
  const char* spec = R"(model graph
node stem conv2d in=input out_channels=8 kernel=3 pad=1
node bn batchnorm2d in=stem
node act relu in=bn
node branch conv2d in=act out_channels=8 kernel=3 pad=1
node twice add in=branch,stem,stem
node side conv2d in=stem out_channels=8 kernel=1
node cat concat in=twice,side,side,input
node pool global_avgpool2d in=cat
node flat flatten in=pool
node head linear in=flat out_features=3
)";
  const Shape input{2, 3, 6, 7};
  auto used = parse_model_spec<float>(spec);
  auto fresh = parse_model_spec<float>(spec);
  used->build(input, 5);
  fresh->build(input, 5);
  Rng rng(9);
  const Tensor<float> x = testing::random_normal<float>(input, rng);
  const Tensor<float> dy1 = testing::random_normal<float>(Shape{2, 3}, rng);
  const Tensor<float> dy2 = testing::random_normal<float>(Shape{2, 3}, rng);

  Tensor<float> dx_used;
  used->forward(x, Mode::Train);
  used->backward(dy1, &dx_used);
  used->zero_grad();
  dx_used.fill(std::numeric_limits<float>::quiet_NaN());
  used->forward(x, Mode::Train);
  used->backward(dy2, &dx_used);

  Tensor<float> dx_fresh;
  fresh->forward(x, Mode::Train);  // BatchNorm's running statistics now match too
  fresh->forward(x, Mode::Train);
  fresh->zero_grad();
  fresh->backward(dy2, &dx_fresh);

  expect_same_bits(dx_used, dx_fresh, "graph input gradient");
  const auto a = param_grads(*used), b = param_grads(*fresh);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], b[i]) << used->params()[i].name;
  // Not vacuous: dy2's gradient differs from dy1's, which the stale buffers held.
  EXPECT_NE(param_grads(*fresh)[0], std::vector<float>(a[0].size(), 0.0f));
}

}  // namespace
}  // namespace convnet
