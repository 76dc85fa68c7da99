# Scripted Raft scenarios with golden output, after etcd-io/raft's
# interaction tests (testdata/*.txt run through rafttest).
#
# A scenario file is a list of commands, each a line starting with "> ",
# followed by the output it must produce. Running with the environment
# variable HCNODE_UPDATE_GOLDEN=1 rewrites the expected output instead of
# comparing (review the diff before committing it).
#
# Commands:
#   cluster N [pre_vote] [check_quorum] [max_inflight=K] [max_entries=K]
#   campaign ID | propose ID DATA | tick ID [COUNT] | tick-all [COUNT]
#   isolate ID | cut A B | recover
#   status                  one line per node: role, term, leader, commit, last index
#   log ID                  the node's entries as index@term:data
#   sent                    messages delivered by the last command other than
#                           status/log/sent
#
# Owns: parsing and running the scripts. Must not know: any scenario.
from __future__ import annotations

import os
from pathlib import Path

from hcnode.consensus import EntryType, Message, NotLeaderError, RaftError

from .network import Network

UPDATE_ENV = "HCNODE_UPDATE_GOLDEN"


def describe_message(m: Message) -> str:
    entries = " ".join(f"{e.index}@{e.term}" + ("" if e.type is EntryType.EMPTY else f":{e.data.decode()}")
                       for e in m.entries)
    parts = [f"{m.sender}->{m.recipient} {m.type.value} t{m.term}"]
    if m.type.value in ("app", "vote", "pre_vote", "snapshot_needed"):
        parts.append(f"prev={m.index}@{m.log_term}" if m.type.value == "app" else f"last={m.index}@{m.log_term}")
    if entries:
        parts.append(f"[{entries}]")
    if m.type.value in ("app", "heartbeat"):
        parts.append(f"commit={m.commit}")
    if m.type.value == "app_resp":
        parts.append(f"index={m.index}")
    if m.reject:
        parts.append(f"REJECT hint={m.reject_hint}@{m.log_term}" if m.type.value == "app_resp" else "REJECT")
    return " ".join(parts)


class ScenarioRunner:
    def __init__(self) -> None:
        self.net: Network | None = None
        self.seen = 0

    def run(self, command: str) -> list[str]:
        words = command.split()
        name, args = words[0], words[1:]
        if name == "cluster":
            options: dict[str, object] = {"pre_vote": "pre_vote" in args, "check_quorum": "check_quorum" in args}
            for arg in args[1:]:
                if "=" in arg:
                    key, value = arg.split("=")
                    options[{"max_entries": "max_entries_per_append"}.get(key, key)] = int(value)
            self.net = Network.of(int(args[0]), **options)
            self.seen = 0
            return []
        net = self.net
        assert net is not None, "start with a cluster command"
        if name == "sent":
            return [describe_message(m) for m in net.delivered[self.seen :]]
        if name not in ("status", "log"):
            self.seen = len(net.delivered)  # `sent` reports what this command delivers
        if name == "campaign":
            net.campaign(args[0])
        elif name == "propose":
            try:
                return [f"index {net.propose(args[0], args[1].encode())}"]
            except NotLeaderError as error:
                return [f"error: {error}"]
            except RaftError as error:
                return [f"error: {type(error).__name__}: {error}"]
        elif name == "tick":
            net.tick(args[0], int(args[1]) if len(args) > 1 else 1)
        elif name == "tick-all":
            net.tick_all(int(args[0]) if args else 1)
        elif name == "isolate":
            net.isolate(args[0])
        elif name == "cut":
            net.cut(args[0], args[1])
        elif name == "recover":
            net.recover()
        elif name == "status":
            return [
                f"{node_id}: {raft.role.value} term={raft.term} leader={raft.leader} "
                f"commit={raft.log.committed} last={raft.log.last_index()}"
                for node_id, raft in sorted(net.peers.items())
            ]
        elif name == "log":
            log = net[args[0]].log
            return [
                " ".join(
                    f"{e.index}@{e.term}" + ("" if e.type is EntryType.EMPTY else f":{e.data.decode()}")
                    for e in log.entries(log.first_index())
                )
            ]
        else:
            raise ValueError(f"unknown scenario command {name!r}")
        return []


def run_file(path: Path) -> tuple[str, str]:
    """Return (expected, actual) texts for the scenario at `path`."""
    expected_text = path.read_text()
    runner = ScenarioRunner()
    out: list[str] = []
    for line in expected_text.splitlines():
        if line.startswith("> "):
            out.append(line)
            out.extend(runner.run(line[2:].strip()))
        elif line.startswith("#") or not line.strip():
            out.append(line)
    actual_text = "\n".join(out) + "\n"
    if os.environ.get(UPDATE_ENV) == "1" and actual_text != expected_text:
        path.write_text(actual_text)
        return actual_text, actual_text
    return expected_text, actual_text
