// The convnet subcommands. Each returns the process exit code; errors propagate as
// convnet::Error (exit 1) or cli::UsageError (exit 2) to main().
#pragma once

namespace convnet {
class Communicator;  // convnet/distributed.hpp
}

namespace convnet::cli {

// Under mpirun, each rank trains its shard of every batch (see convnet/distributed.hpp).
int cmd_train(int argc, char** argv, Communicator& communicator);
int cmd_gradcheck(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_summary(int argc, char** argv);
int cmd_predict(int argc, char** argv);
int cmd_eval(int argc, char** argv);
int cmd_explain(int argc, char** argv);
int cmd_export(int argc, char** argv);
int cmd_visualize(int argc, char** argv);

}  // namespace convnet::cli
