// For the ONNX export test (tests/onnx/test_onnx.py): runs an ONNX model in ONNX Runtime
// (onnxruntime-node, CPU) on one batch and prints its outputs as JSON:
//   {"logits": [N·K floats], "probabilities": [N·K floats], "dims": [N, K]}
// Usage: node run_onnx.js MODEL.onnx INPUTS.json, INPUTS.json holding {"shape": [N, C, H, W],
// "input": [N·C·H·W floats]} (what onnx_inputs writes).
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
  const [modelPath, inputsPath] = process.argv.slice(2);
  const inputs = JSON.parse(fs.readFileSync(inputsPath, 'utf8'));
  const session = await ort.InferenceSession.create(modelPath);
  const input = new ort.Tensor('float32', Float32Array.from(inputs.input), inputs.shape);
  const results = await session.run({ input });
  process.stdout.write(JSON.stringify({
    logits: Array.from(results.logits.data),
    probabilities: Array.from(results.probabilities.data),
    dims: results.logits.dims,
  }) + '\n');
}

main().catch((error) => {
  process.stderr.write(`run_onnx.js: ${error.message}\n`);
  process.exit(1);
});
