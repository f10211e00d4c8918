"""Where :func:`~edgesmith.converters.qat.qat` puts its quantizers, and the model it rebuilds with them.

>>> import keras
>>> inputs = keras.Input((8, 8, 1))
>>> x = keras.layers.BatchNormalization(name="bn")(keras.layers.Conv2D(4, 3)(inputs))
>>> x = keras.layers.MaxPooling2D()(keras.layers.ReLU()(x))
>>> outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(x))
>>> rebuilt, plan = prepare_qat(keras.Model(inputs, outputs))
>>> plan.folded, plan.quantizer_count, sorted(plan.float_layers)   # input, conv+relu, dense logits
(['bn'], 3, [])

A quantizer goes where TFLite's int8 graph holds a scale of its own (:func:`.int8_ops.int8_role`; a layer's is
a fact of its handler in :mod:`.layers`). Tensors tied by ops that keep one scale on both sides (pooling, PAD,
RESHAPE, CONCATENATION...) form one group with one shared quantizer, found by union-find. BatchNorm after a
linear convolution is folded into it, SeparableConv2D becomes the depthwise and pointwise convolutions TFLite
runs, and pruning masks and cluster constraints move to the new kernels.
"""

from __future__ import annotations

from collections import defaultdict, deque

import keras
import numpy as np

from .graph import WithWeights, copy_layer, iter_calls, rewrite
from .int8_ops import FUSED_ACTIVATIONS, fixed_range, fuses_activation, int8_role, is_fused_activation, is_layer
from .kernels import copied_constraint, layer_kernels
from .layers import activation_name, int8_handler
from .qat_layers import QUANT_TWINS, ActivationQuantizer, FixedRangeQuantizer, PerChannel, output_channels


def prepare_qat(model, weight_bits: int = 8, eight_bit_layers=()):
    """``(qat_model, plan)``: ``model`` rebuilt with fake quantization, untrained, ranges still empty;
    ``plan.float_layers`` names the layers left in float, ``plan.folded`` the BatchNorms folded away.
    ``eight_bit_layers``: names of layers whose kernels stay 8-bit when ``weight_bits`` is 4."""
    plan = _Plan(model, weight_bits, eight_bit_layers)
    return rewrite(model, plan.replace, "qat"), plan


