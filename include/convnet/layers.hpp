// Layers: each owns its parameters and the caches its backward needs, validates shapes when it
// is built, and calls the kernels. A layer knows nothing of its neighbours: it maps x to y and
// dy back to dx, so the same layers serve a chain (Sequential) or any graph.
//
// CONTRACT: forward assigns y. backward ACCUMULATES: parameter gradients += ∂L/∂θ, and, when
// dx is not null, dx += ∂L/∂x. Callers zero gradients first (a model zeroes its parameter
// gradients at the start of each step); backward_assign assigns a dx that has one writer.
//
// TRAIN / EVAL: the Mode argument of forward is the mode; layers keep no global mode state.
// Most layers compute the same function in both modes. Those that do not (Dropout: the identity
// in Eval; BatchNorm: batch statistics in Train, running statistics in Eval) have a backward
// that differentiates whichever function their last forward computed. So backward after an
// Eval forward is always the gradient of what that forward computed (an input-gradient saliency
// map of a model in evaluation mode, say); MaxPool2d, whose Eval forward skips the argmax,
// finds it again from x in that case.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "convnet/rng.hpp"
#include "convnet/tensor.hpp"

namespace convnet {

class Context;  // convnet/context.hpp

// Train: forward writes the caches backward needs. Eval: it skips them.
enum class Mode { Train, Eval };

// A Mode::Train forward pass on one shard of a larger batch: a micro-batch of a step computed in
// parts, or one rank's part of a data-parallel batch. `before` and `after` samples of the whole
// batch come ahead of and behind this shard in the whole batch's order, and the layers with a
// random stream drawn per sample (Dropout) skip those samples' draws, so that each shard draws
// exactly what the whole batch would draw for its samples. Only one shard of each batch (the
// first) updates running statistics (BatchNorm's), as PyTorch's DistributedDataParallel keeps
// rank 0's. The default, {0, 0, true}, is a whole batch.
struct BatchShard {
  int64_t before = 0, after = 0;
  bool update_statistics = true;
};

// Weight initialisation. Default is PyTorch's for Conv2d and Linear: weights and bias uniform in
// ±1/sqrt(fan_in) (kaiming_uniform_ with a=sqrt(5)). The others set the weights as named, with
// the ReLU gain sqrt(2) for He, and zero biases:
//   KaimingUniform U(±sqrt(6/fan_in))           KaimingNormal N(0, sqrt(2/fan_in))
//   XavierUniform  U(±sqrt(6/(fan_in+fan_out))) XavierNormal  N(0, sqrt(2/(fan_in+fan_out)))
// For a convolution fan_in = IC·KH·KW and fan_out = OC·KH·KW.
enum class Init { Default, KaimingUniform, KaimingNormal, XavierUniform, XavierNormal };

// A trainable tensor and its gradient (same shape).
template <class T>
struct Param {
  std::string name;  // "weight", "bias"
  Tensor<T>* value;
  Tensor<T>* grad;
};

// A tensor of state that is not trained (BatchNorm's running statistics): forward updates it,
// evaluation reads it, optimizers never see it (PyTorch's buffers).
template <class T>
struct Buffer {
  std::string name;  // "running_mean", "running_var"
  Tensor<T>* value;
};

template <class T>
class Layer {
 public:
  virtual ~Layer() = default;
  // Short type name: "conv2d", "relu".
  virtual std::string kind() const = 0;
  // Human description with hyperparameters: "conv2d 5x5/1 pad 2 -> 6".
  virtual std::string describe() const { return kind(); }
  // The layer as a model-spec entry (docs/model-spec.md): its kind, then every option that
  // differs from its default as key=value, in declaration order: "conv2d out_channels=6
  // kernel=5 pad=2". parse_model_spec() reads it back to an identical layer.
  virtual std::string spec() const { return kind(); }
  // Checks the input shape (the batch dimension included), allocates parameters (first build
  // only) and caches, and returns the output shape. Throws convnet::Error naming the layer and
  // both shapes when the input cannot work.
  virtual Shape build(const Shape& input) = 0;
  // Sets the parameters from rng (see Init). No-op for layers without parameters.
  virtual void init(Rng& /*rng*/) {}
  // y = f(x). x may have any batch size; the other dimensions are those given to build().
  virtual void forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) = 0;
  // Given x, y from the last forward (in either mode; see TRAIN / EVAL above) and dy = ∂L/∂y:
  // parameter grads += ∂L/∂θ and, when dx != nullptr, dx += ∂L/∂x.
  virtual void backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                        Tensor<T>* dx) = 0;
  // As backward(), but ASSIGNS dx = ∂L/∂x: dx's previous contents are ignored (dx is already
  // x's shape). For a caller that knows no other consumer adds to dx (Sequential always; a
  // Graph for a node's first gradient), it saves zeroing dx and reading it back, two passes
  // over a tensor the size of x. Parameter gradients still accumulate. The default zeroes dx
  // and calls backward(). The rule: a layer overrides it only where storing directly was
  // measured to pay (ReLU, BatchNorm, Conv2d and the merge node Add; the figures are in
  // bench/README.md, "Backward: assign or accumulate"); every other layer keeps the default and
  // writes backward() alone.
  virtual void backward_assign(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                               Tensor<T>& dx);
  // In-place activations (the executor's memory plan, convnet/executor.hpp). runs_in_place: this
  // layer may be given y as the very tensor x (forward overwrites its input; backward is then
  // handed y as x too and must need nothing else). lends_output: a layer that runs in place may
  // overwrite this layer's output once it is computed (its backward never reads y, and its
  // output is not something a user inspects on its own: BatchNorm; not a convolution, whose
  // maps reports draw).
  virtual bool runs_in_place() const { return false; }
  virtual bool lends_output() const { return false; }
  virtual std::vector<Param<T>> params() { return {}; }
  // Non-trainable state (see Buffer); empty for most layers.
  virtual std::vector<Buffer<T>> buffers() { return {}; }
  // Replay, for gradient checks: while on, a Mode::Train forward repeats the random choices of
  // the last one (Dropout's mask) and leaves running statistics alone (BatchNorm's), so repeated
  // forward passes compute one fixed function that finite differences can probe. Off by default;
  // a no-op for deterministic layers.
  virtual void set_replay(bool /*on*/) {}
  // The shard of a batch the next Mode::Train forward passes compute (see BatchShard); a no-op
  // for layers without random draws or running statistics.
  virtual void set_batch_shard(const BatchShard& /*shard*/) {}
  // Moves the layer's random stream on as a Mode::Train forward pass of `samples` samples would,
  // without computing one: a data-parallel rank whose shard of a batch is empty keeps its
  // streams in step with the others'. A no-op for layers without one.
  virtual void skip_batch(int64_t /*samples*/) {}
  // The state of the layer's own random stream (Dropout's), as text, so a checkpoint resumes the
  // same masks; empty for layers without one. set_rng_state() takes what rng_state() returned.
  virtual std::string rng_state() const { return {}; }
  virtual void set_rng_state(const std::string& /*state*/) {}
  // Floating-point operations of one forward pass for one sample of the built shape, counting a
  // multiply-add as 2 (convolutions and fully connected layers; elementwise layers count 0).
  // Backward data and backward weights each cost the same again.
  virtual int64_t forward_flops() const { return 0; }

  // The execution context the layer's kernels run in (convnet/context.hpp): its model's, which
  // the model sets before it builds the layer; default_context() for a layer used on its own.
  Context& context() const;
  // Not owned: must outlive the layer's use. Null: default_context().
  void set_context(Context* context) { context_ = context; }

 protected:
  // "kind: input shape A ..." helper for errors.
  void check_input(const Tensor<T>& x) const;
  Shape built_input_;  // batch dimension = the largest seen

 private:
  Context* context_ = nullptr;
};

