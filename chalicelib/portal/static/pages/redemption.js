// A redemption statement: serial ranges, memo, the ledger file and its SHA-256, checked in the browser.
import { useState } from 'preact/hooks';
import { apiUrl, get } from '../api.js';
import { Definitions, ErrorBox, html, Link, Loading, Table, useAsync } from '../ui.js';

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
      ${outcome.same ? 'The downloaded ledger matches the statement.' : 'The downloaded ledger does NOT match the statement'}:
      <code class="hash">${outcome.actual}</code></p>` : null}
  </div>`;
}

const rangeText = (r) => (typeof r === 'string' ? r : r.first && r.last ? (r.first === r.last ? r.first : `${r.first} – ${r.last}`)
  : JSON.stringify(r));
const rangeCount = (r) => (typeof r === 'object' && r.count != null ? r.count : '');

export function RedemptionPage({ redemptionId }) {
  const statement = useAsync(() => get(`redemptions/${encodeURIComponent(redemptionId)}`), [redemptionId]);
  const s = statement.data || {};
  const sponsors = s.sponsors || [];
  return html`<h1>Redemption statement ${redemptionId}</h1>
    <${Loading} state=${statement}>
      <${Definitions} items=${[
        ['Account', s.account_id && html`<${Link} href=${`accounts/${s.account_id}`}>${s.account_id}</${Link}>`],
        ['Beneficiary', s.beneficiary], ['Purpose', s.purpose],
        ['Claim period', s.claim_period_start && `${s.claim_period_start} – ${s.claim_period_end}`],
        ['D-RECs', s.serials ? `${s.serials.length} (${(s.serials.length).toLocaleString('en')} kWh)` : null],
        ['Redeemed', s.redeemed_at || s.occurred_at]]} />
      <h2>Serial ranges</h2>
      <${Table} caption="Serial ranges" rows=${s.serial_ranges || []} columns=${[
        { label: 'Range', render: rangeText }, { label: 'Count', render: rangeCount }]} />
      ${sponsors.length ? html`<h2>Sponsors</h2><${Table} caption="Sponsors" rows=${sponsors}
        columns=${[{ key: 'name', label: 'Sponsor' }, { key: 'share', label: 'Share' }]} />` : null}
      <h2>Memo</h2>
      <pre class="memo" id="memo" tabindex="0">${s.memo}</pre>
      <h2>Ledger</h2>
      ${s.ledger_url ? html`<p><a id="ledger-download" href=${ledgerHref(s.ledger_url)} download>Download the ledger (CSV)</a></p>` : null}
      <p>SHA-256: <code class="hash" id="ledger-sha256">${s.ledger_sha256}</code></p>
      ${s.ledger_url ? html`<${LedgerCheck} url=${s.ledger_url} expected=${s.ledger_sha256} />` : null}
    <//>`;
}
