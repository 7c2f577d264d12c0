// D-RECs: queries by owner and characteristics; one D-REC's provenance, hourly energy, events and chain check.
import { useState } from 'preact/hooks';
import { get, getAll } from '../api.js';
import { isRootOnChain } from '../chain.js';
import {
  ChartBox, Definitions, DEVICE_TYPES, ErrorBox, Filters, html, Link, Loading, number, OFFTAKER_TYPES, Table,
  useAsync, usePaged, wh, words,
} from '../ui.js';

const QUERY_FIELDS = [
  { name: 'owner_account_id', label: 'Owner account id' },
  { name: 'status', label: 'Status', type: 'select', options: ['active', 'redeemed'], any: 'any status' },
  { name: 'country', label: 'Country', placeholder: 'KE' },
  { name: 'device_type', label: 'Device type', type: 'select', options: DEVICE_TYPES, any: 'any type' },
  { name: 'offtaker_type', label: 'Off-taker type', type: 'select', options: OFFTAKER_TYPES, any: 'any off-taker' },
  { name: 'device_id', label: 'Device id' },
  { name: 'vintage_from', label: 'Vintage from', type: 'month' },
  { name: 'vintage_to', label: 'Vintage to', type: 'month' },
];

const serialLink = (d) => html`<${Link} href=${`drecs/${encodeURIComponent(d.serial)}`}>${d.serial}</${Link}>`;

export function Drecs({ query }) {
  const [filter, setFilter] = useState(query || {});
  const list = usePaged('drecs', filter, 50);
  return html`<h1>D-RECs</h1>
    <p>Each D-REC certifies exactly 1 kWh (1,000 Wh) of renewable generation.</p>
    <${Filters} id="drec-filters" value=${filter} onApply=${setFilter} specs=${QUERY_FIELDS} />
    <${Loading} state=${list}>
      <${Table} caption="D-RECs" rows=${list.items} empty="No D-REC matches." columns=${[
        { label: 'Serial', render: serialLink },
        { label: 'Owner', render: (d) => html`<${Link} href=${`accounts/${d.owner_account_id}`}>${d.owner_account_id}</${Link}>` },
        { label: 'Status', render: (d) => html`<span class=${`badge badge-${d.status}`}>${d.status}</span>` },
        { key: 'vintage', label: 'Vintage' },
        { label: 'Generated (UTC)', render: (d) => `${d.period_start || ''} – ${d.period_end || ''}` },
        { key: 'country', label: 'Country' }, { label: 'Device type', render: (d) => words(d.device_type) },
        { label: 'Off-taker', render: (d) => words(d.offtaker_type) }]} />
      ${list.pager}
    <//>`;
}

/** Wh per UTC hour: each contribution spread over the hours of its period in proportion to their overlap. */
export function hourlyWh(contributions) {
  const hours = new Map();
  const HOUR = 3600e3;
  for (const c of contributions) {
    const start = Date.parse(c.period_start);
    const end = Date.parse(c.period_end);
    if (!(end > start)) continue;
    for (let t = Math.floor(start / HOUR) * HOUR; t < end; t += HOUR) {
      const overlap = Math.min(end, t + HOUR) - Math.max(start, t);
      hours.set(t, (hours.get(t) || 0) + (c.energy_wh * overlap) / (end - start));
    }
  }
  return [...hours.entries()].sort((a, b) => a[0] - b[0])
    .map(([t, energy]) => ({ hour: new Date(t).toISOString().slice(0, 13).replace('T', ' ') + ':00', energy_wh: energy }));
}

/** A verifier check passed: `ok`, or (per-event form) its leaf, proof and root all held. */
const checkPassed = (c) => (c.ok !== undefined ? c.ok : Boolean(c.leaf_ok && c.proof_ok && c.root_on_chain));

const describeCheck = (c) => (typeof c === 'object'
  ? [c.subject || c.event_id, c.what || c.type, c.detail].filter(Boolean).join(' — ') : String(c));