// --- convolution ---------------------------------------------------------------------------
// Options are declared in the order designated initialisers must follow. Each geometry option
// has a square value and per-axis overrides: a _h/_w field that is not given takes the square
// value, and one that is given is used as it is, 0 included, so padding (1, 0) is
// Conv2dOptions{.out_channels = 6, .kernel = 3, .pad = 1, .pad_w = 0}. A value out of range
// (kernel_w = 0, stride_h = 0, pad_h = -1) is an error naming the layer and the option.
struct Conv2dOptions {
  int64_t in_channels = 0;  // 0: taken from the input shape at build time
  int64_t out_channels = 0;
  int64_t kernel = 0;  // required, unless kernel_h and kernel_w are both given
  std::optional<int64_t> kernel_h = std::nullopt, kernel_w = std::nullopt;
  int64_t stride = 1;
  std::optional<int64_t> stride_h = std::nullopt, stride_w = std::nullopt;
  int64_t pad = 0;
  std::optional<int64_t> pad_h = std::nullopt, pad_w = std::nullopt;
  int64_t dilation = 1;
  std::optional<int64_t> dilation_h = std::nullopt, dilation_w = std::nullopt;
  // Channels split into this many groups, each output group reading its own input group
  // (torch.nn.Conv2d's groups); groups == in_channels is a depthwise convolution.
  int64_t groups = 1;
  bool bias = true;
  Init init = Init::Default;
};

