"""Data-parallel training across processes (torchrun / `accelerate launch`): the few collective operations
the curriculum runner and the warm-start loop need, and no-ops when the run is a single process.

A launcher starts one process per device and sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT;
`init_from_env` joins the process group from them (NCCL for CUDA, gloo for CPU). Without WORLD_SIZE > 1
nothing is initialised and every helper below returns at once, so a single-process run is exactly what it
was before.

Gradients are averaged explicitly (`average_gradients`) rather than with DistributedDataParallel: the MRL
update and the warm-start stages call several sub-modules per loss (memory replay, encoder, decoder,
critic, heads), not one `forward`, and some weights get no gradient on some ranks (frozen groups, MoE experts
no token was routed to). A flat all-reduce at the point just before clipping treats a missing gradient as
zeros and keeps a weight gradient-free only when it has none on every rank, so every rank takes the same
step and the optimizer states stay identical.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import torch

from rxmrl.errors import ConfigError, TrainingError
from rxmrl.seeding import derive_seed

T = TypeVar("T")

# Gradients are all-reduced in flat buckets of at most this many elements (bounded extra memory).
BUCKET_ELEMENTS = 1 << 24
# Set to 1 to all-gather a checksum of the weights after every update and fail on any difference.
CHECK_SYNC_ENV = "RXMRL_CHECK_SYNC"
_sync_checks = 0  # how many checks passed in this process (reported by `shutdown`)


def _active() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def rank() -> int:
    return torch.distributed.get_rank() if _active() else 0


def world_size() -> int:
    return torch.distributed.get_world_size() if _active() else 1


def is_main() -> bool:
    """True on the process that writes checkpoints, logs and the progress bar (rank 0)."""
    return rank() == 0


def init_from_env(device: str = "auto") -> bool:
    """Join the process group a launcher describes in the environment; True when distributed.

    `device` is the run's device setting: `cuda`/`auto` with CUDA available selects NCCL and pins this process
    to cuda:LOCAL_RANK; otherwise gloo.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or _active():
        return _active()
    if not torch.distributed.is_available():
        raise ConfigError("WORLD_SIZE > 1 but this torch build has no torch.distributed; run one process")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local_rank)
    torch.distributed.init_process_group(backend="nccl" if use_cuda else "gloo")
    return True


def local_device(device: str) -> str:
    """The device this process trains on: `auto` and any `cuda[:N]` become cuda:LOCAL_RANK in a distributed
    CUDA run (one GPU per process, as the launcher counts them)."""
    if _active() and (device == "auto" or device.startswith("cuda")) and torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return device


def shutdown() -> None:
    """Leave the process group (after saying how many weight checks passed, when RXMRL_CHECK_SYNC=1)."""
    if not _active():
        return
    if _sync_checks and is_main():
        print(f"rxmrl: weights identical on all {world_size()} ranks at {_sync_checks} checks", file=sys.stderr)
    torch.distributed.destroy_process_group()


def rank_seed(*parts: object) -> int:
    """`derive_seed(*parts)` on a single process, a different stream per rank in a distributed run."""
    return derive_seed(*parts, "rank", rank()) if world_size() > 1 else derive_seed(*parts)


def _collective_device() -> torch.device:
    # NCCL reduces CUDA tensors only; gloo CPU tensors
    if _active() and torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def barrier() -> None:
    if _active():
        torch.distributed.barrier()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The element-wise sum over ranks (a new tensor on `tensor`'s device); the `reduce` of advantage stats."""
    if not _active():
        return tensor
    out = tensor.detach().to(_collective_device(), copy=True)
    torch.distributed.all_reduce(out)
    return out.to(tensor.device)


def all_agree(flag: bool) -> bool:
    """True only when `flag` is True on every rank (a logical AND), so control flow stays in step."""
    if not _active():
        return flag
    value = torch.tensor([1 if flag else 0], dtype=torch.int32, device=_collective_device())
    torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MIN)
    return bool(value.item())


def all_max(value: int) -> int:
    if not _active():
        return value
    tensor = torch.tensor([value], dtype=torch.int64, device=_collective_device())
    torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX)
    return int(tensor.item())


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """`obj` as rank `src` has it, on every rank (picklable objects: metrics dicts, paths)."""
    if not _active():
        return obj
    holder = [obj]
    torch.distributed.broadcast_object_list(holder, src=src, device=_collective_device())
    return holder[0]


