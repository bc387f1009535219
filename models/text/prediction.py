"""Attention decoder of clovaai `modules/prediction.py` (the CTC head is a plain `nn.Linear`, see `model.py`)."""
import torch
import torch.nn.functional as F
from torch import nn


class AttentionCell(nn.Module):
    """Bahdanau attention over the encoder states, then an LSTMCell fed [context, one-hot(previous char)]."""

    def __init__(self, input_size: int, hidden_size: int, num_embeddings: int):
        super().__init__()
        self.i2h = nn.Linear(input_size, hidden_size, bias=False)
        self.h2h = nn.Linear(hidden_size, hidden_size)
        self.score = nn.Linear(hidden_size, 1, bias=False)
        self.rnn = nn.LSTMCell(input_size + num_embeddings, hidden_size)

    def forward(self, prev_hidden, batch_H, char_onehots):
        emission = self.score(torch.tanh(self.i2h(batch_H) + self.h2h(prev_hidden[0]).unsqueeze(1)))
        alpha = F.softmax(emission, dim=1)  # B x T x 1
        context = torch.bmm(alpha.permute(0, 2, 1), batch_H).squeeze(1)
        return self.rnn(torch.cat([context, char_onehots], 1), prev_hidden), alpha


class Attention(nn.Module):
    """Decodes batch_max_length + 1 steps (the last one for [s]); logits B x steps x num_classes.

    Training uses teacher forcing on `text` (B x steps, text[:, 0] = [GO] = 0); inference feeds back the greedy
    choice starting from [GO], as clovaai does with `is_train=False`.
    """

    def __init__(self, input_size: int, hidden_size: int, num_classes: int):
        super().__init__()
        self.attention_cell = AttentionCell(input_size, hidden_size, num_classes)
        self.hidden_size = hidden_size
        self.num_classes = num_classes
        self.generator = nn.Linear(hidden_size, num_classes)

    def forward(self, batch_H: torch.Tensor, text: torch.Tensor | None = None, is_train: bool = False,
                batch_max_length: int = 25) -> torch.Tensor:
        batch_size = batch_H.size(0)
        num_steps = batch_max_length + 1
        hidden = (batch_H.new_zeros(batch_size, self.hidden_size), batch_H.new_zeros(batch_size, self.hidden_size))
        if is_train:
            if text is None:
                raise ValueError("teacher forcing needs the encoded target text")
            outputs = []
            for i in range(num_steps):
                onehot = F.one_hot(text[:, i], self.num_classes).to(batch_H.dtype)
                hidden, _ = self.attention_cell(hidden, batch_H, onehot)
                outputs.append(hidden[0])
            return self.generator(torch.stack(outputs, dim=1))
        targets = torch.zeros(batch_size, dtype=torch.long, device=batch_H.device)  # [GO]
        probs = []
        for _ in range(num_steps):
            onehot = F.one_hot(targets, self.num_classes).to(batch_H.dtype)
            hidden, _ = self.attention_cell(hidden, batch_H, onehot)
            step = self.generator(hidden[0])
            probs.append(step)
            targets = step.argmax(1)
        return torch.stack(probs, dim=1)