class _Plan:
    """Decides, from the original graph, what each call becomes and which tensors get which quantizer.

    Tensors are the keys of :func:`~edgesmith.converters.graph.iter_calls`. A tensor is *interior* when
    TFLite never materializes it (a convolution's output feeding the BatchNorm folded into it, or an
    output feeding the ReLU fused into its op). The inputs and outputs of a same-scale op form one
    *group*; a group is quantized when one of its tensors is made by an op with its own range or read by
    a quantized op, and then every tensor of it that is made elsewhere than by a same-scale or
    fixed-range op (by a kernel or range op, a float layer, or the model input) gets the group's quantizer.
    """

    def __init__(self, model, weight_bits: int = 8, eight_bit_layers=()):
        self.weight_bits, self.eight_bit_layers = weight_bits, set(eight_bit_layers)
        calls, inputs, outputs = iter_calls(model, "qat")
        self.model_outputs = set(outputs)
        self.producer = {key: call for call in calls for key in call.outputs}
        self.consumers = defaultdict(list)
        for call in calls:
            for key in call.inputs:
                self.consumers[key].append(call)
        self.fold_into = self._batchnorm_folds(calls)  # id(kernel layer) -> the BatchNorm folded into it
        self.folded = [batchnorm.name for batchnorm in self.fold_into.values()]
        self.roles = {id(call): self._role(call) for call in calls}
        interior = self._interior(calls)
        self.group = _groups(call for call in calls if self.roles[id(call)] == "same_scale")
        self.quantized_keys = self._quantized_keys(calls, inputs, interior)
        self.pending = defaultdict(deque)  # id(layer) -> its calls not yet rebuilt, in order
        for call in calls:
            self.pending[id(call.layer)].append(call)
        self.float_layers = set()
        self.quantizers = {}  # group -> its ActivationQuantizer
        self.input_quantized = {}  # id(model input tensor) -> its quantized tensor
        self.copies = {}
        self.quantizer_count = 0

    # -- planning, on the original graph -------------------------------------------

    def _batchnorm_folds(self, calls) -> dict:
        folds = {}
        for call in calls:
            source = self.producer.get(call.inputs[0]) if call.inputs else None
            if (int8_handler(call.layer).folds_into_kernel and source is not None
                    and int8_role(source.layer) == "kernel" and activation_name(source.layer) == "linear"
                    and self._only_feeds(source, call)):
                folds[id(source.layer)] = call.layer
        return folds

    def _only_feeds(self, source, call) -> bool:
        key = source.outputs[0]
        return (len(source.outputs) == 1 and [c.layer for c in self.consumers[key]] == [call.layer]
                and key not in self.model_outputs)

    def _role(self, call) -> str:
        return "folded" if any(call.layer is bn for bn in self.fold_into.values()) else int8_role(call.layer)

    def _output_role(self, call) -> str:
        """The role that decides whether the call's output gets a range (a Dense(softmax) is fixed)."""
        role = self.roles[id(call)]
        if role == "kernel" and fixed_range(call.layer) is not None:
            return "fixed"
        return "range" if role in ("kernel", "folded") else role

    def _interior(self, calls) -> set:
        interior = set()
        for call in calls:
            if len(call.outputs) != 1 or call.outputs[0] in self.model_outputs:
                continue
            following = self.consumers[call.outputs[0]]
            if len(following) != 1:
                continue
            into_batchnorm = self.fold_into.get(id(call.layer)) is following[0].layer
            fusing = self.roles[id(call)] == "folded" or fuses_activation(call.layer)
            if into_batchnorm or (fusing and is_fused_activation(following[0].layer)):
                interior.add(call.outputs[0])
        return interior

    def _quantized_keys(self, calls, inputs, interior) -> set:
        made_by = {key: self._output_role(call) for call in calls for key in call.outputs}
        made_by.update(dict.fromkeys(inputs, "input"))
        quantized_groups = {self.group(key) for key, role in made_by.items() if role == "range" and key not in interior}
        quantized_groups |= {self.group(key) for call in calls if self.roles[id(call)] in ("kernel", "range")
                             for key in call.inputs if key not in interior}
        return {key for key, role in made_by.items() if role in ("range", "float", "input")
                and key not in interior and self.group(key) in quantized_groups}

    # -- called by graph.rewrite for every call, on the new tensors --------------------

    def replace(self, layer, *args, **kwargs):
        call = self.pending[id(layer)].popleft()
        args, kwargs = self._quantize_model_inputs(call, (args, kwargs))
        outputs = self._build(call, args, kwargs)
        return self._quantize_outputs(call, outputs)

    def _build(self, call, args, kwargs):
        role = self.roles[id(call)]
        if role == "folded":
            return args[0]  # already folded into the convolution before it
        if role == "kernel":
            return self._kernel_layer(call.layer, args[0])
        if isinstance(call.layer, keras.layers.BatchNormalization):  # with nothing to fold into
            return self._standalone_batchnorm(call.layer, args[0])
        if role == "float":
            self.float_layers.add(call.layer.name)
        copy = copy_layer(call.layer, self.copies) if is_layer(call.layer) else call.layer  # ops are stateless
        return copy(*args, **kwargs)

    def _quantize_model_inputs(self, call, arguments):
        flat = keras.tree.flatten(arguments)
        keys = iter(call.inputs)
        for position, tensor in enumerate(flat):
            if not isinstance(tensor, keras.KerasTensor):
                continue
            key = next(keys, None)
            if key in self.quantized_keys and key not in self.producer:
                if id(tensor) not in self.input_quantized:
                    self.input_quantized[id(tensor)] = self._quantizer_of(key)(tensor)
                flat[position] = self.input_quantized[id(tensor)]
        return keras.tree.pack_sequence_as(arguments, flat)

    def _quantize_outputs(self, call, outputs):
        flat = keras.tree.flatten(outputs)
        fixed = fixed_range(call.layer) if self._output_role(call) == "fixed" else None
        for position, key in enumerate(call.outputs[: len(flat)]):
            if key in self.quantized_keys:
                flat[position] = self._quantizer_of(key)(flat[position])
            elif fixed is not None:
                flat[position] = FixedRangeQuantizer(*fixed)(flat[position])
        return keras.tree.pack_sequence_as(outputs, flat)

    def _quantizer_of(self, key):
        group = self.group(key)
        if group not in self.quantizers:
            self.quantizers[group] = self._new_quantizer()
        return self.quantizers[group]

    def _new_quantizer(self):
        self.quantizer_count += 1
        return ActivationQuantizer()

    def _standalone_batchnorm(self, batchnorm, inputs):
        """``batchnorm`` as TFLite runs it, a MUL and an ADD, with a range between them (else both stay float)."""
        gamma, beta, mean, variance = _batchnorm_parameters(batchnorm)
        scale = gamma / np.sqrt(variance + batchnorm.epsilon)
        scaled = WithWeights(PerChannel("mul", name=f"{batchnorm.name}_scale"), [scale])(inputs)
        return WithWeights(PerChannel("add", name=f"{batchnorm.name}_shift"), [beta - mean * scale])(
            self._new_quantizer()(scaled))

    def _kernel_layer(self, layer, inputs):
        """The fake-quantized twin of a Conv/Dense/SeparableConv; a non-fusable activation after a range."""
        fused = activation_name(layer) in ("linear", *FUSED_ACTIVATIONS)
        batchnorm = self.fold_into.get(id(layer))
        bits = 8 if layer.name in self.eight_bit_layers else self.weight_bits
        if type(layer) is keras.layers.SeparableConv2D:
            outputs = _separable(layer, inputs, batchnorm, fused, self._new_quantizer(), bits)
        else:
            outputs = _quantized_copy(layer, batchnorm, fused, bits)(inputs)
        if fused:
            return outputs
        outputs = self._new_quantizer()(outputs)  # the pre-activation tensor, e.g. logits before softmax
        return keras.layers.Activation(layer.activation, name=f"{layer.name}_activation")(outputs)