template <class T>
class Conv2d final : public Layer<T> {
 public:
  explicit Conv2d(const Conv2dOptions& options);
  std::string kind() const override { return "conv2d"; }
  std::string describe() const override;
  std::string spec() const override;
  const Conv2dOptions& options() const { return options_; }  // as constructed
  Shape build(const Shape& input) override;
  void init(Rng& rng) override;
  void forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) override;
  void backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                Tensor<T>* dx) override;
  void backward_assign(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                       Tensor<T>& dx) override;
  std::vector<Param<T>> params() override;
  int64_t forward_flops() const override;

  Tensor<T>& weight() { return weight_; }  // (OC, IC / groups, KH, KW)
  Tensor<T>& bias() { return bias_; }      // (OC); empty without bias
  Tensor<T>& grad_weight() { return grad_weight_; }
  Tensor<T>& grad_bias() { return grad_bias_; }

  // BatchNorm folded in (evaluation only): this convolution followed by a per-channel affine
  // map y = scale·z + shift (BatchNorm::eval_affine) is one convolution, by
  //   W'[oc] = scale[oc]·W[oc],  b'[oc] = scale[oc]·b[oc] + shift[oc]
  // formed afresh on every call (so it always reflects the current weights and statistics)
  // in buffers of the layer's own, which reserve_folding() allocates.
  void reserve_folding();
  void forward_folded(const Tensor<T>& x, Tensor<T>& y, const T* scale, const T* shift);
  // Whether folding saves work for a batch of `batch`: forming W' is a pass over the weights,
  // the BatchNorm it replaces a pass over the output (so not for one image on small maps).
  bool folding_pays(int64_t batch) const;

 private:
  // y = w ⊛ x + b (b may be null): forward's, with the layer's weights or the folded ones.
  void convolve(const Tensor<T>& x, Tensor<T>& y, const T* w, const T* b);
  // backward() and backward_assign(): dx += ∂L/∂x, or dx = ∂L/∂x without accumulate.
  void backward_impl(const Tensor<T>& x, const Tensor<T>& dy, Tensor<T>* dx, bool accumulate);
  Conv2dOptions options_;
  int64_t in_channels_, out_channels_, KH_, KW_, SH_, SW_, PH_, PW_, DH_, DW_, groups_;
  bool has_bias_;
  Init init_;
  Tensor<T> weight_, bias_, grad_weight_, grad_bias_;
  Tensor<T> folded_weight_, folded_bias_;  // W' and b' (see forward_folded); empty until reserved
  int64_t out_h_ = 0, out_w_ = 0;
};

