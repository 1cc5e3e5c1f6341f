// The flags of `convnet train` and the library options they make: the Trainer's (recipe,
// schedule, outputs, printing) and, with --resume, what the checkpoint records.
#pragma once

#include "args.hpp"
#include "convnet/checkpoint.hpp"
#include "convnet/distributed.hpp"
#include "convnet/trainer.hpp"

namespace convnet::cli {

void add_train_flags(ArgParser& args);

// --resume FILE: the checkpoint (empty when not resuming), its notes printed as warnings, and
// the flags it records set as the defaults of those not given again. --model may be given
// again only with the checkpoint's model (UsageError otherwise).
Checkpoint<float> resume_from_flags(ArgParser& args);

// Every flag of the run checked (a UsageError naming the flag) and turned into the Trainer's
// options; `resumed` (or null) positions the run after the checkpoint's epochs and steps. Leaves
// fit.validation and input (which need the data) unset.
TrainerOptions trainer_options(const ArgParser& args, const Checkpoint<float>* resumed);

// Under mpirun: this process's rank joins the run (options.fit.communicator; only rank 0 prints
// and writes; --comm-timeout set) and --micro-batches is checked against the ranks. Returns the
// parts a batch is computed in, the model being built for one part.
int64_t join_ranks(const ArgParser& args, Communicator& communicator, TrainerOptions& options);

// With the data loaded (and input-normalised): --target into options.fit.target, --noise,
// --normalize-targets (the training targets' statistics applied to every set and recorded in
// options.input with the target's kind and names), and the --loss to train with. UsageError
// naming the flag for a choice the data cannot take.
std::unique_ptr<Loss<float>> prepare_task(const ArgParser& args, TrainerOptions& options,
                                          Dataset& train, Dataset& test, Dataset& validation);

// Before any data is loaded: every output can be written (atomically beside its target, so the
// target is no folder and its folder is writable; the report is a folder), and the log's
// extension says its format.
void check_train_outputs(const ArgParser& args);

}  // namespace convnet::cli
