// Transfer and redemption forms: D-RECs chosen by serials, or by quantity with a filter.
import { can, keepLedgerLink, post } from '../api.js';
import { DEVICE_TYPES, Form, html, Link, NeedsKey, OFFTAKER_TYPES, typed } from '../ui.js';

const byQuantity = (values) => values.mode !== 'quantity';
const bySerials = (values) => values.mode === 'quantity';

const CHOICE_FIELDS = [
  { name: 'mode', label: 'Choose D-RECs by', type: 'select', options: ['serials', 'quantity'], required: true },
  { name: 'serials', label: 'Serials', type: 'textarea', hidden: bySerials, hint: 'One serial per line (or separated by commas)' },
  { name: 'quantity', label: 'Quantity of D-RECs', type: 'number', step: '1', hidden: byQuantity },
  { name: 'country', label: 'Filter: country', hidden: byQuantity, placeholder: 'KE' },
  { name: 'device_type', label: 'Filter: device type', type: 'select', options: DEVICE_TYPES, any: 'any', hidden: byQuantity },
  { name: 'offtaker_type', label: 'Filter: off-taker type', type: 'select', options: OFFTAKER_TYPES, any: 'any', hidden: byQuantity },
  { name: 'vintage_from', label: 'Filter: vintage from', type: 'month', hidden: byQuantity },
  { name: 'vintage_to', label: 'Filter: vintage to', type: 'month', hidden: byQuantity },
];

const FILTER_NAMES = ['country', 'device_type', 'offtaker_type', 'vintage_from', 'vintage_to'];

/** The D-REC choice part of a transfer or redemption body: `serials`, or `quantity` with an optional `filter`. */
export function choice(values) {
  const fields = typed(CHOICE_FIELDS, values);
  if (values.mode === 'quantity') {
    const filter = Object.fromEntries(FILTER_NAMES.filter((n) => fields[n] !== undefined).map((n) => [n, fields[n]]));
    return { quantity: fields.quantity, ...(Object.keys(filter).length ? { filter } : {}) };
  }
  return { serials: String(values.serials || '').split(/[\s,]+/).filter(Boolean) };
}

const SerialList = ({ serials }) => html`<ul class="serials">${(serials || []).map((s) =>
  html`<li><${Link} href=${`drecs/${encodeURIComponent(s)}`}>${s}</${Link}></li>`)}</ul>`;

export function Transfer({ query, session }) {
  const fields = [
    { name: 'from_account_id', label: 'From account id', required: true },
    { name: 'to_account_id', label: 'To account id', required: true },
    ...CHOICE_FIELDS,
  ];
  const initial = { mode: 'serials', serials: query.serials || '',
    from_account_id: query.from_account_id || (session.role === 'account' ? session.id || '' : '') };
  return html`<h1>Transfer D-RECs</h1>
    ${can('transfer', session) ? html`<${Form} id="transfer-form" specs=${fields} initial=${initial} submitLabel="Transfer"
      onSubmit=${(values) => post('transfers', { from_account_id: values.from_account_id?.trim(),
        to_account_id: values.to_account_id?.trim(), ...choice(values) })}
      result=${(done) => html`<p id="transfer-done">Transfer <strong>${done.transfer_id}</strong> moved
        ${done.serials.length} D-REC${done.serials.length === 1 ? '' : 's'}:</p><${SerialList} serials=${done.serials} />`} />`
      : html`<${NeedsKey} action="transfer D-RECs (the holding account, the source that registered it, or the operator)" />`}`;
}

function Sponsors({ values, setValues }) {
  const sponsors = values.sponsors || [];
  const update = (i, key, value) => setValues((v) => ({ ...v,
    sponsors: sponsors.map((s, j) => (j === i ? { ...s, [key]: value } : s)) }));
  return html`<fieldset class="sponsors"><legend>Sponsors (optional)</legend>
    ${sponsors.map((s, i) => html`<div class="sponsor">
      <div class="field"><label for=${`sponsor-${i}-name`}>Sponsor ${i + 1} name</label>
        <input id=${`sponsor-${i}-name`} value=${s.name} onInput=${(e) => update(i, 'name', e.target.value)} /></div>
      <div class="field"><label for=${`sponsor-${i}-share`}>Share (0–1)</label>
        <input id=${`sponsor-${i}-share`} type="number" step="any" inputmode="decimal" value=${s.share}
          onInput=${(e) => update(i, 'share', e.target.value)} /></div>
      <button type="button" class="secondary" aria-label=${`remove sponsor ${i + 1}`}
        onClick=${() => setValues((v) => ({ ...v, sponsors: sponsors.filter((_, j) => j !== i) }))}>Remove</button>
    </div>`)}
    <button type="button" class="secondary" onClick=${() => setValues((v) => ({ ...v,
      sponsors: [...sponsors, { name: '', share: '' }] }))}>Add a sponsor</button>
  </fieldset>`;
}

export function Redeem({ query, session }) {
  const fields = [
    { name: 'account_id', label: 'Redeeming account id', required: true },
    ...CHOICE_FIELDS,
    { name: 'beneficiary', label: 'Beneficiary', required: true, hint: 'Who may claim the energy' },
    { name: 'purpose', label: 'Purpose', required: true },
    { name: 'claim_period_start', label: 'Claim period start', type: 'date', required: true },
    { name: 'claim_period_end', label: 'Claim period end', type: 'date', required: true },
  ];
  const initial = { mode: 'serials', serials: query.serials || '',
    account_id: query.account_id || (session.role === 'account' ? session.id || '' : '') };
  const submit = async (values) => {
    const sponsors = (values.sponsors || []).filter((s) => s.name.trim())
      .map((s) => ({ name: s.name.trim(), share: Number(s.share) }));
    const body = { account_id: values.account_id?.trim(), ...choice(values),
      ...typed(fields.filter((f) => ['beneficiary', 'purpose', 'claim_period_start', 'claim_period_end'].includes(f.name)), values),
      ...(sponsors.length ? { sponsors } : {}) };
    const done = await post('redemptions', body);
    keepLedgerLink(done.redemption_id, done.ledger_url);
    return done;
  };
  return html`<h1>Redeem D-RECs</h1>
    <p>Redemption retires D-RECs for ever on behalf of a beneficiary and produces a statement.</p>
    ${can('redeem', session) ? html`<${Form} id="redeem-form" specs=${fields} initial=${initial} submitLabel="Redeem"
      onSubmit=${submit} extra=${(values, setValues) => html`<${Sponsors} values=${values} setValues=${setValues} />`}
      result=${(done) => html`<p id="redeem-done">Redemption <strong>${done.redemption_id}</strong> retired
        ${done.serials.length} D-REC${done.serials.length === 1 ? '' : 's'}.
        <${Link} href=${`redemptions/${encodeURIComponent(done.redemption_id)}`}>See the statement</${Link}></p>`} />`
      : html`<${NeedsKey} action="redeem D-RECs (the holding account, the source that registered it, or the operator)" />`}`;
}
