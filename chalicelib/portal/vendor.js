#!/usr/bin/env node
// Copies the portal's pinned front-end libraries from node_modules into static/vendor/,
// byte for byte, so the portal needs no build step and no CDN. Run after `npm install`:
//   node chalicelib/portal/vendor.js           copy (and write vendor/versions.json)
//   node chalicelib/portal/vendor.js --check   exit 1 when a copy differs from node_modules
'use strict';

const fs = require('fs');
const path = require('path');

const repo = path.resolve(__dirname, '..', '..');
const modules = path.join(repo, 'node_modules');
const target = path.join(__dirname, 'static', 'vendor');

// [package, file inside the package, name served under /portal/vendor/]
const FILES = [
  ['preact', 'dist/preact.mjs', 'preact.mjs'],
  ['preact', 'hooks/dist/hooks.mjs', 'preact-hooks.mjs'],
  ['preact', 'LICENSE', 'LICENSE-preact.txt'],
  ['htm', 'dist/htm.module.js', 'htm.mjs'],
  ['htm', 'LICENSE', 'LICENSE-htm.txt'],
  ['chart.js', 'dist/chart.umd.min.js', 'chart.umd.min.js'],
  ['chart.js', 'LICENSE.md', 'LICENSE-chart.js.txt'],
  // The fleet map: ES modules (d3-geo imports "d3-array", which the import map resolves; d3-array's
  // bundle carries its own InternMap), topojson-client as a classic script (it has no ES build).
  ['d3-array', 'dist/d3-array.min.mjs', 'd3-array.mjs'],
  ['d3-array', 'LICENSE', 'LICENSE-d3-array.txt'],
  ['d3-geo', 'dist/d3-geo.min.mjs', 'd3-geo.mjs'],
  ['d3-geo', 'LICENSE', 'LICENSE-d3-geo.txt'],
  ['topojson-client', 'dist/topojson-client.min.js', 'topojson-client.min.js'],
  ['topojson-client', 'LICENSE', 'LICENSE-topojson-client.txt'],
  // Natural Earth country outlines (public domain) as TopoJSON: 1:110m for the world, 1:50m once zoomed in.
  ['world-atlas', 'countries-110m.json', 'countries-110m.json'],
  ['world-atlas', 'countries-50m.json', 'countries-50m.json'],
  ['world-atlas', 'LICENSE', 'LICENSE-world-atlas.txt'],
];

function pinned(name) {
  const wanted = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')).dependencies[name];
  const installed = JSON.parse(fs.readFileSync(path.join(modules, name, 'package.json'), 'utf8')).version;
  if (wanted !== installed) {
    throw new Error(`${name}: package.json pins ${wanted} but node_modules has ${installed}; run npm install`);
  }
  return installed;
}

function main() {
  const check = process.argv.includes('--check');
  const versions = {};
  const stale = [];
  fs.mkdirSync(target, { recursive: true });
  for (const [name, file, served] of FILES) {
    versions[name] = pinned(name);
    const source = fs.readFileSync(path.join(modules, name, file));
    const destination = path.join(target, served);
    const current = fs.existsSync(destination) ? fs.readFileSync(destination) : null;
    if (current !== null && current.equals(source)) continue;
    if (check) stale.push(served);
    else fs.writeFileSync(destination, source);
  }
  // Sorted keys and a trailing newline: the same inputs always give the same bytes.
  const manifest = JSON.stringify(Object.fromEntries(Object.entries(versions).sort()), null, 2) + '\n';
  const manifestPath = path.join(target, 'versions.json');
  const currentManifest = fs.existsSync(manifestPath) ? fs.readFileSync(manifestPath, 'utf8') : null;
  if (currentManifest !== manifest) {
    if (check) stale.push('versions.json');
    else fs.writeFileSync(manifestPath, manifest);
  }
  if (stale.length) {
    console.error(`vendored copies out of date: ${stale.join(', ')}; run node chalicelib/portal/vendor.js`);
    process.exit(1);
  }
  console.log(`${check ? 'checked' : 'vendored'} ${FILES.length} files into ${path.relative(repo, target)}`);
}

main();
