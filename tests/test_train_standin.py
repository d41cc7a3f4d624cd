"""TEST-ONLY stand-ins for the SFT trainer: a tiny BAGEL-shaped model and a synthetic resumable batch stream.

They let the trainer's loop, checkpointing, EMA, schedule, NaN guard and FSDP2 be proven on CPU in seconds.
The stand-in mirrors what the trainer relies on: BAGEL's parameter names (for freezing), block ModuleLists (for
FSDP units), ``forward_train(batch) -> (.ce [n_ce], .mse [n_mse, C])`` drawing flow noise from the torch RNG, and
the packed batch keys of ``data.packing`` (with ``padded_images`` to be encoded by a frozen image encoder).
The tests at the bottom check the stand-ins themselves.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from train.sft.components import TrainComponents

VOCAB, WIDTH, VIT_DIM, LATENT_DIM, IMAGE = 32, 16, 12, 12, 8
GROUPS = ("edit_cot", "understanding")


class MoTBlock(nn.Module):
    """Token-routed MLP pair (und / moe_gen) plus a per-sample mean so tokens of a sample interact."""

    def __init__(self) -> None:
        super().__init__()
        self.mlp = nn.Linear(WIDTH, WIDTH)
        self.mlp_moe_gen = nn.Linear(WIDTH, WIDTH)

    def forward(self, x: torch.Tensor, is_gen: torch.Tensor, sample_ids: torch.Tensor, n_samples: int) -> torch.Tensor:
        routed = torch.where(is_gen[:, None], self.mlp_moe_gen(x), self.mlp(x))
        mean = x.new_zeros(n_samples, WIDTH).index_add(0, sample_ids, x)
        mean = mean / torch.bincount(sample_ids, minlength=n_samples).clamp(min=1)[:, None].to(x.dtype)
        return x + torch.tanh(routed) + 0.1 * mean[sample_ids]


class VitBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(VIT_DIM, VIT_DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.tanh(self.fc(x))


class StandInBagel(nn.Module):
    def __init__(self, llm_layers: int = 2, vit_layers: int = 2, seed: int = 0) -> None:
        super().__init__()
        lm = nn.Module()
        lm.model = nn.Module()
        lm.model.embed_tokens = nn.Embedding(VOCAB, WIDTH)
        lm.model.layers = nn.ModuleList(MoTBlock() for _ in range(llm_layers))
        lm.model.norm = nn.LayerNorm(WIDTH)
        lm.model.norm_moe_gen = nn.LayerNorm(WIDTH)
        lm.lm_head = nn.Linear(WIDTH, VOCAB)
        self.language_model = lm
        vit = nn.Module()
        vit.vision_model = nn.Module()
        vit.vision_model.encoder = nn.Module()
        vit.vision_model.encoder.layers = nn.ModuleList(VitBlock() for _ in range(vit_layers))
        self.vit_model = vit
        self.connector = nn.Linear(VIT_DIM, WIDTH)
        self.vae2llm = nn.Linear(LATENT_DIM, WIDTH)
        self.llm2vae = nn.Linear(WIDTH, LATENT_DIM)
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=generator) * 0.3)

    def forward_train(self, batch: dict[str, Any]) -> SimpleNamespace:
        length, dtype = int(batch["sequence_length"]), self.vae2llm.weight.dtype
        x = self.vae2llm.weight.new_zeros(length, WIDTH)
        x = x.index_copy(0, batch["packed_text_indexes"], self.language_model.model.embed_tokens(batch["packed_text_ids"]))
        vit = batch["packed_vit_tokens"].to(dtype)
        for block in self.vit_model.vision_model.encoder.layers:
            vit = block(vit)
        x = x.index_copy(0, batch["packed_vit_token_indexes"], self.connector(vit))
        x0 = batch["padded_latent"].to(dtype).flatten(2).transpose(1, 2).reshape(-1, LATENT_DIM)
        noise = batch["noise"].to(dtype) if "noise" in batch else torch.randn_like(x0)
        t = torch.sigmoid(batch["packed_timesteps"].to(dtype))[:, None]
        x = x.index_copy(0, batch["packed_vae_token_indexes"], self.vae2llm((1 - t) * x0 + t * noise))
        is_gen = torch.zeros(length, dtype=torch.bool, device=x.device)
        is_gen[batch["packed_vae_token_indexes"]] = True
        sample_ids, n_samples = batch["packed_sample_ids"], len(batch["sample_lens"])
        for layer in self.language_model.model.layers:
            x = layer(x, is_gen, sample_ids, n_samples)
        lm = self.language_model
        logits = lm.lm_head(lm.model.norm(x[batch["ce_loss_indexes"]]))
        ce = F.cross_entropy(logits.float(), batch["packed_label_ids"], reduction="none")
        vae_slot = torch.full((length,), -1, dtype=torch.long, device=x.device)
        vae_slot[batch["packed_vae_token_indexes"]] = torch.arange(x0.shape[0], device=x.device)
        picked = vae_slot[batch["mse_loss_indexes"]]
        prediction = self.llm2vae(lm.model.norm_moe_gen(x[batch["mse_loss_indexes"]]))
        mse = (prediction.float() - (noise - x0)[picked].float()) ** 2
        return SimpleNamespace(ce=ce, mse=mse)


def encode_images(images: torch.Tensor) -> torch.Tensor:
    """Stand-in frozen 'VAE': 2x2 average pool, then 2x2 patches as 12-dim latent tokens (row-major)."""
    pooled = F.avg_pool2d(images, 2)  # [n, 3, 4, 4]
    n = pooled.shape[0]
    return pooled.reshape(n, 3, 2, 2, 2, 2).permute(0, 2, 4, 3, 5, 1).reshape(n, LATENT_DIM, 2, 2)


def synthetic_batch(index: int, seed: int, samples: int = 2) -> dict[str, Any]:
    """Packed batch ``index`` of the stream: per sample ViT image (4 tokens), clean + noised image (4 tokens each),
    text with CE. Deterministic in (seed, index)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + index)
    b: dict[str, list] = {k: [] for k in ("text_ids", "text_idx", "labels", "ce_idx", "vit_idx", "vae_idx", "mse_idx",
                                          "timesteps", "sample_lens", "split_lens", "modes", "names")}
    vit_tokens, images, pos = [], [], 0
    for s in range(samples):
        start = pos
        b["vit_idx"] += range(pos, pos + 4)
        vit_tokens.append(torch.randn(4, VIT_DIM, generator=g))
        b["split_lens"].append(4), b["modes"].append("full")
        pos += 4
        images.append(torch.rand(3, IMAGE, IMAGE, generator=g) * 2 - 1)
        b["vae_idx"] += range(pos, pos + 4)
        b["timesteps"] += [float("-inf")] * 4
        b["split_lens"].append(4), b["modes"].append("full")
        pos += 4
        n_text = int(torch.randint(3, 7, (1,), generator=g))
        first = int(torch.randint(0, VOCAB, (1,), generator=g))
        ids = [(first + 3 * k) % VOCAB for k in range(n_text + 1)]  # learnable: each token predicts the next
        b["text_ids"] += ids
        b["text_idx"] += range(pos, pos + n_text + 1)
        b["ce_idx"] += range(pos, pos + n_text)
        b["labels"] += ids[1:]
        b["split_lens"].append(n_text + 1), b["modes"].append("causal")
        pos += n_text + 1
        images.append(torch.rand(3, IMAGE, IMAGE, generator=g) * 2 - 1)
        b["vae_idx"] += range(pos, pos + 4)
        b["mse_idx"] += range(pos, pos + 4)
        b["timesteps"] += [float(torch.randn(1, generator=g))] * 4
        b["split_lens"].append(4), b["modes"].append("noise")
        pos += 4
        b["sample_lens"].append(pos - start)
        b["names"].append(GROUPS[int(torch.randint(0, 2, (1,), generator=g))])
    long = lambda v: torch.tensor(v, dtype=torch.long)  # noqa: E731
    return {
        "sequence_length": pos, "sample_lens": b["sample_lens"], "split_lens": b["split_lens"],
        "attn_modes": b["modes"], "packed_text_ids": long(b["text_ids"]), "packed_text_indexes": long(b["text_idx"]),
        "packed_vit_tokens": torch.cat(vit_tokens), "packed_vit_token_indexes": long(b["vit_idx"]),
        "vit_token_seqlens": long([4] * samples), "padded_images": torch.stack(images),
        "packed_vae_token_indexes": long(b["vae_idx"]), "packed_timesteps": torch.tensor(b["timesteps"]),
        "mse_loss_indexes": long(b["mse_idx"]), "packed_label_ids": long(b["labels"]),
        "ce_loss_indexes": long(b["ce_idx"]), "dataset_name": b["names"],
        "packed_sample_ids": torch.repeat_interleave(torch.arange(samples), long(b["sample_lens"])),
    }


