// Readings: CSV upload with progress and its per-line report, how each reading was judged, operator review.
import { useState } from 'preact/hooks';
import { can, get, post, uploadText } from '../api.js';
import { Definitions, ErrorBox, html, Link, Loading, NeedsKey, number, Table, useAsync, usePaged, wh } from '../ui.js';

const STATUS_TEXT = { queued: 'queued', accepted: 'accepted', rejected: 'rejected', flagged: 'flagged for review',
  awaiting_peers: 'awaiting neighbours', active: 'active', under_review: 'under review', suspended: 'suspended' };

/** What a rule means to a person reading the table (the API's rule name stays in the title). */
const RULE_TEXT = { device_under_review: 'held: device under review', device_suspended: 'device suspended',
  above_peers: 'above its neighbours' };

export const statusBadge = (status) => html`<span class=${`badge badge-${status}`}>${STATUS_TEXT[status] || status}</span>`;

/** The rule that decided: the API's `rule` where given, else its `reason`. */
const rule = (r) => (r.rule && RULE_TEXT[r.rule]
  ? html`<span class=${`rule rule-${r.rule}`} title=${r.reason || r.rule}>${RULE_TEXT[r.rule]}</span>`
  : r.rule || r.reason || '');

export const READING_COLUMNS = [
  { label: 'Reading', render: (r) => html`<${Link} href=${`readings/${r.reading_id}`}>${r.reading_id}</${Link}>` },
  { key: 'period_start', label: 'From (UTC)' }, { key: 'period_end', label: 'To (UTC)' },
  { label: 'Energy', render: (r) => wh(r.energy_wh) }, { label: 'Status', render: (r) => statusBadge(r.status) },
  { label: 'Expected', render: (r) => wh(r.expected_wh != null ? Math.round(r.expected_wh) : null) },
  { label: 'σ', render: (r) => wh(r.sigma_wh != null ? Math.round(r.sigma_wh) : null) },
  { label: 'Ceiling', render: (r) => wh(r.ceiling_wh != null ? Math.round(r.ceiling_wh) : null) },
  { label: 'Decided by', render: rule },
];

export function ReadingsTable({ path, query }) {
  const list = usePaged(path, query || {}, 50);
  return html`<${Loading} state=${list}>
    <${Table} caption="Readings" rows=${list.items} columns=${READING_COLUMNS} empty="No readings." />
    ${list.pager}
  <//>`;
}

function Upload() {
  const [file, setFile] = useState(null);
  const [progress, setProgress] = useState(null);
  const [report, setReport] = useState(null);
  const [error, setError] = useState(null);
  const submit = async (event) => {
    event.preventDefault();
    setReport(null); setError(null);
    if (!file) { setError(new Error('Choose a CSV file first.')); return; }
    setProgress(0);
    try {
      const text = await file.text();
      setReport(await uploadText('uploads', text, { query: { name: file.name }, onProgress: setProgress }));
      setProgress(1);
    } catch (exc) {
      setError(exc);
      setProgress(null);
    }
  };
  return html`<form id="upload-form" onSubmit=${submit} noValidate>
    <div class="field"><label for="upload-file">CSV file of readings</label>
      <input id="upload-file" name="file" type="file" accept=".csv,text/csv" aria-describedby="upload-hint"
        onChange=${(e) => setFile(e.target.files[0] || null)} />
      <small id="upload-hint">Header: <code>device_id,period_start,period_end,energy_wh[,external_id]</code>;
        times in UTC (ISO 8601), energy in whole Wh.</small></div>
    <button type="submit">Upload</button>
    ${progress !== null ? html`<div class="field"><label for="upload-progress">Upload progress</label>
      <progress id="upload-progress" max="1" value=${progress}>${Math.round(progress * 100)}%</progress></div>` : null}
    <${ErrorBox} error=${error} />
    ${report ? html`<div id="upload-report" class="result" role="status">
      <p><strong>${number(report.rows)}</strong> rows read, <strong>${number(report.queued)}</strong> queued for
        validation, <strong>${number((report.errors || []).length)}</strong> refused.</p>
      <${Table} caption="Lines refused" rows=${report.errors || []} empty="Every line was accepted for validation."
        columns=${[{ key: 'line', label: 'Line' }, { key: 'error', label: 'Problem' }]} />
    </div>` : null}
  </form>`;
}

