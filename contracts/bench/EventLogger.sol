// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Event logger (benchmark baseline)
/// @notice The naive way to put events on the chain: one transaction per event, each
/// emitting the event's hash. Used only to compare gas against batch anchoring.
contract EventLogger {
    /// @notice Event `seq` with hash `eventHash` was logged.
    event EventLogged(uint64 indexed seq, bytes32 eventHash);

    /// @notice Logs one event.
    /// @param seq Sequence number of the event.
    /// @param eventHash Hash of the event's canonical body.
    function logEvent(uint64 seq, bytes32 eventHash) external {
        emit EventLogged(seq, eventHash);
    }
}
