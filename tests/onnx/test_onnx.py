#!/usr/bin/env python3
"""ONNX export, end to end: trains small checkpoints of every layer kind and both merge nodes
(tests/onnx/*.txt) on the test images, exports each with `convnet export --format onnx`, checks
the file with the onnx package's checker (full_check: types and shapes inferred through every
node), runs it in ONNX Runtime (onnxruntime-node, through run_onnx.js) on the test images as
one batch, and compares "logits" and "probabilities" with `convnet predict --json`'s within 1e-4.
Usage: test_onnx.py CONVNET ONNX_INPUTS TESTS_DIR
Exits 77 (ctest's SKIP_RETURN_CODE) with a message saying what is missing and how to install
it when python3-onnx, node or onnxruntime-node is absent."""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

SKIP = 77
TOLERANCE = 1e-4
HERE = os.path.dirname(os.path.abspath(__file__))


def skip(missing, how):
    print(f"SKIP: {missing}; {how}")
    sys.exit(SKIP)


try:
    import numpy as np
    import onnx
    import onnx.checker
except ImportError:
    skip(f"the onnx Python package is not installed for {sys.executable}",
         "install Debian's python3-onnx (tools/install-deps.sh does)")
NODE = shutil.which("node")
if NODE is None:
    skip("node is not installed", "install Debian's nodejs and npm, then run npm ci in tests/onnx "
         "(tools/install-deps.sh does both)")
if not os.path.isdir(os.path.join(HERE, "node_modules", "onnxruntime-node")):
    skip("onnxruntime-node is not installed in tests/onnx/node_modules",
         "run npm ci in tests/onnx (tools/install-deps.sh does)")


def run(*command):
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"FAILED: {' '.join(command)}\n{result.stdout}{result.stderr}")
    return result.stdout


def safetensors_header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n))


def reference(convnet, onnx_inputs, checkpoint, images):
    """The input pixels of `images` (onnx_inputs: read, resized and scaled by the calls predict
    makes) and `convnet predict --json`'s logits and probabilities for them."""
    pixels = json.loads(run(onnx_inputs, checkpoint, *images))
    lines = run(convnet, "predict", "--json", "--checkpoint", checkpoint, *images).splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    assert [r["file"] for r in rows] == images, "predict --json: not one line per image in order"
    logits = np.array([r["logits"] for r in rows], dtype=np.float64)
    probabilities = np.array([r["probabilities"] for r in rows], dtype=np.float64)
    return pixels, logits, probabilities


def check_model(path, checkpoint, classes):
    """The onnx checker, and what the graph must look like: opset, inputs, outputs, and the
    checkpoint's tensors as initializers under their own names."""
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    opsets = {o.domain: o.version for o in model.opset_import}
    assert opsets.get("", 0) >= 13, f"{path}: opset {opsets}"
    graph = model.graph
    assert [i.name for i in graph.input] == ["input"], [i.name for i in graph.input]
    assert [o.name for o in graph.output] == ["logits", "probabilities"]
    for o in graph.output:
        dims = [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim]
        assert dims == ["N", classes], f"{o.name}: dims {dims}"
    header = safetensors_header(checkpoint)
    metadata = header.pop("__metadata__")
    saved = {name for name in header if not name.startswith("optimizer.")}
    initializers = {t.name for t in graph.initializer}
    missing = saved - initializers
    assert not missing, f"{path}: checkpoint tensors not in the graph: {sorted(missing)}"
    extra = {n for n in initializers - saved if "/" not in n and not n.startswith("input.")}
    assert not extra, f"{path}: initializers not named as the checkpoint's tensors: {extra}"
    props = {p.key: p.value for p in model.metadata_props}
    assert props.get("class_names") == metadata.get("input.class_names"), \
        f"{path}: class names {props.get('class_names')!r}, checkpoint's " \
        f"{metadata.get('input.class_names')!r}"
    normalized = "input.mean" in metadata
    has_nodes = "input.mean" in initializers and any(n.op_type == "Sub" for n in graph.node)
    assert normalized == has_nodes, \
        f"{path}: normalisation in the checkpoint: {normalized}, in the graph: {has_nodes}"
    return [n.op_type for n in graph.node], normalized


def main():
    convnet, onnx_inputs, tests_dir = sys.argv[1:4]
    image_dir = os.path.abspath(os.path.join(tests_dir, "data", "images"))
    images = sorted(os.path.join(root, f) for root, _, files in os.walk(image_dir)
                    for f in files if f.endswith((".png", ".pgm", ".jpg")))
    assert len(images) >= 10, f"expected the test images in {image_dir}"
    # (spec, train flags): the graph is trained with --normalize, so its checkpoint records a
    # normalisation and its export starts with Sub and Div.
    cases = [("every_layer_sequential.txt", []), ("every_merge_graph.txt", ["--normalize"])]
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        # An image-folder dataset: the test images serve as both splits.
        data = os.path.join(tmp, "data")
        os.mkdir(data)
        os.symlink(image_dir, os.path.join(data, "train"))
        os.symlink(image_dir, os.path.join(data, "test"))
        classes = sum(os.path.isdir(os.path.join(image_dir, d)) for d in os.listdir(image_dir))
        for spec, flags in cases:
            name = os.path.splitext(spec)[0]
            checkpoint = os.path.join(tmp, name + ".safetensors")
            exported = os.path.join(tmp, name + ".onnx")
            # Twelve Adam steps: the weights leave their initialisation far enough for the
            # outputs to differ between images, and BatchNorm's running statistics move 72% of
            # the way (1 − 0.9^12) from (0, 1) to the data's.
            run(convnet, "train", "--data", data, "--image-size", "3x10x12", "--model",
                os.path.join(HERE, spec), "--epochs", "3", "--batch", "4", "--seed", "3",
                "--threads", "1", "--optimizer", "adam", "--lr", "0.01", "--save", checkpoint,
                *flags)
            run(convnet, "export", "--checkpoint", checkpoint, "--format", "onnx",
                "--out", exported)
            ops, normalized = check_model(exported, checkpoint, classes)
            assert normalized == ("--normalize" in flags), \
                f"{spec}: trained with {flags}, normalisation recorded: {normalized}"
            pixels, logits, probabilities = reference(convnet, onnx_inputs, checkpoint, images)
            inputs_path = os.path.join(tmp, name + ".inputs.json")
            with open(inputs_path, "w") as f:
                json.dump(pixels, f)
            out = json.loads(run(NODE, os.path.join(HERE, "run_onnx.js"), exported, inputs_path))
            assert out["dims"] == [len(images), classes], out["dims"]
            ort_logits = np.array(out["logits"]).reshape(len(images), classes)
            ort_probabilities = np.array(out["probabilities"]).reshape(len(images), classes)
            logit_error = np.abs(ort_logits - logits).max()
            probability_error = np.abs(ort_probabilities - probabilities).max()
            # Outputs that hardly depend on the image would make the comparison vacuous.
            spread = np.ptp(logits, axis=0).max()
            ok = logit_error <= TOLERANCE and probability_error <= TOLERANCE and spread > 1e-3
            print(f"{'ok' if ok else 'FAILED'}: {spec}{' ' + ' '.join(flags) if flags else ''}: "
                  f"{len(ops)} ONNX nodes ({', '.join(sorted(set(ops)))}), normalised in graph: "
                  f"{normalized}; {len(images)} images against convnet predict: largest |logit "
                  f"difference| {logit_error:.2e}, |probability difference| "
                  f"{probability_error:.2e} (tolerance {TOLERANCE:g}); logit spread over images "
                  f"{spread:.3g}")
            failures += not ok
    print(f"{len(cases) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
