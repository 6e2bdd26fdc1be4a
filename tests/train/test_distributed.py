"""`danlu train --nproc 2`: DDP under torchrun (gloo on CPU) matches one process; two "nodes"
on loopback (`--nnodes 2 --node-rank 0/1 --master`) match `--nproc 2`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import DIGITS

DANLU = str(Path(sys.executable).with_name("danlu"))
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
# No dropout (each rank would draw its own masks) and no BatchNorm (statistics per rank):
# then 2 ranks x 32 rows compute the same update as 1 process x 64 rows, up to float order.
# 2 epochs: the fewest that show the loss falling; the processes' start-up is most of the time.
ARGS = ["model={arch: mlp, hidden: [32], dropout: 0}", "train.epochs=2",
        "train.early_stopping.patience=0", "train.batch_size=64", "train.threads=1",
        # Augmentation draws per rank shard, so it is not split-invariant: off for this comparison.
        "preprocess.augment=[]"]


def _cmd(out: Path, *flags: str) -> list[str]:
    return [DANLU, "train", str(DIGITS), *ARGS, *flags, "--out", str(out)]


def _finished(out: Path) -> tuple[Path, list[dict]]:
    (run_dir,) = out.iterdir()
    rows = [json.loads(line) for line in (run_dir / "train/history.jsonl").read_text().splitlines()]
    return run_dir, rows


def _train(out: Path, *flags: str) -> tuple[Path, list[dict]]:
    r = subprocess.run(_cmd(out, *flags), check=False, capture_output=True, text=True, timeout=600,
                       env=ENV)
    assert r.returncode == 0, r.stderr
    return _finished(out)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_procs(tmp_path_factory) -> tuple[Path, list[dict]]:
    """One `danlu train --nproc 2` run, the reference of both tests below."""
    return _train(tmp_path_factory.mktemp("nproc2"), "--nproc", "2")


@pytest.mark.slow
def test_two_processes_match_one_with_the_same_global_batch(tmp_path, two_procs):
    one_dir, one = _train(tmp_path / "one", "--nproc", "1")
    two_dir, two = two_procs
    assert len(one) == len(two) == 2
    for a, b in zip(one, two, strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4)
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-4)
        assert a["train_rows"] == b["train_rows"]  # sharded: the ranks' rows add up to one epoch
    assert one[-1]["train_loss"] < one[0]["train_loss"]
    summary = json.loads((two_dir / "train/summary.json").read_text())
    assert summary["processes"] == 2 and summary["nodes"] == 1
    manifest = json.loads((two_dir / "manifest.json").read_text())
    assert manifest["stages"]["train"]["status"] == "finished"
    # rank 0 alone wrote: one set of files, no temp files left by a second writer
    assert sorted(p.name for p in (two_dir / "train").iterdir()) == \
        sorted(p.name for p in (one_dir / "train").iterdir())
    assert not list(two_dir.rglob("*.tmp"))


@pytest.mark.slow
def test_two_nodes_on_loopback_match_two_processes_bitwise(tmp_path, two_procs):
    master = f"127.0.0.1:{_free_port()}"
    nodes = [subprocess.Popen(_cmd(tmp_path / f"node{r}", "--nnodes", "2", "--node-rank", str(r),
                                   "--master", master, "--nproc", "1"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
             for r in (1, 0)]  # node 1 first: it waits for node 0 at --master
    try:
        outs = [p.communicate(timeout=600) for p in nodes]
    finally:
        for p in nodes:
            p.kill()
    assert [p.returncode for p in nodes] == [0, 0], [e for _, e in outs]
    assert "node 1 of 2: training finished" in outs[0][0]

    ref_dir, ref = two_procs
    run_dir, rows = _finished(tmp_path / "node0")
    # Exact: the same 2 global ranks take the same rows, and gloo sums their 2 gradients
    # (a + b == b + a in IEEE floats); only the transport differs (TCP between two torchrun
    # agents vs. one agent). Any difference means the rendezvous numbered the ranks otherwise.
    a = load_file(ref_dir / "train/model/model.safetensors")
    b = load_file(run_dir / "train/model/model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["train_loss"] for r in rows] == [r["train_loss"] for r in ref]
    assert json.loads((run_dir / "train/summary.json").read_text())["nodes"] == 2

    # node 1 made its own data stage and wrote no weights or checkpoints (global rank 0 did)
    (other,) = (tmp_path / "node1").iterdir()
    assert (other / "data/clean.parquet").is_file() and not (other / "train").exists()
    train = json.loads((other / "manifest.json").read_text())["stages"]["train"]
    assert train["status"] == "finished" and train["metrics"]["node_rank"] == 1


# Two gloo ranks in plain processes, each playing one node: what they agree on before training.
_RANKS = """
import json, sys
from pathlib import Path
import torch, torch.distributed as dist
from danlu.errors import DanluError
from danlu.train.checkpoint import CheckpointStore
from danlu.train.config import CheckpointConfig
from danlu.train.distributed import agree, shared_checkpoint
dist.init_process_group("gloo")
r = dist.get_rank()
store = CheckpointStore(Path(sys.argv[1]) / f"node{r}" / "checkpoints", CheckpointConfig(), key="k")
if r == 0:
    store.save({"w": torch.arange(6.0)}, {"loop": {"history": []}}, update=7)
