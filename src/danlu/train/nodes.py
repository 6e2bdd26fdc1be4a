"""Where this machine sits in a training across machines: `danlu train --nnodes N --node-rank R
--master HOST:PORT` as one checked value (no torch import: the pipeline and CLI load it)."""

from __future__ import annotations

from dataclasses import dataclass

from danlu.errors import RecipeError

__all__ = ["ONE_NODE", "Nodes"]


@dataclass(frozen=True)
class Nodes:
    """This machine's place in a training across machines: node `rank` of `count`, meeting at
    `master` ("HOST:PORT" of node 0). Launch options, not recipe keys: the recipe is one file
    for every machine, while the node rank differs per machine and the address per cluster."""

    count: int = 1
    rank: int = 0
    master: str | None = None

    def __post_init__(self) -> None:
        n, r = self.count, self.rank
        if n < 1:
            raise RecipeError("--nnodes", got=n, expected="the number of machines, 1 or more")
        if not 0 <= r < n:
            raise RecipeError("--node-rank", got=r, expected=f"0 to {n - 1} for --nnodes {n}",
                              hint="node ranks count from 0; node 0 is the machine at --master")
        if n > 1 and self.master is None:
            raise RecipeError("--master", got=None, expected="HOST:PORT of node 0, the same on "
                              "every node, e.g. --master 10.0.0.1:29500")
        if self.master is not None:
            _host_port(self.master)

    @classmethod
    def parse(cls, nnodes: int | None, node_rank: int | None, master: str | None) -> Nodes:
        """The CLI's --nnodes/--node-rank/--master, checked (RecipeError naming the fix)."""
        n = 1 if nnodes is None else nnodes
        if n == 1 and (node_rank not in (None, 0) or master is not None):
            flag = "--node-rank" if node_rank not in (None, 0) else "--master"
            raise RecipeError(flag, got=node_rank if flag == "--node-rank" else master,
                              expected="--nnodes N (N > 1) beside it, or neither flag on one "
                              "machine", hint="--nproc P alone uses one machine's cores/GPUs")
        if n > 1 and node_rank is None:
            raise RecipeError("--node-rank", got=None, expected=f"this machine's index, 0 to {n - 1}",
                              hint="--node-rank 0 on the machine at --master, 1.. on the others")
        return cls(n, node_rank or 0, master)

    @property
    def host(self) -> str:
        return _host_port(self.master)[0] if self.master else "localhost"

    @property
    def port(self) -> int:
        return _host_port(self.master)[1] if self.master else 0


def _host_port(master: str) -> tuple[str, int]:
    """("10.0.0.1", 29500) from "10.0.0.1:29500" ("[::1]:29500" for IPv6)."""
    host, sep, port = master.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise RecipeError("--master", got=master, expected="HOST:PORT of node 0 with a free TCP "
                          "port, e.g. 10.0.0.1:29500")
    return host, int(port)


ONE_NODE = Nodes()  # the default: every process on this machine
