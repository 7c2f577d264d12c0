// Shared pieces of the pages: markup helper, forms with field-level errors, tables, paging, charts.
import { h } from 'preact';
import { useEffect, useRef, useState, useCallback } from 'preact/hooks';
import htm from 'htm';
import { ApiError, get } from './api.js';

export const html = htm.bind(h);

export const DEVICE_TYPES = ['solar_home_system', 'mini_grid', 'microgrid', 'rooftop_pv', 'other'];
export const OFFTAKER_TYPES = ['household', 'business', 'public_service', 'industrial', 'other'];
export const ACCOUNT_KINDS = ['developer', 'buyer', 'intermediary', 'broker'];
export const SOURCE_KINDS = ['aggregator', 'developer_backend', 'web_portal'];

export const words = (value) => String(value ?? '').replaceAll('_', ' ');
export const wh = (value) => (value === null || value === undefined ? '' : `${Number(value).toLocaleString('en')} Wh`);
export const number = (value, digits = 0) => (value === null || value === undefined || value === ''
  ? '' : Number(value).toLocaleString('en', { maximumFractionDigits: digits }));

/** Runs `load` when `deps` change; gives {data, error, loading, reload}. */
export function useAsync(load, deps) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((previous) => ({ ...previous, loading: true, error: null }));
    load().then((data) => live && setState({ data, error: null, loading: false }),
      (error) => live && setState({ data: null, error, loading: false }));
    return () => { live = false; };
  }, [...deps, tick]);
  return { ...state, reload: useCallback(() => setTick((n) => n + 1), []) };
}

export function ErrorBox({ error }) {
  if (!error) return null;
  const text = error instanceof ApiError ? error.plain : String(error.message || error);
  return html`<p class="error" role="alert">${text}</p>`;
}

export function Loading({ state, children }) {
  if (state.error) return html`<${ErrorBox} error=${state.error} />`;
  if (state.loading && !state.data) return html`<p aria-busy="true">Loading…</p>`;
  return children;
}

/**
 * One labelled form field. `spec`: {name, label, type: text|number|date|month|select|checkbox|textarea,
 * options, required, hint, step, placeholder}.
 */
export function Field({ spec, value, error, onInput, idPrefix }) {
  const id = `${idPrefix}-${spec.name}`;
  const described = [spec.hint ? `${id}-hint` : null, error ? `${id}-error` : null].filter(Boolean).join(' ');
  const common = { id, name: spec.name, 'aria-invalid': error ? 'true' : undefined,
    'aria-describedby': described || undefined, required: spec.required };
  let control;
  if (spec.type === 'select') {
    control = html`<select ...${common} value=${value ?? ''} onChange=${(e) => onInput(e.target.value)}>
      ${spec.required ? null : html`<option value="">${spec.any || '—'}</option>`}
      ${spec.options.map((option) => html`<option value=${option}>${words(option)}</option>`)}
    </select>`;
  } else if (spec.type === 'checkbox') {
    control = html`<input type="checkbox" ...${common} checked=${Boolean(value)}
      onChange=${(e) => onInput(e.target.checked)} />`;
  } else if (spec.type === 'textarea') {
    control = html`<textarea ...${common} rows=${spec.rows || 4} placeholder=${spec.placeholder}
      value=${value ?? ''} onInput=${(e) => onInput(e.target.value)} />`;
  } else {
    control = html`<input type=${spec.type || 'text'} ...${common} step=${spec.step} placeholder=${spec.placeholder}
      inputmode=${spec.type === 'number' ? 'decimal' : undefined}
      value=${value ?? ''} onInput=${(e) => onInput(e.target.value)} />`;
  }
  return html`<div class=${`field ${spec.type === 'checkbox' ? 'field-check' : ''} ${error ? 'has-error' : ''}`}>
    <label for=${id}>${spec.label}${spec.required ? html`<span aria-hidden="true"> *</span>` : null}</label>
    ${control}
    ${spec.hint ? html`<small id=${`${id}-hint`}>${spec.hint}</small>` : null}
    ${error ? html`<small class="field-error" id=${`${id}-error`}>${error}</small>` : null}
  </div>`;
}

/** The API's field path (`capacity_w`, `readings.0.energy_wh`) to one of this form's field names. */
function fieldFor(apiField, specs) {
  if (!apiField) return null;
  const parts = String(apiField).split('.');
  for (let i = parts.length - 1; i >= 0; i -= 1) {
    const spec = specs.find((s) => s.name === parts[i]);
    if (spec) return spec.name;
  }
  return null;
}

/** Form values typed for the API: numbers as numbers, empty optional fields left out. */
export function typed(specs, values) {
  const body = {};
  for (const spec of specs) {
    const value = values[spec.name];
    if (spec.type === 'checkbox') body[spec.name] = Boolean(value);
    else if (value === undefined || value === null || value === '') continue;
    else if (spec.type === 'number') body[spec.name] = Number.isNaN(Number(value)) ? value : Number(value);
    else body[spec.name] = typeof value === 'string' ? value.trim() : value;
  }
  return body;
}

/**
 * A form sent to the API. Validation is the API's (novalidate): its field errors appear under the
 * field named, other errors above the button; `onSubmit(values)` returns the result shown by `result`.
 */
