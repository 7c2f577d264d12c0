// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title D-REC ledger
/// @notice Anchors the platform's append-only event sequence on the chain. Events are
/// grouped into consecutive batches; each batch is committed by the root of a Merkle tree
/// over its events' leaves, so one transaction anchors any number of events.
/// @dev Merkle convention (mirrored by the off-chain builder): leaf = keccak256(0x00 || body),
/// node = keccak256(0x01 || min(a, b) || max(a, b)); an odd node is promoted unchanged.
/// Batch ids start at 1, as event sequence numbers do.
contract DrecLedger {
    /// @dev One storage slot per root: 4 + 8 + 4 + 8 bytes.
    struct Anchor {
        uint32 batchId;
        uint64 firstSeq;
        uint32 eventCount;
        uint64 anchoredAt;
    }

    /// @dev Root and data hash of a batch, by batch id.
    struct Commitment {
        bytes32 root;
        bytes32 dataHash;
    }

    // The owner shares its slot with both counters: anchorBatch reads the owner anyway, so
    // updating the counters costs a warm write instead of a second cold slot.
    address private _owner;
    uint64 private _nextSeq;
    uint32 private _batchCount;

    mapping(bytes32 root => Anchor) private _anchors;
    mapping(uint256 batchId => Commitment) private _commitments;

    /// @notice A batch of `eventCount` events starting at `firstSeq` was anchored.
    /// @param batchId Id of the new batch (1, 2, ...).
    /// @param root Merkle root over the batch's event leaves.
    /// @param firstSeq Sequence number of the batch's first event.
    /// @param eventCount Number of events in the batch.
    /// @param dataHash Hash of the batch's off-chain data (the event bodies).
    event BatchAnchored(
        uint256 indexed batchId,
        bytes32 indexed root,
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

    /// @notice The batch does not start where the anchored sequence ends.
    /// @param expected The next sequence number the ledger accepts.
    /// @param given The batch's first sequence number.
    error DrecLedgerSequenceMismatch(uint64 expected, uint64 given);

    /// @notice A batch must hold at least one event.
    error DrecLedgerEmptyBatch();

    /// @notice The zero root commits to nothing.
    error DrecLedgerZeroRoot();

    /// @notice `root` was already anchored as batch `batchId`.
    error DrecLedgerRootAlreadyAnchored(bytes32 root, uint256 batchId);

    /// @notice No batch `batchId` exists; ids run from 1 to `batchCount`.
    error DrecLedgerUnknownBatch(uint256 batchId, uint256 batchCount);

    /// @notice Sequence number `seq` is not anchored; anchored numbers are below `nextSeq`.
    error DrecLedgerSeqNotAnchored(uint64 seq, uint64 nextSeq);

    /// @notice Deploys an empty ledger owned by the deployer; the first batch starts at 1.
    constructor() {
        _owner = msg.sender;
        _nextSeq = 1;
        emit OwnershipTransferred(address(0), msg.sender);
    }

    /// @notice Anchors the next batch of events.
    /// @param root Merkle root over the batch's event leaves; must be non-zero and new.
    /// @param firstSeq Sequence number of the batch's first event; must equal `nextSeq()`.
    /// @param eventCount Number of events in the batch; must be positive.
    /// @param dataHash Hash of the batch's off-chain data.
    /// @return batchId Id of the new batch.
    function anchorBatch(
        bytes32 root,
        uint64 firstSeq,
        uint32 eventCount,
        bytes32 dataHash
    ) external returns (uint256 batchId) {
        if (msg.sender != _owner) revert DrecLedgerUnauthorizedAccount(msg.sender);
        if (root == bytes32(0)) revert DrecLedgerZeroRoot();
        if (eventCount == 0) revert DrecLedgerEmptyBatch();
        uint64 expected = _nextSeq;
        if (firstSeq != expected) revert DrecLedgerSequenceMismatch(expected, firstSeq);
        Anchor storage anchor = _anchors[root];
        if (anchor.batchId != 0) revert DrecLedgerRootAlreadyAnchored(root, anchor.batchId);

        uint32 id = _batchCount + 1;
        _anchors[root] = Anchor(id, firstSeq, eventCount, uint64(block.timestamp));
        _commitments[id] = Commitment(root, dataHash);
        _nextSeq = firstSeq + eventCount;
        _batchCount = id;
        emit BatchAnchored(id, root, firstSeq, eventCount, dataHash);
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

    /// @notice The sequence number the next batch must start at.
    function nextSeq() external view returns (uint64) {
        return _nextSeq;
    }

    /// @notice Number of anchored batches; also the id of the latest one.
    function batchCount() external view returns (uint256) {
        return _batchCount;
    }

    /// @notice The anchored batch `batchId`.
    /// @param batchId Id of the batch, from 1 to `batchCount()`.
    /// @return root Merkle root over the batch's event leaves.
    /// @return firstSeq Sequence number of the batch's first event.
    /// @return eventCount Number of events in the batch.
    /// @return dataHash Hash of the batch's off-chain data.
    /// @return anchoredAt Timestamp of the anchoring block [s since the Unix epoch].
    function batch(
        uint256 batchId
    )
        external
        view
        returns (bytes32 root, uint64 firstSeq, uint32 eventCount, bytes32 dataHash, uint64 anchoredAt)
    {
        uint256 count = _batchCount;
        if (batchId == 0 || batchId > count) revert DrecLedgerUnknownBatch(batchId, count);
        Commitment storage commitment = _commitments[batchId];
        Anchor storage anchor = _anchors[commitment.root];
        return (commitment.root, anchor.firstSeq, anchor.eventCount, commitment.dataHash, anchor.anchoredAt);
    }

    /// @notice The batch that anchors event `seq`.
    /// @param seq Sequence number of an anchored event.
    /// @return batchId Id of the batch whose range holds `seq`.
    function batchOf(uint64 seq) external view returns (uint256 batchId) {
        uint64 next = _nextSeq;
        if (seq == 0 || seq >= next) revert DrecLedgerSeqNotAnchored(seq, next);
        // Batches are consecutive, so first sequence numbers rise with the id: find the
        // last batch that starts at or before `seq`.
        uint256 low = 1;
        uint256 high = _batchCount;
        while (low < high) {
            uint256 mid = (low + high + 1) / 2;
            if (_anchors[_commitments[mid].root].firstSeq <= seq) {
                low = mid;
            } else {
                high = mid - 1;
            }
        }
        return low;
    }

    /// @notice Whether `root` is the root of an anchored batch.
    function isRoot(bytes32 root) external view returns (bool) {
        return _anchors[root].batchId != 0;
    }

    /// @notice Whether `leaf` belongs to the anchored batch with root `root`, by `proof`.
    /// @param root Root of an anchored batch.
    /// @param leaf Leaf hash of an event: keccak256(0x00 || canonical body).
    /// @param proof Sibling hashes from the leaf up to the root.
    function verifyLeaf(bytes32 root, bytes32 leaf, bytes32[] calldata proof) external view returns (bool) {
        if (_anchors[root].batchId == 0) return false;
        bytes32 node = leaf;
        for (uint256 i = 0; i < proof.length; ++i) {
            bytes32 sibling = proof[i];
            node = node < sibling
                ? keccak256(abi.encodePacked(bytes1(0x01), node, sibling))
                : keccak256(abi.encodePacked(bytes1(0x01), sibling, node));
        }
        return node == root;
    }
}