def _groups(same_scale_calls):
    """``group(key)``: a representative key shared by all tensors tied by same-scale ops (union-find)."""
    parent = {}

    def find(key):
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for call in same_scale_calls:
        keys = [*call.inputs, *call.outputs]
        for key in keys[1:]:
            parent[find(key)] = find(keys[0])
    return find


def _quantized_copy(layer, batchnorm, keep_activation: bool, weight_bits: int = 8):
    """The fake-quantized twin of a Conv/Dense layer, with ``batchnorm`` folded in (depthwise kernels: 8 bits)."""
    config = layer.get_config()
    config.update(use_bias=True, activation=config["activation"] if keep_activation else "linear",
                  folded=batchnorm is not None)
    if type(layer) is not keras.layers.DepthwiseConv2D:
        config["weight_bits"] = weight_bits
    twin = QUANT_TWINS[type(layer)].from_config(config)
    kernel, bias = layer.get_weights()[0], (layer.get_weights()[1] if layer.use_bias else None)
    kernel_variable = layer.weights[0]

    def call(inputs):
        outputs = twin(inputs)
        folded_bias, *factor = _fold(output_channels(kernel.shape, layer), bias, batchnorm)
        twin.set_weights([kernel, folded_bias, *factor])
        _carry_constraint(kernel_variable, twin)
        return outputs

    return call


def _fold(out_shape: tuple, bias, batchnorm) -> list:
    """``[bias]`` folding ``batchnorm`` in, and its per-output-channel kernel factor: ``[bias, factor]``
    (no ``batchnorm``: ``[bias]``)."""
    bias = np.zeros(int(np.prod(out_shape)), np.float32) if bias is None else bias
    if batchnorm is None:
        return [bias]
    gamma, beta, mean, variance = _batchnorm_parameters(batchnorm)
    scale = gamma / np.sqrt(variance + batchnorm.epsilon)
    return [(bias - mean) * scale + beta, scale.reshape(out_shape)]


def _batchnorm_parameters(batchnorm):
    values = dict(zip([w.path.split("/")[-1] for w in batchnorm.weights], batchnorm.get_weights()))
    size = len(values["moving_mean"])
    return (values.get("gamma", np.ones(size, np.float32)), values.get("beta", np.zeros(size, np.float32)),
            values["moving_mean"], values["moving_variance"])


def _carry_constraint(variable, twin):
    """Move a pruning mask or cluster constraint from the original kernel to its twin (the same values)."""
    if variable.constraint is not None:
        layer_kernels(twin)[0].set_constraint(copied_constraint(variable.constraint))


def _separable(layer, inputs, batchnorm, keep_activation: bool, hidden_range, weight_bits: int = 8):
    """SeparableConv2D as TFLite runs it: depthwise, a range (``hidden_range``), then a 1x1 convolution."""
    config = layer.get_config()
    depthwise = keras.layers.DepthwiseConv2D(
        config["kernel_size"], strides=config["strides"], padding=config["padding"],
        depth_multiplier=config["depth_multiplier"], dilation_rate=config["dilation_rate"], use_bias=False,
        name=f"{layer.name}_depthwise",
    )
    pointwise = keras.layers.Conv2D(config["filters"], 1, use_bias=config["use_bias"],
                                    activation=config["activation"], name=f"{layer.name}_pointwise")
    depthwise.build(inputs.shape)
    pointwise.build((*inputs.shape[:-1], inputs.shape[-1] * config["depth_multiplier"]))
    weights = layer.get_weights()
    depthwise.set_weights([weights[0]])
    pointwise.set_weights(weights[1:])
    for part, variable in ((depthwise, layer.depthwise_kernel), (pointwise, layer.pointwise_kernel)):
        getattr(part, "kernel").constraint = variable.constraint
    hidden = hidden_range(_quantized_copy(depthwise, None, True)(inputs))
    return _quantized_copy(pointwise, batchnorm, keep_activation, weight_bits)(hidden)
