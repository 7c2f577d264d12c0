// A redemption statement: serial ranges, memo, the ledger file and its SHA-256, checked in the browser.
import { useState } from 'preact/hooks';
import { apiUrl, get, keptLedgerLink } from '../api.js';
import { Definitions, ErrorBox, html, Link, Loading, number, Table, useAsync } from '../ui.js';

async function sha256Hex(bytes) {
  const digest = await crypto.subtle.digest('SHA-256', bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** `ledger_url` may be absolute or relative to the API. */
const ledgerHref = (url) => (/^https?:/.test(url) ? url : apiUrl(url).href);

function LedgerCheck({ url, expected }) {
  const [outcome, setOutcome] = useState(null);
  const [error, setError] = useState(null);
  const check = async () => {
    setOutcome(null); setError(null);
    try {
      const response = await fetch(ledgerHref(url));
      if (!response.ok) throw new Error(`the ledger download answered ${response.status}`);
      const actual = await sha256Hex(await response.arrayBuffer());
      setOutcome({ actual, same: actual === String(expected).toLowerCase() });
    } catch (exc) {
      setError(exc);
    }
  };
  return html`<div>
    <button type="button" id="check-ledger" onClick=${check}>Check the download's SHA-256 here</button>
    <${ErrorBox} error=${error} />
    ${outcome ? html`<p id="ledger-check" role="status" class=${outcome.same ? 'ok' : 'error'}>
      ${outcome.same ? 'The downloaded ledger matches the statement' : 'The downloaded ledger does NOT match the statement'}:
      <code class="hash">${outcome.actual}</code></p>` : null}
  </div>`;
}

/** Serial ranges read `first..last` (the statement's form) or are a single serial. */
export function rangeCount(range) {
  const [first, last] = String(range).split('..');
  if (!last) return 1;
  return Number(last.match(/(\d+)$/)[1]) - Number(first.match(/(\d+)$/)[1]) + 1;
}

/** Sponsors as served: {name, share, count, serial_ranges} each. */
function sponsorRows(sponsors) {
  return (sponsors || []).map((s) => ({ name: s.name, share: `${number(Number(s.share) * 100, 2)} %`,
    count: `${number(s.count)} D-REC${s.count === 1 ? '' : 's'}`, ranges: (s.serial_ranges || []).join(', ') }));
}

export function RedemptionPage({ redemptionId }) {
  const statement = useAsync(() => get(`redemptions/${encodeURIComponent(redemptionId)}`), [redemptionId]);
  const s = statement.data || {};
  const sponsors = sponsorRows(s.sponsors);
  // The stored statement's link has no token: only the tab that redeemed holds the tokened one.
  const ledgerUrl = keptLedgerLink(redemptionId);
  return html`<h1>Redemption statement ${redemptionId}</h1>
    <${Loading} state=${statement}>
      <${Definitions} items=${[
        ['Account', s.account_id && html`<${Link} href=${`accounts/${s.account_id}`}>${s.account_id}</${Link}>`],
        ['Beneficiary', s.beneficiary], ['Purpose', s.purpose],
        ['Claim period', s.claim_period_start && `${s.claim_period_start} – ${s.claim_period_end}`],
        ['D-RECs', s.serials ? `${number(s.serials.length)} (${number(s.total_kwh ?? s.serials.length)} kWh)` : null],
        ['Generated (UTC)', s.generation_start && `${s.generation_start} – ${s.generation_end}`],
        ['Devices', number(s.devices_count)], ['Countries', (s.countries || []).join(', ')],
        ['Avoided emissions', s.avoided_co2_kg != null ? `${number(s.avoided_co2_kg, 3)} kg CO₂` : null],
        ['Status', s.status], ['Redeemed', s.completed_at || s.created_at]]} />
      <h2>Serial ranges</h2>
      <${Table} caption="Serial ranges" rows=${s.serial_ranges || []} columns=${[
        { label: 'Range', render: (r) => html`<code class="hash">${r}</code>` },
        { label: 'D-RECs', render: rangeCount }]} />
      ${sponsors.length ? html`<h2>Sponsors</h2><${Table} caption="Sponsors" rows=${sponsors}
        columns=${[{ key: 'name', label: 'Sponsor' }, { key: 'share', label: 'Share' },
          { key: 'count', label: 'Sponsored' },
          { label: 'Serial ranges', render: (r) => html`<code class="hash">${r.ranges}</code>` }]} />` : null}
      <h2>Memo</h2>
      <pre class="memo" id="memo" tabindex="0">${s.memo}</pre>
      <h2>Ledger</h2>
      ${ledgerUrl ? html`<p><a id="ledger-download" href=${ledgerHref(ledgerUrl)} download=${`${redemptionId}-ledger.csv`}
        >Download the ledger (CSV)</a></p>` : html`<p class="note" id="ledger-no-link">The ledger opens only with the
        link given when the D-RECs were redeemed (it carries a token); this browser tab does not hold it.</p>`}
      <p>SHA-256: <code class="hash" id="ledger-sha256">${s.ledger_sha256}</code></p>
      ${ledgerUrl ? html`<${LedgerCheck} url=${ledgerUrl} expected=${s.ledger_sha256} />` : null}
    <//>`;
}