// Transposed convolution (torch.nn.ConvTranspose2d, "deconvolution"): the adjoint of Conv2d, so
// its forward pass is Conv2d's backward-data and its backward-data Conv2d's forward:
//   y[n, oc, ih·S - P + kh·D, iw·S - P + kw·D] += w[ic, oc, kh, kw] · x[n, ic, ih, iw]  (+ b[oc])
// Output size (H - 1)·S - 2P + D·(K - 1) + output_padding + 1. Weights (IC, OC / groups, KH, KW).
// Per-axis options as Conv2dOptions': a _h/_w field not given takes the square value.
struct ConvTranspose2dOptions {
  int64_t in_channels = 0;  // 0: taken from the input shape at build time
  int64_t out_channels = 0;
  int64_t kernel = 0;  // required, unless kernel_h and kernel_w are both given
  std::optional<int64_t> kernel_h = std::nullopt, kernel_w = std::nullopt;
  int64_t stride = 1;
  std::optional<int64_t> stride_h = std::nullopt, stride_w = std::nullopt;
  int64_t pad = 0;
  std::optional<int64_t> pad_h = std::nullopt, pad_w = std::nullopt;
  // Extra rows/columns on the bottom/right of the output (below the stride or the dilation),
  // to pick one of the input sizes a strided convolution maps to the same output size.
  int64_t output_padding = 0;
  std::optional<int64_t> output_padding_h = std::nullopt, output_padding_w = std::nullopt;
  int64_t dilation = 1;
  std::optional<int64_t> dilation_h = std::nullopt, dilation_w = std::nullopt;
  int64_t groups = 1;
  bool bias = true;
  Init init = Init::Default;
};

template <class T>
class ConvTranspose2d final : public Layer<T> {
 public:
  explicit ConvTranspose2d(const ConvTranspose2dOptions& options);
  std::string kind() const override { return "conv_transpose2d"; }
  std::string describe() const override;
  std::string spec() const override;
  const ConvTranspose2dOptions& options() const { return options_; }  // as constructed
  Shape build(const Shape& input) override;
  void init(Rng& rng) override;
  void forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) override;
  void backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                Tensor<T>* dx) override;
  std::vector<Param<T>> params() override;
  int64_t forward_flops() const override;

  Tensor<T>& weight() { return weight_; }  // (IC, OC / groups, KH, KW)
  Tensor<T>& bias() { return bias_; }      // (OC); empty without bias
  Tensor<T>& grad_weight() { return grad_weight_; }
  Tensor<T>& grad_bias() { return grad_bias_; }

 private:
  ConvTranspose2dOptions options_;
  int64_t in_channels_, out_channels_, KH_, KW_, SH_, SW_, PH_, PW_, OPH_, OPW_, DH_, DW_, groups_;
  bool has_bias_;
  Init init_;
  Tensor<T> weight_, bias_, grad_weight_, grad_bias_;
  Tensor<T> scratch_;  // backward data before it is added into dx
  int64_t out_h_ = 0, out_w_ = 0;
};
// --- pooling -------------------------------------------------------------------------------
// Per-axis options as Conv2dOptions': a _h/_w field not given takes the square value, one given
// is used as it is (pad = 1, pad_w = 0 pads rows only). A stride that is not given at all is
// the kernel's size along that axis (PyTorch's stride=None); a given stride must be at least 1.
// Padding is at most half the kernel.
struct Pool2dOptions {
  int64_t kernel = 0;  // required, unless kernel_h and kernel_w are both given
  std::optional<int64_t> kernel_h = std::nullopt, kernel_w = std::nullopt;
  std::optional<int64_t> stride = std::nullopt, stride_h = std::nullopt, stride_w = std::nullopt;
  int64_t pad = 0;
  std::optional<int64_t> pad_h = std::nullopt, pad_w = std::nullopt;
  // AvgPool2d only. true (PyTorch's default, count_include_pad): padded positions count as
  // zeros, every window divides by KH·KW. false: divide by the real elements in the window.
  bool count_pad = true;
};

// y = max over each window; backward routes each gradient to the selected element only. A
// Train forward records which element that is (the argmax); an Eval forward does not, for
// inference speed, and a backward after it (rare: saliency in evaluation mode) finds the argmax
// again from x, with the same kernel, so it routes exactly as after a Train forward.
template <class T>
class MaxPool2d final : public Layer<T> {
 public:
  explicit MaxPool2d(const Pool2dOptions& options);
  std::string kind() const override { return "maxpool2d"; }
  std::string describe() const override;
  std::string spec() const override;
  const Pool2dOptions& options() const { return options_; }  // as constructed
  Shape build(const Shape& input) override;
  void forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) override;
  void backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                Tensor<T>* dx) override;

 private:
  // y = max over windows of x, and argmax when it is not null, by the backend's kernel.
  void run_forward(const Tensor<T>& x, T* y, int32_t* argmax);
  Pool2dOptions options_;
  int64_t KH_, KW_, SH_, SW_, PH_, PW_;
  std::vector<int32_t> argmax_;  // winner's in-plane index per output, written in Mode::Train
  bool argmax_of_last_forward_ = false;  // false after an Eval forward (and before any)
  Tensor<T> recomputed_y_;  // what the argmax search of a backward after Eval writes y into
};

