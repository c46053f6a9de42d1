"""Triton python-backend model that runs ``model.onnx`` beside it on the CPU.

The embedded tritonserver (from the nvidia-pytriton wheel) has no ONNX Runtime or OpenVINO
backend, so the model builder copies this file to ``embedded/<model>/1/model.py``; the config's
``RUNTIME`` and ``PRECISION`` parameters (from the model's `ModelSpec.cpu_runtime`) say which
runtime runs the file (`model_repository.cpu_runtimes`). Triton's dynamic batcher hands
`execute` every request it gathered; they are checked one by one (a malformed request fails
alone), concatenated along the batch dimension, run as one call and split.
"""

import json
import os

import numpy as np
import triton_python_backend_utils as pb_utils

from model_repository.cpu_runtimes import open_runner


class TritonPythonModel:
    """One runtime session per model instance."""

    def initialize(self, args):
        config = json.loads(args["model_config"])
        model_dir = os.path.join(args["model_repository"], args["model_version"])
        parameters = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        # The models share the machine's cores with each other and the frontend: ONNX
        # Runtime's threads spin after each op by default, burning the cycles another model is
        # waiting for, so they don't unless FACEGATE_ORT_SPIN=1.
        self.run = open_runner(
            os.path.join(model_dir, "model.onnx"),
            engine=parameters.get("RUNTIME", "onnxruntime"),
            precision=parameters.get("PRECISION", "f32"),
            threads=int(os.environ.get("FACEGATE_ORT_THREADS", "0")),
            spin=os.environ.get("FACEGATE_ORT_SPIN", "0") == "1",
        )
        self.inputs = [(t["name"], [int(d) for d in t["dims"]]) for t in config["input"]]
        self.outputs = [t["name"] for t in config["output"]]

    def _check(self, request):
        arrays = []
        for name, dims in self.inputs:
            tensor = pb_utils.get_input_tensor_by_name(request, name)
            if tensor is None:
                raise ValueError(f"missing input {name}")
            array = tensor.as_numpy()
            if list(array.shape[1:]) != dims:
                raise ValueError(
                    f"input {name} has shape {list(array.shape)}, expected [N, {dims}]")
            arrays.append(array)
        if len({a.shape[0] for a in arrays}) != 1:
            raise ValueError("inputs disagree on the batch size")
        return arrays

    def execute(self, requests):
        responses = [None] * len(requests)
        good, feeds = [], [[] for _ in self.inputs]
        for index, request in enumerate(requests):
            try:
                arrays = self._check(request)
            except ValueError as error:
                responses[index] = pb_utils.InferenceResponse(
                    error=pb_utils.TritonError(str(error)))
                continue
            good.append((index, arrays[0].shape[0]))
            for slot, array in zip(feeds, arrays, strict=True):
                slot.append(array)
        if good:
            batch = {name: np.concatenate(parts)
                     for (name, _), parts in zip(self.inputs, feeds, strict=True)}
            computed = self.run(batch)
            results = [computed[name] for name in self.outputs]
            offset = 0
            for index, size in good:
                tensors = [
                    pb_utils.Tensor(name, result[offset:offset + size])
                    for name, result in zip(self.outputs, results, strict=True)
                ]
                responses[index] = pb_utils.InferenceResponse(output_tensors=tensors)
                offset += size
        return responses

    def finalize(self):
        self.run = None