ckpt = shared_checkpoint(store)
out = {"checkpoint": ckpt.path.name, "w": ckpt.tensors["w"].tolist()}
try:
    agree({"recipe": ("same", "the recipe differs"), "data": (f"rows of {r}", "the data differs")})
except DanluError as e:
    out["error"] = str(e)
dist.barrier()
dist.destroy_process_group()
print(json.dumps(out))
"""


def test_nodes_resume_from_node_0s_checkpoint_and_refuse_different_data(tmp_path):
    port = str(_free_port())
    procs = [subprocess.Popen([sys.executable, "-c", _RANKS, str(tmp_path)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              env={**ENV, "RANK": str(r), "GROUP_RANK": str(r), "WORLD_SIZE": "2",
                                   "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port})
             for r in (0, 1)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e for _, e in outs]
    got = [json.loads(o) for o, _ in outs]
    # node 1's disk has no checkpoint: it resumes from node 0's, sent over the process group
    assert not (tmp_path / "node1" / "checkpoints").exists()
    assert [g["checkpoint"] for g in got] == ["step-00000007.json"] * 2
    assert got[1]["w"] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    # the same recipe passes; different data stops every rank with the fix, naming the node
    assert [g["error"] for g in got] == ["the data differs (node 1 differs from node 0)"] * 2


@pytest.mark.parametrize(("flags", "names"), [
    (["--nnodes", "2", "--node-rank", "2", "--master", "127.0.0.1:29500"], "0 to 1"),
    (["--nnodes", "2", "--node-rank", "1", "--master", "127.0.0.1"], "HOST:PORT"),
    (["--nnodes", "2", "--master", "127.0.0.1:29500"], "--node-rank"),
    (["--nnodes", "2", "--node-rank", "1"], "--master"),
    (["--nnodes", "1", "--node-rank", "1"], "--nnodes N"),
])
def test_bad_node_flags_are_one_line_errors_naming_the_fix(tmp_path, flags, names):
    from danlu.errors import RecipeError
    from danlu.train.nodes import Nodes

    opts = dict(zip(flags[::2], flags[1::2], strict=True))
    with pytest.raises(RecipeError, match=names):
        Nodes.parse(int(opts["--nnodes"]), int(opts["--node-rank"]) if "--node-rank" in opts
                    else None, opts.get("--master"))
    if names == "0 to 1":  # and once through the CLI: exit 2, one line, no traceback, no run
        r = subprocess.run(_cmd(tmp_path, *flags), check=False, capture_output=True, text=True,
                           env=ENV)
        assert r.returncode == 2 and "Traceback" not in r.stderr
        assert r.stderr.strip().splitlines() == [
            "recipe error: --node-rank: got 2, expected 0 to 1 for --nnodes 2 (node ranks count "
            "from 0; node 0 is the machine at --master)"]
        assert not list(tmp_path.iterdir())