class SyntheticStream:
    """Endless, rank-sharded stream: rank r's n-th batch is global batch n * world + r; the state is n."""

    def __init__(self, seed: int = 7, rank: int = 0, world_size: int = 1, with_noise: bool = False) -> None:
        self.seed, self.rank, self.world_size, self.with_noise = seed, rank, world_size, with_noise
        self.position = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            index = self.position * self.world_size + self.rank
            self.position += 1
            batch = synthetic_batch(index, self.seed)
            if self.with_noise:  # fixed flow noise, so runs on different rank counts can match exactly
                g = torch.Generator().manual_seed(10_000 + index)
                batch["noise"] = torch.randn(len(batch["packed_vae_token_indexes"]), LATENT_DIM, generator=g)
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.position = int(state["position"])


def standin_components(rank: int = 0, world_size: int = 1, with_noise: bool = False,
                       export: Any = None) -> TrainComponents:
    return TrainComponents(
        model=StandInBagel(), data=SyntheticStream(rank=rank, world_size=world_size, with_noise=with_noise),
        block_lists=("language_model.model.layers", "vit_model.vision_model.encoder.layers"),
        encode_images=encode_images, export=export)


def test_stream_resumes_at_its_saved_position() -> None:
    stream = SyntheticStream(rank=1, world_size=2)
    it = iter(stream)
    next(it)
    state = stream.state_dict()
    expected = next(it)
    again = SyntheticStream(rank=1, world_size=2)
    again.load_state_dict(state)
    got = next(iter(again))
    assert torch.equal(got["packed_text_ids"], expected["packed_text_ids"])
    assert torch.equal(got["padded_images"], expected["padded_images"])


def test_standin_batch_is_consistent_and_model_runs() -> None:
    batch = synthetic_batch(3, seed=1)
    assert sum(batch["sample_lens"]) == sum(batch["split_lens"]) == batch["sequence_length"]
    covered = torch.cat([batch["packed_text_indexes"], batch["packed_vit_token_indexes"],
                         batch["packed_vae_token_indexes"]]).sort().values
    assert torch.equal(covered, torch.arange(batch["sequence_length"]))
    batch["padded_latent"] = encode_images(batch.pop("padded_images"))
    out = StandInBagel().forward_train(batch)
    assert out.ce.shape == batch["ce_loss_indexes"].shape and out.mse.shape == (8, LATENT_DIM)
    assert torch.isfinite(out.ce).all() and torch.isfinite(out.mse).all()