// y = mean over each window; backward shares each gradient equally over its window.
template <class T>
class AvgPool2d final : public Layer<T> {
 public:
  explicit AvgPool2d(const Pool2dOptions& options);
  std::string kind() const override { return "avgpool2d"; }
  std::string describe() const override;
  std::string spec() const override;
  const Pool2dOptions& options() const { return options_; }  // as constructed
  Shape build(const Shape& input) override;
  void forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) override;
  void backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                Tensor<T>* dx) override;

 private:
  Pool2dOptions options_;
  int64_t KH_, KW_, SH_, SW_, PH_, PW_;
  bool count_pad_;
};

// (N, C, H, W) -> (N, C, 1, 1): the mean of each plane (torch.nn.AdaptiveAvgPool2d(1)); the
// gradient is shared equally, dx += dy / (H·W). Follow it with Flatten for a linear head.
template <class T>
class GlobalAvgPool2d final : public Layer<T> {
 public:
  std::string kind() const override { return "global_avgpool2d"; }
  Shape build(const Shape& input) override;
  void forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) override;
  void backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                Tensor<T>* dx) override;
};

// --- fully connected -----------------------------------------------------------------------
struct LinearOptions {
  int64_t in_features = 0;  // 0: taken from the input shape at build time
  int64_t out_features = 0;
  bool bias = true;
  Init init = Init::Default;
};

// y = x · wᵀ + b with x (N, IN), w (OUT, IN). Needs a rank-2 input (use Flatten first).
template <class T>
class Linear final : public Layer<T> {
 public:
  explicit Linear(const LinearOptions& options);
  std::string kind() const override { return "linear"; }
  std::string describe() const override;
  std::string spec() const override;
  const LinearOptions& options() const { return options_; }  // as constructed
  Shape build(const Shape& input) override;
  void init(Rng& rng) override;
  void forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) override;
  void backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                Tensor<T>* dx) override;
  std::vector<Param<T>> params() override;
  int64_t forward_flops() const override { return 2 * in_features_ * out_features_; }

  Tensor<T>& weight() { return weight_; }  // (OUT, IN)
  Tensor<T>& bias() { return bias_; }      // (OUT)
  Tensor<T>& grad_weight() { return grad_weight_; }
  Tensor<T>& grad_bias() { return grad_bias_; }

 private:
  LinearOptions options_;
  int64_t in_features_, out_features_;
  bool has_bias_;
  Init init_;
  Tensor<T> weight_, bias_, grad_weight_, grad_bias_;
};

// (N, C, H, W) -> (N, C·H·W); the gradient is reshaped back.
template <class T>
class Flatten final : public Layer<T> {
 public:
  std::string kind() const override { return "flatten"; }
  Shape build(const Shape& input) override;
  void forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) override;
  void backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                Tensor<T>* dx) override;
};

// --- activations (any input shape; output has the same shape) ------------------------------
template <class T>
class Activation : public Layer<T> {
 public:
  Shape build(const Shape& input) override;
};

// y = max(x, 0); dy/dx = 1 for x > 0, else 0 (0 at the kink, as PyTorch).
template <class T>
class ReLU final : public Activation<T> {
 public:
  std::string kind() const override { return "relu"; }
  // max(x, 0) > 0 exactly where x > 0, so backward's mask is the same read from y.
  bool runs_in_place() const override { return true; }
  void forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) override;
  void backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                Tensor<T>* dx) override;
  void backward_assign(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                       Tensor<T>& dx) override;
};

// y = x for x > 0, else slope·x.
template <class T>
class LeakyReLU final : public Activation<T> {
 public:
  explicit LeakyReLU(T slope = T(0.01)) : slope_(slope) {}
  std::string kind() const override { return "leaky_relu"; }
  std::string describe() const override;
  std::string spec() const override;
  T slope() const { return slope_; }
  void forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) override;
  void backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                Tensor<T>* dx) override;

 private:
  T slope_;
};

