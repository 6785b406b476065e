"""Grad-CAM computed by TensorFlow, for cnnlab's test of its own: run in .venv-peers.

``python keras_gradcam.py FILE.keras X.npz LAYER TARGET`` loads the file with Keras, takes the first image of
X.npz and prints one JSON object: the Grad-CAM heat map of class TARGET at LAYER (Selvaraju et al., 2017: the
ReLU of the layer's maps weighted by the spatial mean of the score's gradient), resized to the image with
``tf.image.resize`` (bilinear) and scaled to [0, 1]. The score is what cnnlab differentiates: the class's
probability for a softmax model, and for a one-unit logit z the two-class logits (-z/2, z/2).

LAYER may be ``outer/inner``, a layer of a nested model, which a Keras probe model cannot reach: the model
is then run layer by layer (a chain of top-level layers, as the transfer-learning tutorial's), and the nested
model through a probe of its own, all under one GradientTape.
"""

import json
import sys

import keras
import numpy as np
import tensorflow as tf

model = keras.saving.load_model(sys.argv[1])
x = tf.constant(np.load(sys.argv[2])["x"][:1])
layer, target = sys.argv[3], int(sys.argv[4])
outer, _, inner = layer.rpartition("/")
with tf.GradientTape() as tape:
    if not outer:
        maps, out = keras.Model(model.inputs, [model.get_layer(layer).output, model.output])(x, training=False)
    else:
        h = x
        for part in model.layers[1:]:
            if part.name == outer:
                maps, h = keras.Model(part.inputs, [part.get_layer(inner).output, part.output])(h, training=False)
            else:
                h = part(h, training=False)
        out = h
    score = out[:, target] if out.shape[-1] > 1 else (out[:, 0] / 2 if target == 1 else -out[:, 0] / 2)
grads = tape.gradient(score, maps)
weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
cam = tf.nn.relu(tf.reduce_sum(weights * maps, axis=-1, keepdims=True))
cam = tf.image.resize(cam, x.shape[1:3], method="bilinear")[0, :, :, 0].numpy()
cam = cam - cam.min()
print(json.dumps({"heatmap": (cam / cam.max() if cam.max() > 0 else cam).tolist()}))
