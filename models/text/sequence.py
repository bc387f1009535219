"""Sequence modelling stage of clovaai `modules/sequence_modeling.py`."""
import torch
from torch import nn


class BidirectionalLSTM(nn.Module):
    """One BiLSTM followed by a linear projection: B x T x input_size -> B x T x output_size."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int):
        super().__init__()
        self.rnn = nn.LSTM(input_size, hidden_size, bidirectional=True, batch_first=True)
        self.linear = nn.Linear(hidden_size * 2, output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        recurrent, _ = self.rnn(x)
        return self.linear(recurrent)
