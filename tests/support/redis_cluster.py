"""A real local Redis Cluster for tests: 3 primaries + 3 replicas on free loopback ports.

Each node is a ``redis-server --cluster-enabled yes`` in its own temp dir; ``redis-cli --cluster
create ... --cluster-replicas 1 --cluster-yes`` joins them.  Start-up waits on events, not sleeps:
each node's "Ready to accept connections" log line, then ``CLUSTER INFO`` reporting
``cluster_state:ok`` with all 16384 slots on every node.

A cluster node also listens on its port + 10000 (the cluster bus), so both ports must be free.

Fixtures: ``redis_cluster`` (one fresh cluster per test; skips with a reason when
``redis-server`` or ``redis-cli`` is missing) and ``shared_redis_cluster`` (one per session, for
tests that leave the topology alone and delete what they wrote).  ``RedisCluster.failover(primary)``
promotes that primary's replica with ``CLUSTER FAILOVER`` (sent to the replica) and waits until the
promotion is seen; ``kill_primary(primary)`` SIGKILLs it and waits for the automatic promotion;
both first wait until every replica has synced (a replica that never synced refuses to take
over).  ``owner_of(slot)`` is the live primary serving a slot.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.redis import REDIS_BINARY, launch, server_argv

REDIS_CLI = shutil.which("redis-cli")
# Bounds on waiting for the cluster to converge; polling a local command, never a fixed sleep.
CONVERGE_TIMEOUT = 30.0
POLL_INTERVAL = 0.05


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_cluster_port(taken: set[int]) -> int:
    """A port whose cluster-bus twin (port + 10000) is free as well."""
    for _ in range(500):
        port = random.randint(20000, 55000)
        if port in taken or port + 10000 in taken:
            continue
        if _port_free(port) and _port_free(port + 10000):
            taken.update({port, port + 10000})
            return port
    raise RuntimeError("no free port pair for a cluster node")


def _cli(port: int, *args: str, timeout: float = 10.0) -> str:
    assert REDIS_CLI is not None
    proc = subprocess.run(
        [REDIS_CLI, "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    return proc.stdout + proc.stderr


@dataclass
class ClusterNode:
    directory: Path
    port: int
    process: subprocess.Popen[str] | None = None
    log: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        argv = [
            *server_argv(self.port, self.directory),
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", "1000",
            "--appendonly", "no",
        ]  # fmt: skip
        self.process, ready = launch(argv, self.directory, self.log)
        if ready:
            # Keep draining the log so a chatty node never blocks on a full pipe.
            self._drain()
            return
        raise RuntimeError("cluster node failed to start:\n" + "".join(self.log[-20:]))

    def _drain(self) -> None:
        import threading

        process = self.process
        assert process is not None and process.stdout is not None
        stdout = process.stdout

        def pump() -> None:
            for line in stdout:
                self.log.append(line)

        self._pump = threading.Thread(target=pump, daemon=True)
        self._pump.start()

    def _reap(self) -> None:
        """After the process exited: let the log pump hit EOF, then close the pipe (an
        unclosed pipe is a ResourceWarning, an error under the test settings)."""
        pump = getattr(self, "_pump", None)
        if pump is not None:
            pump.join(timeout=5)
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.kill()
            self.process.wait()
            self._reap()

    def stop(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self._reap()

    def cli(self, *args: str) -> str:
        return _cli(self.port, *args)

    def role(self) -> str:
        """"master" or "slave" as this node sees itself (``ROLE``'s first line)."""
        out = self.cli("ROLE").splitlines()
        return out[0].strip() if out else ""


class RedisCluster:
    def __init__(self, directory: Path, primaries: int = 3, replicas_each: int = 1) -> None:
        if REDIS_BINARY is None or REDIS_CLI is None:
            pytest.skip("redis-server/redis-cli not found on PATH; install redis to run this test")
        taken: set[int] = set()
        self.nodes: list[ClusterNode] = []
        for i in range(primaries * (1 + replicas_each)):
            node_dir = directory / f"node{i}"
            node_dir.mkdir(parents=True)
            self.nodes.append(ClusterNode(node_dir, _free_cluster_port(taken)))
        try:
            for node in self.nodes:
                node.start()
            out = _cli(
                self.nodes[0].port,
                "--cluster", "create", *(n.address for n in self.nodes),
                "--cluster-replicas", str(replicas_each), "--cluster-yes",
                timeout=60,
            )  # fmt: skip
            if "[OK] All 16384 slots covered" not in out:
                raise RuntimeError("redis-cli --cluster create failed:\n" + out)
            self.wait_until_ok()
        except BaseException:
            self.stop()
            raise

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", n.port) for n in self.nodes]

    @property
    def url(self) -> str:
        """A URL naming one node; a cluster client discovers the rest."""
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    def primaries(self) -> list[ClusterNode]:
        return [n for n in self.nodes if n.alive() and n.role() == "master"]

    def replica_of(self, primary: ClusterNode) -> ClusterNode:
        node_id = primary.cli("CLUSTER", "MYID").strip()
        for node in self.nodes:
            if node is primary or not node.alive():
                continue
            if node_id in node.cli("CLUSTER", "NODES") and node.role() == "slave":
                info = node.cli("INFO", "replication")
                if f"master_port:{primary.port}" in info:
                    return node
        raise LookupError(f"no live replica of {primary.address}")

    def owner_of(self, slot: int) -> ClusterNode:
        """The live primary serving ``slot``, per ``CLUSTER NODES`` of a live node."""
        live = [n for n in self.nodes if n.alive()]
        by_port = {n.port: n for n in live}
        for line in live[0].cli("CLUSTER", "NODES").splitlines():
            fields = line.split()
            if len(fields) < 9 or "master" not in fields[2] or "fail" in fields[2]:
                continue
            port = int(fields[1].split("@")[0].rsplit(":", 1)[1])
            for item in fields[8:]:
                if item.startswith("["):  # a slot being migrated, not served
                    continue
                low, _, high = item.partition("-")
                if int(low) <= slot <= int(high or low) and port in by_port:
                    return by_port[port]
        raise LookupError(f"no live primary serves slot {slot}")

    def wait_until_ok(self, timeout: float = CONVERGE_TIMEOUT) -> None:
        """Every live node reports cluster_state:ok with all slots assigned and agrees on
        the same number of primaries."""
        deadline = time.monotonic() + timeout
        while True:
            live = [n for n in self.nodes if n.alive()]
            infos = [n.cli("CLUSTER", "INFO") for n in live]
            if all("cluster_state:ok" in i and "cluster_slots_ok:16384" in i for i in infos):
                return
            if time.monotonic() > deadline:
                raise TimeoutError("cluster did not converge:\n" + "\n".join(infos))
            time.sleep(POLL_INTERVAL)  # polling an external process's state; no event exists

    def failover(self, primary: ClusterNode, timeout: float = CONVERGE_TIMEOUT) -> ClusterNode:
        """Promote ``primary``'s replica (a manual, coordinated failover) and return it."""
        replica = self.replica_of(primary)
        self.wait_replicas_synced(timeout)
        out = replica.cli("CLUSTER", "FAILOVER")
        if "OK" not in out:
            raise RuntimeError(f"CLUSTER FAILOVER refused: {out}")
        deadline = time.monotonic() + timeout
        while replica.role() != "master" or primary.role() != "slave":
            if time.monotonic() > deadline:
                raise TimeoutError("failover did not complete")
            time.sleep(POLL_INTERVAL)
        self.wait_until_ok(timeout)
        return replica

    def wait_replicas_synced(self, timeout: float = CONVERGE_TIMEOUT) -> None:
        """Every live replica finished its sync with its primary: a replica that never synced
        refuses to be promoted (its data counts as too old), so a failover test right after
        start-up would otherwise wait in vain."""
        deadline = time.monotonic() + timeout
        while True:
            replicas = [n for n in self.nodes if n.alive() and n.role() == "slave"]
            infos = [n.cli("INFO", "replication") for n in replicas]
            synced = ("master_link_status:up" in i and "sync_in_progress:0" in i for i in infos)
            if all(synced):
                return
            if time.monotonic() > deadline:
                raise TimeoutError("replicas did not sync:\n" + "\n".join(infos))
            time.sleep(POLL_INTERVAL)  # polling an external process's state; no event exists

    def kill_primary(self, primary: ClusterNode, timeout: float = CONVERGE_TIMEOUT) -> ClusterNode:
        """SIGKILL ``primary`` and wait until its replica has been promoted automatically."""
        replica = self.replica_of(primary)
        self.wait_replicas_synced(timeout)
        primary.kill()
        deadline = time.monotonic() + timeout
        while replica.role() != "master":
            if time.monotonic() > deadline:
                raise TimeoutError("replica was not promoted after the primary died")
            time.sleep(POLL_INTERVAL)
        self.wait_until_ok(timeout)
        return replica

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    cluster = RedisCluster(tmp_path / "cluster")
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def shared_redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """One cluster for every test that leaves its topology alone (start-up costs seconds).
    Users must delete what they wrote (the layer tests flush every layer they made); tests
    that fail over or kill nodes take the per-test ``redis_cluster`` instead."""
    cluster = RedisCluster(tmp_path_factory.mktemp("shared-cluster"))
    yield cluster
    cluster.stop()
