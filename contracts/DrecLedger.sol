// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title D-REC ledger
/// @notice Anchors the platform's append-only event sequences on the chain, one per shard.
/// Each shard's events are grouped into consecutive batches; each batch is committed by the
/// root of a Merkle tree over its events' leaves, so one transaction anchors any number of
/// events. Shards are independent: each has its own next sequence number.
/// @dev Merkle convention (mirrored by the off-chain builder): leaf = keccak256(0x00 || body),
/// node = keccak256(0x01 || min(a, b) || max(a, b)); an odd node is promoted unchanged.
/// Batch ids start at 1 and count every shard's batches; sequence numbers start at 1 in every
/// shard. Each batch writes one new storage slot (its root's packed record) and updates its
/// shard's counter; the platform keeps each event's batch id, root and transaction hash off
/// the chain, and verifiers check roots here.
contract DrecLedger {
    // Layout of a root's packed record, low bits first. A record is never zero once written
    // (batch ids start at 1), so zero means "not anchored".
    uint256 private constant _FIRST_SEQ_SHIFT = 64;
    uint256 private constant _EVENT_COUNT_SHIFT = 128;
    uint256 private constant _ANCHORED_AT_SHIFT = 160;
    uint256 private constant _SHARD_SHIFT = 224;

    // The owner shares its slot with the batch counter: anchorBatch reads the owner anyway, so
    // updating the counter costs a warm write instead of a second cold slot.
    address private _owner;
    uint32 private _batchCount;

    /// @dev Next sequence number of each shard, minus one (zero-initialised: a shard starts at 1).
    mapping(uint16 shard => uint64 anchoredThrough) private _anchoredThrough;

    /// @dev batchId (64 bits) | firstSeq (64) | eventCount (32) | anchoredAt (64) | shard (16): 240 bits.
    mapping(bytes32 root => uint256 packed) private _roots;

    /// @notice A batch of `eventCount` events of `shard` starting at `firstSeq` was anchored.
    /// @dev The log is the only on-chain record of `dataHash`: the contract does not store it,
    /// so whoever checks a published data file against it reads this event.
    /// @param batchId Id of the new batch (1, 2, ...).
    /// @param root Merkle root over the batch's event leaves.
    /// @param shard Event shard of the batch.
    /// @param firstSeq Sequence number of the batch's first event in its shard.
    /// @param eventCount Number of events in the batch.
    /// @param dataHash Hash of the batch's published data file (the event bodies).
    event BatchAnchored(
        uint256 indexed batchId,
        bytes32 indexed root,
        uint16 indexed shard,
        uint64 firstSeq,
        uint32 eventCount,
        bytes32 dataHash
    );

    /// @notice Ownership moved from `previousOwner` to `newOwner`.
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    /// @notice `account` is not the owner and may not anchor or transfer ownership.
    error DrecLedgerUnauthorizedAccount(address account);

    /// @notice `owner` cannot own the ledger (the zero address).
    error DrecLedgerInvalidOwner(address owner);

    /// @notice The batch does not start where its shard's anchored sequence ends.
    /// @param shard The batch's shard.
    /// @param expected The next sequence number the shard accepts.
    /// @param given The batch's first sequence number.
    error DrecLedgerSequenceMismatch(uint16 shard, uint64 expected, uint64 given);

    /// @notice A batch must hold at least one event.
    error DrecLedgerEmptyBatch();

    /// @notice The zero root commits to nothing.
    error DrecLedgerZeroRoot();

    /// @notice `root` was already anchored as batch `batchId`.
    error DrecLedgerRootAlreadyAnchored(bytes32 root, uint256 batchId);

    /// @notice `root` is not the root of any anchored batch.
    error DrecLedgerUnknownRoot(bytes32 root);

    /// @notice Deploys an empty ledger owned by the deployer; every shard's first batch starts at 1.
    constructor() {
        _owner = msg.sender;
        emit OwnershipTransferred(address(0), msg.sender);
    }

    /// @notice Anchors the next batch of events of `shard`.
    /// @param shard Event shard of the batch.
    /// @param root Merkle root over the batch's event leaves; must be non-zero and new.
    /// @param firstSeq Sequence number of the batch's first event; must equal `nextSeq(shard)`.
    /// @param eventCount Number of events in the batch; must be positive.
    /// @param dataHash Hash of the batch's published data file; emitted, not stored.
    /// @return batchId Id of the new batch.
    function anchorBatch(
        uint16 shard,
        bytes32 root,
        uint64 firstSeq,
        uint32 eventCount,
        bytes32 dataHash
    ) external returns (uint256 batchId) {
        if (msg.sender != _owner) revert DrecLedgerUnauthorizedAccount(msg.sender);
        if (root == bytes32(0)) revert DrecLedgerZeroRoot();
        if (eventCount == 0) revert DrecLedgerEmptyBatch();
        uint64 expected = _anchoredThrough[shard] + 1;
        if (firstSeq != expected) revert DrecLedgerSequenceMismatch(shard, expected, firstSeq);
        uint256 existing = _roots[root];
        if (existing != 0) revert DrecLedgerRootAlreadyAnchored(root, uint64(existing));

        uint32 id = _batchCount + 1;
        _roots[root] =
            uint256(id) |
            (uint256(firstSeq) << _FIRST_SEQ_SHIFT) |
            (uint256(eventCount) << _EVENT_COUNT_SHIFT) |
            (uint256(uint64(block.timestamp)) << _ANCHORED_AT_SHIFT) |
            (uint256(shard) << _SHARD_SHIFT);
        _anchoredThrough[shard] = firstSeq + eventCount - 1;
        _batchCount = id;
        emit BatchAnchored(id, root, shard, firstSeq, eventCount, dataHash);
        return id;
    }

    /// @notice Moves ownership (the right to anchor) to `newOwner`.
    /// @param newOwner The new owner; must not be the zero address.
    function transferOwnership(address newOwner) external {
        address previousOwner = _owner;
        if (msg.sender != previousOwner) revert DrecLedgerUnauthorizedAccount(msg.sender);
        if (newOwner == address(0)) revert DrecLedgerInvalidOwner(address(0));
        _owner = newOwner;
        emit OwnershipTransferred(previousOwner, newOwner);
    }

    /// @notice The account allowed to anchor batches.
    function owner() external view returns (address) {
        return _owner;
    }

    /// @notice The sequence number the next batch of `shard` must start at.
    function nextSeq(uint16 shard) external view returns (uint64) {
        return _anchoredThrough[shard] + 1;
    }

    /// @notice `nextSeq` of shards 0 .. `shards` - 1, in one call.
    function nextSeqs(uint16 shards) external view returns (uint64[] memory next) {
        next = new uint64[](shards);
        for (uint16 shard = 0; shard < shards; ++shard) {
            next[shard] = _anchoredThrough[shard] + 1;
        }
    }

    /// @notice Number of anchored batches; also the id of the latest one.
    function batchCount() external view returns (uint256) {
        return _batchCount;
    }

    /// @notice The anchored batch whose Merkle root is `root`.
    /// @dev Reverts with `DrecLedgerUnknownRoot` if `root` was never anchored. The batch's
    /// data hash is in its `BatchAnchored` event, not in storage.
    /// @param root Merkle root of an anchored batch.
    /// @return batchId Id of the batch.
    /// @return firstSeq Sequence number of the batch's first event in its shard.
    /// @return eventCount Number of events in the batch.
    /// @return anchoredAt Timestamp of the anchoring block [s since the Unix epoch].
    /// @return shard Event shard of the batch.
    function rootInfo(
        bytes32 root
    )
        external
        view
        returns (uint256 batchId, uint64 firstSeq, uint32 eventCount, uint64 anchoredAt, uint16 shard)
    {
        uint256 packed = _roots[root];
        if (packed == 0) revert DrecLedgerUnknownRoot(root);
        return (
            uint64(packed),
            uint64(packed >> _FIRST_SEQ_SHIFT),
            uint32(packed >> _EVENT_COUNT_SHIFT),
            uint64(packed >> _ANCHORED_AT_SHIFT),
            uint16(packed >> _SHARD_SHIFT)
        );
    }

    /// @notice Whether `root` is the root of an anchored batch.
    function isRoot(bytes32 root) external view returns (bool) {
        return _roots[root] != 0;
    }

    /// @notice Whether `leaf` belongs to the anchored batch with root `root`, by `proof`.
    /// @param root Root of an anchored batch; an unknown root gives false.
    /// @param leaf Leaf hash of an event: keccak256(0x00 || canonical body).
    /// @param proof Sibling hashes from the leaf up to the root.
    function verifyLeaf(bytes32 root, bytes32 leaf, bytes32[] calldata proof) external view returns (bool) {
        if (_roots[root] == 0) return false;
        return _fold(leaf, proof) == root;
    }

    /// @notice Whether event (`shard`, `seq`) with leaf `leaf` belongs to the anchored batch
    /// `root`: the root is anchored for `shard`, `seq` lies in the batch's range and `proof`
    /// leads to the root.
    /// @dev Sorted pairs carry no position, so the proof does not tie the leaf to `seq`; the
    /// event body carries its own shard and `seq`, which the verifier reads from the body it hashed.
    /// @param root Root of an anchored batch; an unknown root gives false.
    /// @param shard Event shard of the event.
    /// @param seq Sequence number of the event in its shard.
    /// @param leaf Leaf hash of the event: keccak256(0x00 || canonical body).
    /// @param proof Sibling hashes from the leaf up to the root.
    function verifyEvent(
        bytes32 root,
        uint16 shard,
        uint64 seq,
        bytes32 leaf,
        bytes32[] calldata proof
    ) external view returns (bool) {
        uint256 packed = _roots[root];
        if (packed == 0 || uint16(packed >> _SHARD_SHIFT) != shard) return false;
        uint64 firstSeq = uint64(packed >> _FIRST_SEQ_SHIFT);
        uint64 eventCount = uint32(packed >> _EVENT_COUNT_SHIFT);
        if (seq < firstSeq || seq - firstSeq >= eventCount) return false;
        return _fold(leaf, proof) == root;
    }

    /// @dev Hashes `leaf` up through its sorted-pair siblings to a root.
    function _fold(bytes32 leaf, bytes32[] calldata proof) private pure returns (bytes32 node) {
        node = leaf;
        for (uint256 i = 0; i < proof.length; ++i) {
            bytes32 sibling = proof[i];
            node = node < sibling
                ? keccak256(abi.encodePacked(bytes1(0x01), node, sibling))
                : keccak256(abi.encodePacked(bytes1(0x01), sibling, node));
        }
    }
}
