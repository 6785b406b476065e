"""The tutorials' low-level CNN on Fashion-MNIST: weights as explicit tensors, tf.nn-style ops (NHWC, HWIO
kernels, TensorFlow's SAME padding), a hand-written Adam loop. python examples/lowlevel_fashion.py [--limit N]"""

import argparse
import math

import torch
import torch.nn.functional as torch_f

import cnnlab
from cnnlab.nn import functional as tfnn

ap = argparse.ArgumentParser()
ap.add_argument("--epochs", type=int, default=1)
ap.add_argument("--limit", type=int, default=60000, help="train on the first N images")
args = ap.parse_args()
torch.manual_seed(0)


def glorot(*shape):  # Glorot-uniform, fans as Keras counts them (receptive field included)
    fan_in, fan_out = math.prod(shape[:-1]), math.prod(shape[:-2]) * shape[-1]
    return (torch.rand(shape) * 2 - 1).mul_(math.sqrt(6 / (fan_in + fan_out))).requires_grad_()


params = {"k1": glorot(3, 3, 1, 32), "k2": glorot(3, 3, 32, 64), "w3": glorot(7 * 7 * 64, 128), "w4": glorot(128, 10)}
params |= {f"b{i}": torch.zeros(n, requires_grad=True) for i, n in ((1, 32), (2, 64), (3, 128), (4, 10))}


def model(x):  # x: (N, 28, 28, 1) float NHWC, like tf.nn
    x = tfnn.max_pool2d(torch.relu(tfnn.conv2d(x, params["k1"], params["b1"], 1, "SAME")), 2, 2, "SAME")
    x = tfnn.max_pool2d(torch.relu(tfnn.conv2d(x, params["k2"], params["b2"], 1, "SAME")), 2, 2, "SAME")
    x = torch.relu(x.reshape(len(x), -1) @ params["w3"] + params["b3"])  # (N, 7*7*64), NHWC order
    return x @ params["w4"] + params["b4"]  # logits (N, 10)


ds = cnnlab.data.load("fashion-mnist")  # uint8 (N, 28, 28, 1)
x_train = torch.from_numpy(ds.train.x[: args.limit]).float() / 255
y_train = torch.from_numpy(ds.train.y[: args.limit])
m = {k: torch.zeros_like(p) for k, p in params.items()}  # Adam's first and second moments
v = {k: torch.zeros_like(p) for k, p in params.items()}
lr, beta1, beta2, step = 1e-3, 0.9, 0.999, 0
for epoch in range(1, args.epochs + 1):
    order = torch.randperm(len(x_train))
    for i in range(0, len(order), 64):
        idx = order[i : i + 64]
        loss = torch_f.cross_entropy(model(x_train[idx]), y_train[idx])
        grads = torch.autograd.grad(loss, list(params.values()))
        step += 1
        with torch.no_grad():
            for (k, p), g in zip(params.items(), grads, strict=True):
                m[k].mul_(beta1).add_(g, alpha=1 - beta1)
                v[k].mul_(beta2).addcmul_(g, g, value=1 - beta2)
                p -= lr * (m[k] / (1 - beta1**step)) / ((v[k] / (1 - beta2**step)).sqrt() + 1e-7)
    with torch.no_grad():
        test = torch.from_numpy(ds.test.x).float() / 255
        accuracy = (
            torch.cat([model(test[j : j + 1000]) for j in range(0, len(test), 1000)]).argmax(1).numpy() == ds.test.y
        ).mean()
    print(f"epoch {epoch}: last batch loss {loss.item():.4f}, test accuracy {accuracy:.4f}")
