"""Word segmentation: the Segmenter interface, LTP (legacy perceptron and neural) and jieba."""
