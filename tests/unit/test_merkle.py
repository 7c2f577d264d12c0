"""Merkle trees over event leaves: roots, proofs, and the hashing convention."""

from __future__ import annotations

import random

import pytest
from eth_hash.auto import keccak
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.ledger.canonical import canonical_json
from chalicelib.domain.ledger.merkle import MerkleTree, from_hex, leaf_hash, node_hash, to_hex, verify_proof


def leaves_of(count: int, salt: str = "") -> list[bytes]:
    return [
        leaf_hash(canonical_json({"seq": seq, "type": "ReadingAccepted", "salt": salt}))
        for seq in range(1, count + 1)
    ]


def test_leaf_is_keccak_of_zero_prefixed_body() -> None:
    body = canonical_json({"seq": 1, "type": "DeviceRegistered"})

    assert leaf_hash(body) == keccak(b"\x00" + body)


def test_pairs_hash_sorted_with_one_prefix() -> None:
    a, b = leaves_of(2)
    low, high = sorted([a, b])

    assert node_hash(a, b) == node_hash(b, a) == keccak(b"\x01" + low + high)


def test_tree_of_one_leaf_has_that_leaf_as_root_and_an_empty_proof() -> None:
    (leaf,) = leaves_of(1)

    tree = MerkleTree([leaf])

    assert tree.root == leaf
    assert tree.proof(0) == []
    assert verify_proof(leaf, [], tree.root)


def test_odd_last_node_is_promoted_unchanged() -> None:
    a, b, c = leaves_of(3)

    tree = MerkleTree([a, b, c])

    assert tree.root == node_hash(node_hash(a, b), c)
    assert tree.proof(2) == [node_hash(a, b)]


@pytest.mark.parametrize("size", range(1, 34))
def test_every_leaf_proves_against_the_root(size: int) -> None:
    leaves = leaves_of(size)

    tree = MerkleTree(leaves)

    for index, leaf in enumerate(leaves):
        assert verify_proof(leaf, tree.proof(index), tree.root), index


def test_every_leaf_of_a_large_random_tree_proves() -> None:
    rng = random.Random(20261123)
    leaves = [rng.randbytes(32) for _ in range(rng.randint(1000, 3000))]

    tree = MerkleTree(leaves)

    assert all(
        verify_proof(leaf, tree.proof(i), tree.root) for i, leaf in enumerate(leaves)
    )
    # log2 depth: a proof never needs more siblings than levels
    assert (
        max(len(tree.proof(i)) for i in range(len(leaves)))
        == (len(leaves) - 1).bit_length()
    )


def test_tampered_leaf_does_not_prove() -> None:
    leaves = leaves_of(10)
    tree = MerkleTree(leaves)
    forged = leaf_hash(
        canonical_json({"seq": 4, "type": "ReadingAccepted", "energy_wh": 10**6})
    )

    assert not verify_proof(forged, tree.proof(3), tree.root)


def test_tampered_proof_does_not_prove() -> None:
    leaves = leaves_of(10)
    tree = MerkleTree(leaves)
    proof = tree.proof(3)
    proof[1] = bytes(32)

    assert not verify_proof(leaves[3], proof, tree.root)
    assert not verify_proof(leaves[3], tree.proof(3)[:-1], tree.root)
    assert not verify_proof(leaves[3], tree.proof(4), tree.root)


def test_changing_any_leaf_changes_the_root() -> None:
    leaves = leaves_of(17)
    root = MerkleTree(leaves).root

    for index in range(len(leaves)):
        changed = list(leaves)
        changed[index] = leaf_hash(b"other")
        assert MerkleTree(changed).root != root, index


def test_leaf_order_matters() -> None:
    leaves = leaves_of(4)

    assert (
        MerkleTree(leaves).root
        != MerkleTree([leaves[0], leaves[2], leaves[1], leaves[3]]).root
    )


def test_empty_tree_and_wrong_sized_leaves_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one leaf"):
        MerkleTree([])
    with pytest.raises(ValueError, match="leaf 1 is 31 bytes"):
        MerkleTree([bytes(32), bytes(31)])


def test_proof_index_must_be_in_range() -> None:
    tree = MerkleTree(leaves_of(5))

    with pytest.raises(IndexError):
        tree.proof(5)
    with pytest.raises(IndexError):
        tree.proof(-1)


def test_hex_helpers_round_trip() -> None:
    value = bytes.fromhex("00ff12ab")

    assert to_hex(value) == "0x00ff12ab"
    assert from_hex("0x00ff12ab") == value
    assert from_hex("00FF12AB") == value
    with pytest.raises(ValueError):
        from_hex("0xzz")


@given(
    leaves=st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=70),
    data=st.data(),
)
def test_property_proofs_verify_and_foreign_leaves_do_not(
    leaves: list[bytes], data: st.DataObject
) -> None:
    tree = MerkleTree(leaves)
    index = data.draw(st.integers(min_value=0, max_value=len(leaves) - 1))
    foreign = data.draw(
        st.binary(min_size=32, max_size=32).filter(lambda b: b not in leaves)
    )

    proof = tree.proof(index)

    assert verify_proof(leaves[index], proof, tree.root)
    assert not verify_proof(foreign, proof, tree.root)
    assert len(proof) <= (len(leaves) - 1).bit_length()