/** A decision with an optional note posted to `path` (a reading's or a device's review); `onDone` after it. */
export function useDecision(path, onDone) {
  const [note, setNote] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const decide = async (decision) => {
    setBusy(true); setError(null);
    try {
      await post(path, note ? { decision, note } : { decision });
      onDone();
    } catch (exc) {
      setError(exc);
    } finally {
      setBusy(false);
    }
  };
  return { note, setNote, error, busy, decide };
}

function Review({ reading, onDone }) {
  const { note, setNote, error, busy, decide } = useDecision(
    `readings/${encodeURIComponent(reading.reading_id)}/review`, onDone);
  const id = `review-${reading.reading_id}`;
  return html`<div class="review">
    <label for=${`${id}-note`}>Note</label>
    <input id=${`${id}-note`} value=${note} onInput=${(e) => setNote(e.target.value)} />
    <button type="button" disabled=${busy} onClick=${() => decide('accept')}>Accept</button>
    <button type="button" class="danger" disabled=${busy} onClick=${() => decide('reject')}>Reject</button>
    <${ErrorBox} error=${error} />
  </div>`;
}

function Flagged() {
  const list = usePaged('readings', { status: 'flagged' }, 50);
  return html`<${Loading} state=${list}>
    <${Table} caption="Readings flagged for review" rows=${list.items} empty="No reading waits for review."
      columns=${[...READING_COLUMNS, { label: 'Device', render: (r) => html`<${Link} href=${`devices/${r.device_id}`}>${r.device_id}</${Link}>` },
        { label: 'Review', render: (r) => html`<${Review} reading=${r} onDone=${list.reload} />` }]} />
    ${list.pager}
  <//>`;
}

export function Readings({ session }) {
  return html`<h1>Readings</h1>
    <section aria-labelledby="upload-title">
      <h2 id="upload-title">Upload a CSV file</h2>
      ${can('upload_readings', session) ? html`<${Upload} />` : html`<${NeedsKey} action="upload readings (a source)" />`}
    </section>
    <section aria-labelledby="flagged-title">
      <h2 id="flagged-title">Flagged readings</h2>
      <p>Readings beyond two standard deviations of the expectation, or far above their neighbours, wait here for the
        operator's decision; readings held because their device is under review are decided on the device's page.</p>
      ${can('review_readings', session) ? html`<${Flagged} />` : html`<${NeedsKey} action="review readings (the operator)" />`}
    </section>`;
}

export function ReadingPage({ readingId }) {
  const reading = useAsync(() => get(`readings/${encodeURIComponent(readingId)}`), [readingId]);
  const r = reading.data || {};
  return html`<h1>Reading ${readingId}</h1>
    <${Loading} state=${reading}>
      <${Definitions} items=${[
        ['Device', r.device_id && html`<${Link} href=${`devices/${r.device_id}`}>${r.device_id}</${Link}>`],
        ['Period (UTC)', r.period_start && `${r.period_start} – ${r.period_end}`], ['Energy', wh(r.energy_wh)],
        ['Status', r.status && statusBadge(r.status)], ['Expected', r.expected_wh != null ? wh(Math.round(r.expected_wh)) : null],
        ['σ', r.sigma_wh != null ? wh(Math.round(r.sigma_wh)) : null],
        ['Ceiling', r.ceiling_wh != null ? wh(Math.round(r.ceiling_wh)) : null], ['Decided by', rule(r)],
        ['Reason', r.reason],
        ['D-RECs', (r.serials || []).length ? html`${r.serials.map((s) => html`<${Link} href=${`drecs/${s}`}>${s}</${Link}> `)}` : null]]} />
    <//>`;
}