export function Form({ id, specs, initial, submitLabel, onSubmit, result, children, extra }) {
  const [values, setValues] = useState(initial || {});
  const [errors, setErrors] = useState({});
  const [failure, setFailure] = useState(null);
  const [done, setDone] = useState(null);
  const [busy, setBusy] = useState(false);
  const formRef = useRef(null);
  useEffect(() => { if (initial) setValues((v) => ({ ...initial, ...v })); }, [JSON.stringify(initial)]);
  const submit = async (event) => {
    event.preventDefault();
    setBusy(true); setErrors({}); setFailure(null); setDone(null);
    try {
      setDone(await onSubmit(values));
    } catch (error) {
      const name = error instanceof ApiError ? fieldFor(error.field, specs) : null;
      if (name) {
        setErrors({ [name]: error.message });
        setFailure(error);
        setTimeout(() => formRef.current && formRef.current.querySelector(`[name="${name}"]`)?.focus(), 0);
      } else setFailure(error);
    } finally {
      setBusy(false);
    }
  };
  const visible = specs.filter((spec) => !spec.hidden || !spec.hidden(values));
  return html`<form id=${id} ref=${formRef} onSubmit=${submit} noValidate aria-busy=${busy ? 'true' : 'false'}>
    <div class="grid">
      ${visible.map((spec) => html`<${Field} key=${spec.name} spec=${spec} idPrefix=${id} value=${values[spec.name]}
        error=${errors[spec.name]} onInput=${(value) => setValues((v) => ({ ...v, [spec.name]: value }))} />`)}
    </div>
    ${extra ? extra(values, setValues) : null}
    <${ErrorBox} error=${failure} />
    <button type="submit" disabled=${busy}>${busy ? 'Sending…' : submitLabel}</button>
    ${done && result ? html`<div class="result" role="status">${result(done)}</div>` : null}
    ${children}
  </form>`;
}

export function Table({ columns, rows, caption, empty = 'Nothing to show.' }) {
  if (!rows || rows.length === 0) return html`<p class="empty">${empty}</p>`;
  return html`<div class="table-wrap" tabindex="0" role="region" aria-label=${caption || 'table'}>
    <table>
      ${caption ? html`<caption>${caption}</caption>` : null}
      <thead><tr>${columns.map((c) => html`<th scope="col">${c.label}</th>`)}</tr></thead>
      <tbody>${rows.map((row, i) => html`<tr key=${i}>${columns.map((c) => html`<td data-label=${c.label}>
        ${c.render ? c.render(row) : row[c.key]}</td>`)}</tr>`)}</tbody>
    </table>
  </div>`;
}

/** A paged list endpoint: `query` changes restart at the first page; Previous/Next follow cursors. */
export function usePaged(path, query, limit = 20) {
  const [cursors, setCursors] = useState([null]);
  const key = JSON.stringify(query);
  useEffect(() => setCursors([null]), [key]);
  const cursor = cursors[cursors.length - 1];
  const state = useAsync(() => get(path, { ...query, limit, cursor }), [path, key, cursor]);
  const pager = html`<nav class="pager" aria-label="pages">
    <button type="button" disabled=${cursors.length === 1}
      onClick=${() => setCursors((c) => c.slice(0, -1))}>Previous</button>
    <span>Page ${cursors.length}</span>
    <button type="button" disabled=${!state.data?.next_cursor}
      onClick=${() => setCursors((c) => [...c, state.data.next_cursor])}>Next</button>
  </nav>`;
  return { ...state, items: state.data?.items || [], pager };
}

/** A filter bar: fields whose values become the list's query when applied. */
export function Filters({ id, specs, value, onApply }) {
  const [draft, setDraft] = useState(value);
  useEffect(() => setDraft(value), [JSON.stringify(value)]);
  const apply = (event) => { event.preventDefault(); onApply(typed(specs, draft)); };
  return html`<form id=${id} class="filters" onSubmit=${apply} role="search">
    <div class="grid">
      ${specs.map((spec) => html`<${Field} key=${spec.name} spec=${spec} idPrefix=${id} value=${draft[spec.name]}
        onInput=${(v) => setDraft((d) => ({ ...d, [spec.name]: v }))} />`)}
    </div>
    <button type="submit">Apply filters</button>
    <button type="button" class="secondary" onClick=${() => { setDraft({}); onApply({}); }}>Clear</button>
  </form>`;
}

/** A Chart.js chart with its data also readable as a table (screen readers, no canvas). */
export function ChartBox({ config, label, table }) {
  const canvas = useRef(null);
  useEffect(() => {
    if (!window.Chart || !canvas.current) return undefined;
    const chart = new window.Chart(canvas.current, {
      ...config, options: { responsive: true, maintainAspectRatio: false, animation: false, ...config.options } });
    return () => chart.destroy();
  }, [JSON.stringify(config.data)]);
  return html`<figure class="chart">
    <div class="chart-area"><canvas ref=${canvas} role="img" aria-label=${label}></canvas></div>
    <figcaption>${label}</figcaption>
    ${table ? html`<details><summary>Data as a table</summary>${table}</details>` : null}
  </figure>`;
}

export function Link({ href, children }) {
  return html`<a href=${`#/${href}`}>${children}</a>`;
}

export function Definitions({ items }) {
  return html`<dl class="definitions">${items.filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([term, value]) => html`<div><dt>${term}</dt><dd>${value}</dd></div>`)}</dl>`;
}

export function NeedsKey({ action }) {
  return html`<p class="note">Sign in with a key that may ${action} to use this form.</p>`;
}