// y = 1 / (1 + e^-x); dy/dx = y(1 - y).
template <class T>
class Sigmoid final : public Activation<T> {
 public:
  std::string kind() const override { return "sigmoid"; }
  void forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) override;
  void backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                Tensor<T>* dx) override;
};

// y = tanh(x); dy/dx = 1 - y².
template <class T>
class Tanh final : public Activation<T> {
 public:
  std::string kind() const override { return "tanh"; }
  void forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) override;
  void backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                Tensor<T>* dx) override;
};

// Softmax over all non-batch elements of each sample (rows = N). For training a classifier,
// prefer raw logits with SoftmaxCrossEntropy, which fuses the two and is more stable.
template <class T>
class Softmax final : public Activation<T> {
 public:
  std::string kind() const override { return "softmax"; }
  void forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) override;
  void backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                Tensor<T>* dx) override;
};

// GELU, exact (PyTorch's default approximate='none'): y = x·Φ(x) = x/2·(1 + erf(x/√2));
// dy/dx = Φ(x) + x·φ(x), φ(x) = e^(−x²/2)/√(2π).
template <class T>
class GELU final : public Activation<T> {
 public:
  std::string kind() const override { return "gelu"; }
  void forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) override;
  void backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                Tensor<T>* dx) override;
};

// SiLU (swish): y = x·σ(x); dy/dx = σ(x)·(1 + x·(1 − σ(x))).
template <class T>
class SiLU final : public Activation<T> {
 public:
  std::string kind() const override { return "silu"; }
  void forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) override;
  void backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                Tensor<T>* dx) override;
};

// ELU: y = x for x > 0, else α·(e^x − 1); dy/dx = 1 for x > 0, else α·e^x (α at 0, as PyTorch).
template <class T>
class ELU final : public Activation<T> {
 public:
  explicit ELU(T alpha = T(1)) : alpha_(alpha) {}
  std::string kind() const override { return "elu"; }
  std::string describe() const override;
  std::string spec() const override;
  T alpha() const { return alpha_; }
  void forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) override;
  void backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                Tensor<T>* dx) override;

 private:
  T alpha_;
};

// --- regularisation and normalisation ------------------------------------------------------
// Inverted dropout (torch.nn.Dropout): in Mode::Train each element is kept with probability
// 1 − p and scaled by 1/(1 − p), else zeroed; in Mode::Eval the identity. The mask comes from
// the layer's own Rng, seeded by DropoutOptions::seed or, when that is 0, by a draw from the
// model's Rng in init(), so a model seed reproduces every mask. Backward multiplies by the mask
// of the last forward (dx += mask ⊙ dy). Masks are drawn on one thread: the same for any thread
// count.
struct DropoutOptions {
  double p = 0.5;     // probability of zeroing, in [0, 1]
  uint64_t seed = 0;  // 0: seeded from the model's Rng at init()
};

template <class T>
class Dropout final : public Layer<T> {
 public:
  explicit Dropout(const DropoutOptions& options = {});
  std::string kind() const override { return "dropout"; }
  std::string describe() const override;
  std::string spec() const override;
  const DropoutOptions& options() const { return options_; }  // as constructed
  Shape build(const Shape& input) override;
  void init(Rng& rng) override;
  void forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) override;
  void backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                Tensor<T>* dx) override;
  void set_replay(bool on) override { replay_ = on; }
  void set_batch_shard(const BatchShard& shard) override { shard_ = shard; }
  void skip_batch(int64_t samples) override;
  std::string rng_state() const override;
  void set_rng_state(const std::string& state) override;

  // The last Train mask: 0 or 1/(1 − p) per element.
  const Tensor<T>& mask() const { return mask_; }

 private:
  DropoutOptions options_;
  double p_;
  uint64_t seed_;
  Rng rng_;
  bool replay_ = false, has_mask_ = false;
  BatchShard shard_;
  Mode last_mode_ = Mode::Train;
  Tensor<T> mask_;
};

