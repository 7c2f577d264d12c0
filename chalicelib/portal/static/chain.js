// Reads the ledger contract straight from the browser over JSON-RPC, trusting the chain rather than the API.

// First 4 bytes of keccak256("isRoot(bytes32)"), the contract's view of whether a Merkle root is anchored.
// tests/unit/test_portal_assets.py recomputes it from the compiled ABI.
export const IS_ROOT_SELECTOR = '0xcaadea17';

/** Calldata for isRoot(root): selector and the 32-byte root, hex without separators. */
export function isRootCalldata(root) {
  const hex = String(root).toLowerCase().replace(/^0x/, '');
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`not a 32-byte root: ${root}`);
  return IS_ROOT_SELECTOR + hex;
}

/** True when the contract at `contract` on the chain at `rpcUrl` knows `root` (eth_call at the latest block). */
export async function isRootOnChain(rpcUrl, contract, root) {
  const response = await fetch(rpcUrl, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_call',
      params: [{ to: contract, data: isRootCalldata(root) }, 'latest'] }),
  });
  const body = await response.json();
  if (body.error) throw new Error(body.error.message || 'eth_call failed');
  return BigInt(body.result) !== 0n;
}
