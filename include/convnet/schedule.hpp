// Learning-rate schedules with the semantics of PyTorch's torch.optim.lr_scheduler, as closed
// forms of the epoch (or, for one-cycle, the step) so that a run resumed from a checkpoint
// continues on exactly the same rates. lr0 is the optimizer's initial learning rate.
//   constant     lr0
//   step         lr0 · gamma^floor(e / step_size)                       (StepLR)
//   multistep    lr0 · gamma^(number of milestones <= e)                (MultiStepLR)
//   exponential  lr0 · gamma^e                                          (ExponentialLR)
//   cosine       min_lr + (lr0 − min_lr)·(1 + cos(π·e / T))/2, T = t_max (CosineAnnealingLR)
//   onecycle     per step t of T = epochs·steps_per_epoch (OneCycleLR, cosine annealing,
//                two phases): from lr0/div_factor up to lr0 over the first pct_start·T − 1
//                steps, then down to lr0/(div_factor·final_div_factor) at step T − 1
// e counts epochs from 0. Linear warm-up (LinearLR, chained as by ChainedScheduler) multiplies
// any of them by start + (1 − start)·min(e, warmup_epochs)/warmup_epochs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace convnet {

struct LrSchedule {
  enum class Kind { Constant, Step, MultiStep, Exponential, Cosine, OneCycle };
  Kind kind = Kind::Constant;
  double gamma = 0.1;                 // step, multistep, exponential
  int64_t step_size = 1;              // step
  std::vector<int64_t> milestones{};  // multistep: epochs, increasing
  double min_lr = 0;                  // cosine: eta_min
  int64_t t_max = 0;                  // cosine: period in epochs; 0 = the run's total epochs
  double pct_start = 0.3;             // onecycle
  double div_factor = 25;             // onecycle
  double final_div_factor = 1e4;      // onecycle
  int64_t warmup_epochs = 0;          // linear warm-up; 0 = none
  double warmup_start = 1.0 / 3;      // its first factor (LinearLR's start_factor)

  // The learning rate of step `step` (0-based) of epoch `epoch` (0-based) in a run of
  // total_epochs of steps_per_epoch steps, starting from lr0. Every kind but onecycle holds
  // it for the whole epoch.
  double rate(double lr0, int64_t epoch, int64_t step, int64_t steps_per_epoch,
              int64_t total_epochs) const;
  // Throws convnet::Error naming the option when one is out of range.
  void validate() const;
  // Whether the rates depend on total_epochs (cosine over the run, one-cycle): then a run
  // resumed with a new total continues on a different curve.
  bool depends_on_total() const {
    return (kind == Kind::Cosine && t_max == 0) || kind == Kind::OneCycle;
  }
};

// "constant", "step", "multistep", "exponential", "cosine", "onecycle" -> Kind; throws on
// anything else, listing these.
LrSchedule::Kind schedule_kind(const std::string& name);
std::string schedule_name(LrSchedule::Kind kind);

}  // namespace convnet
