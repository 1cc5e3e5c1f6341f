// convnet export: a checkpoint's network as an ONNX file for inference in other runtimes
// (convnet/onnx.hpp; the layer mapping is in docs/export.md).
#include <iostream>

#include "args.hpp"
#include "commands.hpp"
#include "common_flags.hpp"
#include "convnet/checkpoint.hpp"
#include "convnet/onnx.hpp"

namespace convnet::cli {

int cmd_export(int argc, char** argv) {
  ArgParser args("convnet export",
                 "Writes a checkpoint's network for inference in another format. onnx: an ONNX\n"
                 "model (opset 13) taking pixels in [0, 1] as 'input' [N, C, H, W] (normalised\n"
                 "inside the graph when the checkpoint records a normalisation) and giving\n"
                 "'logits' and 'probabilities' [N, K], as convnet predict computes them.\n"
                 "The checkpoint itself already is safetensors, which PyTorch reads by tensor\n"
                 "name (docs/model-spec.md), so there is no safetensors format here.");
  add_checkpoint_flag(args);
  args.add("format", "onnx", "the output format: onnx");
  args.add("out", "", "the file to write (atomically: it appears only once complete)");
  if (!args.parse(argc, argv, 2)) {
    std::cout << args.help();
    return 0;
  }
  const std::string path = checkpoint_flag(args);
  if (args.get("out").empty()) throw UsageError{"--out: required (the file to write)"};
  if (args.get("format") != "onnx")
    throw UsageError{"--format: expected onnx, got '" + args.get("format") +
                     "' (a checkpoint already is safetensors)"};
  // Batch 1: the graph's batch dimension is symbolic, so the built batch does not matter.
  const Checkpoint<float> checkpoint = load_checkpoint<float>(path, 1);
  for (const std::string& note : checkpoint.notes)
    std::cerr << "convnet export: warning: " << note << "\n";
  // The checkpoint's normalisation, if any, becomes the graph's first nodes.
  export_onnx(*checkpoint.model, checkpoint.state.input, args.get("out"));
  std::cerr << "wrote " << args.get("out") << " (ONNX opset " << kOnnxOpsetVersion << ")\n";
  return 0;
}

}  // namespace convnet::cli
