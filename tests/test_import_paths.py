"""Every import path users were shown keeps working after the package was split into subpackages."""

import importlib

import pytest

import csoftmax


@pytest.mark.parametrize("name", csoftmax.__all__)
def test_every_public_name_is_importable_from_the_top(name):
    assert getattr(csoftmax, name) is not None


def test_the_earlier_module_paths_are_the_new_modules():
    from csoftmax.data import FASHION_MNIST_LABELS, IMAGE_SIZE, load_data_fashion_mnist, load_fashion_mnist
    from csoftmax.model import PROGRESS_STEPS, SoftmaxRegression
    from csoftmax.models import softmax_regression

    assert SoftmaxRegression is csoftmax.SoftmaxRegression is softmax_regression.SoftmaxRegression
    assert PROGRESS_STEPS == softmax_regression.PROGRESS_STEPS
    assert load_fashion_mnist is csoftmax.load_fashion_mnist
    assert load_data_fashion_mnist is csoftmax.load_data_fashion_mnist
    assert len(FASHION_MNIST_LABELS) == 10 and IMAGE_SIZE == 28


@pytest.mark.parametrize("name", importlib.import_module("csoftmax.d2l").__all__)
def test_the_books_names_stay_under_d2l(name):
    from csoftmax import d2l

    assert getattr(d2l, name) is not None


def test_the_sample_is_package_data_inside_the_data_subpackage():
    from csoftmax.data._sample import SAMPLE_DIR, read_manifest

    assert SAMPLE_DIR.parent.name == "data" and SAMPLE_DIR.name == "sample"
    assert read_manifest()  # the manifest and the files it names were installed with the package
