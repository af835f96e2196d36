"""The chapter "Implementation of Softmax Regression from Scratch", as the book writes it, on csoftmax.

    python examples/chapter.py [--seed 0]

Every minibatch's gradient comes from the fused kernel through `l.sum().backward()`. Outside Jupyter
the training curves are written to ./csoftmax-figures/ (the script says where); in a notebook they
are drawn live.
"""

import argparse

from csoftmax import d2l

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--seed", type=int, default=0, help="seeds the initial weights and the shuffles")
seed = parser.parse_args().seed

d2l.manual_seed(seed)
batch_size = 256
train_iter, test_iter = d2l.load_data_fashion_mnist(batch_size, seed=seed)

num_inputs = 784
num_outputs = 10
W = d2l.normal(0, 0.01, size=(num_inputs, num_outputs), requires_grad=True)
b = d2l.zeros(num_outputs, requires_grad=True)


def net(X):
    return d2l.softmax(d2l.matmul(X.reshape((-1, W.shape[0])), W) + b)


loss = d2l.cross_entropy  # takes probabilities, as the chapter's does
lr = 0.1


def updater(batch_size):
    return d2l.sgd([W, b], lr, batch_size)


print(f"accuracy before training: {d2l.evaluate_accuracy(net, test_iter):.4f}")
num_epochs = 10
history = d2l.train_ch3(net, train_iter, test_iter, loss, num_epochs, updater, callback=print)
d2l.predict_ch3(net, test_iter)
