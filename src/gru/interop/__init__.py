"""Weights in and out of other frameworks: pure conversions over one gate layout.

layout.py        the gate-order table; every framework's packing ↔ gru's (Keras, ONNX)
torch.py         torch.nn.GRU / GRUCell ↔ gru.GRU / GRUCell
keras.py         Keras layers and models ↔ gru.GRU and PyTorch modules (from_keras,
                 to_keras_weights, save_keras, load_model)
keras_config.py  the Keras settings that convert exactly, and the configs written
keras_files.py   .keras, .weights.h5 and Keras 2 .h5 files, read and written
modules.py       GoBackwards, Recurrent, KerasModel: what converted models are made of
onnx.py          gru.GRU and KerasModel ↔ the ONNX GRU operator
onnx_graph.py    what an ONNX graph computes besides its GRU nodes (refused when read)
convert.py       a GRU from any of these files to any other, a whole Keras model to ONNX
                 (``gru convert``)
"""
