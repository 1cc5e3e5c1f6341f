// Optimizers with PyTorch's (1.13) update formulas and defaults, so hyperparameters carry over.
// Each is one flat loop over a model's parameter arena (an ops:: kernel: ops/ref/optim_ref.cpp is
// its specification, ops/cpu/optim.cpp the threaded one, which computes the same bits); state
// (momentum buffers, moments) lies flat beside it in the same layout, kept by position: pass the
// same parameters at every step.
//
// Notation: p parameter, g its gradient, t the step count starting at 1, wd weight decay.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "convnet/arena.hpp"
#include "convnet/context.hpp"
#include "convnet/layers.hpp"

namespace convnet {

template <class T>
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual std::string name() const = 0;
  // Updates every parameter of a model's arena from its gradient at learning rate lr, in one
  // pass over the arena (gradients are left as they are), its kernel running in ctx (the
  // model's context: Model::apply_update passes it; without one, default_context()). The state
  // is flat beside it, in the arena's layout.
  void step(ParamArena<T>& arena, double lr, const Context& ctx);
  void step(ParamArena<T>& arena, double lr);
  // Updates tensors that are not in an arena, one by one, at learning_rate(). The state is laid
  // out as an arena of these tensors would be, so either form continues the other.
  void step(std::span<const Param<T>> params, const Context& ctx);
  void step(std::span<const Param<T>> params);
  int64_t steps() const { return steps_; }
  // The learning rate given at construction (or last set): what step(params) uses, and what a
  // schedule starts from. step(arena, lr) takes the rate of each step as its argument instead.
  virtual double learning_rate() const = 0;
  virtual void set_learning_rate(double lr) = 0;

  // Checkpointing. The state kept per parameter tensor, by PyTorch's names for it
  // ("momentum_buffer"; "exp_avg", "exp_avg_sq"; "square_avg", "grad_avg", "momentum_buffer").
  virtual std::vector<std::string> state_names() const = 0;
  // State tensor k (of state_names()) of parameter i, its size. Only once state_size() > 0.
  std::span<const T> state(size_t param, size_t k) const;
  size_t state_size() const { return params_; }  // parameters with state; 0 before a step
  // Continues from a saved step count and state (state[param][k] as state() returns them; empty
  // with steps 0). The next step() checks it against the parameters it is given.
  void restore(int64_t steps, std::vector<std::vector<std::vector<T>>> state);

 protected:
  // Updates p from g at learning rate lr: p, g and the state_names().size() state arrays (zero
  // at first) run over the same elements, a whole arena or one tensor. The loop is an ops::
  // kernel (ops/ref/optim_ref.cpp), run in ctx.
  virtual void update(const Context& ctx, std::span<T> p, std::span<const T> g,
                      std::span<T* const> state, double lr) = 0;
  int64_t steps_ = 0;

 private:
  // Allocates zero state for these slots at the first step; later, checks they are the same.
  void prepare(std::span<const typename ParamArena<T>::Slot> slots, int64_t total,
               std::span<const Param<T>> params);
  size_t params_ = 0;                                 // parameters the state was made for
  std::vector<typename ParamArena<T>::Slot> layout_;  // per parameter, in the flat state
  std::vector<Tensor<T>> state_;                      // [k]: flat, in an arena's layout
};

// SGD (torch.optim.SGD):
//   d = g + wd·p
//   momentum > 0:  buf = d at t = 1, else buf = momentum·buf + (1 - dampening)·d
//                  d = nesterov ? d + momentum·buf : buf
//   p = p - lr·d
struct SgdOptions {
  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;  // needs momentum > 0 and dampening 0, as in PyTorch
};

template <class T>
class Sgd final : public Optimizer<T> {
 public:
  explicit Sgd(const SgdOptions& options = {});
  std::string name() const override { return "sgd"; }
  double learning_rate() const override { return o_.lr; }
  void set_learning_rate(double lr) override { o_.lr = lr; }
  std::vector<std::string> state_names() const override {
    if (o_.momentum == 0.0) return {};
    return {"momentum_buffer"};
  }

