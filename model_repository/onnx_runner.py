"""Triton python-backend model that runs ``model.onnx`` beside it in ONNX Runtime.

The embedded tritonserver (from the nvidia-pytriton wheel) has no ONNX Runtime backend, so the
model builder copies this file to ``embedded/<model>/1/model.py``. Triton's dynamic batcher
hands `execute` every request it gathered; they are checked one by one (a malformed request
fails alone), concatenated along the batch dimension, run as one ONNX Runtime call and split.
"""

import json
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    """One ONNX Runtime session per model instance."""

    def initialize(self, args):
        config = json.loads(args["model_config"])
        model_dir = os.path.join(args["model_repository"], args["model_version"])
        options = ort.SessionOptions()
        threads = int(os.environ.get("FACEGATE_ORT_THREADS", "0"))
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # The three models' sessions share the machine's cores. ONNX Runtime's pool threads
        # spin after each op by default, which on a small CPU burns the cycles another
        # model's session (or the frontend) is waiting for; FACEGATE_ORT_SPIN=1 restores it.
        spin = os.environ.get("FACEGATE_ORT_SPIN", "0")
        options.add_session_config_entry("session.intra_op.allow_spinning", spin)
        options.add_session_config_entry("session.inter_op.allow_spinning", spin)
        self.session = ort.InferenceSession(
            os.path.join(model_dir, "model.onnx"), options, providers=["CPUExecutionProvider"]
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
                raise ValueError(f"input {name} has shape {list(array.shape)}, expected [N, {dims}]")
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
                responses[index] = pb_utils.InferenceResponse(error=pb_utils.TritonError(str(error)))
                continue
            good.append((index, arrays[0].shape[0]))
            for slot, array in zip(feeds, arrays):
                slot.append(array)
        if good:
            batch = {name: np.concatenate(parts) for (name, _), parts in zip(self.inputs, feeds)}
            results = self.session.run(self.outputs, batch)
            offset = 0
            for index, size in good:
                tensors = [
                    pb_utils.Tensor(name, result[offset:offset + size])
                    for name, result in zip(self.outputs, results)
                ]
                responses[index] = pb_utils.InferenceResponse(output_tensors=tensors)
                offset += size
        return responses

    def finalize(self):
        self.session = None
