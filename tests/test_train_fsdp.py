"""FSDP2 on CPU: a 2-process (gloo) SFT run equals a 1-process run that sees the same batches by accumulation,
its sharded checkpoint reloads on one process (DCP resharding), and a shard damaged on one rank is found by the
ranks together (the newest checkpoint moved aside, both resume from the previous one)."""

from __future__ import annotations

import os
import shutil
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from test_train_sft_loop import tiny_config
from test_train_standin import standin_components
from train.common.distributed import init_distributed
from train.sft.loop import run_sft

STEPS = 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_rank_worker(rank: int, port: int, out_dir: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    info = init_distributed("cpu")
    parts = standin_components(rank=rank, world_size=2, with_noise=True)
    summary = run_sft(tiny_config(out_dir, train={"total_steps": STEPS}), parts, info)
    weights = {k: v.full_tensor() for k, v in parts.model.state_dict().items()}
    # A copy whose step-4 checkpoint has a bit flipped in the shard rank 1 wrote (and rank 1 verifies): both ranks
    # must agree to move it aside and resume from step 3.
    damaged_dir = out_dir + "_damaged"
    if rank == 0:
        shutil.copytree(out_dir, damaged_dir)
        shard = os.path.join(damaged_dir, "checkpoints", "step_00000004", "__1_0.distcp")
        data = bytearray(open(shard, "rb").read())
        data[len(data) // 2] ^= 0x01
        open(shard, "wb").write(bytes(data))
    dist.barrier()
    resumed = run_sft(tiny_config(damaged_dir, train={"total_steps": STEPS}),
                      standin_components(rank=rank, world_size=2, with_noise=True), info)
    if rank == 0:
        torch.save({"losses": summary.losses, "weights": weights, "resumed_losses": resumed.losses,
                    "resumed_start": resumed.start_step}, os.path.join(out_dir, "result.pt"))
    dist.barrier()  # leave together: the store host (rank 0) must not exit while a peer still talks to it
    dist.destroy_process_group()


def _weights(parts) -> dict[str, torch.Tensor]:
    return {k: v.full_tensor().clone() for k, v in parts.model.state_dict().items()}


def test_two_process_fsdp_matches_one_process(tmp_path) -> None:
    two_dir = str(tmp_path / "two")
    mp.spawn(_two_rank_worker, args=(_free_port(), two_dir), nprocs=2, join=True)
    two = torch.load(os.path.join(two_dir, "result.pt"))
    assert two["resumed_start"] == 3 and two["resumed_losses"][4] == two["losses"][4]
    assert os.path.isdir(os.path.join(two_dir + "_damaged", "checkpoints", "step_00000004.damaged-1"))

    torch.set_num_threads(1)
    info = init_distributed("cpu")
    assert info.world_size == 1
    one_parts = standin_components(with_noise=True)
    one_cfg = tiny_config(str(tmp_path / "one"), train={"total_steps": STEPS, "grad_accum_steps": 2})
    one = run_sft(one_cfg, one_parts, info)

    for step in range(1, STEPS + 1):
        assert abs(one.losses[step] - two["losses"][step]) <= 1e-5 * abs(two["losses"][step]), step
    one_weights = _weights(one_parts)
    for name, value in two["weights"].items():
        torch.testing.assert_close(one_weights[name], value, rtol=1e-5, atol=1e-6, msg=name)
    assert max((one_weights[n] - standin_components().model.state_dict()[n]).abs().max()
               for n in one_weights) > 1e-3  # training moved the weights

    # The 2-rank sharded checkpoint reloads on 1 rank (weights/optimizer/EMA reshard; data stream restarted).
    reload_cfg = tiny_config(two_dir, train={"total_steps": STEPS}, checkpoint={"restart_data_stream": True})
    reload_parts = standin_components(with_noise=True)
    summary = run_sft(reload_cfg, reload_parts, info)
    assert summary.start_step == STEPS
    reloaded = _weights(reload_parts)
    for name, value in two["weights"].items():
        assert torch.equal(reloaded[name], value), name
