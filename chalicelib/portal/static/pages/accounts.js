// Accounts: list with filters and paging, registration of accounts (and, for the operator, sources).
import { get, post, can } from '../api.js';
import {
  ACCOUNT_KINDS, Definitions, Filters, Form, html, Link, Loading, NeedsKey, number, SOURCE_KINDS, Table, typed,
  useAsync, usePaged, words,
} from '../ui.js';
import { useState } from 'preact/hooks';

const ACCOUNT_FIELDS = [
  { name: 'name', label: 'Name', required: true },
  { name: 'kind', label: 'Kind', type: 'select', options: ACCOUNT_KINDS, required: true },
  { name: 'country', label: 'Country', required: true, hint: 'ISO 3166-1 alpha-2, e.g. KE', placeholder: 'KE' },
  { name: 'external_id', label: 'External id', hint: 'Your own id; registering it again returns the same account' },
  { name: 'contact', label: 'Contact' },
];

const SOURCE_FIELDS = [
  { name: 'name', label: 'Name', required: true },
  { name: 'kind', label: 'Kind', type: 'select', options: SOURCE_KINDS, required: true },
  { name: 'signing_address', label: 'Signing address', hint: '0x… Ethereum address (optional)' },
];

function KeyShownOnce({ label, id, apiKey }) {
  return html`<p>${label} <strong><${Link} href=${`accounts/${id}`}>${id}</${Link}></strong> registered.</p>
    ${apiKey ? html`<p>Its API key, shown only now: <code class="secret" id="new-api-key">${apiKey}</code></p>` : null}`;
}

export function Accounts({ query, session }) {
  const [filter, setFilter] = useState(query || {});
  const list = usePaged('accounts', filter);
  const [added, setAdded] = useState(0);
  return html`<h1>Accounts</h1>
    <section aria-labelledby="accounts-list">
      <h2 id="accounts-list">Registered accounts</h2>
      <${Filters} id="account-filters" value=${filter} onApply=${setFilter} specs=${[
        { name: 'kind', label: 'Kind', type: 'select', options: ACCOUNT_KINDS, any: 'any kind' },
        { name: 'country', label: 'Country', placeholder: 'KE' }]} />
      <${Loading} state=${list}>
        <${Table} caption="Accounts" key=${added} rows=${list.items} columns=${[
          { label: 'Account', render: (a) => html`<${Link} href=${`accounts/${a.account_id}`}>${a.account_id}</${Link}>` },
          { key: 'name', label: 'Name' }, { label: 'Kind', render: (a) => words(a.kind) },
          { key: 'country', label: 'Country' }, { key: 'registered_at', label: 'Registered' }]} />
        ${list.pager}
      <//>
    </section>
    <section aria-labelledby="account-register">
      <h2 id="account-register">Register an account</h2>
      ${can('register_account', session) ? html`<${Form} id="account-form" specs=${ACCOUNT_FIELDS}
        submitLabel="Register account"
        onSubmit=${async (values) => { const done = await post('accounts', typed(ACCOUNT_FIELDS, values));
          list.reload(); setAdded((n) => n + 1); return done; }}
        result=${(done) => html`<${KeyShownOnce} label="Account" id=${done.account_id} apiKey=${done.api_key} />`} />`
        : html`<${NeedsKey} action="register accounts (the operator or a source)" />`}
    </section>
    ${can('register_source', session) ? html`<section aria-labelledby="source-register">
      <h2 id="source-register">Register a source</h2>
      <${Form} id="source-form" specs=${SOURCE_FIELDS} submitLabel="Register source"
        onSubmit=${(values) => post('sources', typed(SOURCE_FIELDS, values))}
        result=${(done) => html`<p>Source <strong>${done.source_id}</strong> registered. Its API key, shown only now:
          <code class="secret">${done.api_key}</code></p>`} />
    </section>` : null}`;
}

function Holdings({ accountId }) {
  const holdings = useAsync(() => get(`accounts/${encodeURIComponent(accountId)}/holdings`), [accountId]);
  const data = holdings.data || {};
  return html`<${Loading} state=${holdings}>
    <${Definitions} items=${[['Active D-RECs', number(data.active)], ['Redeemed D-RECs', number(data.redeemed)]]} />
    <${Table} caption="Holdings by status, country, device type and vintage" rows=${data.groups || []}
      empty="No D-RECs held." columns=${[
        { label: 'Status', render: (g) => html`<span class=${`badge badge-${g.status}`}>${g.status}</span>` },
        { key: 'country', label: 'Country' }, { label: 'Device type', render: (g) => words(g.device_type) },
        { key: 'vintage', label: 'Vintage' }, { label: 'D-RECs', render: (g) => number(g.count) }]} />
  <//>`;
}

function Moves({ accountId }) {
  const transfers = usePaged('transfers', { account_id: accountId });
  const redemptions = usePaged('redemptions', { account_id: accountId });
  const party = (id) => (id === accountId ? 'this account'
    : html`<${Link} href=${`accounts/${encodeURIComponent(id)}`}>${id}</${Link}>`);
  return html`<h2>Transfers</h2>
    <${Loading} state=${transfers}>
      <${Table} caption="Transfers" rows=${transfers.items} empty="No transfers." columns=${[
        { key: 'transfer_id', label: 'Transfer' }, { label: 'From', render: (t) => party(t.from_account_id) },
        { label: 'To', render: (t) => party(t.to_account_id) }, { label: 'D-RECs', render: (t) => number(t.quantity) },
        { label: 'Serial ranges', render: (t) => html`<code class="hash">${(t.serial_ranges || []).join(', ')}</code>` },
        { key: 'status', label: 'Status' }, { key: 'created_at', label: 'When (UTC)' }]} />
      ${transfers.pager}
    <//>
    <h2>Redemptions</h2>
    <${Loading} state=${redemptions}>
      <${Table} caption="Redemptions" rows=${redemptions.items} empty="No redemptions." columns=${[
        { label: 'Statement', render: (r) => html`<${Link} href=${`redemptions/${encodeURIComponent(r.redemption_id)}`}
          >${r.redemption_id}</${Link}>` },
        { key: 'beneficiary', label: 'Beneficiary' }, { label: 'D-RECs', render: (r) => number(r.serials.length) },
        { key: 'status', label: 'Status' }, { key: 'created_at', label: 'When (UTC)' }]} />
      ${redemptions.pager}
    <//>`;
}

export function AccountPage({ accountId }) {
  const account = useAsync(() => get(`accounts/${encodeURIComponent(accountId)}`), [accountId]);
  const a = account.data || {};
  return html`<h1>Account ${accountId}</h1>
    <${Loading} state=${account}>
      <${Definitions} items=${[['Name', a.name], ['Kind', words(a.kind)], ['Country', a.country],
        ['Contact', a.contact], ['External id', a.external_id], ['Registered', a.registered_at],
        ['Registered by', a.registered_by]]} />
      <p><${Link} href=${`devices?owner_account_id=${encodeURIComponent(accountId)}`}>Devices of this account</${Link}>${' · '}<${Link} href=${`drecs?owner_account_id=${encodeURIComponent(accountId)}`}>D-RECs of this account</${Link}></p>
      <h2>Holdings</h2>
      <${Holdings} accountId=${accountId} />
      <${Moves} accountId=${accountId} />
    <//>`;
}
