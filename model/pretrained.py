"""Pretrained frozen encoders from Hugging Face: the paper's ``f_speech`` (WavLM, wav2vec2, HuBERT, XLSR)
and ``f_text`` (BERT-large-uncased), by hub name or local folder, through ``from_pretrained``.

Speech (``HFSpeech``), selected as ``speech_encoder("hf:NAME_OR_PATH", layer=...)``:

- Frozen: ``eval()`` (no dropout, no SpecAugment masking), every parameter ``requires_grad=False``,
  run under ``torch.inference_mode``: the same waveform gives the same features on every call.
- Input: waveforms the caller normalised with the TRAINING set's mean and deviation (section 4.3 of
  the paper; ``model.dataset.waveform_stats``). The feature extractor's own per-utterance
  normalisation (``do_normalize``) is therefore not applied; ``AutoFeatureExtractor`` is read only for
  its sampling rate and whether the model takes an attention mask.
- Padding: models whose convolutional front end uses layer norm (``feat_extract_norm="layer"``:
  wav2vec2-large-lv60, XLSR, WavLM, HuBERT-large) take an attention mask and run batched; their
  valid frames do not depend on padding (up to float rounding). Group-norm front ends
  (``feat_extract_norm="group"``: wav2vec2-base, HuBERT-base) normalise each channel over the whole
  input, padding included, and Hugging Face feeds them no mask, so padding would change every frame:
  those are run one utterance at a time, unpadded, and their features never depend on the batch.
- Frames: ``frontend.conv_frames`` over the config's ``conv_kernel`` / ``conv_stride`` (wav2vec2's
  ``floor((T - 400) / 320) + 1`` for the standard stack), checked against the model's own
  ``_get_feat_extract_output_lengths`` when the encoder is built. Inputs shorter than the receptive
  field (400 samples) are zero-padded to it and give one frame.
- Output ``layer``: ``"last"`` -> ``last_hidden_state`` [B, M, D]; an int ``l`` -> ``hidden_states[l]``
  [B, M, D] (0: the projected convolutional features entering the transformer, ``num_hidden_layers``:
  the last layer); ``"all"`` -> every entry of ``hidden_states`` stacked frame-major, [B, M, L, D] with
  L = num_hidden_layers + 1. The last entry is always ``last_hidden_state``: for stable-layer-norm
  models (the large ones) transformers 4 returned it after the encoder's final layer norm, as here;
  transformers 5 returns that entry before the norm, so we replace it, and ``"last"``, ``"all"[..., -1, :]``
  and index ``num_hidden_layers`` are one tensor whatever the version. Frames first so that crops,
  padding and caching slice dimension 1 the same way whatever the output; the trainable softmax
  layer weights that sum the L layers belong to the SER model (``features.LayerWeights``), not to
  the frozen encoder.

Text (``HFText``), ``text_encoder("hf:NAME_OR_PATH")``: ``AutoTokenizer`` + ``AutoModel``, the last
hidden state of every token the tokenizer makes (special tokens included, so even an empty
transcript has N >= 1), truncated at the model's maximum length, attention mask for padding.

Loading (``quiet_loading``): transformers' and huggingface_hub's tqdm bars ("Loading weights", downloads)
are switched off while a model loads, since they would break into our commands' rich progress bars;
transformers' warnings (e.g. weights left newly initialised) and every error still show.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from model.frontend import SAMPLE_RATE, conv_frames, receptive_field

# Config entries that name or date a checkpoint rather than define it; left out of its fingerprint.
_VOLATILE = ("transformers_version", "_name_or_path", "_commit_hash", "name_or_path", "architectures")


def config_hash(config) -> str:
    """sha256 of a Hugging Face config's defining entries (stable across transformers versions)."""
    entries = {k: v for k, v in config.to_dict().items() if k not in _VOLATILE}
    return hashlib.sha256(json.dumps(entries, sort_keys=True, default=str).encode()).hexdigest()


def weights_hash(module: nn.Module) -> str:
    """blake2b over every tensor of a state dict in key order: tells two checkpoints of one config apart."""
    digest = hashlib.blake2b(digest_size=16)
    for key, tensor in module.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@contextmanager
def quiet_loading() -> Iterator[None]:
    """Hugging Face progress bars off inside the block, back to what they were after; log levels untouched."""
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars
    from transformers.utils import logging as hf_logging

    bars, hub_bars = hf_logging.is_progress_bar_enabled(), not are_progress_bars_disabled()
    hf_logging.disable_progress_bar()  # transformers' own bars and huggingface_hub's
    try:
        yield
    finally:
        if bars:
            hf_logging.enable_progress_bar()
        if not hub_bars:
            disable_progress_bars()


def freeze(module: nn.Module) -> nn.Module:
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module


def _takes_mask(source: str, config) -> bool:
    """Whether the model is meant to see an attention mask (layer-norm front ends); see the module docstring."""
    from transformers import AutoFeatureExtractor

    try:
        extractor = AutoFeatureExtractor.from_pretrained(source)
    except (OSError, ValueError, KeyError):  # no preprocessor_config.json: decide from the front end's norm
        return getattr(config, "feat_extract_norm", "layer") == "layer"
    rate = getattr(extractor, "sampling_rate", SAMPLE_RATE)
    if rate != SAMPLE_RATE:
        raise ValueError(f"{source} expects {rate} Hz audio; mixbench feeds {SAMPLE_RATE} Hz")
    return bool(getattr(extractor, "return_attention_mask", False))


