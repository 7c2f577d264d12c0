#!/usr/bin/env node
// Compiles every Solidity source under contracts/ with the pinned solcjs and writes one
// artifact per contract to contracts/build/<Name>.json, plus a copy of the ledger's artifact
// in chalicelib/contracts_build/ so the deployed functions carry it (they ship chalicelib only).
//   node contracts/compile.js          write artifacts
//   node contracts/compile.js --check  exit 1 if any committed artifact is stale or missing
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const COMPILER = '0.8.37';
const EVM_VERSION = 'prague';
const CONTRACTS_DIR = __dirname;
const REPO_ROOT = path.dirname(CONTRACTS_DIR);
const BUILD_DIR = path.join(CONTRACTS_DIR, 'build');
const PACKAGED_DIR = path.join(REPO_ROOT, 'chalicelib', 'contracts_build');
const PACKAGED_CONTRACTS = new Set(['DrecLedger']);
const SKIP_DIRS = new Set(['build', 'node_modules']);

function findSources(dir) {
  const found = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory() && !SKIP_DIRS.has(entry.name)) found.push(...findSources(full));
    else if (entry.isFile() && entry.name.endsWith('.sol')) found.push(full);
  }
  return found;
}

function toSourcePath(file) {
  // Forward slashes on every platform: the path is hashed into the bytecode metadata.
  return path.relative(REPO_ROOT, file).split(path.sep).join('/');
}

function compileAll() {
  const version = solc.version();
  if (!version.startsWith(COMPILER + '+')) {
    throw new Error(`solc ${version} installed, ${COMPILER} required (run npm install)`);
  }
  const files = findSources(CONTRACTS_DIR).map(toSourcePath).sort();
  const sources = {};
  for (const sourcePath of files) {
    sources[sourcePath] = { content: fs.readFileSync(path.join(REPO_ROOT, sourcePath), 'utf8') };
  }
  const input = {
    language: 'Solidity',
    sources,
    settings: {
      optimizer: { enabled: true, runs: 200 },
      evmVersion: EVM_VERSION,
      outputSelection: {
        '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] },
      },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (output.errors || []).filter((e) => e.severity === 'error');
  for (const message of output.errors || []) process.stderr.write(message.formattedMessage + '\n');
  if (errors.length > 0) throw new Error(`${errors.length} compilation error(s)`);

  const artifacts = new Map();
  for (const sourcePath of files) {
    const sourceSha256 = crypto.createHash('sha256').update(sources[sourcePath].content).digest('hex');
    for (const contractName of Object.keys(output.contracts[sourcePath] || {}).sort()) {
      if (artifacts.has(contractName)) {
        throw new Error(`contract name ${contractName} is defined twice; artifacts are keyed by name`);
      }
      const compiled = output.contracts[sourcePath][contractName];
      const artifact = {
        contractName,
        sourcePath,
        compiler: COMPILER,
        evmVersion: EVM_VERSION,
        abi: compiled.abi,
        bytecode: '0x' + compiled.evm.bytecode.object,
        deployedBytecode: '0x' + compiled.evm.deployedBytecode.object,
        sourceSha256,
      };
      artifacts.set(contractName, JSON.stringify(artifact, null, 2) + '\n');
    }
  }
  return artifacts;
}

// Every artifact directory with the contracts it must hold.
function targets(artifacts) {
  const packaged = new Map([...artifacts].filter(([name]) => PACKAGED_CONTRACTS.has(name)));
  return [
    { dir: BUILD_DIR, artifacts },
    { dir: PACKAGED_DIR, artifacts: packaged },
  ];
}

function shown(file) {
  return path.relative(REPO_ROOT, file).split(path.sep).join('/');
}

function existingArtifacts(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((name) => name.endsWith('.json')).sort();
}

function check(artifacts) {
  const problems = [];
  for (const { dir, artifacts: expected } of targets(artifacts)) {
    for (const [name, text] of expected) {
      const file = path.join(dir, `${name}.json`);
      if (!fs.existsSync(file)) problems.push(`missing: ${shown(file)}`);
      else if (fs.readFileSync(file, 'utf8') !== text) problems.push(`differs: ${shown(file)}`);
    }
    for (const file of existingArtifacts(dir)) {
      if (!expected.has(path.basename(file, '.json'))) {
        problems.push(`stale (not produced): ${shown(path.join(dir, file))}`);
      }
    }
  }
  for (const problem of problems) process.stderr.write(problem + '\n');
  if (problems.length > 0) {
    process.stderr.write(
      'artifacts are out of date: run `node contracts/compile.js` and commit ' +
        'contracts/build and chalicelib/contracts_build\n',
    );
    return 1;
  }
  process.stdout.write(`${artifacts.size} artifacts up to date (+ ${PACKAGED_CONTRACTS.size} packaged copy)\n`);
  return 0;
}

function write(artifacts) {
  for (const { dir, artifacts: expected } of targets(artifacts)) {
    fs.mkdirSync(dir, { recursive: true });
    for (const [name, text] of expected) {
      const file = path.join(dir, `${name}.json`);
      fs.writeFileSync(file, text);
      process.stdout.write(`wrote ${shown(file)}\n`);
    }
  }
  return 0;
}

function main(argv) {
  const artifacts = compileAll();
  return argv.includes('--check') ? check(artifacts) : write(artifacts);
}

process.exitCode = main(process.argv.slice(2));