def from_main(compute: Callable[[], T]) -> T:
    """`compute()` run on rank 0 alone, its (picklable) result on every rank; the others wait for it."""
    return broadcast_object(compute() if is_main() else None)


def gather_objects(obj: Any) -> list[Any] | None:
    """Every rank's `obj`, in rank order, on rank 0 (None elsewhere); `[obj]` on a single process."""
    if not _active():
        return [obj]
    out = [None] * world_size() if is_main() else None
    torch.distributed.gather_object(obj, out, dst=0)
    return out


def mean_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """For logging: on rank 0, each metric averaged over the ranks that report it (every rank's batch has the
    same size); elsewhere the rank's own. One gather of a small dict per call."""
    gathered = gather_objects(metrics)
    if gathered is None or len(gathered) == 1:
        return metrics
    out = {}
    for name in metrics:
        values = [m[name] for m in gathered if name in m]
        out[name] = sum(values) / len(values)
    return out


def broadcast_module(module: torch.nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank (identical starting weights whatever the RNG did)."""
    if not _active():
        return
    device = _collective_device()
    for tensor in [*module.parameters(), *module.buffers()]:
        data = tensor.data.to(device, copy=True)
        torch.distributed.broadcast(data, src=0)
        tensor.data.copy_(data.to(tensor.device))


def average_gradients(params: Sequence[torch.nn.Parameter]) -> None:
    """Replace every gradient by its mean over ranks, in flat buckets (the `grad_hook` of a distributed run).

    A parameter with no gradient on a rank (frozen, or an MoE expert that got no tokens there) counts as a zero
    gradient in the mean; it stays `None` only when it has none on every rank, so all ranks step the same
    weights. Non-finite values spread to every rank through the sum, so a skip decision taken on the averaged
    gradients is the same everywhere. `params` must be the same list, in the same order, on every rank.
    """
    if not _active():
        return
    params = [p for p in params if p.requires_grad]
    if not params:
        return
    device = _collective_device()
    has_grad = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=device)
    torch.distributed.all_reduce(has_grad)  # [P] how many ranks have each gradient
    world = float(world_size())
    for bucket in _buckets([p for p, n in zip(params, has_grad.tolist()) if n > 0]):
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).float().to(device)
                          for p in bucket])
        torch.distributed.all_reduce(flat)
        flat /= world
        offset = 0
        for p in bucket:
            size = p.numel()
            mean = flat[offset : offset + size].view_as(p).to(p.device, p.dtype)
            offset += size
            if p.grad is None:
                p.grad = mean
            else:
                p.grad.copy_(mean)


def _buckets(params: list[torch.nn.Parameter]) -> Iterable[list[torch.nn.Parameter]]:
    bucket: list[torch.nn.Parameter] = []
    size = 0
    for p in params:
        if bucket and size + p.numel() > BUCKET_ELEMENTS:
            yield bucket
            bucket, size = [], 0
        bucket.append(p)
        size += p.numel()
    if bucket:
        yield bucket


def split_agreed(order: torch.Tensor, size: int) -> list[torch.Tensor]:
    """Cut `order` [N] into minibatches such that every rank makes the same number of optimizer steps.

    Ranks can hold different numbers of answers with a training signal; the count of minibatches is the
    largest `ceil(N / size)` over ranks and each rank cuts its own answers into that many near-equal parts.
    A rank with fewer answers than parts gets empty parts (it then adds zero gradients to the mean).
    """
    parts = all_max(-(-len(order) // size))
    return list(order.tensor_split(parts))


def check_in_sync(params: Iterable[torch.Tensor], where: str) -> None:
    """With RXMRL_CHECK_SYNC=1: raise `TrainingError` unless every rank holds bit-identical weights."""
    if not _active() or os.environ.get(CHECK_SYNC_ENV) != "1":
        return
    device = _collective_device()
    # two float64 moments per tensor: any differing element changes them (equal weights give equal sums)
    local = torch.stack([torch.stack([t.detach().double().sum(), t.detach().double().pow(2).sum()])
                         for t in params]).to(device)  # [P, 2]
    gathered = [torch.empty_like(local) for _ in range(world_size())]
    torch.distributed.all_gather(gathered, local)
    for other, theirs in enumerate(gathered[1:], start=1):
        if not torch.equal(theirs, gathered[0]):
            raise TrainingError(f"{where}: the weights of rank {other} differ from rank 0's (distributed runs out of "
                                f"step); report this with the curriculum and launch command")
    global _sync_checks
    _sync_checks += 1