class HFSpeech:
    """A frozen Hugging Face speech SSL model (see the module docstring)."""

    def __init__(self, source: str, layer: str | int = "last", device: str | torch.device = "cpu"):
        from transformers import AutoConfig, AutoModel

        with quiet_loading():
            config = AutoConfig.from_pretrained(source)
        if not hasattr(config, "conv_kernel") or not hasattr(config, "conv_stride"):
            raise ValueError(f"{source} is a {config.model_type} model, not a speech SSL model with a "
                             "convolutional front end (WavLM, wav2vec2, HuBERT, XLSR)")
        if getattr(config, "add_adapter", False):
            raise ValueError(f"{source} has an adapter after its encoder; use its pretrained SSL checkpoint")
        if isinstance(layer, int) and not 0 <= layer <= config.num_hidden_layers:
            raise ValueError(f"{source} has hidden states 0..{config.num_hidden_layers}; got layer {layer}")
        self.source, self.layer, self.device = source, layer, torch.device(device)
        with quiet_loading():
            self.model = freeze(AutoModel.from_pretrained(source)).to(self.device)
            self.takes_mask = _takes_mask(source, config)
        self.frame_kernels = tuple(int(k) for k in config.conv_kernel)
        self.frame_strides = tuple(int(s) for s in config.conv_stride)
        self.dim = int(config.hidden_size)
        self.layers = config.num_hidden_layers + 1 if layer == "all" else None
        self.name = f"hf:{source}" + ("" if layer == "last" else f"@{layer}")
        self.config_hash = config_hash(config)
        probe = torch.tensor([400, 401, 719, 720, 16_000, 88_000])
        theirs = self.model._get_feat_extract_output_lengths(probe).tolist()
        if theirs != [self.frames(int(n)) for n in probe]:
            raise ValueError(f"{source}: its front end's frame counts {theirs} differ from the conv formula")

    def frames(self, samples: int) -> int:
        return conv_frames(samples, self.frame_kernels, self.frame_strides)

    def describe(self) -> dict:
        return {"name": self.name, "source": self.source, "layer": self.layer, "dim": self.dim,
                "layers": self.layers, "frame_kernels": list(self.frame_kernels),
                "frame_strides": list(self.frame_strides), "config_hash": self.config_hash,
                "weights_hash": weights_hash(self.model), "attention_mask": self.takes_mask}

    @torch.inference_mode()
    def encode(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """waveforms [B, T] (zero-padded), lengths [B] -> [B, M, D] or [B, M, L, D] (zero past each end), frames [B]."""
        if waveforms.dim() != 2 or lengths.shape != waveforms.shape[:1]:
            raise ValueError(f"expected waveforms [B, T] and lengths [B]; got {tuple(waveforms.shape)} "
                             f"and {tuple(lengths.shape)}")
        frames = torch.tensor([self.frames(int(n)) for n in lengths], dtype=torch.long)
        if self.takes_mask:
            parts = [self._run(waveforms, lengths)]
        else:  # group norm: one utterance at a time, unpadded (module docstring)
            parts = [self._run(waveforms[b: b + 1, : int(n)], lengths[b: b + 1]) for b, n in enumerate(lengths)]
        M = int(frames.max())
        out = torch.zeros(len(lengths), M, *parts[0].shape[2:])
        row = 0
        for part in parts:
            out[row: row + len(part), : min(M, part.shape[1])] = part[:, :M]
            row += len(part)
        valid = torch.arange(M)[None, :] < frames[:, None]  # [B, M]
        return out * valid.view(*valid.shape, *([1] * (out.dim() - 2))), frames

    def _run(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """One forward pass -> [b, M, D] or [b, M, L, D] in float32 on the CPU."""
        field = receptive_field(self.frame_kernels, self.frame_strides)
        if waveforms.shape[1] < field:
            waveforms = nn.functional.pad(waveforms, (0, field - waveforms.shape[1]))
        x = waveforms.float().to(self.device)
        mask = None
        if self.takes_mask:
            mask = (torch.arange(x.shape[1], device=self.device)[None] < lengths.to(self.device)[:, None]).long()
        wants_all = self.layer != "last"
        output = self.model(x, attention_mask=mask, output_hidden_states=wants_all)
        if self.layer == "last":
            return output.last_hidden_state.float().cpu()
        # The last entry is last_hidden_state (see the module docstring on transformers 4 and 5).
        hidden = (*output.hidden_states[:-1], output.last_hidden_state)
        features = torch.stack(hidden, dim=2) if self.layer == "all" else hidden[self.layer]  # [b, M, L, D] / [b, M, D]
        return features.float().cpu()


class HFText:
    """A frozen Hugging Face text encoder: last hidden state per token (see the module docstring)."""

    def __init__(self, source: str, device: str | torch.device = "cpu"):
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        with quiet_loading():
            config = AutoConfig.from_pretrained(source)
        self.source, self.device = source, torch.device(device)
        with quiet_loading():
            self.tokenizer = AutoTokenizer.from_pretrained(source)
            self.model = freeze(AutoModel.from_pretrained(source)).to(self.device)
        self.dim = int(config.hidden_size)
        self.name = f"hf:{source}"
        self.config_hash = config_hash(config)
        self.max_length = min(int(getattr(config, "max_position_embeddings", 512)), 512)

    def describe(self) -> dict:
        return {"name": self.name, "source": self.source, "dim": self.dim, "config_hash": self.config_hash,
                "weights_hash": weights_hash(self.model), "max_length": self.max_length}

    @torch.inference_mode()
    def encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """texts -> [B, N, D] (zero past each text's tokens), token lengths [B]."""
        tokens = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                                return_tensors="pt")
        mask = tokens["attention_mask"]
        output = self.model(**{k: v.to(self.device) for k, v in tokens.items()})
        # [B, N, D]
        features = output.last_hidden_state.float().cpu()
        return features * mask[..., None], mask.sum(1)
