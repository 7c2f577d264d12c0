// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Certificate token (benchmark baseline)
/// @notice A minimal ERC-1155-style token that mints one token per certificate and keeps
/// the certificate's data hash on the chain. Used only to compare gas against batch anchoring;
/// it has no transfers and no receiver hooks.
contract CertificateToken {
    mapping(uint256 id => mapping(address account => uint256)) private _balances;
    mapping(uint256 id => bytes32) private _dataHashes;
    address private immutable _minter;

    /// @notice ERC-1155 transfer event; a mint comes from the zero address.
    event TransferSingle(
        address indexed operator,
        address indexed from,
        address indexed to,
        uint256 id,
        uint256 value
    );

    /// @notice `account` may not mint.
    error CertificateTokenUnauthorizedAccount(address account);

    /// @notice Certificate `id` was minted already.
    error CertificateTokenAlreadyMinted(uint256 id);

    /// @notice Deploys a token whose only minter is the deployer.
    constructor() {
        _minter = msg.sender;
    }

    /// @notice Mints certificate `id` to `to`, recording its data hash.
    /// @param to Receiving account.
    /// @param id Certificate token id.
    /// @param dataHash Hash of the certificate's data.
    function mint(address to, uint256 id, bytes32 dataHash) external {
        if (msg.sender != _minter) revert CertificateTokenUnauthorizedAccount(msg.sender);
        if (_dataHashes[id] != bytes32(0)) revert CertificateTokenAlreadyMinted(id);
        _dataHashes[id] = dataHash;
        _balances[id][to] += 1;
        emit TransferSingle(msg.sender, address(0), to, id, 1);
    }

    /// @notice Balance of certificate `id` held by `account`.
    function balanceOf(address account, uint256 id) external view returns (uint256) {
        return _balances[id][account];
    }

    /// @notice Data hash recorded for certificate `id`.
    function dataHashOf(uint256 id) external view returns (bytes32) {
        return _dataHashes[id];
    }
}
