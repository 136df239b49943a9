"""The chunked algorithms the PyTorch twins share, one file per algorithm; nothing here is a mixer.

The mechanisms in ``mixers/`` (layer, twin, kernels, cost model) call these on ``[B, T, H, *]`` tensors:

- ``chunkwise_gla``: chunkwise gated linear attention with key and/or value decay (RetNet, GLA, HGRN2,
  Mamba-2, LightNet's gated form, GSA's training passes); ``subchunk_gla``: its stable path under strong decays.
- ``fused_gsa``: GSA's two gated passes fused chunk by chunk, for inference.
- ``chunkwise_delta``: the chunkwise gated delta rule with per-channel decay (KDA, DeltaNet, Gated DeltaNet);
  ``delta_recurrence``: its chunk-to-chunk state recurrence.
- ``chunkwise_lightnet``: LightNet's additive attention in one frame per group; ``inplace_lightnet``: the same
  equations a chunk at a time, in place, for inference.
- ``blockwise_fox``: forgetting attention in query and key blocks with an online softmax (FoX).
- ``chunk_layout``, ``cumsum``, ``segments``: the chunk-major copy, the blocked cumulative sum, and running a
  layer over time segments with its state carried.

Nothing is imported here, so importing one core loads only what it needs.
"""