// BatchNorm (Ioffe & Szegedy 2015; torch.nn.BatchNorm1d/2d): per channel c, over the M values
// of that channel in the batch (N·H·W for 2d, N for 1d on (N, F), N·L on (N, C, L)):
//   Train: y = γ·(x − μ_B)/sqrt(σ²_B + eps) + β with the batch mean μ_B and BIASED variance
//          σ²_B; then running_mean = (1 − momentum)·running_mean + momentum·μ_B and
//          running_var = (1 − momentum)·running_var + momentum·σ²_B·M/(M − 1) (UNBIASED), as
//          PyTorch. M = 1 is an error in training (the unbiased variance is undefined).
//   Eval:  the same with running_mean and running_var in place of μ_B and σ²_B.
// γ (weight, init 1) and β (bias, init 0) are parameters; the running statistics (init 0 and 1)
// are buffers. Backward in Train is the full batch-statistics gradient (docs/backprop.md).
struct BatchNormOptions {
  int64_t num_features = 0;  // channels C; 0: taken from the input shape at build time
  double eps = 1e-5;
  double momentum = 0.1;
  bool affine = true;  // false: no γ and β (γ = 1, β = 0 fixed)
  // γ's initial value. 0 on the last BatchNorm of a residual branch makes each block start as
  // the identity (Goyal et al. 2017; torchvision's zero_init_residual).
  double gamma_init = 1.0;
};

template <class T>
class BatchNorm : public Layer<T> {
 public:
  bool lends_output() const override { return true; }  // backward reads x, never y
  std::string describe() const override;
  std::string spec() const override;
  const BatchNormOptions& options() const { return options_; }  // as constructed
  Shape build(const Shape& input) override;
  // γ = gamma_init (1 by default), β = 0, running_mean = 0, running_var = 1 (PyTorch's
  // reset_parameters).
  void init(Rng& rng) override;
  void forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) override;
  void backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                Tensor<T>* dx) override;
  void backward_assign(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                       Tensor<T>& dx) override;
  std::vector<Param<T>> params() override;
  std::vector<Buffer<T>> buffers() override;
  void set_replay(bool on) override { replay_ = on; }
  void set_batch_shard(const BatchShard& shard) override {
    update_statistics_ = shard.update_statistics;
  }

  Tensor<T>& weight() { return weight_; }  // γ (C); empty without affine
  Tensor<T>& bias() { return bias_; }      // β (C); empty without affine
  Tensor<T>& grad_weight() { return grad_weight_; }
  Tensor<T>& grad_bias() { return grad_bias_; }
  Tensor<T>& running_mean() { return running_mean_; }  // (C)
  Tensor<T>& running_var() { return running_var_; }    // (C), unbiased estimates
  // Mode::Eval's map as y = scale·x + shift per channel, for folding into the layer before:
  // scale = γ / sqrt(running_var + eps), shift = β − running_mean·scale (C values each).
  void eval_affine(T* scale, T* shift) const;

 protected:
  BatchNorm(const BatchNormOptions& options, bool spatial);

 private:
  // backward() and backward_assign(): dx += ∂L/∂x, or dx = ∂L/∂x without accumulate.
  void backward_impl(const Tensor<T>& x, const Tensor<T>& dy, Tensor<T>* dx, bool accumulate);
  BatchNormOptions options_;
  int64_t channels_;
  double eps_, momentum_;
  bool affine_, spatial_;
  bool replay_ = false, update_statistics_ = true;
  Mode last_mode_ = Mode::Train;
  Tensor<T> weight_, bias_, grad_weight_, grad_bias_, running_mean_, running_var_;
  Tensor<T> mean_, var_, invstd_;  // statistics the last forward normalised with, (C) each
};

// Over (N, C, H, W), per channel C.
template <class T>
class BatchNorm2d final : public BatchNorm<T> {
 public:
  explicit BatchNorm2d(const BatchNormOptions& options = {}) : BatchNorm<T>(options, true) {}
  std::string kind() const override { return "batchnorm2d"; }
};

// Over (N, F) per feature F, or (N, C, L) per channel C.
template <class T>
class BatchNorm1d final : public BatchNorm<T> {
 public:
  explicit BatchNorm1d(const BatchNormOptions& options = {}) : BatchNorm<T>(options, false) {}
  std::string kind() const override { return "batchnorm1d"; }
};

}  // namespace convnet
