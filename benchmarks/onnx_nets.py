"""Reference networks built as ONNX graphs with ``onnx.helper`` (nothing downloaded).

Weights are initializers that carry shapes and element types but point at external data that does
not exist (``hwsim.workload_from_onnx`` loads graphs without external data: only shapes matter), so
even VGG-A builds in milliseconds. NCHW layout; BatchNormalization after convolutions as the
originals have it (the importer folds it).

MLPerf Tiny v0.5+ reference models (mlcommons/tiny, benchmark/training/*):
``ds_cnn`` (keyword spotting, 49x10 MFCC input), ``mobilenet_v1_025`` (visual wake words, 96x96x3),
``resnet8`` (CIFAR-10 image classification), ``fc_autoencoder`` (ToyADMOS anomaly detection, 640
inputs). ImageNet models: ``resnet50`` (v1.5: stride in the 3x3 conv, as MLPerf Inference uses),
``alexnet_owt`` (Krizhevsky's "one weird trick" AlexNet, as convnet-benchmarks times it),
``vgg_a`` (VGG model A, 11 weight layers), ``googlenet`` (Inception v1, no LRN, no auxiliary heads).
"""
from __future__ import annotations

import itertools

import onnx
from onnx import TensorProto, helper


class GraphBuilder:
    """Append nodes to a graph; every helper returns the name of its output tensor."""

    def __init__(self, name: str, input_shape: tuple[int, ...], elem=TensorProto.FLOAT) -> None:
        self.name, self.elem = name, elem
        self.nodes, self.inits = [], []
        self.inputs = [helper.make_tensor_value_info("input", elem, ["N", *input_shape])]
        self._n = 0

    def _id(self, kind: str) -> str:
        self._n += 1
        return f"{kind}{self._n}"

    def weight(self, name: str, dims, elem=None) -> str:
        t = TensorProto(name=name, data_type=elem or self.elem, dims=list(dims))
        t.data_location = TensorProto.EXTERNAL
        entry = t.external_data.add()
        entry.key, entry.value = "location", "absent.bin"
        self.inits.append(t)
        return name

    def node(self, op: str, inputs, name: str | None = None, **attrs) -> str:
        name = name or self._id(op.lower())
        self.nodes.append(helper.make_node(op, list(inputs), [name], name=name, **attrs))
        return name

    def conv(self, x: str, cin: int, cout: int, k, stride=1, pads=None, group: int = 1, bn: bool = True,
             relu: bool = True) -> str:
        kh, kw = (k, k) if isinstance(k, int) else k
        sh, sw = (stride, stride) if isinstance(stride, int) else stride
        if pads is None:
            pads = [(kh - 1) // 2, (kw - 1) // 2, kh // 2, kw // 2]
        name = self._id("conv")
        w = self.weight(f"{name}.w", (cout, cin // group, kh, kw))
        y = self.node("Conv", [x, w], name, kernel_shape=[kh, kw], strides=[sh, sw], pads=list(pads),
                      group=group)
        if bn:
            params = [self.weight(f"{name}.bn.{p}", (cout,)) for p in ("scale", "bias", "mean", "var")]
            y = self.node("BatchNormalization", [y, *params], f"{name}.bn")
        return self.node("Relu", [y]) if relu else y

    def dense(self, x: str, fin: int, fout: int, relu: bool = False) -> str:
        name = self._id("fc")
        w, b = self.weight(f"{name}.w", (fout, fin)), self.weight(f"{name}.b", (fout,))
        y = self.node("Gemm", [x, w, b], name, transB=1)
        return self.node("Relu", [y]) if relu else y

    def pool(self, x: str, op: str, k: int, stride: int, pads=(0, 0, 0, 0)) -> str:
        return self.node(op, [x], kernel_shape=[k, k], strides=[stride, stride], pads=list(pads))

    def model(self, out: str) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, self.name, self.inputs,
                                  [helper.make_tensor_value_info(out, self.elem, None)], self.inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def ds_cnn() -> onnx.ModelProto:
    """MLPerf Tiny KWS DS-CNN: conv 10x4 /2 (64) then 4 x (depthwise 3x3 + pointwise 64), avg pool, fc 12."""
    g = GraphBuilder("ds_cnn", (1, 49, 10))
    x = g.conv("input", 1, 64, (10, 4), stride=2, pads=[4, 1, 5, 1])
    for _ in range(4):
        x = g.conv(x, 64, 64, 3, group=64)
        x = g.conv(x, 64, 64, 1)
    x = g.node("AveragePool", [x], kernel_shape=[25, 5], strides=[25, 5])
    x = g.node("Flatten", [x])
    return g.model(g.node("Softmax", [g.dense(x, 64, 12)]))


def mobilenet_v1_025() -> onnx.ModelProto:
    """MLPerf Tiny VWW MobileNetV1 (alpha 0.25, 96x96x3 input, 2 classes)."""
    g = GraphBuilder("mobilenet_v1_025", (3, 96, 96))
    x = g.conv("input", 3, 8, 3, stride=2, pads=[0, 0, 1, 1])
    cin = 8
    for cout, stride in ((16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2), *[(128, 1)] * 5, (256, 2),
                         (256, 1)):
        x = g.conv(x, cin, cin, 3, stride=stride, group=cin, pads=[0, 0, 1, 1] if stride == 2 else None)
        x = g.conv(x, cin, cout, 1)
        cin = cout
    x = g.node("Flatten", [g.node("GlobalAveragePool", [x])])
    return g.model(g.node("Softmax", [g.dense(x, 256, 2)]))


def resnet8() -> onnx.ModelProto:
    """MLPerf Tiny IC ResNet-8 (CIFAR-10): 3 stacks of one residual block (16, 32, 64 channels)."""
    g = GraphBuilder("resnet8", (3, 32, 32))
    x = g.conv("input", 3, 16, 3)
    cin = 16
    for cout, stride in ((16, 1), (32, 2), (64, 2)):
        pads = [0, 0, 1, 1] if stride == 2 else None
        y = g.conv(x, cin, cout, 3, stride=stride, pads=pads)
        y = g.conv(y, cout, cout, 3, relu=False)
        short = x if stride == 1 else g.conv(x, cin, cout, 1, stride=stride, pads=[0, 0, 0, 0], bn=False,
                                             relu=False)
        x = g.node("Relu", [g.node("Add", [y, short])])
        cin = cout
    x = g.node("Flatten", [g.node("AveragePool", [x], kernel_shape=[8, 8], strides=[8, 8])])
    return g.model(g.node("Softmax", [g.dense(x, 64, 10)]))


def fc_autoencoder() -> onnx.ModelProto:
    """MLPerf Tiny AD: dense 640-128-128-128-128-8-128-128-128-128-640 with BN + ReLU inside."""
    g = GraphBuilder("fc_autoencoder", (640,))
    widths = [640, 128, 128, 128, 128, 8, 128, 128, 128, 128, 640]
    x = "input"
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        x = g.dense(x, a, b)
        if i < len(widths) - 2:
            bn = [g.weight(f"bn{i}.{p}", (b,)) for p in ("scale", "bias", "mean", "var")]
            x = g.node("Relu", [g.node("BatchNormalization", [x, *bn])])
    return g.model(x)


def _bottleneck(g: GraphBuilder, x: str, cin: int, mid: int, stride: int) -> tuple[str, int]:
    cout = 4 * mid
    y = g.conv(x, cin, mid, 1)
    y = g.conv(y, mid, mid, 3, stride=stride)
    y = g.conv(y, mid, cout, 1, relu=False)
    short = x if stride == 1 and cin == cout else g.conv(x, cin, cout, 1, stride=stride, pads=[0, 0, 0, 0],
                                                        relu=False)
    return g.node("Relu", [g.node("Add", [y, short])]), cout


def resnet50() -> onnx.ModelProto:
    """ResNet-50 v1.5 (224x224x3, 1000 classes)."""
    g = GraphBuilder("resnet50", (3, 224, 224))
    x = g.pool(g.conv("input", 3, 64, 7, stride=2), "MaxPool", 3, 2, (1, 1, 1, 1))
    cin = 64
    for mid, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for b in range(blocks):
            x, cin = _bottleneck(g, x, cin, mid, stride if b == 0 else 1)
    x = g.node("Flatten", [g.node("GlobalAveragePool", [x])])
    return g.model(g.dense(x, 2048, 1000))


def alexnet_owt() -> onnx.ModelProto:
    """AlexNet, one-weird-trick variant (64-192-384-256-256 channels), no LRN, as convnet-benchmarks."""
    g = GraphBuilder("alexnet_owt", (3, 224, 224))
    x = g.conv("input", 3, 64, 11, stride=4, pads=[2, 2, 2, 2], bn=False)
    x = g.pool(x, "MaxPool", 3, 2)
    x = g.pool(g.conv(x, 64, 192, 5, bn=False), "MaxPool", 3, 2)
    x = g.conv(x, 192, 384, 3, bn=False)
    x = g.conv(x, 384, 256, 3, bn=False)
    x = g.pool(g.conv(x, 256, 256, 3, bn=False), "MaxPool", 3, 2)
    x = g.node("Flatten", [x])
    x = g.dense(g.dense(x, 256 * 6 * 6, 4096, relu=True), 4096, 4096, relu=True)
    return g.model(g.dense(x, 4096, 1000))


def vgg_a() -> onnx.ModelProto:
    """VGG model A (VGG-11): 8 conv 3x3 + 3 fc."""
    g = GraphBuilder("vgg_a", (3, 224, 224))
    x, cin = "input", 3
    for stage in ((64,), (128,), (256, 256), (512, 512), (512, 512)):
        for cout in stage:
            x, cin = g.conv(x, cin, cout, 3, bn=False), cout
        x = g.pool(x, "MaxPool", 2, 2)
    x = g.node("Flatten", [x])
    x = g.dense(g.dense(x, 512 * 7 * 7, 4096, relu=True), 4096, 4096, relu=True)
    return g.model(g.dense(x, 4096, 1000))


_INCEPTION = (  # (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj) of GoogLeNet's inception blocks
    (64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64), "pool",
    (192, 96, 208, 16, 48, 64), (160, 112, 224, 24, 64, 64), (128, 128, 256, 24, 64, 64),
    (112, 144, 288, 32, 64, 64), (256, 160, 320, 32, 128, 128), "pool",
    (256, 160, 320, 32, 128, 128), (384, 192, 384, 48, 128, 128),
)


def googlenet() -> onnx.ModelProto:
    """GoogLeNet (Inception v1), without LRN and auxiliary classifiers."""
    g = GraphBuilder("googlenet", (3, 224, 224))
    x = g.pool(g.conv("input", 3, 64, 7, stride=2, bn=False), "MaxPool", 3, 2, (0, 0, 1, 1))
    x = g.conv(g.conv(x, 64, 64, 1, bn=False), 64, 192, 3, bn=False)
    x, cin = g.pool(x, "MaxPool", 3, 2, (0, 0, 1, 1)), 192
    for spec in _INCEPTION:
        if spec == "pool":
            x = g.pool(x, "MaxPool", 3, 2, (0, 0, 1, 1))
            continue
        c1, r3, c3, r5, c5, pp = spec
        b1 = g.conv(x, cin, c1, 1, bn=False)
        b2 = g.conv(g.conv(x, cin, r3, 1, bn=False), r3, c3, 3, bn=False)
        b3 = g.conv(g.conv(x, cin, r5, 1, bn=False), r5, c5, 5, bn=False)
        b4 = g.conv(g.pool(x, "MaxPool", 3, 1, (1, 1, 1, 1)), cin, pp, 1, bn=False)
        x, cin = g.node("Concat", [b1, b2, b3, b4], axis=1), c1 + c3 + c5 + pp
    x = g.node("Flatten", [g.node("GlobalAveragePool", [x])])
    return g.model(g.dense(x, 1024, 1000))


MLPERF_TINY = {"ds_cnn": ds_cnn, "mobilenet_v1_025": mobilenet_v1_025, "resnet8": resnet8,
               "fc_autoencoder": fc_autoencoder}
IMAGENET = {"resnet50": resnet50, "alexnet_owt": alexnet_owt, "vgg_a": vgg_a, "googlenet": googlenet}
