"""Merkle trees over event leaves: one root anchors a whole batch of events.

Convention, mirrored by `contracts/DrecLedger.sol` (`verifyLeaf`):

- leaf = keccak256(0x00 || canonical event body);
- node = keccak256(0x01 || min(a, b) || max(a, b)).

The prefixes keep a leaf from ever being taken for an inner node, and sorting each pair
lets a proof be a plain list of sibling hashes with no left/right bits. A level with an odd
number of nodes promotes its last node unchanged, so a tree of one leaf has that leaf as
its root.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from eth_hash.auto import keccak

HASH_SIZE = 32
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(canonical_body: bytes) -> bytes:
    """The 32-byte leaf of one event, from its canonical JSON body."""
    return keccak(_LEAF_PREFIX + canonical_body)


def node_hash(a: bytes, b: bytes) -> bytes:
    """The parent of two 32-byte nodes, whichever order they come in."""
    return keccak(_NODE_PREFIX + a + b) if a <= b else keccak(_NODE_PREFIX + b + a)


def merkle_levels(leaves: Sequence[bytes], node: Callable[[bytes, bytes], bytes]) -> list[list[bytes]]:
    """Every level of a binary tree over `leaves` (first the leaves, last the root), pairing
    neighbours with `node`; a level with an odd number of nodes promotes its last one unchanged.

    The hash convention is the caller's: this tree's `node_hash`, or the contributions root's.
    """
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        level = levels[-1]
        parents = [node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            parents.append(level[-1])
        levels.append(parents)
    return levels


class MerkleTree:
    """A Merkle tree over 32-byte leaves, kept level by level so proofs are cheap."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        if not leaves:
            raise ValueError("a Merkle tree needs at least one leaf")
        level = list(leaves)
        for index, leaf in enumerate(level):
            if len(leaf) != HASH_SIZE:
                raise ValueError(
                    f"leaf {index} is {len(leaf)} bytes, expected {HASH_SIZE}"
                )
        self._levels = merkle_levels(level, node_hash)

    def __len__(self) -> int:
        return len(self._levels[0])

    @property
    def root(self) -> bytes:
        return self._levels[-1][0]

    @property
    def leaves(self) -> list[bytes]:
        return list(self._levels[0])

    def proof(self, index: int) -> list[bytes]:
        """Sibling hashes from leaf `index` up to the root (promotions add nothing)."""
        if not 0 <= index < len(self):
            raise IndexError(f"leaf index {index} outside 0..{len(self) - 1}")
        siblings = []
        for level in self._levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                siblings.append(level[sibling])
            index //= 2
        return siblings


def verify_proof(leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """Whether folding `proof` onto `leaf` gives `root`."""
    node = leaf
    for sibling in proof:
        node = node_hash(node, sibling)
    return node == root


def to_hex(value: bytes) -> str:
    """`b"\\x12\\xab"` -> `"0x12ab"`."""
    return "0x" + value.hex()


def from_hex(text: str) -> bytes:
    """`"0x12ab"` (prefix optional) -> `b"\\x12\\xab"`; raises ValueError on bad hex."""
    digits = text[2:] if text[:2] in ("0x", "0X") else text
    return bytes.fromhex(digits)