function VerifyOnChain({ serial, events }) {
  const [result, setResult] = useState(null);
  const [browser, setBrowser] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const verify = async () => {
    setBusy(true); setError(null); setResult(null); setBrowser(null);
    try {
      setResult(await get(`drecs/${encodeURIComponent(serial)}/verify`));
    } catch (exc) {
      setError(exc);
    }
    // A second opinion that needs no trust in the API: ask the chain itself whether each root is anchored.
    const roots = [...new Set(events.map((e) => e.anchor && e.anchor.root).filter(Boolean))];
    if (roots.length) {
      try {
        const ledger = await get('ledger');
        const checks = await Promise.all(roots.map(async (root) => ({ root,
          anchored: await isRootOnChain(ledger.rpc_hint, ledger.contract_address, root) })));
        setBrowser({ rpc: ledger.rpc_hint, contract: ledger.contract_address, checks });
      } catch (exc) {
        setBrowser({ error: exc.message });
      }
    }
    setBusy(false);
  };
  return html`<section aria-labelledby="verify-title">
    <h2 id="verify-title">Verify on chain</h2>
    <p>Checks every event of this D-REC: its leaf, its Merkle proof, and that the proof's root is anchored in the
      ledger contract.</p>
    <button type="button" id="verify" onClick=${verify} disabled=${busy}>${busy ? 'Verifying…' : 'Verify on chain'}</button>
    <${ErrorBox} error=${error} />
    ${result ? html`<div id="verify-result" class="result" role="status">
      <p class=${result.ok ? 'ok' : 'error'}><strong>${result.ok ? 'Verified' : 'Verification failed'}</strong>${
        result.ok ? ': every check passed, trusting only the ledger contract on the chain.'
          : result.first_mismatch ? `: first mismatch: ${describeCheck(result.first_mismatch)}` : ''}</p>
      <${Table} caption="Checks" rows=${result.checks || []} columns=${[
        { label: 'Subject', render: (c) => c.subject || c.event_id },
        { label: 'Check', render: (c) => c.what || c.type },
        { label: 'Result', render: (c) => (checkPassed(c) ? 'ok' : html`<strong>FAILED</strong>`) },
        { label: 'Detail', render: (c) => html`<code class="hash">${c.detail || c.tx_hash || ''}</code>` }]} />
    </div>` : null}
    ${browser ? html`<div id="verify-browser" class="result">
      ${browser.error ? html`<p>This browser could not reach the chain itself: ${browser.error}</p>`
        : html`<p>Asked the chain directly (${browser.rpc}, contract <code class="hash">${browser.contract}</code>):</p>
          <ul>${browser.checks.map((c) => html`<li>root <code class="hash">${c.root}</code>:
            ${c.anchored ? 'anchored' : 'NOT anchored'}</li>`)}</ul>`}
    </div>` : null}
  </section>`;
}

export function DrecPage({ serial }) {
  const drec = useAsync(() => get(`drecs/${encodeURIComponent(serial)}`), [serial]);
  const events = useAsync(() => getAll('events', { subject_id: serial }), [serial]);
  const d = drec.data || {};
  const contributions = d.contributions || [];
  // The D-REC's own events list is authoritative where present; /events adds anchors.
  const eventRows = events.data && events.data.length ? events.data : (d.events || []);
  const hours = hourlyWh(contributions);
  return html`<h1>D-REC ${serial}</h1>
    <${Loading} state=${drec}>
      <${Definitions} items=${[
        ['Status', html`<span class=${`badge badge-${d.status}`}>${d.status}</span>`],
        ['Owner', d.owner_account_id && html`<${Link} href=${`accounts/${d.owner_account_id}`}>${d.owner_account_id}</${Link}>`],
        ['Energy', wh(d.energy_wh)], ['Generated (UTC)', d.period_start && `${d.period_start} – ${d.period_end}`],
        ['Country', d.country], ['Device type', words(d.device_type)], ['Off-taker', words(d.offtaker_type)],
        ['Avoided emissions', d.avoided_co2_kg != null ? html`<span id="avoided">${number(d.avoided_co2_kg, 3)} kg CO₂</span>` : null]]} />
      <h2>Contributions</h2>
      <p>The exact slices of readings that make up its 1,000 Wh.</p>
      <${Table} caption="Contributions" rows=${contributions} columns=${[
        { label: 'Device', render: (c) => html`<${Link} href=${`devices/${c.device_id}`}>${c.device_id}</${Link}>` },
        { label: 'Reading', render: (c) => html`<${Link} href=${`readings/${c.reading_id}`}>${c.reading_id}</${Link}>` },
        { label: 'Energy', render: (c) => wh(c.energy_wh) },
        { key: 'period_start', label: 'From (UTC)' }, { key: 'period_end', label: 'To (UTC)' }]} />
      ${hours.length ? html`<${ChartBox} label="Energy per hour [Wh, UTC]" config=${{ type: 'bar',
        data: { labels: hours.map((x) => x.hour), datasets: [{ label: 'Wh', data: hours.map((x) => x.energy_wh),
          backgroundColor: '#f2a900' }] },
        options: { scales: { y: { beginAtZero: true, title: { display: true, text: 'Wh' } } } } }}
        table=${html`<${Table} rows=${hours} columns=${[{ key: 'hour', label: 'Hour (UTC)' },
          { label: 'Wh', render: (x) => number(x.energy_wh, 1) }]} />`} />` : null}
      <h2>Events</h2>
      <${Loading} state=${events}>
        <${Table} caption="Events" rows=${eventRows} columns=${[
          { key: 'event_id', label: 'Event id (shard, seq)' }, { key: 'type', label: 'Event' },
          { key: 'occurred_at', label: 'When (UTC)' },
          { key: 'source_id', label: 'Source' },
          { label: 'Anchored', render: (e) => (e.anchor ? html`batch ${e.anchor.batch_id}, tx <code class="hash">${e.anchor.tx_hash}</code>` : 'not yet') }]} />
      <//>
      <${VerifyOnChain} serial=${serial} events=${eventRows} />
    <//>`;
}
