// Learning-rate schedules as closed forms (see convnet/schedule.hpp for each formula).
#include "convnet/schedule.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "convnet/error.hpp"

namespace convnet {

namespace {
const std::pair<LrSchedule::Kind, const char*> kNames[] = {
    {LrSchedule::Kind::Constant, "constant"}, {LrSchedule::Kind::Step, "step"},
    {LrSchedule::Kind::MultiStep, "multistep"}, {LrSchedule::Kind::Exponential, "exponential"},
    {LrSchedule::Kind::Cosine, "cosine"},     {LrSchedule::Kind::OneCycle, "onecycle"}};

// OneCycleLR's cosine annealing from `start` to `end` as pct goes from 0 to 1.
double anneal_cos(double start, double end, double pct) {
  return end + (start - end) / 2 * (std::cos(std::numbers::pi * pct) + 1);
}
}  // namespace

LrSchedule::Kind schedule_kind(const std::string& name) {
  std::string known;
  for (const auto& [kind, n] : kNames) {
    if (name == n) return kind;
    known += (known.empty() ? "" : ", ") + std::string(n);
  }
  throw Error(detail::concat("unknown learning-rate schedule '", name, "' (known: ", known, ")"));
}

std::string schedule_name(LrSchedule::Kind kind) {
  for (const auto& [k, n] : kNames)
    if (k == kind) return n;
  return "?";
}

void LrSchedule::validate() const {
  CONVNET_CHECK(gamma > 0, "schedule: gamma must be > 0, got ", gamma);
  CONVNET_CHECK(step_size >= 1, "schedule: step size must be >= 1, got ", step_size);
  for (size_t i = 0; i < milestones.size(); ++i)
    CONVNET_CHECK(milestones[i] >= 1 && (i == 0 || milestones[i] > milestones[i - 1]),
                  "schedule: milestones must be increasing epochs >= 1, got ", milestones[i],
                  i > 0 ? detail::concat(" after ", milestones[i - 1]) : std::string());
  CONVNET_CHECK(kind != Kind::MultiStep || !milestones.empty(),
                "schedule: multistep needs milestones");
  CONVNET_CHECK(min_lr >= 0, "schedule: min lr must be >= 0, got ", min_lr);
  CONVNET_CHECK(t_max >= 0, "schedule: T_max must be >= 0 (0: the run's epochs), got ", t_max);
  CONVNET_CHECK(pct_start > 0 && pct_start < 1, "schedule: pct_start must be in (0, 1), got ",
                pct_start);
  CONVNET_CHECK(div_factor > 0 && final_div_factor > 0,
                "schedule: onecycle's div factors must be > 0");
  CONVNET_CHECK(warmup_epochs >= 0, "schedule: warm-up epochs must be >= 0, got ", warmup_epochs);
  CONVNET_CHECK(warmup_start > 0 && warmup_start <= 1,
                "schedule: warm-up start factor must be in (0, 1], got ", warmup_start);
  CONVNET_CHECK(kind != Kind::OneCycle || warmup_epochs == 0,
                "schedule: onecycle warms up by itself; no separate warm-up");
}

double LrSchedule::rate(double lr0, int64_t epoch, int64_t step, int64_t steps_per_epoch,
                        int64_t total_epochs) const {
  const auto e = static_cast<double>(epoch);
  double lr = lr0;
  switch (kind) {
    case Kind::Constant:
      break;
    case Kind::Step:
      lr = lr0 * std::pow(gamma, static_cast<double>(epoch / step_size));
      break;
    case Kind::MultiStep: {
      const auto passed = std::upper_bound(milestones.begin(), milestones.end(), epoch) -
                          milestones.begin();
      lr = lr0 * std::pow(gamma, static_cast<double>(passed));
      break;
    }
    case Kind::Exponential:
      lr = lr0 * std::pow(gamma, e);
      break;
    case Kind::Cosine: {
      const double period = static_cast<double>(t_max > 0 ? t_max : total_epochs);
      lr = min_lr + (lr0 - min_lr) * (1 + std::cos(std::numbers::pi * e / period)) / 2;
      break;
    }
    case Kind::OneCycle: {
      // lr0 is the peak (PyTorch's max_lr).
      const double total = static_cast<double>(total_epochs * steps_per_epoch);
      const double t = static_cast<double>(epoch * steps_per_epoch + step);
      const double initial = lr0 / div_factor, final_lr = initial / final_div_factor;
      const double rise_end = pct_start * total - 1;  // PyTorch's first phase end_step
      if (t <= rise_end) return anneal_cos(initial, lr0, t / rise_end);
      // A run too short for a rise (rise_end <= 0) only anneals; one step holds lr0.
      const double fall = total - 1 - std::max(rise_end, 0.0);
      return fall <= 0 ? lr0 : anneal_cos(lr0, final_lr, (t - std::max(rise_end, 0.0)) / fall);
    }
  }
  if (warmup_epochs > 0) {
    const double done = std::min(e, static_cast<double>(warmup_epochs));
    lr *= warmup_start + (1 - warmup_start) * done / static_cast<double>(warmup_epochs);
  }
  return lr;
}

}  // namespace convnet