 private:
  void update(const Context& ctx, std::span<T> p, std::span<const T> g, std::span<T* const> state,
              double lr) override;
  SgdOptions o_;
};

// Adam (torch.optim.Adam) and AdamW (torch.optim.AdamW, decoupled = true):
//   Adam:  d = g + wd·p            AdamW: p = p·(1 - lr·wd), d = g
//   m = β1·m + (1 - β1)·d          v = β2·v + (1 - β2)·d²
//   p = p - (lr / (1 - β1^t)) · m / (sqrt(v) / sqrt(1 - β2^t) + eps)
// (eps is added after the bias correction of v, exactly as PyTorch orders it.)
// For AdamW use AdamW<T> (AdamWOptions), whose defaults are torch.optim.AdamW's; AdamOptions
// with decoupled = true is torch.optim.Adam(decoupled_weight_decay=True): Adam's defaults, so
// no weight decay unless one is given.
struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool decoupled = false;  // true: AdamW's update (name "adamw")
};

template <class T>
class Adam : public Optimizer<T> {
 public:
  explicit Adam(const AdamOptions& options = {});
  std::string name() const override { return o_.decoupled ? "adamw" : "adam"; }
  // As constructed, with the learning rate as last set.
  const AdamOptions& options() const { return o_; }
  double learning_rate() const override { return o_.lr; }
  void set_learning_rate(double lr) override { o_.lr = lr; }
  std::vector<std::string> state_names() const override { return {"exp_avg", "exp_avg_sq"}; }

 private:
  void update(const Context& ctx, std::span<T> p, std::span<const T> g, std::span<T* const> state,
              double lr) override;
  AdamOptions o_;
};

// torch.optim.AdamW's defaults: AdamW<float> opt({.lr = 3e-4}) decays weights by 1e-2.
struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
};

// AdamW (torch.optim.AdamW): Adam with decoupled weight decay, as PyTorch's AdamW is its Adam
// with decoupled_weight_decay=True. Its name ("adamw") and state ("exp_avg", "exp_avg_sq") are
// those of Adam({.decoupled = true}), so checkpoints of either resume in the other.
template <class T>
class AdamW final : public Adam<T> {
 public:
  explicit AdamW(const AdamWOptions& options = {});
};

// Kept for existing callers: AdamWOptions' defaults as AdamOptions. Prefer AdamW<T>.
inline AdamOptions adamw_options() {
  const AdamWOptions w;
  return {.lr = w.lr,
          .beta1 = w.beta1,
          .beta2 = w.beta2,
          .eps = w.eps,
          .weight_decay = w.weight_decay,
          .decoupled = true};
}

// RMSProp (torch.optim.RMSprop):
//   d = g + wd·p
//   v = α·v + (1 - α)·d²
//   centered: ḡ = α·ḡ + (1 - α)·d,  avg = sqrt(v - ḡ²) + eps;   else avg = sqrt(v) + eps
//   momentum > 0: buf = momentum·buf + d/avg, p = p - lr·buf;   else p = p - lr·d/avg
struct RmsPropOptions {
  double lr = 1e-2;
  double alpha = 0.99;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double momentum = 0.0;
  bool centered = false;
};

template <class T>
class RmsProp final : public Optimizer<T> {
 public:
  explicit RmsProp(const RmsPropOptions& options = {});
  std::string name() const override { return "rmsprop"; }
  double learning_rate() const override { return o_.lr; }
  void set_learning_rate(double lr) override { o_.lr = lr; }
  std::vector<std::string> state_names() const override {
    return {"square_avg", "grad_avg", "momentum_buffer"};
  }

 private:
  void update(const Context& ctx, std::span<T> p, std::span<const T> g, std::span<T* const> state,
              double lr) override;
  RmsPropOptions o_;
};

}  // namespace convnet
