// convnet: the command-line tool. Dispatches to a subcommand and turns every error into one
// message on stderr and a non-zero exit code.
#include <cstdio>
#include <exception>
#include <iostream>
#include <memory>
#include <string>

#include "args.hpp"
#include "commands.hpp"
#include "convnet/distributed.hpp"
#include "convnet/error.hpp"
#include "convnet/files.hpp"

namespace {

const char* kUsage =
    "usage: convnet <command> [flags]\n"
    "\n"
    "Trains convolutional networks with hand-derived backpropagation.\n"
    "\n"
    "commands:\n"
    "  train       train a model on an IDX, CIFAR-10 or image-folder dataset (Fashion-MNIST by\n"
    "              default); save, and resume, checkpoints\n"
    "  predict     classify image files with a checkpoint (top classes and probabilities)\n"
    "  eval        a checkpoint's loss, accuracy, per-class metrics and confusion matrix\n"
    "  summary     print a model's layers, parameter count and FLOPs, or its spec text\n"
    "  explain     walk one training step: forward, loss, backward and update, layer by layer\n"
    "  gradcheck   check every layer's gradients of a model against finite differences\n"
    "  bench       measure training and inference throughput on synthetic data\n"
    "  visualize   a checkpoint's filters and an image's feature maps as PNG files\n"
    "  export      write a checkpoint's network as an ONNX model for other runtimes\n"
    "\n"
    "Run 'convnet <command> --help' for the flags of a command.\n";

// Under mpirun, the ranks of a job: an error on one rank must end all of them (the others may be
// waiting for it in a collective), so it ends the job, with its rank in the message.
std::unique_ptr<convnet::World> world;

std::string where() {
  if (!world || world->communicator().size() == 1) return "";
  return " (rank " + std::to_string(world->communicator().rank()) + " of " +
         std::to_string(world->communicator().size()) + ")";
}

int failed(int code) {
  if (world && world->communicator().size() > 1) {
    std::cerr << std::flush;
    world->communicator().abort("", code);
  }
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << kUsage;
    return 2;
  }
  const std::string command = argv[1];
  // A file-size limit (ulimit -f) makes a write fail with EFBIG, which every writer reports and
  // cleans up after, instead of killing the process with a temporary left behind.
  convnet::ignore_file_size_signal();
  try {
    if (command == "--help" || command == "-h" || command == "help") {
      std::cout << kUsage;
      return 0;
    }
    convnet::cli::check_threads_environment();  // every command, before any kernel runs
    world = std::make_unique<convnet::World>(argc, argv);
    if (command == "train") return convnet::cli::cmd_train(argc, argv, world->communicator());
    if (command == "gradcheck") return convnet::cli::cmd_gradcheck(argc, argv);
    if (command == "bench") return convnet::cli::cmd_bench(argc, argv);
    if (command == "summary") return convnet::cli::cmd_summary(argc, argv);
    if (command == "predict") return convnet::cli::cmd_predict(argc, argv);
    if (command == "eval") return convnet::cli::cmd_eval(argc, argv);
    if (command == "explain") return convnet::cli::cmd_explain(argc, argv);
    if (command == "export") return convnet::cli::cmd_export(argc, argv);
    if (command == "visualize") return convnet::cli::cmd_visualize(argc, argv);
    std::cerr << "convnet: unknown command '" << command << "'\n\n" << kUsage;
    return 2;
  } catch (const convnet::cli::UsageError& e) {
    std::cerr << "convnet " << command << where() << ": " << e.message << "\n";
    return failed(2);
  } catch (const convnet::JobError& e) {  // thrown alike on every rank: rank 0 tells
    if (!world || world->communicator().rank() == 0)
      std::cerr << "convnet " << command << ": error: " << e.what() << "\n";
    return 1;
  } catch (const convnet::Error& e) {
    std::cerr << "convnet " << command << ": error" << where() << ": " << e.what() << "\n";
    return failed(1);
  } catch (const std::bad_alloc&) {
    std::cerr << "convnet " << command << ": error" << where() << ": out of memory\n";
    return failed(1);
  } catch (const std::exception& e) {
    std::cerr << "convnet " << command << ": internal error" << where() << ": " << e.what()
              << "\n";
    return failed(1);
  }
}
